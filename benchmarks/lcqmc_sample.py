"""Train the e5-small cross-encoder on the LCQMC 4k sample for one epoch, evaluate on the 1k sample dev.

Prints one JSON object: dev accuracy (at 0.5 and at the dev-tuned threshold), F1, AUC, training
pairs/s and wall time, next to the zero-shot e5-small bi-encoder (cosine of "query: " embeddings,
best threshold on the same dev) measured in the same run. Target: accuracy >= 0.76 in <= 240 s.
The headline dev accuracy uses a threshold tuned on held-out dev data (2-fold), because LCQMC train is
58% positive and dev 50%: the prior shift moves the best cut above 0.5.

    python benchmarks/lcqmc_sample.py [--out runs/bench-lcqmc-sample] [--save benchmarks/results/lcqmc_sample.json]

Needs ../shared (LCQMC is research data, never copied into the project).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
SHARED = ROOT.parent / "shared" / "data" / "lcqmc" / "sample"


def zero_shot_bi_encoder(dev: Path) -> dict[str, float]:
    """Cosine similarity of e5-small "query: " embeddings; accuracy at the best dev threshold."""
    import numpy as np
    from sentence_transformers import SentenceTransformer

    from simpair import read_pairs
    from simpair.metrics import classification_metrics, cross_fitted_accuracy
    from simpair.models import resolve

    data = read_pairs(dev, warn=False)
    model = SentenceTransformer(resolve("e5-small"), device="cpu")
    t0 = time.perf_counter()
    a = model.encode(["query: " + t for t in data.texts_a], batch_size=64, normalize_embeddings=True)
    b = model.encode(["query: " + t for t in data.texts_b], batch_size=64, normalize_embeddings=True)
    seconds = time.perf_counter() - t0
    cos = (a * b).sum(1)
    m = classification_metrics(cos, np.array(data.labels, dtype=int), threshold=0.0)
    return {"dev_accuracy": cross_fitted_accuracy(cos, np.array(data.labels, dtype=int)),
            "dev_accuracy_note": "same 2-fold threshold procedure as the cross-encoder",
            "best_threshold_accuracy_on_all_dev": m["best_accuracy"], "best_threshold": m["best_accuracy_threshold"],
            "roc_auc": m["roc_auc"], "pairs_per_second": round(len(data) / seconds, 1)}


def main() -> int:
    from _common import emit

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/bench-lcqmc-sample")
    parser.add_argument("--save", default=None, help="Also write the JSON here.")
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--bf16", default="auto")
    parser.add_argument("--no-swap-augment", dest="swap_augment", action="store_false",
                        help="Do not also train on (b, a) of every pair.")
    parser.add_argument("--freeze-embeddings", default="auto", choices=["auto", "yes", "no"])
    parser.add_argument("--warmup-ratio", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--rdrop-alpha", type=float, default=0.0, help="R-Drop weight (0: off).")
    parser.add_argument("--label-smoothing", type=float, default=0.0)
    parser.add_argument("--skip-peer", action="store_true")
    args = parser.parse_args()
    if not SHARED.is_dir():
        print(json.dumps({"skipped": f"{SHARED} not found"}))
        return 0

    from simpair import build_config, train

    cfg = build_config(dict(
        model="e5-small", train=str(SHARED / "train.tsv"), dev=str(SHARED / "dev.tsv"), out=args.out,
        epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate, max_length=args.max_length,
        warmup_ratio=args.warmup_ratio, bf16=args.bf16, eval_steps=None, seed=args.seed, logging_steps=25,
        swap_augment=args.swap_augment, freeze_embeddings=args.freeze_embeddings, rdrop_alpha=args.rdrop_alpha,
        label_smoothing=args.label_smoothing,
    ))
    t0 = time.perf_counter()
    meta = train(cfg, progress=False)
    wall = time.perf_counter() - t0
    dm = meta["dev_metrics"]
    # rescore dev with the saved model: inference speed, and an honest tuned-threshold accuracy
    import numpy as np

    from simpair import CrossEncoder, read_pairs
    from simpair.metrics import cross_fitted_accuracy

    dev = read_pairs(SHARED / "dev.tsv", warn=False)
    scores, infer_pps = CrossEncoder(args.out).timed_predict([(p.text_a, p.text_b) for p in dev.pairs], batch_size=64)
    honest = cross_fitted_accuracy(scores, np.array(dev.labels, dtype=int))
    result = {
        "benchmark": "lcqmc-sample: e5-small cross-encoder, 4,000 train pairs, 1 epoch, 1,000 dev pairs",
        "cross_encoder": {
            "dev_accuracy": honest,
            "dev_accuracy_note": "threshold tuned on one half of dev, scored on the other half, both ways",
            "dev_accuracy_at_0.5": dm["accuracy_at_0.5"],
            "dev_accuracy_at_threshold_tuned_on_all_dev": dm["accuracy"],
            "threshold": meta["threshold"],
            "dev_f1": dm["f1"],
            "dev_roc_auc": dm["roc_auc"],
            "train_pairs_per_second": meta["train_pairs_per_second"],
            "inference_pairs_per_second": round(infer_pps, 1),
            "train_seconds": meta["train_seconds"],
            "wall_seconds_incl_load_and_dev_eval": round(wall, 1),
            "bf16": meta["bf16"],
            "trainable_parameters": meta["parameters"]["trainable_parameters"],
            "train_examples": meta["train_pairs"],
            "settings": {k: meta["config"][k] for k in ("learning_rate", "batch_size", "max_length", "epochs",
                                                         "warmup_ratio", "freeze_embeddings", "swap_augment",
                                                         "seed", "rdrop_alpha", "label_smoothing")},
        },
        "target": {"dev_accuracy": 0.76, "wall_seconds": 240},
    }
    result["target"]["met"] = honest >= 0.76 and wall <= 240
    if not args.skip_peer:
        result["zero_shot_bi_encoder_e5_small"] = zero_shot_bi_encoder(SHARED / "dev.tsv")
    emit(result, args.save)
    return 0


if __name__ == "__main__":
    sys.exit(main())
