"""Index build/search/persist round trip, incremental add, model mismatch, corpus errors, auto types."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import DATA, write
from tiny import make_tiny_model

from simpair.bi_encoder import BiEncoder
from simpair.cli import main
from simpair.errors import InputError, SimpairError
from simpair.index import AUTO_FLAT_MAX, AUTO_HNSW_MAX, Index, choose_type, read_corpus
from simpair.search import Searcher, ann_recall_vs_exact


@pytest.fixture(scope="module")
def encoder(tiny_bert: Path) -> BiEncoder:
    return BiEncoder(str(tiny_bert), bf16=False)


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    rows = ["id\ttext"] + [f"d{i}\t{t}" for i, t in enumerate(
        ["怎么开初婚未育证明", "微信的密码忘掉了该怎么办", "How do I reset my password?", "北京到上海的高铁要多久",
         "狗狗不吃东西怎么办", "信用卡怎么提高额度"])]
    return write(tmp_path / "corpus.tsv", "\n".join(rows) + "\n")


def test_build_search_persist_round_trip(encoder: BiEncoder, corpus: Path, tmp_path: Path) -> None:
    idx = Index.build(corpus, tmp_path / "idx", encoder, progress=False)
    assert idx.kind == "flat" and len(idx) == 6
    m = json.loads((tmp_path / "idx" / "manifest.json").read_text())
    assert m["fingerprint"] == encoder.fingerprint and m["dim"] == encoder.dim and m["normalized"] is True
    assert set(m["files"]) == {"index.faiss", "store.sqlite"}
    searcher = Searcher(Index.load(tmp_path / "idx"), encoder=encoder)
    hits = searcher.search("微信的密码忘掉了该怎么办", k=3)
    assert hits[0]["id"] == "d1" and hits[0]["text"] == "微信的密码忘掉了该怎么办"
    assert hits[0]["score"] == pytest.approx(1.0, abs=1e-4)
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    assert "d1" not in [h["id"] for h in searcher.search("微信的密码忘掉了该怎么办", k=3, exclude={"d1"})]


def test_incremental_add(encoder: BiEncoder, corpus: Path, tmp_path: Path) -> None:
    idx = Index.build(corpus, tmp_path / "idx", encoder, progress=False)
    before = idx.faiss.reconstruct_n(0, 6)
    more = write(tmp_path / "more.jsonl", '{"id": "n1", "text": "苹果手机截图要怎么操作"}\n{"id": "n2", "text": "电脑没有声音"}\n')
    assert idx.add(more, encoder, progress=False) == {"added": 2, "skipped": 0, "count": 8}
    again = Index.load(tmp_path / "idx", encoder=encoder)
    assert len(again) == 8 and again.ids[-2:] == ["n1", "n2"]
    np.testing.assert_array_equal(again.faiss.reconstruct_n(0, 6), before)  # old vectors untouched
    assert Searcher(again, encoder=encoder).search("苹果手机截图要怎么操作", k=1)[0]["id"] == "n1"
    dup = write(tmp_path / "dup.tsv", "d2\tduplicate id\nn3\tnew one\n")
    with pytest.raises(InputError, match="already in the index"):
        again.add(dup, encoder, progress=False)
    assert len(Index.load(tmp_path / "idx")) == 8  # nothing written on rejection
    assert again.add(dup, encoder, on_duplicate="skip", progress=False) == {"added": 1, "skipped": 1, "count": 9}


def test_model_mismatch(encoder: BiEncoder, corpus: Path, tmp_path: Path) -> None:
    Index.build(corpus, tmp_path / "idx", encoder, progress=False)
    other_dir = make_tiny_model(tmp_path / "other", ["怎么开初婚未育证明微信密码"], seed=1)
    other = BiEncoder(str(other_dir), bf16=False)
    with pytest.raises(SimpairError, match="built with model"):
        Index.load(tmp_path / "idx", encoder=other)


def test_damaged_index_is_refused(encoder: BiEncoder, corpus: Path, tmp_path: Path) -> None:
    Index.build(corpus, tmp_path / "idx", encoder, progress=False)
    with open(tmp_path / "idx" / "index.faiss", "ab") as fh:
        fh.write(b"x")
    with pytest.raises(SimpairError, match="checksum"):
        Index.load(tmp_path / "idx")


@pytest.mark.parametrize(("content", "name", "line", "expected"), [
    ("a\tone\nb\ttwo\textra\n", "c.tsv", 2, "expected 2 tab-separated columns"),
    ("a\tone\na\ttwo\n", "c.tsv", 2, "duplicate id 'a'"),
    ("a\tone\nb\t \n", "c.tsv", 2, "empty text"),
    ('{"id": 1, "text": "x"}\n{oops\n', "c.jsonl", 2, "not valid JSON"),
    ('{"id": 1, "txt": "x"}\n', "c.jsonl", 1, 'string "text"'),
])
def test_bad_corpus_lines(tmp_path: Path, content: str, name: str, line: int, expected: str) -> None:
    path = write(tmp_path / name, content)
    with pytest.raises(InputError) as err:
        read_corpus(path)
    assert err.value.line == line and expected in str(err.value)


def test_txt_corpus_ids_are_line_numbers(tmp_path: Path) -> None:
    entries = read_corpus(write(tmp_path / "c.txt", "first\n\nthird\n"))
    assert [(e.id, e.text) for e in entries] == [("1", "first"), ("3", "third")]


def test_auto_type_choice() -> None:
    assert choose_type(10) == "flat" and choose_type(AUTO_FLAT_MAX) == "flat"
    assert choose_type(AUTO_FLAT_MAX + 1) == "hnsw" and choose_type(AUTO_HNSW_MAX) == "hnsw"
    assert choose_type(AUTO_HNSW_MAX + 1) == "ivfpq"


@pytest.mark.parametrize("kind", ["hnsw", "ivf", "ivfpq"])
def test_ann_types_build_and_recall(encoder: BiEncoder, tmp_path: Path, kind: str) -> None:
    texts = [line.split("\t")[1] for line in (DATA / "corpus.tsv").read_text(encoding="utf-8").splitlines()[1:]]
    path = write(tmp_path / "c.txt", "\n".join(texts) + "\n")
    idx = Index.build(path, tmp_path / kind, encoder, kind=kind, progress=False)
    assert idx.kind == kind and len(idx) == len(texts)
    reloaded = Index.load(tmp_path / kind, encoder=encoder)
    recall = ann_recall_vs_exact(reloaded, encoder, texts[:40])
    assert 0.3 <= recall <= 1.0
    if kind != "ivfpq":
        assert recall >= 0.8


def test_cli_build_search_add_info(tiny_bert: Path, corpus: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "idx"
    res = runner.invoke(main, ["index", "build", str(corpus), "--out", str(out), "--model", str(tiny_bert), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["count"] == 6
    res = runner.invoke(main, ["search", str(out), "狗狗不吃东西怎么办", "-k", "2", "--json"])
    assert res.exit_code == 0, res.output
    hits = json.loads(res.stdout)["hits"]
    assert hits[0]["id"] == "d4" and {"id", "text", "score"} <= set(hits[0])
    more = write(tmp_path / "more.txt", "新的问题\n")
    res = runner.invoke(main, ["index", "add", str(out), str(more), "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout)["count"] == 7
    res = runner.invoke(main, ["index", "info", str(out), "--json"])
    assert json.loads(res.stdout)["count"] == 7
    bad = write(tmp_path / "bad.tsv", "x\tone\nx\ttwo\n")
    res = runner.invoke(main, ["index", "build", str(bad), "--out", str(tmp_path / "never"), "--model", str(tiny_bert)])
    assert res.exit_code == 2 and f"{bad}:2:" in res.stderr and not (tmp_path / "never").exists()
