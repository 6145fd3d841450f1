"""OpenVINO int8 cross-encoder: one synchronous request (what simpair runs) against an async queue of two
requests — on two 1-thread streams (THROUGHPUT hint) and on the one 2-thread stream (LATENCY hint, overlapping
tokenisation with inference only) — interleaved in one process so that host drift hits every mode alike.

    python benchmarks/probes/ov_streams_probe.py MODEL_DIR [--pairs 1000] [--rounds 4] [--save FILE]

MODEL_DIR needs an int8 OpenVINO export (``simpair export MODEL_DIR --openvino --int8``). Pairs: the first
``--pairs`` of LCQMC dev (../shared), length-sorted batches of 32, max length 64; pairs/s per round and the median.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
DEV = ROOT.parent / "shared" / "data" / "lcqmc" / "dev.tsv"


def modes(file: Path, feeds: list[dict[str, Any]]) -> dict[str, Any]:
    """{mode: a function scoring every feed once}."""
    import openvino as ov

    core = ov.Core()
    model = core.read_model(str(file))
    latency = core.compile_model(model, "CPU", {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": 2})
    streams = core.compile_model(model, "CPU", {"PERFORMANCE_HINT": "THROUGHPUT", "NUM_STREAMS": 2})

    def sync() -> None:
        request = latency.create_infer_request()
        for feed in feeds:
            request.infer(feed)

    def queued(compiled: Any) -> Any:
        queue = ov.AsyncInferQueue(compiled, 2)

        def run() -> None:
            for feed in feeds:
                queue.start_async(feed)
            queue.wait_all()
        return run

    return {"sync (simpair)": sync, "async, 2 streams": queued(streams), "async, 1 stream": queued(latency)}


def main() -> int:
    import numpy as np
    from _common import emit

    from simpair import read_pairs
    from simpair.backend.openvino import OpenVinoModel, find_openvino
    from simpair.backend.runtime import length_sorted_batches

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--pairs", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--save", default=None)
    args = parser.parse_args()
    file = find_openvino(args.model, "int8")
    if file is None:
        raise SystemExit(f"{args.model}: no int8 OpenVINO export; run 'simpair export {args.model} --openvino --int8'")
    pairs = [(p.text_a, p.text_b) for p in read_pairs(DEV).pairs[: args.pairs]]
    tokenize = OpenVinoModel(file, max_length=64).encode
    batches = length_sorted_batches([len(a) + len(b) for a, b in pairs], 32)
    # tokenised inside each timed pass, as simpair does, so the queue's overlap of the two shows
    feeds_of = [([pairs[i][0] for i in idx], [pairs[i][1] for i in idx]) for idx in batches]

    class Feeds(list):
        def __iter__(self) -> Any:
            return (tokenize(a, b) for a, b in feeds_of)

    runs = modes(file, Feeds())
    for run in runs.values():  # warm-up: every shape compiled once
        run()
    rates: dict[str, list[float]] = {m: [] for m in runs}
    for r in range(args.rounds):
        for mode in (list(runs) if r % 2 == 0 else list(reversed(runs))):
            t = time.perf_counter()
            runs[mode]()
            rates[mode].append(round(len(pairs) / (time.perf_counter() - t), 1))
    emit({"what": f"OpenVINO int8, {len(pairs)} LCQMC dev pairs, batch 32, {args.rounds} interleaved rounds",
          "model": args.model, "pairs_per_second": rates,
          "median": {m: round(float(np.median(v)), 1) for m, v in rates.items()}}, args.save)
    return 0


if __name__ == "__main__":
    sys.exit(main())
