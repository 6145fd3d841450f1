"""Pair models on 60 hand-written question pairs of domains that no file of ../shared covers — the check of
"does it generalise" that the dev files cannot give.

``benchmarks/data/unseen_domains.tsv`` was written by us (car rental, libraries, gyms, parcels, weather, flights,
hotels, phone plans, parking, dentists, pets, plants, programming, music apps, cinemas, museums, driving licences,
recycling, lifts, children's fever, card fraud, returns, car insurance, rent; 14 pairs in English): 30 paraphrases,
many with few shared words, and 30 near-misses that share most words and differ in the deciding one. It was
written before any model scored it; since it now sits in the repository, a model tuned after it was committed may
fit it, so read later figures with that in mind.

For each model (a cross-encoder's probability, a bi-encoder's cosine): pairs right at the model's stored
threshold, ROC-AUC, and the paired bootstrap of the ROC-AUC difference against the first model (the same
resampled pairs for both; 95% interval).

    python benchmarks/unseen_domains.py --model matcher --model matcher-lcqmc [--save FILE]
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
PAIRS = ROOT / "benchmarks" / "data" / "unseen_domains.tsv"


def bootstrap_auc_diff(labels: np.ndarray, a: np.ndarray, b: np.ndarray, draws: int = 5000,
                       seed: int = 0) -> dict[str, float]:
    """ROC-AUC(b) − ROC-AUC(a) over ``draws`` resamples of the pairs (both models on the same draw)."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(seed)
    diffs = []
    while len(diffs) < draws:
        idx = rng.integers(0, len(labels), len(labels))
        if labels[idx].min() == labels[idx].max():
            continue  # one class only: no AUC
        diffs.append(roc_auc_score(labels[idx], b[idx]) - roc_auc_score(labels[idx], a[idx]))
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    return {"mean": round(float(np.mean(diffs)), 3), "low": round(float(lo), 3), "high": round(float(hi), 3)}


def score(name: str, pairs: list[tuple[str, str]]) -> tuple[np.ndarray, float]:
    """(scores, stored threshold): a pair model's probabilities, or a bi-encoder's cosines (threshold 0.5 when
    none is stored, as for zero-shot e5-small)."""
    from simpair import BiEncoder, CrossEncoder
    from simpair.models.load import read_meta
    from simpair.models.resolve import resolve

    if read_meta(resolve(name)).get("kind") == "bi-encoder" or name == "e5-small":
        be = BiEncoder(name)
        a, b = be.encode([p[0] for p in pairs]), be.encode([p[1] for p in pairs])  # L2-normalised
        return (a * b).sum(axis=1), float(be.threshold if be.threshold is not None else 0.5)
    ce = CrossEncoder(name, backend="torch", precision="fp32")
    return ce.predict(pairs), float(ce.threshold)


def main() -> None:
    from _common import emit
    from sklearn.metrics import roc_auc_score

    from simpair import read_pairs
    from simpair.cross_encoder import decide

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append",
                    help="pair models or bi-encoders to score (repeat); the first is the baseline")
    ap.add_argument("--pairs", default=str(PAIRS))
    ap.add_argument("--save", default=None)
    args = ap.parse_args()
    data = read_pairs(args.pairs)
    labels = np.array([int(p.label) for p in data.pairs])
    pairs = [(p.text_a, p.text_b) for p in data.pairs]
    rows, scores = [], []
    for name in args.model or ["matcher"]:
        s, threshold = score(name, pairs)
        scores.append(s)
        wrong = [{"text_a": a, "text_b": b, "label": int(y), "score": round(float(p), 3)}
                 for (a, b), y, p in zip(pairs, labels, s) if decide(p, threshold) != bool(y)]
        row = {"model": name, "threshold": round(threshold, 4), "right": len(pairs) - len(wrong),
               "pairs": len(pairs), "roc_auc": round(float(roc_auc_score(labels, s)), 3),
               "paraphrases_missed": sum(w["label"] for w in wrong),
               "near_misses_called_same": sum(1 - w["label"] for w in wrong), "wrong": wrong}
        if len(scores) > 1:
            row["auc_diff_vs_first"] = bootstrap_auc_diff(labels, scores[0], s)
        rows.append(row)
        print({k: v for k, v in row.items() if k != "wrong"}, file=sys.stderr)
    emit({"benchmark": "unseen-domain hand-written pairs", "pairs_file": str(Path(args.pairs).name),
          "rows": rows}, args.save)


if __name__ == "__main__":
    main()
