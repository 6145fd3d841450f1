"""STS/GLUE-style metrics with scikit-learn and SciPy (``evaluate.load`` needs the hub).

One place for every number simpair reports: training's dev evaluation, ``simpair eval`` and the
benchmarks all call these functions.
"""
from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats
from sklearn import metrics as skm


def _finite(x: float) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


def correlations(scores: Sequence[float], golds: Sequence[float]) -> dict[str, float | None]:
    """Pearson and Spearman; None where undefined (a constant input)."""
    s, g = np.asarray(scores, float), np.asarray(golds, float)
    if len(s) < 2 or np.ptp(s) == 0 or np.ptp(g) == 0:
        return {"pearson": None, "spearman": None}
    return {"pearson": _finite(stats.pearsonr(s, g)[0]), "spearman": _finite(stats.spearmanr(s, g)[0])}


def threshold_sweep(scores: Sequence[float], labels: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Accuracy and F1 of ``score >= t`` for every distinct cut of the scores.

    Candidates are midpoints between consecutive distinct scores plus one below the minimum and
    one above the maximum, so constant scores give exactly two candidates (all positive, all
    negative) and never a perfect accuracy that the data does not support.
    """
    s = np.asarray(scores, float)
    y = np.asarray(labels, int)
    uniq = np.unique(s)
    mids = (uniq[1:] + uniq[:-1]) / 2 if len(uniq) > 1 else np.array([])
    cands = np.concatenate([[uniq[0] - 1e-6], mids, [uniq[-1] + 1e-6]])
    order = np.argsort(s)
    s_sorted, y_sorted = s[order], y[order]
    # number of items with score < t, for each candidate
    below = np.searchsorted(s_sorted, cands, side="left")
    pos_total = y.sum()
    pos_below = np.concatenate([[0], np.cumsum(y_sorted)])[below]
    tp = pos_total - pos_below
    predicted_pos = len(s) - below
    fp = predicted_pos - tp
    tn = below - pos_below
    acc = (tp + tn) / max(len(s), 1)
    denom = 2 * tp + fp + (pos_total - tp)
    f1 = np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)
    return cands, acc, f1


def best_threshold(scores: Sequence[float], labels: Sequence[int], metric: str = "accuracy") -> tuple[float, float]:
    """(threshold, value) maximising ``metric`` ("accuracy" or "f1"); ties keep the cut nearest 0.5."""
    cands, acc, f1 = threshold_sweep(scores, labels)
    values = acc if metric == "accuracy" else f1
    best = values.max()
    ties = np.flatnonzero(np.isclose(values, best))
    pick = ties[np.argmin(np.abs(cands[ties] - 0.5))]
    return float(cands[pick]), float(values[pick])


def classification_metrics(scores: Sequence[float], labels: Sequence[int], threshold: float = 0.5) -> dict[str, object]:
    """Accuracy/precision/recall/F1 at ``threshold`` and at the best thresholds, AUC, AP, correlations."""
    s = np.asarray(scores, float)
    y = np.asarray(labels, int)
    pred = (s >= threshold).astype(int)
    p, r, f, _ = skm.precision_recall_fscore_support(y, pred, average="binary", zero_division=0)
    both = len(np.unique(y)) == 2
    t_acc, best_acc = best_threshold(s, y, "accuracy")
    t_f1, best_f1 = best_threshold(s, y, "f1")
    out: dict[str, object] = {
        "n": int(len(y)),
        "positive_rate": float(y.mean()) if len(y) else None,
        "threshold": float(threshold),
        "accuracy": float((pred == y).mean()) if len(y) else None,
        "precision": float(p),
        "recall": float(r),
        "f1": float(f),
        "roc_auc": float(skm.roc_auc_score(y, s)) if both else None,
        "average_precision": float(skm.average_precision_score(y, s)) if both else None,
        "best_accuracy_threshold": t_acc,
        "best_accuracy": best_acc,
        "best_f1_threshold": t_f1,
        "best_f1": best_f1,
    }
    bp, br, bf, _ = skm.precision_recall_fscore_support(y, (s >= t_acc).astype(int), average="binary", zero_division=0)
    out.update(best_accuracy_precision=float(bp), best_accuracy_recall=float(br), best_accuracy_f1=float(bf))
    out.update(correlations(s, y))
    return out


def regression_metrics(preds: Sequence[float], golds: Sequence[float]) -> dict[str, object]:
    """Pearson, Spearman and MSE of predicted against gold scores."""
    pr, g = np.asarray(preds, float), np.asarray(golds, float)
    out: dict[str, object] = {"n": int(len(g)), "mse": float(np.mean((pr - g) ** 2)) if len(g) else None}
    out.update(correlations(pr, g))
    return out


def platt_threshold(scores: Sequence[float], labels: Sequence[int]) -> float:
    """The score at which a logistic fit of the labels on logit(score) crosses 0.5: the accuracy-optimal cut of
    a two-parameter model, far steadier on a few hundred pairs than the best cut of the step function
    :func:`best_threshold` sweeps (which it falls back to when the fit is degenerate)."""
    from sklearn.linear_model import LogisticRegression

    s, y = np.clip(np.asarray(scores, float), 1e-6, 1 - 1e-6), np.asarray(labels, int)
    if len(np.unique(y)) < 2:
        return best_threshold(s, y)[0]
    x = np.log(s / (1 - s)).reshape(-1, 1)
    fit = LogisticRegression(C=100.0).fit(x, y)
    a, b = float(fit.coef_[0][0]), float(fit.intercept_[0])
    if a <= 1e-6:
        return best_threshold(s, y)[0]
    return float(1 / (1 + math.exp(min(max(b / a, -30.0), 30.0))))


def cross_fitted_correct(scores: Sequence[float], labels: Sequence[int], folds: int = 2, seed: int = 0) -> np.ndarray:
    """Per pair, right (True) or wrong at a threshold tuned on the other folds: "tune the threshold on
    held-out data", without the optimism of tuning on the pairs it scores."""
    s, y = np.asarray(scores, float), np.asarray(labels, int)
    part = np.random.default_rng(seed).permutation(len(s)) % folds
    right = np.zeros(len(s), dtype=bool)
    for k in range(folds):
        t, _ = best_threshold(s[part != k], y[part != k], "accuracy")
        right[part == k] = (s[part == k] >= t) == y[part == k]
    return right


def cross_fitted_accuracy(scores: Sequence[float], labels: Sequence[int], folds: int = 2, seed: int = 0) -> float:
    """The mean of :func:`cross_fitted_correct`."""
    return float(cross_fitted_correct(scores, labels, folds, seed).mean()) if len(scores) else 0.0


def paired_bootstrap(before: Sequence[float], after: Sequence[float], labels: Sequence[int] | None = None,
                     resamples: int = 2000, seed: int = 0, level: float = 0.95) -> dict[str, float]:
    """The gain ``after - before`` on the same pairs, with a percentile confidence interval from resampling
    the pairs (both models on each resample). Without ``labels``, ``before``/``after`` are per-pair
    correctness and the gain is in accuracy; with them they are scores and the gain is in ROC-AUC."""
    a, b = np.asarray(before, float), np.asarray(after, float)
    rng = np.random.default_rng(seed)
    stat = (lambda idx: float(b[idx].mean() - a[idx].mean())) if labels is None else _auc_gain(a, b, labels)
    full = stat(np.arange(len(a)))
    draws = [stat(rng.integers(0, len(a), len(a))) for _ in range(resamples)]
    draws = [d for d in draws if np.isfinite(d)]
    lo, hi = np.percentile(draws, [50 * (1 - level), 50 * (1 + level)]) if draws else (np.nan, np.nan)
    return {"gain": full, "low": float(lo), "high": float(hi), "level": level, "resamples": resamples}


def _auc_gain(a: np.ndarray, b: np.ndarray, labels: Sequence[int]) -> Any:
    y = np.asarray(labels, int)

    def gain(idx: np.ndarray) -> float:
        if len(np.unique(y[idx])) < 2:
            return float("nan")
        return float(skm.roc_auc_score(y[idx], b[idx]) - skm.roc_auc_score(y[idx], a[idx]))

    return gain


def write_report(out_dir: str | Path, scores: Sequence[float], labels: Sequence[float], metrics: dict[str, object],
                 task: str = "classification", threshold: float = 0.5) -> list[Path]:
    """metrics.json plus PNG plots: PR curve, score histogram per label, accuracy/F1 against threshold."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "metrics.json"]
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, ensure_ascii=False), encoding="utf-8")
    s, y = np.asarray(scores, float), np.asarray(labels, float)
    if task != "classification":
        fig, ax = plt.subplots(figsize=(5, 4))
        ax.scatter(y, s, s=6, alpha=0.5)
        ax.set_xlabel("gold score")
        ax.set_ylabel("predicted score")
        spearman = metrics.get("spearman")
        ax.set_title(f"Spearman {spearman:.3f}" if isinstance(spearman, float) else "scores")
        fig.tight_layout()
        fig.savefig(out / "scatter.png", dpi=110)
        plt.close(fig)
        return written + [out / "scatter.png"]
    yi = y.astype(int)
    if len(np.unique(yi)) == 2:
        prec, rec, _ = skm.precision_recall_curve(yi, s)
        fig, ax = plt.subplots(figsize=(5, 4))
        ax.plot(rec, prec)
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.set_title("precision-recall curve")
        fig.tight_layout()
        fig.savefig(out / "pr_curve.png", dpi=110)
        plt.close(fig)
        written.append(out / "pr_curve.png")
    fig, ax = plt.subplots(figsize=(5, 4))
    bins = np.linspace(min(s.min(), 0.0), max(s.max(), 1.0), 41)
    for lab, color in ((0, "tab:red"), (1, "tab:blue")):
        ax.hist(s[yi == lab], bins=bins, alpha=0.5, color=color, label=f"label {lab}")
    ax.axvline(threshold, color="k", linestyle="--", label=f"threshold {threshold:.3f}")
    ax.set_xlabel("score")
    ax.set_ylabel("pairs")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "score_histogram.png", dpi=110)
    plt.close(fig)
    cands, acc, f1 = threshold_sweep(s, yi)
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot(cands, acc, label="accuracy")
    ax.plot(cands, f1, label="F1")
    ax.axvline(threshold, color="k", linestyle="--", label="threshold")
    ax.set_xlabel("threshold")
    ax.set_ylim(0, 1)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "threshold_curve.png", dpi=110)
    plt.close(fig)
    return written + [out / "score_histogram.png", out / "threshold_curve.png"]


def multiclass_metrics(probs: np.ndarray, labels: Sequence[int], names: Sequence[str]) -> dict[str, object]:
    """Single-text classification: accuracy, macro-F1, per-class P/R/F1, the confusion matrix
    (rows gold, columns predicted) and, for two classes, ROC AUC of the second class."""
    p = np.asarray(probs, float)
    y = np.asarray(labels, int)
    pred = p.argmax(-1)
    ids = list(range(len(names)))
    prec, rec, f1, support = skm.precision_recall_fscore_support(y, pred, labels=ids, zero_division=0)
    out: dict[str, object] = {
        "n": int(len(y)),
        "accuracy": float((pred == y).mean()) if len(y) else None,
        "macro_f1": float(skm.f1_score(y, pred, labels=ids, average="macro", zero_division=0)),
        "per_class": {str(n): {"precision": float(a), "recall": float(b), "f1": float(c), "support": int(d)}
                      for n, a, b, c, d in zip(names, prec, rec, f1, support)},
        "confusion_matrix": skm.confusion_matrix(y, pred, labels=ids).tolist(),
        "labels": [str(n) for n in names],
    }
    if len(names) == 2 and len(np.unique(y)) == 2:
        out["roc_auc"] = float(skm.roc_auc_score(y, p[:, 1]))
    return out


def write_confusion_matrix(path: str | Path, metrics: dict[str, object], title: str = "confusion matrix") -> Path:
    """A PNG of ``metrics['confusion_matrix']`` with counts in the cells."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.asarray(metrics["confusion_matrix"])
    names = list(metrics["labels"])  # type: ignore[arg-type]
    size = 2.5 + 0.45 * len(names)
    fig, ax = plt.subplots(figsize=(size, size))
    disp = skm.ConfusionMatrixDisplay(cm, display_labels=names)
    disp.plot(ax=ax, colorbar=False, values_format="d")
    acc = metrics.get("accuracy")
    ax.set_title(f"{title} (accuracy {acc:.3f})" if isinstance(acc, float) else title)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
