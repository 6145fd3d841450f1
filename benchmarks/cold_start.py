"""Cold start: wall time and peak RSS of one ``simpair match "q1" "q2"`` process, warm cache.

Each row is a fresh process, timed from launch to exit (best and median of ``--runs``), peak RSS from
``getrusage(RUSAGE_CHILDREN)``. Rows: the bundled matcher with no flags (after its one-time ONNX
preparation: the fp32 graph under ONNX Runtime, no torch import), the same on ``--backend torch``
(import torch + transformers, load the base, merge the adapter), the same adapter over the full 250k-piece
e5-small instead of the pruned e5-small-zh-en (``--full-vocab``, issue 40), and the peer: a Python process that
loads the same model with sentence-transformers ``CrossEncoder`` (``--st-model``, a full model
directory) and scores the pair.

    python benchmarks/cold_start.py [--runs 5] [--full-vocab] [--st-model runs/lcqmc-e5-small-stage3] [--save FILE]
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
PAIR = ["喜欢打篮球的男生喜欢什么样的女生", "爱打篮球的男生喜欢什么样的女生"]


def measure(cmd: list[str], runs: int) -> dict[str, float]:
    """Best/median wall seconds and the largest peak RSS (MB) over ``runs`` fresh processes."""
    walls, rss = [], []
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    for _ in range(runs):
        t0 = time.perf_counter()
        # each run in its own Python wrapper, so RUSAGE_CHILDREN holds that one process's peak
        wrapper = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, "
                   "stdout=subprocess.DEVNULL); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
        out = subprocess.run([sys.executable, "-c", wrapper, *cmd], env=env, check=True, capture_output=True,
                             text=True)
        walls.append(time.perf_counter() - t0)
        rss.append(int(out.stdout.strip().splitlines()[-1]) / 1024)
    return {"wall_best_s": round(min(walls), 2), "wall_median_s": round(statistics.median(walls), 2),
            "peak_rss_mb": round(max(rss))}


def full_vocab_rows(runs: int) -> dict[str, dict[str, float]]:
    """The bundled matcher's adapter over the full e5-small (a copy in the cache, its ONNX export made once)."""
    from pruned_vocab import full_vocab_copy

    from simpair.utils import simpair_home

    where = simpair_home() / "bench"
    copy = where / "matcher-full-vocab"
    if not copy.is_dir():
        where.mkdir(parents=True, exist_ok=True)
        full_vocab_copy("matcher", where)
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    if not (copy / "onnx").is_dir():  # the fp32 ONNX export the bundled matcher gets on first use
        subprocess.run([sys.executable, "-m", "simpair", "export", "--onnx", str(copy)], check=True,
                       capture_output=True, env=env)
    cmd = [sys.executable, "-m", "simpair", "match", "--model", str(copy), *PAIR, "--json"]
    subprocess.run(cmd, check=True, capture_output=True, env=env)  # warm cache
    return {"simpair match, the matcher over the full 250k vocabulary (ONNX fp32)": measure(cmd, runs),
            "the same, --backend torch (bf16)": measure([*cmd, "--backend", "torch"], runs)}


def main() -> int:
    from _common import emit

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--st-model", default="runs/lcqmc-e5-small-stage3")
    parser.add_argument("--full-vocab", action="store_true", help="Also the matcher over the full e5-small.")
    parser.add_argument("--save", default=None)
    args = parser.parse_args()
    # the bundled matcher by name: with no --model, a model trained on this machine would be the default
    simpair = [sys.executable, "-m", "simpair", "match", "--model", "matcher", *PAIR, "--json"]
    subprocess.run(simpair, check=True, capture_output=True, env=dict(os.environ, HF_HUB_OFFLINE="1"))  # warm cache
    results = {
        "simpair match (bundled matcher, default: ONNX fp32)": measure(simpair, args.runs),
        "simpair match --backend torch (bf16)": measure([*simpair, "--backend", "torch"], args.runs),
    }
    if args.full_vocab:
        results.update(full_vocab_rows(args.runs))
    if Path(args.st_model, "config.json").is_file():
        st = ("import sys; from sentence_transformers import CrossEncoder; "
              f"print(CrossEncoder(sys.argv[1], device='cpu').predict([{tuple(PAIR)!r}]))")
        results["sentence-transformers CrossEncoder load + predict (fp32)"] = measure(
            [sys.executable, "-c", st, args.st_model], args.runs)
    emit({"what": f"one pair scored by a fresh process, {args.runs} runs each, warm cache (page cache too)",
          "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, no GPU", "model": "matcher",
          "target": "simpair match <= 3 s wall and <= 1.5 GB peak RSS (issue 6)", "results": results}, args.save)
    return 0


if __name__ == "__main__":
    sys.exit(main())
