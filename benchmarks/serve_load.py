"""Load on `simpair serve`: 1, 8 and 50 concurrent clients on loopback against /match, /rerank and /search,
for a bounded time each, then a burst past saturation; micro-batching off too when ``--seconds-off`` > 0
(one server process each).

Prints one JSON object: per (batching, endpoint, clients) requests/s, p50/p99 latency, errors and 429s; the
on/off throughput ratio; and the burst: how many of ``--burst`` simultaneous /match requests were served,
shed with 429 (Retry-After) or failed otherwise, and whether the next requests were served normally. Targets:
0 errors below saturation (issue 7: 50 clients, batching on >= 2x off); past saturation, what TEI does with
``--max-concurrent-requests``: shed with 429 at once, no other error, then serve normally (issue 39).

    python benchmarks/serve_load.py --model matcher --save benchmarks/results/serve_load.json

Requests: one LCQMC-dev pair (or question) per request, cycling through the first 2,000 (../shared;
our own data/ when it is absent); /rerank sends a question with 10 documents (its pair's other side and the
next 9). /search uses an e5-small index of the LCQMC-dev retrieval corpus
(15,917 questions), built under $SIMPAIR_HOME/bench/ on first use, without re-ranking.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
SHARED = ROOT.parent / "shared" / "data"


def _pairs() -> list[tuple[str, str]]:
    from simpair import read_pairs

    path = SHARED / "lcqmc" / "dev.tsv"
    data = read_pairs(path if path.is_file() else ROOT / "data" / "dev.tsv", warn=False)
    return [(p.text_a, p.text_b) for p in data.pairs[:2000]]


def _index() -> str:
    from simpair import BiEncoder, Index
    from simpair.utils import simpair_home

    corpus = SHARED / "retrieval" / "lcqmc-dev" / "corpus.tsv"
    if not corpus.is_file():
        corpus = ROOT / "data" / "corpus.tsv"
    out = simpair_home() / "bench" / f"serve-index-{corpus.parent.name}"
    if not (out / "manifest.json").is_file():
        Index.build(corpus, out, BiEncoder("e5-small"), progress=False)
    return str(out)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _load(url: str, endpoint: str, bodies: list[dict], clients: int, seconds: float) -> dict:
    import httpx

    latencies: list[float] = []
    errors = shed = 0
    stop = time.perf_counter() + seconds
    counter = iter(range(1 << 62))

    async def client(c: httpx.AsyncClient) -> None:
        nonlocal errors, shed
        while time.perf_counter() < stop:
            body = bodies[next(counter) % len(bodies)]
            t0 = time.perf_counter()
            try:
                code = (await c.post(url + endpoint, json=body)).status_code
            except httpx.HTTPError:
                code = 0
            if code == 200:
                latencies.append(time.perf_counter() - t0)
            elif code == 429:
                shed += 1
            else:
                errors += 1

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(limits=limits, timeout=120) as c:
        t0 = time.perf_counter()
        await asyncio.gather(*(client(c) for _ in range(clients)))
        wall = time.perf_counter() - t0
    lat = np.array(latencies) * 1000
    return {"endpoint": endpoint, "clients": clients, "seconds": round(wall, 1), "requests": len(latencies),
            "errors": errors, "shed_429": shed, "requests_per_second": round(len(latencies) / wall, 1),
            "p50_ms": round(float(np.percentile(lat, 50)), 1) if len(lat) else None,
            "p99_ms": round(float(np.percentile(lat, 99)), 1) if len(lat) else None}


async def _burst(url: str, bodies: list[dict], n: int) -> dict:
    """``n`` /match requests at once, then 20 one after another: served, shed (429), failed; recovered?"""
    import httpx

    limits = httpx.Limits(max_connections=n, max_keepalive_connections=0)
    async with httpx.AsyncClient(limits=limits, timeout=120) as c:
        async def one(body: dict) -> tuple[int, str | None]:
            try:
                r = await c.post(url + "/match", json=body)
                return r.status_code, r.headers.get("retry-after")
            except httpx.HTTPError:
                return 0, None

        t0 = time.perf_counter()
        got = await asyncio.gather(*(one(bodies[i % len(bodies)]) for i in range(n)))
        wall = time.perf_counter() - t0
        after = [await one(bodies[i]) for i in range(20)]
    codes = [code for code, _ in got]
    return {"requests": n, "served": codes.count(200), "shed_429": codes.count(429),
            "shed_with_retry_after": sum(1 for code, ra in got if code == 429 and ra),
            "other_errors": n - codes.count(200) - codes.count(429), "seconds": round(wall, 2),
            "after_burst_served": sum(1 for code, _ in after if code == 200), "after_burst_requests": len(after)}


def _serve(args: argparse.Namespace, index: str, batching: bool) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    cmd = [sys.executable, "-m", "simpair.cli", "serve", "--model", args.model, "--index", index, "--no-sentiment",
           "--port", str(port), "--batch-window-ms", str(args.window_ms)]
    if args.max_batch:  # else the server's own per-endpoint default
        cmd += ["--max-batch", str(args.max_batch)]
    if not batching:
        cmd.append("--no-batching")
    cmd += ["--backend", args.backend]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    import httpx

    for _ in range(600):
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.stderr.read()[-2000:]}")
        time.sleep(0.5)
    proc.kill()
    raise SystemExit("server did not start in 300 s")


def main() -> int:
    from _common import emit

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="The matcher to serve.")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 50])
    parser.add_argument("--seconds", type=float, default=20.0, help="Per endpoint and client count, batching on.")
    parser.add_argument("--seconds-off", type=float, default=0.0,
                        help="Per endpoint at the most clients with batching off (0: not run).")
    parser.add_argument("--burst", type=int, default=500, help="Simultaneous /match requests past saturation.")
    parser.add_argument("--max-batch", type=int, default=None,
                        help="The server's --max-batch (default: its own, 64; /match on OpenVINO 8).")
    parser.add_argument("--window-ms", type=float, default=5.0)
    parser.add_argument("--backend", default="auto", help="The server's --backend (auto: an OpenVINO or ONNX export "
                        "of the model when there is one, as `simpair serve` picks).")
    parser.add_argument("--save", default=None)
    args = parser.parse_args()
    pairs = _pairs()
    index = _index()
    match_bodies = [{"text_a": a, "text_b": b} for a, b in pairs]
    rerank_bodies = [{"query": a, "documents": [pairs[(i + j) % len(pairs)][1] for j in range(10)], "top_n": 3}
                     for i, (a, _) in enumerate(pairs)]
    search_bodies = [{"query": a, "k": 10} for a, _ in pairs]
    endpoints = (("/match", match_bodies), ("/rerank", rerank_bodies), ("/search", search_bodies))
    rows, burst = [], None
    for batching in (True, False) if args.seconds_off > 0 else (True,):
        proc, url = _serve(args, index, batching)
        try:
            for endpoint, bodies in endpoints:
                asyncio.run(_load(url, endpoint, bodies[:50], 4, 3))  # warm-up
                for clients in args.clients if batching else args.clients[-1:]:
                    row = asyncio.run(_load(url, endpoint, bodies, clients,
                                            args.seconds if batching else args.seconds_off))
                    row["batching"] = batching
                    rows.append(row)
                    print(row, file=sys.stderr)
            if batching and args.burst:
                burst = asyncio.run(_burst(url, match_bodies, args.burst))
                print(burst, file=sys.stderr)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    top = max(args.clients)
    rps = {(r["batching"], r["endpoint"]): r["requests_per_second"] for r in rows if r["clients"] == top}
    speedup = ({e: round(rps[(True, e)] / max(rps[(False, e)], 1e-9), 2) for e, _ in endpoints}
               if args.seconds_off > 0 else None)
    import torch

    emit({"benchmark": "serve_load", "model": args.model, "index": index, "clients": args.clients,
          "window_ms": args.window_ms, "max_batch": args.max_batch, "backend": args.backend, "rows": rows,
          "batching_speedup": speedup, "burst": burst,
          "burst_target": "every request served or shed with 429 + Retry-After, none failing otherwise; then served",
          "burst_met": None if burst is None else (burst["other_errors"] == 0 and burst["shed_429"] > 0
                                                   and burst["after_burst_served"] == burst["after_burst_requests"]),
          "errors_total": sum(r["errors"] for r in rows), "threads": torch.get_num_threads(),
          "cpu_count": os.cpu_count()}, args.save)
    return 0


if __name__ == "__main__":
    sys.exit(main())
