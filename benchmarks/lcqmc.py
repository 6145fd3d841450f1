"""Score one or more cross-encoders on LCQMC dev: accuracy, F1, AUC and pairs/s, side by side.

Accuracy is taken at the model's stored threshold (simpair.json, tuned on dev when it was trained)
and at 0.5; ``best_accuracy`` is the ceiling on this dev (threshold chosen on the same data, optimistic).
``--symmetric`` also scores (b, a) and averages. The bundled matcher is ``--model matcher`` (the default).

    python benchmarks/lcqmc.py [--model matcher] [--model runs/x ...] [--limit N] [--symmetric]
                               [--save benchmarks/results/lcqmc_matcher.json]

Needs ../shared (LCQMC is research data, never copied into the project). Test is held back: dev only.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
DEV = ROOT.parent / "shared" / "data" / "lcqmc" / "dev.tsv"


def score_model(name: str, pairs: list[tuple[str, str]], labels: list[int], symmetric: bool, bf16: str,
                batch_size: int) -> dict[str, object]:
    import numpy as np

    from simpair import CrossEncoder
    from simpair.metrics import classification_metrics
    from simpair.utils import dir_size

    t0 = time.perf_counter()
    ce = CrossEncoder(name, bf16=bf16)
    load_seconds = time.perf_counter() - t0
    ce.predict(pairs[:64], batch_size=batch_size)  # warm-up
    scores, pps = ce.timed_predict(pairs, batch_size=batch_size, symmetric=symmetric)
    y = np.asarray(labels, dtype=int)
    at_threshold = classification_metrics(scores, y, threshold=ce.threshold)
    at_half = classification_metrics(scores, y, threshold=0.5)
    return {
        "model": name,
        "path": ce.path,
        "method": ce.meta.get("method"),
        "saved_bytes": dir_size(Path(ce.path)),
        "threshold": ce.threshold,
        "accuracy": at_threshold["accuracy"],
        "f1": at_threshold["f1"],
        "precision": at_threshold["precision"],
        "recall": at_threshold["recall"],
        "roc_auc": at_threshold["roc_auc"],
        "accuracy_at_0.5": at_half["accuracy"],
        "best_accuracy_on_this_dev": at_threshold["best_accuracy"],
        "pairs_per_second": round(pps, 1),  # pairs decided per second (symmetric scoring runs two passes each)
        "load_seconds": round(load_seconds, 2),
        "bf16": ce.bf16,
    }


def main() -> int:
    from _common import emit

    from simpair import read_pairs

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", default=None, help="Model name or directory (repeatable).")
    parser.add_argument("--dev", default=str(DEV), help="LCQMC-style dev file.")
    parser.add_argument("--limit", type=int, default=None, help="Score only the first N dev pairs.")
    parser.add_argument("--symmetric", action="store_true", help="Average the scores of (a, b) and (b, a).")
    parser.add_argument("--bf16", default="auto", choices=["auto", "yes", "no"])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--save", default=None, help="Also write the JSON here.")
    args = parser.parse_args()
    if not Path(args.dev).is_file():
        print(f"skip: {args.dev} not found (LCQMC dev lives in ../shared)", file=sys.stderr)
        return 0
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    data = read_pairs(args.dev, warn=False)
    pairs = [(a, b) for a, b in zip(data.texts_a, data.texts_b)]
    labels = [int(x) for x in data.labels]
    if args.limit:
        pairs, labels = pairs[: args.limit], labels[: args.limit]
    results = [score_model(m, pairs, labels, args.symmetric, args.bf16, args.batch_size)
               for m in (args.model or ["matcher"])]
    import torch

    emit({
        "what": "cross-encoders on LCQMC dev (accuracy at the stored threshold; F1, AUC; pairs/s)",
        "dev": args.dev,
        "pairs": len(pairs),
        "symmetric": args.symmetric,
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, no GPU"
        if not torch.cuda.is_available() else torch.cuda.get_device_name(),
        "reference_dev_accuracy": {"bert-base-chinese": 0.894, "ernie-1.0": 0.897, "ernie-2.0-base": 0.909,
                                   "zero-shot e5-small bi-encoder (best threshold)": 0.810},
        "target_dev_accuracy": 0.894,
        "results": results,
    }, args.save)
    return 0


if __name__ == "__main__":
    sys.exit(main())
