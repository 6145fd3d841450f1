"""Retrieval metrics on a hand-made example; re-ranking; eval-retrieval excluding the query itself."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import write

from simpair.bi_encoder import BiEncoder
from simpair.cli import main
from simpair.config import build_config
from simpair.index import Index
from simpair.readers import read_queries
from simpair.search import Searcher, evaluate_retrieval, retrieval_metrics
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


def test_rerank_adds_scores_and_sorts(setup: tuple[Path, Path, Path], tiny_bert: Path) -> None:
    idx, _, model = setup
    searcher = Searcher(idx, reranker=str(model), encoder=BiEncoder(str(tiny_bert), bf16=False), bf16=False)
    hits = searcher.search("怎么开初婚未育证明", k=3, candidates=5)
    assert len(hits) == 3 and all({"rerank_score", "same"} <= set(h) for h in hits)
    assert [h["rerank_score"] for h in hits] == sorted((h["rerank_score"] for h in hits), reverse=True)


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
