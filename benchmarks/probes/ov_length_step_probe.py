"""OpenVINO int8 cross-encoder: input lengths padded to a multiple of 8 tokens (what simpair runs) against no
extra padding, on a fresh compiled model each round (OpenVINO prepares every new input shape once), rounds
interleaved so that host drift hits both alike.

Two workloads: ``bulk`` — the first ``--pairs`` LCQMC dev pairs in length-sorted batches of 32 (``simpair eval``;
pairs/s), and ``serve`` — ``--batches`` batches of 1 to 50 random pairs each, one call each, as a server's
micro-batches come (milliseconds per batch, p50 and p99).

    python benchmarks/probes/ov_length_step_probe.py MODEL_DIR [--pairs 2000] [--batches 200] [--rounds 3] [--save FILE]

MODEL_DIR needs an int8 OpenVINO export (``simpair export MODEL_DIR --openvino --int8``).
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
DEV = ROOT.parent / "shared" / "data" / "lcqmc" / "dev.tsv"


def one_round(file: Path, step: int, bulk: list[list[tuple[str, str]]], serve: list[list[tuple[str, str]]]
              ) -> dict[str, float]:
    """Both workloads on a freshly compiled model with inputs padded to a multiple of ``step``."""
    import numpy as np

    from simpair.backend import openvino as ovb

    ovb.LENGTH_STEP = step  # read by OpenVinoModel.encode at each call
    model = ovb.OpenVinoModel(file, max_length=64)

    def texts(batch: list[tuple[str, str]]) -> tuple[list[str], list[str]]:
        return [a for a, _ in batch], [b for _, b in batch]

    t0 = time.perf_counter()
    model.run_many((texts(b) for b in bulk), lambda out, mask: out)
    bulk_s = time.perf_counter() - t0
    ms = []
    for batch in serve:
        t0 = time.perf_counter()
        model.run_many([texts(batch)], lambda out, mask: out)
        ms.append((time.perf_counter() - t0) * 1000)
    return {"bulk_pairs_per_second": sum(map(len, bulk)) / bulk_s, "serve_p50_ms": float(np.percentile(ms, 50)),
            "serve_p99_ms": float(np.percentile(ms, 99)), "serve_mean_ms": float(np.mean(ms))}


def main() -> int:
    import numpy as np
    from _common import emit

    from simpair import read_pairs
    from simpair.backend.openvino import find_openvino
    from simpair.backend.runtime import length_sorted_batches

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--pairs", type=int, default=2000)
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--save", default=None)
    args = parser.parse_args()
    file = find_openvino(args.model, "int8")
    if file is None:
        raise SystemExit(f"{args.model}: no int8 OpenVINO export; run 'simpair export {args.model} --openvino --int8'")
    pairs = [(p.text_a, p.text_b) for p in read_pairs(DEV, warn=False).pairs[: args.pairs]]
    bulk = [[pairs[i] for i in idx] for idx in length_sorted_batches([len(a) + len(b) for a, b in pairs], 32)]
    rng = random.Random(0)
    serve = [rng.sample(pairs, rng.randint(1, 50)) for _ in range(args.batches)]
    rows: dict[int, list[dict[str, float]]] = {1: [], 8: []}
    for _ in range(args.rounds):
        for step, runs in rows.items():
            runs.append(one_round(file, step, bulk, serve))
    summary = {f"step {s}": {k: round(float(np.median([r[k] for r in runs])), 2) for k in runs[0]}
               for s, runs in rows.items()}
    emit({"benchmark": "ov_length_step_probe", "model": args.model, "file": str(file), "pairs": len(pairs),
          "serve_batches": len(serve), "rounds": args.rounds, "median": summary,
          "runs": {f"step {s}": runs for s, runs in rows.items()}}, args.save)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
