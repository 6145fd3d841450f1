"""Metrics against hand-computed values, and the constant-prediction trap."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from simpair.metrics import (best_threshold, classification_metrics, correlations, cross_fitted_accuracy,
                             regression_metrics, write_report)


def test_hand_computed_classification() -> None:
    scores = [0.9, 0.8, 0.3, 0.6, 0.1]
    labels = [1, 1, 1, 0, 0]
    m = classification_metrics(scores, labels, threshold=0.5)
    # predictions 1,1,0,1,0 -> tp=2 fp=1 fn=1 tn=1
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3)
    # pairs (pos, neg): 6 in all; (0.3, 0.6) is the only misordered one -> AUC 5/6
    assert m["roc_auc"] == pytest.approx(5 / 6)


def test_best_threshold_finds_the_separating_cut() -> None:
    t, acc = best_threshold([0.2, 0.4, 0.7, 0.9], [0, 0, 1, 1])
    assert acc == 1.0 and 0.4 < t < 0.7


def test_constant_predictions_never_score_perfect() -> None:
    labels = [1, 0, 1, 0, 1, 1]
    t, acc = best_threshold([0.5] * 6, labels)
    assert acc == pytest.approx(4 / 6)
    m = classification_metrics([0.5] * 6, labels)
    assert m["best_accuracy"] == pytest.approx(4 / 6)
    assert m["pearson"] is None and m["spearman"] is None


def test_best_f1_threshold() -> None:
    t, f1 = best_threshold([0.1, 0.2, 0.3, 0.4], [1, 0, 1, 1], metric="f1")
    # predicting everything positive: tp=3 fp=1 -> F1 = 6/7
    assert f1 == pytest.approx(6 / 7) and t < 0.1


def test_correlations_and_regression() -> None:
    c = correlations([1, 2, 3, 4], [2, 4, 6, 9])
    assert c["spearman"] == pytest.approx(1.0)
    assert 0.98 < c["pearson"] < 1.0
    r = regression_metrics([0.0, 1.0], [1.0, 1.0])
    assert r["mse"] == pytest.approx(0.5) and r["pearson"] is None


def test_report_files(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 200)
    scores = np.clip(labels * 0.5 + rng.normal(0.25, 0.2, 200), 0, 1)
    m = classification_metrics(scores, labels)
    files = write_report(tmp_path, scores, labels, m)
    assert {f.name for f in files} == {"metrics.json", "pr_curve.png", "score_histogram.png", "threshold_curve.png"}
    assert json.loads((tmp_path / "metrics.json").read_text())["n"] == 200
    assert (tmp_path / "pr_curve.png").read_bytes()[:4] == b"\x89PNG"


def test_cross_fitted_accuracy_is_not_optimistic() -> None:
    """Scores that carry no information: tuning on the same data looks better than chance, cross-fitting does not."""
    rng = np.random.default_rng(1)
    scores, labels = rng.random(400), rng.integers(0, 2, 400)
    _, tuned_on_itself = best_threshold(scores, labels)
    honest = cross_fitted_accuracy(scores, labels)
    assert honest < tuned_on_itself
    assert abs(honest - 0.5) < 0.08


def test_cross_fitted_accuracy_on_separable_scores() -> None:
    scores = np.r_[np.linspace(0, 0.4, 50), np.linspace(0.6, 1, 50)]
    labels = np.r_[np.zeros(50, int), np.ones(50, int)]
    assert cross_fitted_accuracy(scores, labels) == 1.0
