"""Retrieval metrics on a hand-made example; re-ranking and its fused order; eval-retrieval excluding the query
itself."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import write

from simpair.bi_encoder import BiEncoder
from simpair.cli import main
from simpair.config import build_config
from simpair.index import Index
from simpair.readers import read_queries
from simpair.errors import SimpairError
from simpair.search import RERANK_WEIGHT, Searcher, evaluate_retrieval, fused_scores, retrieval_metrics
from simpair.training import train


def test_retrieval_metrics_by_hand() -> None:
    ranked = [["a", "b", "c"], ["x", "y", "z"], ["p", "q", "r"]]
    relevant = [{"a"}, {"z", "y"}, {"nothing"}]
    m = retrieval_metrics(ranked, relevant, ks=(1, 2, 3))
    assert m["recall@1"] == pytest.approx(1 / 3)
    assert m["recall@2"] == pytest.approx(2 / 3)
    assert m["recall@3"] == pytest.approx(2 / 3)
    assert m["mrr@10"] == pytest.approx((1 + 1 / 2 + 0) / 3)
    # query 2: gains at ranks 2 and 3 -> DCG 1/log2(3) + 1/log2(4); ideal 1 + 1/log2(3)
    import math

    q2 = (1 / math.log2(3) + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
    assert m["ndcg@10"] == pytest.approx((1 + q2 + 0) / 3)


def test_read_queries(tmp_path: Path) -> None:
    q = read_queries(write(tmp_path / "q.tsv", "query\trelevant_ids\n你好\t1,2\n"))
    assert q == [("你好", {"1", "2"}, 2)]


@pytest.fixture(scope="module")
def setup(tiny_bert: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("search")
    texts = ["怎么开初婚未育证明", "初婚未育证明怎么开", "微信的密码忘掉了该怎么办", "忘记微信密码怎么找回", "狗狗不吃东西怎么办"]
    corpus = write(root / "corpus.tsv", "id\ttext\n" + "".join(f"{i}\t{t}\n" for i, t in enumerate(texts)))
    queries = write(root / "queries.tsv", "query\trelevant_ids\n怎么开初婚未育证明\t1\n微信的密码忘掉了该怎么办\t3\n")
    enc = BiEncoder(str(tiny_bert), bf16=False)
    Index.build(corpus, root / "idx", enc, progress=False)
    data = Path(__file__).resolve().parents[1] / "data"
    model = root / "ce"
    train(build_config(dict(model=str(tiny_bert), train=str(data / "train.tsv"), dev=str(data / "dev.tsv"),
                            out=str(model), max_steps=4, eval_steps=2, bf16="no")), progress=False)
    return root / "idx", queries, model


def test_query_itself_never_counts(setup: tuple[Path, Path, Path], tiny_bert: Path) -> None:
    idx, queries, _ = setup
    searcher = Searcher(idx, encoder=BiEncoder(str(tiny_bert), bf16=False))
    result = evaluate_retrieval(searcher, queries)
    assert result["queries"] == 2
    hits = searcher.search_batch(["怎么开初婚未育证明"], k=4, exclude=[{"0"}])[0]
    assert "0" not in [h["id"] for h in hits]


def test_fused_scores_settle_near_ties_only() -> None:
    cos, prob = [0.90, 0.80, 0.899], [0.60, 0.99, 0.95]
    order = lambda w: list(np.argsort(-fused_scores(cos, prob, w), kind="stable"))  # noqa: E731
    assert order(0.0) == [0, 2, 1]  # the bi-encoder's order
    assert order(RERANK_WEIGHT) == [2, 0, 1]  # 0.001 of cosine is outweighed, 0.1 is not
    assert order(math.inf) == [1, 2, 0]  # the probability alone
    assert order(math.inf) == list(np.argsort(-np.array(prob)))


class _FixedReranker:
    """A stand-in cross-encoder whose probability for a candidate is set by its text."""

    threshold = 0.5

    def __init__(self, prob_of: dict[str, float]) -> None:
        self.prob_of = prob_of

    def predict(self, pairs: list[tuple[str, str]], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        return np.array([self.prob_of[b] for _, b in pairs])


@pytest.mark.parametrize("weight", [0.0, RERANK_WEIGHT, 1.0, math.inf])
def test_rerank_orders_by_the_fused_score(setup: tuple[Path, Path, Path], tiny_bert: Path, weight: float) -> None:
    idx, _, _ = setup
    index = Index.load(idx)
    probs = dict(zip(index.texts, [0.2, 0.9, 0.55, 0.1, 0.7]))
    searcher = Searcher(index, reranker=_FixedReranker(probs), encoder=BiEncoder(str(tiny_bert), bf16=False),
                        rerank_weight=weight)
    hits = searcher.search("怎么开初婚未育证明", k=5, candidates=5)
    assert [h["rerank_score"] for h in hits] == [probs[h["text"]] for h in hits]
    assert [h["same"] for h in hits] == [probs[h["text"]] >= 0.5 for h in hits]
    key = fused_scores([h["score"] for h in hits], [h["rerank_score"] for h in hits], weight)
    assert list(key) == sorted(key, reverse=True)
    plain = searcher.search("怎么开初婚未育证明", k=5, rerank=False)
    if weight == 0.0:
        assert [h["id"] for h in hits] == [h["id"] for h in plain]
    if weight == math.inf:
        assert [h["rerank_score"] for h in hits] == sorted(probs.values(), reverse=True)


@pytest.mark.parametrize("weight", [-0.1, math.nan])
def test_bad_rerank_weight_is_refused(setup: tuple[Path, Path, Path], tiny_bert: Path, weight: float) -> None:
    idx, _, _ = setup
    with pytest.raises(SimpairError, match="rerank weight"):
        Searcher(idx, encoder=BiEncoder(str(tiny_bert), bf16=False), rerank_weight=weight)


def test_rerank_adds_scores_and_sorts(setup: tuple[Path, Path, Path], tiny_bert: Path) -> None:
    idx, _, model = setup
    searcher = Searcher(idx, reranker=str(model), encoder=BiEncoder(str(tiny_bert), bf16=False), bf16=False)
    hits = searcher.search("怎么开初婚未育证明", k=3, candidates=5)
    assert len(hits) == 3 and all({"rerank_score", "same"} <= set(h) for h in hits)
    key = fused_scores([h["score"] for h in hits], [h["rerank_score"] for h in hits])
    assert list(key) == sorted(key, reverse=True)


def test_cli_search_rerank_and_eval_retrieval(setup: tuple[Path, Path, Path]) -> None:
    idx, queries, model = setup
    runner = CliRunner()
    res = runner.invoke(main, ["search", str(idx), "怎么开初婚未育证明", "-k", "2", "--rerank-model", str(model), "--json"])
    assert res.exit_code == 0, res.output
    hit = json.loads(res.stdout)["hits"][0]
    assert {"score", "rerank_score", "same"} <= set(hit)
    res = runner.invoke(main, ["eval-retrieval", str(idx), str(queries), "--rerank-model", str(model), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    for part in ("bi_encoder", "reranked"):
        assert {"recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10"} <= set(out[part])
    assert out["reranked"]["rerank_weight"] == RERANK_WEIGHT
    res = runner.invoke(main, ["eval-retrieval", str(idx), str(queries), "--rerank-model", str(model),
                               "--rerank-weight", "inf", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["reranked"]["rerank_weight"] == "inf"


def test_cli_search_rerank_weight(setup: tuple[Path, Path, Path]) -> None:
    idx, _, model = setup
    runner = CliRunner()
    res = runner.invoke(main, ["search", str(idx), "怎么开初婚未育证明", "-k", "5", "--rerank-model", str(model),
                               "--rerank-weight", "inf", "--json"])
    assert res.exit_code == 0, res.output
    probs = [h["rerank_score"] for h in json.loads(res.stdout)["hits"]]
    assert probs == sorted(probs, reverse=True)
    res = runner.invoke(main, ["search", str(idx), "怎么开初婚未育证明", "--rerank-model", str(model),
                               "--rerank-weight", "-1"])
    assert res.exit_code == 2 and "rerank weight" in res.output


def test_cli_rerank_flag_uses_the_default_matcher(setup: tuple[Path, Path, Path],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    idx, _, model = setup
    runner = CliRunner()
    monkeypatch.setenv("SIMPAIR_MODEL", str(model))
    res = runner.invoke(main, ["search", str(idx), "怎么开初婚未育证明", "-k", "2", "--rerank", "--json"])
    assert res.exit_code == 0, res.output
    assert all("rerank_score" in h for h in json.loads(res.stdout)["hits"])
    res = runner.invoke(main, ["search", str(idx), "怎么开初婚未育证明", "-k", "2", "--json"])
    assert res.exit_code == 0, res.output
    assert not any("rerank_score" in h for h in json.loads(res.stdout)["hits"])
