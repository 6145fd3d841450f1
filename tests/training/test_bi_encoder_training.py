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


def test_hard_negatives_come_from_labelled_negatives_of_the_same_question() -> None:
    from simpair.readers import Pair
    from simpair.training.bi_encoder import labelled_negatives, mnrl_rows, nli_triplets

    pairs = [Pair("a", "b", 1.0), Pair("a", "c", 0.0), Pair("d", "e", 1.0), Pair("f", "d", 0.0),
             Pair("g", "h", 1.0)]
    triplets, plain = mnrl_rows(pairs, "q: ", labelled_negatives(pairs))
    assert list(zip(triplets["anchor"], triplets["positive"], triplets["negative"])) == [
        ("q: a", "q: b", "q: c"), ("q: d", "q: e", "q: f")]
    assert list(zip(plain["anchor"], plain["positive"])) == [("q: g", "q: h")]
    # the negatives come from the whole file, not only from the rows sampling drew
    triplets, plain = mnrl_rows(pairs[:1], "", labelled_negatives(pairs))
    assert triplets["negative"] == ["c"] and not plain["anchor"]
    nli = [Pair("p", "yes", 2.0), Pair("p", "maybe", 1.0), Pair("p", "no", 0.0), Pair("r", "yes2", 2.0)]
    assert nli_triplets(nli) == [("p", "yes", "no")]


def test_several_files_nli_scores_and_labels_mixed(tiny_bert: Path, tmp_path: Path, train_file: Path,
                                                    dev_file: Path) -> None:
    """A 0/1 file, an NLI file and a score file in one run: one dataset per file and loss, temperature-mixed,
    dev metrics per file and one cosine threshold."""
    nli = write(tmp_path / "nli.tsv", "text_a\ttext_b\tlabel\n" + "".join(
        f"前提{i}\t蕴含{i}\tentailment\n前提{i}\t矛盾{i}\tcontradiction\n前提{i}\t中立{i}\tneutral\n"
        for i in range(20)))
    sts = write(tmp_path / "sts.tsv", "sentence1\tsentence2\tscore\n" + "".join(
        f"句子{i}\t句子{i % 4}\t{i % 6}\n" for i in range(30)))
    out = tmp_path / "mixed"
    meta = train_bi_encoder(build_config(dict(
        kind="bi-encoder", model=str(tiny_bert), train=[str(train_file), str(nli), str(sts)],
        dev=[str(dev_file), str(sts)], sample_temperature=2.0, sample_size=120, out=str(out), max_steps=6,
        eval_steps=3, batch_size=8, bf16="no")), progress=False)
    assert meta["loss"] == "mnrl+cosent" and meta["task"] == "mixed"
    names = set(meta["train_examples"])  # file names as in the cross-encoder's metric keys (dev_names), then the loss
    assert {"tmp_nli-nli", "tmp_sts-cosent"} <= {n.replace(tmp_path.name, "tmp") for n in names}
    assert any(n.endswith("-cosent") and "train" in n for n in names)
    assert sum(d["drawn"] for d in meta["data"]["train_mix"]) == 120
    per_file = meta["dev_metrics_per_file"]
    assert set(per_file) == {str(dev_file), str(sts)}
    assert "accuracy" in per_file[str(dev_file)] and "spearman" in per_file[str(sts)]
    assert -1.0 <= meta["threshold"] <= 1.0
    assert (out / "modules.json").is_file()


@pytest.mark.parametrize("kind", ["cross-encoder", "bi-encoder"])
def test_a_temperature_needs_several_train_files(kind: str, tiny_bert: Path, tmp_path: Path, train_file: Path) -> None:
    from simpair.errors import ConfigError
    from simpair.training import train

    with pytest.raises(ConfigError, match="only one was given"):
        train(build_config(dict(kind=kind, model=str(tiny_bert), train=str(train_file), out=str(tmp_path / "x"),
                                sample_temperature=2.0)), progress=False)
    assert not (tmp_path / "x").exists()
