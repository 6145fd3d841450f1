"""ONNX int8 recipes against fp32 on this CPU: accuracy, decisions changed, mean and max |Δp|, pairs/s.

Quantises a model's exported fp32 ONNX graph (``simpair export MODEL --onnx``) three ways — u8 x s8 with 8-bit
weights (simpair's export before 2026-12-07), u8 x s8 with 7-bit weights (``reduce_range``, the export now),
u8 x u8 — and scores a labelled pair file with each. Run it natively and on an emulated AVX2-only CPU to see
the saturation without VNNI:

    python benchmarks/int8_recipes.py --model matcher --pairs ../shared/data/lcqmc/dev.tsv --limit 2000
    qemu-x86_64 -cpu EPYC-Rome .venv/bin/python benchmarks/int8_recipes.py --model matcher \
        --pairs ../shared/data/lcqmc/dev.tsv --limit 400            # slow: about an hour
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import emit

RECIPES = {"u8s8-8bit-old": {"weight_type": "QInt8", "reduce_range": False},
           "u8s8-7bit-now": {"weight_type": "QInt8", "reduce_range": True},
           "u8u8": {"weight_type": "QUInt8", "reduce_range": False}}


def probabilities(file: Path, a: list[str], b: list[str], batch: int = 32) -> tuple[np.ndarray, float]:
    from simpair.backend.onnx import OnnxModel

    model = OnnxModel(file, threads=None)
    t0 = time.perf_counter()
    logits = np.concatenate([model.run(a[i : i + batch], b[i : i + batch])[0] for i in range(0, len(a), batch)])
    rate = len(a) / (time.perf_counter() - t0)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True))[:, -1], rate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="matcher")
    ap.add_argument("--pairs", required=True)
    ap.add_argument("--limit", type=int, default=2000)
    ap.add_argument("--recipes", default=",".join(RECIPES), help="Comma-separated names of RECIPES to run.")
    ap.add_argument("--save")
    args = ap.parse_args()
    from simpair.backend.onnx import ONNX_META, find_onnx
    from simpair.backend.onnx_export import export_onnx, quantize_onnx
    from simpair.cross_encoder import CrossEncoder
    from simpair.models import resolve
    from simpair.readers import read_pairs

    path = resolve(args.model)
    if find_onnx(path, "fp32") is None:
        export_onnx(str(path))
    fp32 = find_onnx(path, "fp32")
    threshold = CrossEncoder(args.model, backend="onnx", precision="fp32").threshold
    data = read_pairs(args.pairs, warn=False).pairs[: args.limit]
    a, b = [p.text_a for p in data], [p.text_b for p in data]
    gold = np.array([p.label for p in data]) == 1
    ref, rate = probabilities(fp32, a, b)
    rows = {"fp32": {"accuracy": float(((ref >= threshold) == gold).mean()), "pairs_per_second": round(rate, 1)}}
    with tempfile.TemporaryDirectory() as tmp:
        for extra in (ONNX_META, "tokenizer.json"):  # what OnnxModel reads beside the graph
            shutil.copy2(fp32.parent / extra, Path(tmp) / extra)
        for name in args.recipes.split(","):
            recipe = RECIPES[name]
            out = Path(tmp) / "int8.onnx"
            quantize_onnx(fp32, out, **recipe)
            p, rate = probabilities(out, a, b)
            diff = np.abs(p - ref)
            rows[name] = {"accuracy": float(((p >= threshold) == gold).mean()), "pairs_per_second": round(rate, 1),
                          "mean_abs_diff": float(diff.mean()), "max_abs_diff": float(diff.max()),
                          "decisions_changed": int(((p >= threshold) != (ref >= threshold)).sum())}
    emit({"benchmark": "int8_recipes", "model": args.model, "pairs": args.pairs, "n": len(a),
          "threshold": threshold, "rows": rows}, args.save)


if __name__ == "__main__":
    main()
