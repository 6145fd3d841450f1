"""How far int8 moves a matcher's answers: every LCQMC dev pair scored by torch fp32 and by the ONNX exports
(fp32, int8), with accuracy at the stored threshold, ROC-AUC, the share of decisions that flip and the
largest probability change. This is the measurement behind the int8 tolerance (issue 14: decisions and
accuracy within 0.3 points of torch), re-run whenever onnxruntime or onnx moves.

    python benchmarks/int8_agreement.py [--model matcher] [--limit N] [--save benchmarks/results/int8_agreement.json]

Needs ../shared (LCQMC dev; research data, never copied into the project).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
DEV = ROOT.parent / "shared" / "data" / "lcqmc" / "dev.tsv"


def main() -> None:
    import numpy as np
    import onnx
    import onnxruntime
    from _common import emit
    from sklearn.metrics import roc_auc_score

    from simpair import CrossEncoder, read_pairs
    from simpair.backend.onnx import find_onnx
    from simpair.backend.onnx_export import export_onnx

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="matcher")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--save", default=None)
    args = ap.parse_args()
    data = read_pairs(DEV, warn=False)
    pairs = [(p.text_a, p.text_b) for p in data.pairs][: args.limit]
    gold = np.array(data.labels[: len(pairs)], dtype=int)
    base = CrossEncoder(args.model, backend="torch", precision="fp32", threads=args.threads)
    if find_onnx(base.path, "int8") is None:
        export_onnx(args.model, int8=True)
    rows, scores = {}, {}
    for name, kw in (("torch fp32", dict(backend="torch", precision="fp32")),
                     ("onnx fp32", dict(backend="onnx", precision="fp32")),
                     ("onnx int8", dict(backend="onnx", precision="int8"))):
        ce = base if name == "torch fp32" else CrossEncoder(args.model, threads=args.threads, **kw)
        t0 = time.perf_counter()
        s = ce.predict(pairs, batch_size=32)
        seconds = time.perf_counter() - t0
        scores[name] = s
        rows[name] = {"accuracy": float(((s >= base.threshold) == gold).mean()), "roc_auc": float(roc_auc_score(gold, s)),
                      "pairs_per_second": round(len(pairs) / seconds, 1)}
    ref = scores["torch fp32"]
    for name, s in scores.items():
        rows[name].update(decisions_flipped=float(((s >= base.threshold) != (ref >= base.threshold)).mean()),
                          max_abs_probability_change=float(np.abs(s - ref).max()),
                          accuracy_change_points=round(100 * (rows[name]["accuracy"] - rows["torch fp32"]["accuracy"]), 3))
    emit({"benchmark": "int8_agreement", "model": args.model, "pairs": len(pairs), "threshold": base.threshold,
          "onnxruntime": onnxruntime.__version__, "onnx": onnx.__version__, "results": rows}, args.save)


if __name__ == "__main__":
    main()
