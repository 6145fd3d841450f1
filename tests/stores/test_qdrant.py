"""The Qdrant store in its local mode (no server): the same hits and retrieval metrics as FAISS, idempotent
adds, the model check, atomic rebuilds, the CLI and the server on a ``qdrant+local://`` address."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import DATA, hide_package, write

from simpair.bi_encoder import BiEncoder
from simpair.cli import main
from simpair.errors import InputError, SimpairError
from simpair.index import Index
from simpair.search import Searcher, evaluate_retrieval
from simpair.stores import open_index
from simpair.stores.qdrant import QdrantIndex, StoreURL, point_id

pytest.importorskip("qdrant_client")

QUERIES = ["狗狗不吃东西怎么办", "微信密码忘了怎么找回", "How do I reset my password?", "信用卡额度怎么提升"]


@pytest.fixture(scope="module")
def encoder(tiny_bert: Path) -> BiEncoder:
    return BiEncoder(str(tiny_bert), bf16=False)


@pytest.fixture()
def store(tmp_path: Path) -> str:
    return f"qdrant+local://{tmp_path / 'qdrant'}"


def test_same_hits_as_faiss_flat(encoder: BiEncoder, store: str, tmp_path: Path) -> None:
    q = QdrantIndex.build(DATA / "corpus.tsv", store, encoder, progress=False)
    f = Index.build(DATA / "corpus.tsv", tmp_path / "faiss", encoder, kind="flat", progress=False)
    assert len(q) == len(f) == 335 and q.kind == "qdrant"
    vectors = encoder.encode(QUERIES)
    got, want = q.hits(vectors, 10), f.hits(vectors, 10)
    assert [[i for i, _, _ in h] for h in got] == [[i for i, _, _ in h] for h in want]
    assert np.allclose([s for h in got for _, _, s in h], [s for h in want for _, _, s in h], atol=1e-5)
    own = q.hits(vectors[:1], 3, exclude_texts=QUERIES[:1])[0]  # the query's own entry left out, in the search
    assert QUERIES[0] not in [t for _, t, _ in own] and len(own) == 3
    assert q.hits(vectors[:1], 2, exclude_ids=[{want[0][0][0]}])[0][0][0] == want[0][1][0]


def test_retrieval_metrics_equal_faiss(encoder: BiEncoder, store: str, tmp_path: Path) -> None:
    lines = ["query\trelevant_ids"]
    corpus = [line.split("\t") for line in (DATA / "corpus.tsv").read_text(encoding="utf-8").splitlines()[1:]]
    for (_, text), (rel, _) in zip(corpus[0:40:2], corpus[1:40:2]):  # neighbours in the sample are paraphrases
        lines.append(f"{text}\t{rel}")
    queries = write(tmp_path / "queries.tsv", "\n".join(lines) + "\n")
    q = QdrantIndex.build(DATA / "corpus.tsv", store, encoder, progress=False)
    f = Index.build(DATA / "corpus.tsv", tmp_path / "faiss", encoder, kind="flat", progress=False)
    mq = evaluate_retrieval(Searcher(q, encoder=encoder), queries)
    mf = evaluate_retrieval(Searcher(f, encoder=encoder), queries)
    for key in ("recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10"):
        assert mq[key] == pytest.approx(mf[key], abs=1e-9), key


def test_add_is_idempotent_by_id_and_checks_duplicates(encoder: BiEncoder, store: str, tmp_path: Path) -> None:
    first = write(tmp_path / "a.tsv", "id\ttext\na1\t怎么开初婚未育证明\na2\t信用卡怎么提高额度\n")
    more = write(tmp_path / "b.tsv", "id\ttext\na2\t信用卡怎么提高额度\na3\t北京到上海的高铁要多久\n")
    idx = QdrantIndex.build(first, store, encoder, progress=False)
    with pytest.raises(InputError) as err:
        idx.add(more, encoder, progress=False)
    assert err.value.line == 2 and "'a2'" in str(err.value) and len(idx) == 2
    assert idx.add(more, encoder, on_duplicate="skip", progress=False) == {"added": 1, "skipped": 1, "count": 3}
    assert idx.add(more, encoder, on_duplicate="skip", progress=False)["count"] == 3  # again: nothing doubles
    assert point_id("a2") == point_id("a2") != point_id("a3")


def test_other_model_is_refused(encoder: BiEncoder, store: str, tiny_ernie: Path) -> None:
    QdrantIndex.build(DATA / "corpus.tsv", store, encoder, progress=False)
    with pytest.raises(SimpairError, match="built with model"):
        open_index(store, encoder=BiEncoder(str(tiny_ernie), bf16=False))


def test_rebuild_moves_the_alias_and_drops_the_old_collection(encoder: BiEncoder, store: str,
                                                              tmp_path: Path) -> None:
    one = write(tmp_path / "one.txt", "第一个问题\n")
    first = QdrantIndex.build(one, store, encoder, progress=False).info()["collection"]
    second = QdrantIndex.build(DATA / "corpus.tsv", store, encoder, progress=False)
    names = [c.name for c in second.client.get_collections().collections]
    assert second.info()["collection"] != first and first not in names and len(open_index(store)) == 335


def test_a_failed_build_leaves_the_old_index(encoder: BiEncoder, store: str, tmp_path: Path) -> None:
    QdrantIndex.build(DATA / "corpus.tsv", store, encoder, progress=False)

    def broken(texts: list[str]) -> np.ndarray:
        raise RuntimeError("encoder crashed")

    with pytest.raises(RuntimeError):
        QdrantIndex.build(write(tmp_path / "x.txt", "新问题\n"), store, encoder, progress=False, encode=broken)
    idx = open_index(store)
    assert len(idx) == 335 and len(idx.client.get_collections().collections) == 1


def test_foreign_collection_is_not_replaced_or_searched(encoder: BiEncoder, store: str) -> None:
    from qdrant_client import models

    client = StoreURL.parse(store).client()
    client.create_collection("simpair", vectors_config=models.VectorParams(size=4, distance=models.Distance.DOT))
    with pytest.raises(SimpairError, match="did not create"):
        QdrantIndex.build(DATA / "corpus.tsv", store, encoder, progress=False)
    with pytest.raises(SimpairError, match="not written by simpair"):
        open_index(store)


@pytest.mark.parametrize(("spec", "location", "collection"), [
    ("qdrant://db.example:6334/faq", "http://db.example:6334", "faq"),
    ("qdrants://db.example/faq", "https://db.example:6333", "faq"),
    ("qdrant+local:///data/q?collection=faq", "/data/q", "faq"),
    ("qdrant+local://runs/q", "runs/q", "simpair"),
])
def test_store_addresses(spec: str, location: str, collection: str) -> None:
    url = StoreURL.parse(spec)
    assert (url.location, url.collection) == (location, collection)
    assert StoreURL.parse(str(url)) == url


@pytest.mark.parametrize("spec", ["qdrant://db.example", "qdrant:///faq", "qdrant://h/a/b", "milvus://h/c"])
def test_bad_store_addresses(spec: str) -> None:
    with pytest.raises(SimpairError, match="expected"):
        StoreURL.parse(spec)


def test_missing_extra_names_it(monkeypatch: pytest.MonkeyPatch, store: str) -> None:
    hide_package(monkeypatch, "qdrant_client")
    with pytest.raises(SimpairError, match=r"pip install 'simpair\[qdrant\]'"):
        StoreURL.parse(store + "-other").client()


def test_cli_build_search_add_info_and_server(tiny_bert: Path, served: dict[str, str], store: str,
                                              tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(main, ["index", "build", str(DATA / "corpus.tsv"), "--store", store, "--model",
                               str(tiny_bert), "--hnsw-m", "8", "--json"])
    assert res.exit_code == 0, res.output
    built = json.loads(res.stdout)
    assert built["count"] == 335 and built["index_type"] == "qdrant" and built["params"]["hnsw_m"] == 8
    res = runner.invoke(main, ["search", store, QUERIES[0], "-k", "2", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["hits"][0]["text"] == QUERIES[0]
    res = runner.invoke(main, ["search", store, QUERIES[0], "-k", "2", "--rerank-model", served["model"], "--json"])
    assert res.exit_code == 0, res.output
    assert {"rerank_score", "same"} <= set(json.loads(res.stdout)["hits"][0])
    queries = write(tmp_path / "q.tsv", "query\trelevant_ids\n狗狗不吃东西怎么办\tq0120\n")
    res = runner.invoke(main, ["eval-retrieval", store, str(queries), "--rerank-model", served["model"], "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["bi_encoder"]["queries"] == 1 and report["ann_recall@10_vs_exact"] == 1.0 and "reranked" in report
    res = runner.invoke(main, ["index", "add", store, str(write(tmp_path / "m.txt", "一个新的问题\n")), "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout)["count"] == 336, res.output
    res = runner.invoke(main, ["index", "info", store, "--json"])
    assert json.loads(res.stdout)["count"] == 336
    res = runner.invoke(main, ["index", "build", str(DATA / "corpus.tsv"), "--out", "x", "--store", store])
    assert res.exit_code == 2 and "--out DIR" in res.output

    from fastapi.testclient import TestClient

    from simpair.server import create_app

    with TestClient(create_app(model=served["model"], index=store, load_sentiment=False)) as client:
        got = client.post("/search", json={"query": QUERIES[0], "k": 3})
        assert got.status_code == 200, got.text
        assert got.json()["hits"][0]["text"] == QUERIES[0]


def test_exclusions_widen_the_search_until_k_remain(encoder: BiEncoder, store: str, tmp_path: Path) -> None:
    rows = [f"dup{i}\t怎么开初婚未育证明" for i in range(12)] + ["a\t信用卡怎么提高额度", "b\t北京到上海的高铁要多久"]
    corpus = write(tmp_path / "c.tsv", "id\ttext\n" + "\n".join(rows) + "\n")
    q = QdrantIndex.build(corpus, store, encoder, progress=False)
    f = Index.build(corpus, tmp_path / "faiss", encoder, kind="flat", progress=False)
    vec = encoder.encode(["怎么开初婚未育证明"])
    got = q.hits(vec, 2, exclude_texts=["怎么开初婚未育证明"])[0]
    assert sorted(i for i, _, _ in got) == ["a", "b"]
    assert [i for i, _, _ in got] == [i for i, _, _ in f.hits(vec, 2, exclude_texts=["怎么开初婚未育证明"])[0]]
    assert len(q.hits(vec, 3, exclude_ids=[{f"dup{i}" for i in range(11)}])[0]) == 3
