"""simpair calibrate: a threshold re-tuned on labelled pairs, stored (as the model's or under a domain name),
used by CrossEncoder(domain=) and match --domain; the report's numbers recomputed by hand."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import DATA, train_tiny_pair_model

from simpair.calibration import calibrate, sample_curve
from simpair.cli import main
from simpair.cross_encoder import CrossEncoder
from simpair.errors import SimpairError
from simpair.metrics import best_threshold
from simpair.models.load import thresholds_file
from simpair.models.resolve import bundled_dir
from simpair.readers import read_pairs


@pytest.fixture(scope="module")
def pair_model(tiny_bert: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_tiny_pair_model(tiny_bert, tmp_path_factory.mktemp("cal") / "pair")


def _scores(model: Path, data: Path) -> tuple[np.ndarray, np.ndarray]:
    pairs = read_pairs(data, warn=False)
    ce = CrossEncoder(str(model), bf16=False)
    return ce.predict([(p.text_a, p.text_b) for p in pairs.pairs]), np.array(pairs.labels, dtype=int)


def test_named_threshold_is_stored_reported_and_used(pair_model: Path, tmp_path: Path) -> None:
    data = DATA / "dev.tsv"
    before = json.loads((pair_model / "simpair.json").read_text())["threshold"]
    r = calibrate(str(pair_model), str(data), name="ours", precision="fp32")
    scores, labels = _scores(pair_model, data)
    want, _ = best_threshold(scores, labels)
    assert r["threshold"] == pytest.approx(want) and r["global_threshold"] == pytest.approx(before)
    assert r["accuracy_at_calibrated"] == pytest.approx(((scores >= want) == labels).mean())
    assert r["accuracy_at_global"] == pytest.approx(((scores >= before) == labels).mean())
    assert r["accuracy_at_calibrated"] >= r["accuracy_at_global"]
    meta = json.loads((pair_model / "simpair.json").read_text())
    assert meta["threshold"] == before and meta["thresholds"]["ours"]["pairs"] == len(labels)
    assert CrossEncoder(str(pair_model), domain="ours").threshold == pytest.approx(want)
    assert CrossEncoder(str(pair_model)).threshold == pytest.approx(before)
    with pytest.raises(SimpairError, match="no threshold calibrated for domain 'bank'.*calibrated: ours"):
        CrossEncoder(str(pair_model), domain="bank")
    res = CliRunner().invoke(main, ["match", "--model", str(pair_model), "问题一", "问题二", "--domain", "ours",
                                    "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["domain"] == "ours" and out["threshold"] == pytest.approx(want)
    assert out["same"] == (out["probability"] >= want)


def test_unnamed_calibration_replaces_the_threshold_and_dry_run_writes_nothing(tiny_bert: Path,
                                                                                 tmp_path: Path) -> None:
    model = train_tiny_pair_model(tiny_bert, tmp_path / "m")
    meta_file = model / "simpair.json"
    original = json.loads(meta_file.read_text())["threshold"]
    res = CliRunner().invoke(main, ["calibrate", str(model), str(DATA / "train.tsv"), "--dry-run", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["written"] is None and json.loads(meta_file.read_text())["threshold"] == original
    res = CliRunner().invoke(main, ["calibrate", str(model), str(DATA / "train.tsv"), "--json"])
    report = json.loads(res.stdout)
    meta = json.loads(meta_file.read_text())
    assert meta["threshold"] == pytest.approx(report["threshold"])
    assert meta["threshold_before_calibration"] == original and "calibrated on" in meta["threshold_rule"]


def test_sample_curve_holds_pairs_out_and_refuses_what_cannot_be_calibrated(pair_model: Path,
                                                                             tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 400)
    scores = np.clip(labels * 0.3 + rng.random(400) * 0.7, 0, 1)  # separable up to noise
    curve = sample_curve(scores, labels, sizes=(10, 100, 300, 400), repeats=5)
    assert [c["pairs"] for c in curve] == [10, 100, 300]  # 400 would leave nothing out
    assert all(0.5 < c["held_out_accuracy_mean"] <= 1 for c in curve)
    one_label = tmp_path / "ones.tsv"
    one_label.write_text("text_a\ttext_b\tlabel\n一\t二\t1\n三\t四\t1\n", encoding="utf-8")
    res = CliRunner().invoke(main, ["calibrate", str(pair_model), str(one_label)])
    assert res.exit_code == 2 and "both labels" in res.output


def test_a_bundled_model_keeps_its_thresholds_in_the_cache(tmp_path: Path) -> None:
    inside = thresholds_file(bundled_dir("sentiment"))
    assert "thresholds" in inside.parts and inside.name == "sentiment.json"
    assert thresholds_file(tmp_path) == tmp_path.resolve() / "simpair.json"
