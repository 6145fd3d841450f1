"""simpair adapt on a tiny matcher: a calibrated standard model directory with its report, held-out slice and
forgetting check, and clear refusals of unusable label files."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import DATA, train_tiny_pair_model, write

from simpair.adaptation.adapt import split_by_why, split_labels
from simpair.cli import main
from simpair.metrics import paired_bootstrap, platt_threshold
from simpair.readers import read_pairs


@pytest.fixture(scope="module")
def matcher(tiny_bert: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_tiny_pair_model(tiny_bert, tmp_path_factory.mktemp("adapt") / "matcher")


def test_held_out_slice_is_stratified_bounded_and_disjoint() -> None:
    pairs = read_pairs(DATA / "train.tsv", warn=False).pairs
    train, held = split_labels(pairs[:200], 0.2, seed=0)
    assert len(held) == 40 and len(train) == 160
    assert not {id(p) for p in held} & {id(p) for p in train}
    rate = np.mean([p.label for p in pairs[:200]])
    assert abs(np.mean([p.label for p in held]) - rate) < 0.05
    assert len(split_labels(pairs[:60], 0.2, 0)[1]) == 20  # never fewer than 20
    assert len(split_labels(pairs * 6, 0.2, 0)[1]) == 500  # never more than 500


def test_mines_random_check_pairs_are_the_held_out_slice_when_there_are_enough() -> None:
    pairs = read_pairs(DATA / "train.tsv", warn=False).pairs[:200]
    why = {p.line: ("check" if k % 8 == 0 else "uncertain") for k, p in enumerate(pairs)}
    train, held, how = split_by_why(pairs, why, 0.2, seed=0)
    assert len(held) == 25 and all(why[p.line] == "check" for p in held) and "check" in how
    assert len(train) == 175 and not {id(p) for p in held} & {id(p) for p in train}
    few = {p.line: ("check" if k < 10 else "uncertain") for k, p in enumerate(pairs)}  # under 20: a random 20 %
    assert len(split_by_why(pairs, few, 0.2, seed=0)[1]) == 40 and len(split_by_why(pairs, None, 0.2, 0)[1]) == 40


def test_bootstrap_and_platt_threshold() -> None:
    rng = np.random.default_rng(0)
    same = paired_bootstrap(np.ones(200), np.ones(200))
    assert same["gain"] == same["low"] == same["high"] == 0
    better = paired_bootstrap(rng.random(400) < 0.6, rng.random(400) < 0.8)
    assert better["low"] > 0 and better["low"] < better["gain"] < better["high"]
    y = (rng.random(2000) < 0.3).astype(int)
    scores = 1 / (1 + np.exp(-(2.0 * (y - 0.5) + rng.normal(0, 1.2, 2000) + 1.0)))  # shifted: the cut is not 0.5
    t = platt_threshold(scores, y)
    assert 0.5 < t < 0.95 and ((scores >= t) == y).mean() > ((scores >= 0.5) == y).mean()


def test_adapt_writes_a_calibrated_model_with_its_report(matcher: Path, tmp_path: Path) -> None:
    labels = write(tmp_path / "labels.tsv", "\n".join((DATA / "train.tsv").read_text(encoding="utf-8")
                                                       .splitlines()[:121]) + "\n")
    out = tmp_path / "adapted"
    res = CliRunner().invoke(main, ["adapt", str(labels), "--out", str(out), "--init", str(matcher),
                                    "--check", str(DATA / "dev.tsv"), "--epochs", "1", "--json"])
    assert res.exit_code == 0, res.output
    r = json.loads(res.stdout)
    assert r["held_out_pairs"] == 24 and r["training"]["labels"] == 96 and r["training"]["replayed"] == 96
    gain = r["held_out"]["accuracy_gain"]
    assert gain["low"] <= gain["gain"] <= gain["high"]
    assert r["verdict"] in ("better", "worse") or r["verdict"].startswith("not clear of chance")
    assert r["verdict"] != "better" or gain["low"] > 0
    assert list(r["forgetting"]) == [str(DATA / "dev.tsv")] and r["forgetting"][str(DATA / "dev.tsv")]["pairs"] == 108
    meta = json.loads((out / "simpair.json").read_text(encoding="utf-8"))
    assert meta["threshold"] == pytest.approx(r["threshold"]) and "held-out" in meta["calibration"]["data"]
    assert json.loads((out / "adaptation.json").read_text(encoding="utf-8"))["verdict"] == r["verdict"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no work directory left behind
    from transformers import AutoModelForSequenceClassification

    assert AutoModelForSequenceClassification.from_pretrained(out).config.num_labels == 2
    res = CliRunner().invoke(main, ["match", "--model", str(out), "你好", "您好", "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout)["threshold"] == pytest.approx(r["threshold"])


@pytest.mark.parametrize("text, expected", [
    ("text_a\ttext_b\tlabel\n" + "a\tb\t1\n" * 10, "at least 40 labelled pairs"),
    ("text_a\ttext_b\tlabel\n" + "".join(f"问{i}\t答{i}\t1\n" for i in range(50)), "both labels"),
    ("text_a\ttext_b\tlabel\n" + "a\tb\t\n", ":2:"),
])
def test_adapt_refuses_unusable_labels(matcher: Path, tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path / "labels.tsv", text)
    res = CliRunner().invoke(main, ["adapt", str(path), "--out", str(tmp_path / "out"), "--init", str(matcher)])
    assert res.exit_code == 2 and expected in res.output, res.output
    assert not (tmp_path / "out").exists()


def test_adapt_reads_several_files_as_one_and_holds_out_their_checks(matcher: Path, tmp_path: Path) -> None:
    rows = (DATA / "train.tsv").read_text(encoding="utf-8").splitlines()[1:]
    checks = write(tmp_path / "checks.labelled.tsv", "text_a\ttext_b\tlabel\twhy\n" +
                   "".join(f"{r}\tcheck\n" for r in rows[:30]))
    picks = write(tmp_path / "picks.labelled.tsv", "text_a\ttext_b\tlabel\twhy\n" +
                  "".join(f"{r}\tuncertain\n" for r in rows[30:100]))
    out = tmp_path / "adapted"
    res = CliRunner().invoke(main, ["adapt", str(checks), str(picks), "--out", str(out), "--init", str(matcher),
                                    "--check", str(DATA / "dev.tsv"), "--epochs", "1", "--json"])
    assert res.exit_code == 0, res.output
    r = json.loads(res.stdout)
    assert r["held_out_from"] == "mine's random check pairs" and r["held_out_pairs"] == 30
    assert r["training"]["labels"] == 70 and r["labelled"] == f"{checks} + {picks}"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
