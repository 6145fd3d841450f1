"""simpair eval for every kind of model: a bi-encoder is scored by cosine similarity (STS tables' metric),
its numbers recomputed from the embeddings; simpair.train with kind bi-encoder writes a sentence-transformers
model."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import DATA, write
from scipy import stats

import simpair
from simpair.cli import main
from simpair.evaluation import model_kind


@pytest.fixture(scope="module")
def bi_model(tiny_bert: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bi") / "bi"
    cfg = simpair.build_config(dict(kind="bi-encoder", model=str(tiny_bert), train=str(DATA / "train.tsv"),
                                    dev=str(DATA / "dev.tsv"), out=str(out), max_steps=4, eval_steps=2,
                                    batch_size=16, bf16="no"))
    simpair.train(cfg, progress=False)  # the one entry point dispatches on kind
    return out


def test_train_with_kind_bi_encoder_writes_a_sentence_transformers_model(bi_model: Path) -> None:
    from sentence_transformers import SentenceTransformer

    assert (bi_model / "modules.json").is_file()
    assert json.loads((bi_model / "simpair.json").read_text())["kind"] == "bi-encoder"
    assert SentenceTransformer(str(bi_model), device="cpu").encode(["你好"]).shape == (1, 32)
    assert model_kind(str(bi_model)) == "bi-encoder"


def test_bi_encoder_eval_is_cosine_against_labels(bi_model: Path) -> None:
    data = DATA / "dev.tsv"
    r = simpair.evaluate(str(bi_model), str(data), precision="fp32")
    assert r["kind"] == "bi-encoder" and r["pairs"] == 108
    enc = simpair.BiEncoder(str(bi_model), precision="fp32")
    pairs = simpair.read_pairs(data, warn=False)
    a = enc.encode([p.text_a for p in pairs.pairs])
    b = enc.encode([p.text_b for p in pairs.pairs])
    cos, gold = (a * b).sum(1), np.array(pairs.labels)
    m = r["metrics"]
    assert m["threshold"] == pytest.approx(enc.threshold) and m["threshold_source"] == "stored"
    assert m["accuracy"] == pytest.approx(((cos >= enc.threshold) == gold).mean(), abs=1e-6)
    assert m["spearman"] == pytest.approx(stats.spearmanr(cos, gold)[0], abs=1e-5)
    from sklearn.metrics import roc_auc_score

    assert m["roc_auc"] == pytest.approx(roc_auc_score(gold, cos), abs=1e-5)


def test_eval_cli_scores_a_base_model_as_a_bi_encoder_on_scores(tiny_bert: Path, tmp_path: Path) -> None:
    from sentence_transformers import SentenceTransformer

    st_dir = tmp_path / "st"
    SentenceTransformer(str(tiny_bert), device="cpu").save(str(st_dir))  # a plain base model, no simpair.json
    rows = [{"sentence1": f"问题{i}", "sentence2": f"问题{i % 4}", "score": float(i % 6)} for i in range(30)]
    sts = write(tmp_path / "sts.jsonl", "\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n")
    res = CliRunner().invoke(main, ["eval", str(st_dir), str(sts), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["kind"] == "bi-encoder" and out["task"] == "regression" and out["metrics"]["spearman"] is not None
    res = CliRunner().invoke(main, ["eval", str(st_dir), str(DATA / "dev.tsv"), "--json"])
    m = json.loads(res.stdout)["metrics"]
    # no stored cosine cut: no accuracy at a made-up one, but the best-threshold accuracy and AUC
    assert m["accuracy"] is None and m["threshold_source"].startswith("none") and 0.5 <= m["best_accuracy"] <= 1


def test_eval_of_several_files_scores_each_and_their_unweighted_mean(tiny_bert: Path, bi_model: Path,
                                                                       tmp_path: Path) -> None:
    """`simpair eval MODEL A B`: each file as `simpair eval MODEL A` would score it, the model loaded once, and the
    mean over the files (each counts the same, whatever its size); bi-encoders and cross-encoders alike."""
    from conftest import train_tiny_pair_model

    small = write(tmp_path / "small.tsv", "".join((DATA / "dev.tsv").read_text(encoding="utf-8").splitlines(True)[:21]))
    pair_model = train_tiny_pair_model(tiny_bert, tmp_path / "ce")
    for model in (str(pair_model), str(bi_model)):
        res = CliRunner().invoke(main, ["eval", model, str(DATA / "dev.tsv"), str(small), "--json",
                                        "--precision", "fp32"])
        assert res.exit_code == 0, res.output
        out = json.loads(res.stdout)
        singles = [simpair.evaluate(model, str(f), precision="fp32") for f in (DATA / "dev.tsv", small)]
        assert [r["pairs"] for r in out["files"]] == [s["pairs"] for s in singles] == [108, 20]
        for r, s in zip(out["files"], singles):
            assert r["metrics"]["roc_auc"] == pytest.approx(s["metrics"]["roc_auc"], abs=1e-6)
        want = (singles[0]["metrics"]["roc_auc"] + singles[1]["metrics"]["roc_auc"]) / 2
        assert out["mean"]["roc_auc"] == pytest.approx(want, abs=1e-6) and out["mean"]["roc_auc_files"] == 2
    res = CliRunner().invoke(main, ["eval", str(pair_model), str(small)])  # one file: the table as before
    assert res.exit_code == 0 and "mean over" not in res.output


def test_a_pair_classifier_on_a_score_file_is_ranked_against_the_scores(tiny_bert: Path, tmp_path: Path) -> None:
    """A 0/1 cross-encoder on an STS-style file (a `score` column) reports rank correlations, not one error per row;
    on a 0/1 file it is still scored as a classifier."""
    from conftest import train_tiny_pair_model

    model = train_tiny_pair_model(tiny_bert, tmp_path / "ce")
    sts = write(tmp_path / "sts.tsv", "sentence1\tsentence2\tscore\n" + "".join(
        f"问题{i}\t问题{i % 5}\t{i % 6}\n" for i in range(1, 31)))
    r = simpair.evaluate(str(model), str(sts), precision="fp32")
    ce = simpair.CrossEncoder(str(model), precision="fp32")
    pairs = simpair.read_pairs(sts, warn=False)
    probs = ce.predict([(p.text_a, p.text_b) for p in pairs.pairs])
    assert r["task"] == "regression"
    assert r["metrics"]["spearman"] == pytest.approx(stats.spearmanr(probs, pairs.labels)[0], abs=1e-5)
    assert simpair.evaluate(str(model), str(DATA / "dev.tsv"), precision="fp32")["task"] == "classification"


def test_eval_of_a_classifier_on_several_text_files(tiny_bert: Path, tmp_path: Path) -> None:
    from conftest import classify_cfg

    clf = tmp_path / "clf"
    simpair.train(classify_cfg(tiny_bert, clf, "full"), progress=False)
    dev = DATA / "sentiment" / "dev.tsv"
    out = simpair.evaluate(str(clf), [str(dev), str(dev)])
    one = simpair.evaluate(str(clf), str(dev))
    assert out["kind"] == "classifier" and len(out["files"]) == 2
    assert out["files"][1]["metrics"]["accuracy"] == one["metrics"]["accuracy"] == out["mean"]["accuracy"]
