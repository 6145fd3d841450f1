"""Does deciding a pair by the cross-encoder *and* the bi-encoder beat the cross-encoder alone?

Scores every pair of the 0/1 dev sets with the matcher (its logit) and the bi-encoder (cosine), then fits one
logistic regression on (logit, cosine) over every set at once (each set weighted equally) on one random half of
each set, picks one threshold for the mean per-set accuracy on that half (as `simpair train` does), and scores
the other half; both ways, averaged. The cross-encoder alone goes through the same steps, so the two rows differ
only by the cosine.

    python benchmarks/probes/pair_fusion_probe.py [--matcher matcher] [--encoder encoder] [--limit N]
                                          [--save benchmarks/results/pair_fusion_probe.json]

Needs ../shared (research data, never copied into the project).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
from calibration import SETS  # noqa: E402 (the 0/1 dev sets of the multi-domain table)
from multi_domain import SHARED  # noqa: E402

RULES = {"cross-encoder": [0], "cross-encoder + cosine": [0, 1]}


def features(matcher: str, encoder: str, limit: int | None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per set: ([n, 2] logit and cosine, [n] 0/1 labels)."""
    from simpair import BiEncoder, CrossEncoder, read_pairs

    ce, be = CrossEncoder(matcher), BiEncoder(encoder)
    out = {}
    for name, rel in SETS.items():
        data = read_pairs(SHARED / rel, warn=False)
        a, b, y = data.texts_a[:limit], data.texts_b[:limit], np.array(data.labels[:limit], dtype=int)
        p = np.clip(ce.predict(list(zip(a, b))), 1e-7, 1 - 1e-7)
        cos = (be.encode(a) * be.encode(b)).sum(axis=1)  # embeddings are L2-normalised
        out[name] = (np.c_[np.log(p / (1 - p)), cos], y)
        print(f"{name}: {len(y)} pairs scored", file=sys.stderr)
    return out


def held_out(data: dict[str, tuple[np.ndarray, np.ndarray]], cols: list[int], seed: int) -> dict[str, dict]:
    """Fit on one half of every set, score the other; both ways. Per set: accuracy and ROC-AUC (means)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    from simpair.training.sampling import mean_accuracy_threshold  # the rule simpair's stored thresholds follow

    rng = np.random.default_rng(seed)
    halves = {k: np.array_split(rng.permutation(len(y)), 2) for k, (_, y) in data.items()}
    stats: dict[str, dict[str, list[float]]] = {k: {"accuracy": [], "roc_auc": []} for k in data}
    for h in (0, 1):
        fit = {k: (x[halves[k][h]][:, cols], y[halves[k][h]]) for k, (x, y) in data.items()}
        xs = np.vstack([x for x, _ in fit.values()])
        ys = np.concatenate([y for _, y in fit.values()])
        w = np.concatenate([np.full(len(y), len(ys) / len(y)) for _, y in fit.values()])
        scale = xs.std(axis=0)  # comparable coefficients: the cosine spreads far less than the logit
        model = LogisticRegression().fit(xs / scale, ys, sample_weight=w)
        cut, _ = mean_accuracy_threshold([(model.decision_function(x / scale), y) for x, y in fit.values()])
        for k, (x, y) in data.items():
            idx = halves[k][1 - h]
            s = model.decision_function(x[idx][:, cols] / scale)
            stats[k]["accuracy"].append(float(((s >= cut) == y[idx]).mean()))
            stats[k]["roc_auc"].append(float(roc_auc_score(y[idx], s)))
    return {k: {m: round(float(np.mean(v)), 4) for m, v in s.items()} for k, s in stats.items()}


def main() -> None:
    from _common import emit

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--matcher", default="matcher")
    ap.add_argument("--encoder", default="encoder")
    ap.add_argument("--limit", type=int, default=None, help="first N pairs of each dev file")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--save", default=None)
    args = ap.parse_args()
    if not SHARED.is_dir():
        emit({"skipped": f"{SHARED} not found"}, None)
        return
    data = features(args.matcher, args.encoder, args.limit)
    rules = {name: held_out(data, cols, args.seed) for name, cols in RULES.items()}
    for per_set in rules.values():
        per_set["mean"] = {m: round(float(np.mean([v[m] for v in per_set.values()])), 4)
                           for m in ("accuracy", "roc_auc")}
    corr = {k: round(float(np.corrcoef(x[:, 0], x[:, 1])[0, 1]), 3) for k, (x, _) in data.items()}
    emit({"benchmark": "pair_fusion_probe", "matcher": args.matcher, "encoder": args.encoder,
          "pairs": {k: len(y) for k, (_, y) in data.items()}, "held_out": rules,
          "logit_cosine_correlation": corr}, args.save)


if __name__ == "__main__":
    main()
