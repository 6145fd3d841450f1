"""Peak memory of ``simpair eval`` and ``simpair match --file`` against the number of pairs (issue: a million
pairs must stay under 2 GB). Each size is a generated pair file (random words, written by this script, no
shared data); each command runs as its own process and its peak RSS is read from ``wait4``.

    python benchmarks/memory.py --model matcher --pairs 2000 20000
    python benchmarks/memory.py --model runs/tiny --pairs 10000 1000000   # the pipeline's own memory

The result records the CPU; ``peak_mb_growth_per_1k_pairs`` is the slope between the smallest and largest size.
"""
from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import emit

WORDS = ["怎么", "开", "证明", "信用卡", "额度", "密码", "提高", "花呗", "逾期", "还款", "账户", "登录", "手机", "银行",
         "how", "do", "i", "reset", "my", "password", "change", "account"]


def generate(path: Path, n: int, seed: int = 0) -> Path:
    """``n`` labelled pairs of 2-12 random words each, streamed to ``path``."""
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("text_a\ttext_b\tlabel\n")
        for _ in range(n):
            a = "".join(rng.choices(WORDS, k=rng.randint(2, 12)))
            b = "".join(rng.choices(WORDS, k=rng.randint(2, 12)))
            fh.write(f"{a}\t{b}\t{rng.randint(0, 1)}\n")
    return path


def peak_rss(cmd: list[str]) -> tuple[float, float]:
    """(peak RSS in MB, seconds) of ``cmd`` run to completion, its stdout discarded and its stderr kept in a
    file (a pipe left unread would block the command once it fills)."""
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
        if os.waitstatus_to_exitcode(status) != 0:
            err.seek(0)
            raise SystemExit(f"{' '.join(cmd)} failed: {err.read().decode(errors='replace')[-2000:]}")
    return usage.ru_maxrss / 1024, seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="matcher")
    ap.add_argument("--pairs", type=int, nargs="+", default=[2000, 20000])
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--save")
    args = ap.parse_args()
    simpair = [sys.executable, "-m", "simpair.cli"]
    run = ["--backend", args.backend, "--precision", args.precision]
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in sorted(args.pairs):
            file = str(generate(Path(tmp) / f"pairs-{n}.tsv", n))
            for name, cmd in (("eval", simpair + ["eval", args.model, file, "--json"] + run),
                              ("match --file", simpair + ["match", "--model", args.model, "--file", file, "--json"] + run)):
                mb, seconds = peak_rss(cmd)
                rows[f"{name} {n}"] = {"command": name, "pairs": n, "peak_rss_mb": round(mb, 1),
                                       "seconds": round(seconds, 1), "pairs_per_second": round(n / seconds, 1)}
                print(f"{name} {n}: {mb:.0f} MB, {seconds:.0f} s", file=sys.stderr)
    small, large = min(args.pairs), max(args.pairs)
    growth = {c: round((rows[f"{c} {large}"]["peak_rss_mb"] - rows[f"{c} {small}"]["peak_rss_mb"])
                       / max((large - small) / 1000, 1e-9), 3) for c in ("eval", "match --file")}
    emit({"benchmark": "memory", "model": args.model, "backend": args.backend, "precision": args.precision,
          "rows": rows, "peak_mb_growth_per_1k_pairs": growth,
          "target": "a million pairs below 2 GB peak RSS"}, args.save)


if __name__ == "__main__":
    main()
