"""Bi-encoder training: MNRL on positives, CoSENT on scores; a standard sentence-transformers directory."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import write

from simpair.bi_encoder import BiEncoder
from simpair.training.bi_encoder import train_bi_encoder
from simpair.config import build_config
from simpair.index import Index


def test_mnrl_trains_saves_and_indexes(tiny_bert: Path, tmp_path: Path, train_file: Path, dev_file: Path) -> None:
    from sentence_transformers import SentenceTransformer

    out = tmp_path / "bi"
    meta = train_bi_encoder(build_config(dict(kind="bi-encoder", model=str(tiny_bert), train=str(train_file),
                                              dev=str(dev_file), out=str(out), max_steps=6, eval_steps=3,
                                              batch_size=16, bf16="no", prefix="q: ")), progress=False)
    assert meta["loss"] == "mnrl" and meta["kind"] == "bi-encoder" and meta["global_step"] == 6
    assert -1.0 <= meta["threshold"] <= 1.0 and 0 <= meta["dev_metrics"]["accuracy"] <= 1
    assert SentenceTransformer(str(out), device="cpu").encode(["你好"]).shape[1] == 32
    saved = json.loads((out / "simpair.json").read_text())
    enc = BiEncoder(str(out), bf16=False)
    assert saved["prefix"] == "q: " == enc.prefix
    from simpair.cross_encoder import CrossEncoder
    from simpair.errors import SimpairError

    with pytest.raises(SimpairError, match="is a bi-encoder"):
        CrossEncoder(str(out))
    corpus = write(tmp_path / "c.txt", "你好\n怎么开初婚未育证明\n")
    assert len(Index.build(corpus, tmp_path / "idx", enc, progress=False)) == 2


def test_cosent_on_scores(tiny_bert: Path, tmp_path: Path) -> None:
    rows = [{"sentence1": f"问题{i}", "sentence2": f"问题{i % 5}", "score": float(i % 6)} for i in range(40)]
    path = write(tmp_path / "sts.jsonl", "\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n")
    meta = train_bi_encoder(build_config(dict(kind="bi-encoder", model=str(tiny_bert), train=str(path),
                                              dev=str(path), out=str(tmp_path / "sts"), max_steps=4,
                                              bf16="no")), progress=False)
    assert meta["loss"] == "cosent" and meta["task"] == "regression" and "spearman" in meta["dev_metrics"]


def test_mnrl_needs_positives(tiny_bert: Path, tmp_path: Path) -> None:
    from simpair.errors import InputError

    path = write(tmp_path / "neg.tsv", "a\tb\t0\nc\td\t0\ne\tf\t1\n")
    with pytest.raises(InputError, match="at least 2 positive"):
        train_bi_encoder(build_config(dict(kind="bi-encoder", model=str(tiny_bert), train=str(path),
                                           out=str(tmp_path / "x"), max_steps=2, bf16="no")), progress=False)
