"""Index speed on the 248,619-question pool: FAISS flat / HNSW / IVF / IVF-PQ against
sentence-transformers' ``util.semantic_search`` (exact, torch) on the same embeddings.

    python benchmarks/pool_embeddings.py            # once: encode and cache the pool (~7 min)
    python benchmarks/index_speed.py [--queries 1000] [--rerank MODEL] [--save benchmarks/results/index_speed.json]

Per index type (each built in its own process, so peak memory is its own): build seconds, index
bytes, peak RSS, single-query p50/p99 latency and QPS, batched QPS, recall@10 against exact search.
Queries are the LCQMC-dev retrieval queries, encoded with the same model. With --rerank, the
latency of a whole search (query encoding + HNSW + cross-encoder re-ranking of 50 candidates).
Targets: ANN p50 <= 1 ms at recall@10 >= 0.99; >= 20x the QPS of util.semantic_search; re-ranked
search p50 <= 250 ms.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
QUERIES = ROOT.parent / "shared" / "data" / "retrieval" / "lcqmc-dev" / "queries.tsv"
sys.path.insert(0, str(ROOT / "benchmarks"))


def _pct(values: list[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(values, q))


def _latencies(search_one, queries, repeat: int = 1) -> list[float]:
    out = []
    for _ in range(repeat):
        for i in range(len(queries)):
            t0 = time.perf_counter()
            search_one(queries[i : i + 1])
            out.append((time.perf_counter() - t0) * 1000)
    return out


def run_faiss(kind: str, emb_path: str, q_path: str, exact_path: str | None, result: mp.Queue) -> None:
    """Build and measure one FAISS index type in this (child) process."""
    import faiss
    import numpy as np

    from simpair.index import HNSW_EF_SEARCH, apply_params, make_faiss

    emb = np.load(emb_path, mmap_mode="r")
    emb = np.ascontiguousarray(emb, dtype=np.float32)
    q = np.load(q_path)
    t0 = time.perf_counter()
    index, params = make_faiss(kind, emb.shape[1], emb)
    apply_params(index, params)
    index.add(emb)
    build = time.perf_counter() - t0
    size = len(faiss.serialize_index(index))
    exact = np.load(exact_path) if exact_path else None
    sweeps = {"hnsw": ("efSearch", [16, 32, 64, 128]), "ivf": ("nprobe", [8, 16, 32, 64]),
              "ivfpq": ("nprobe", [16, 32, 64])}.get(kind, (None, [None]))
    rows = []
    for value in sweeps[1]:
        if value is not None:
            p = dict(params, **{sweeps[0]: value})
            apply_params(index, p)
        lat = _latencies(lambda x: index.search(x, 10), q)
        t1 = time.perf_counter()
        _, ids = index.search(q, 10)
        batch_s = time.perf_counter() - t1
        recall = None if exact is None else float(np.mean([len(set(a) & set(e)) / 10 for a, e in zip(ids, exact)]))
        rows.append({"param": sweeps[0], "value": value, "p50_ms": round(_pct(lat, 50), 4),
                     "p99_ms": round(_pct(lat, 99), 4), "qps_single": round(1000 / np.mean(lat), 1),
                     "qps_batched": round(len(q) / batch_s, 1), "recall@10_vs_exact": recall})
        if kind == "flat":
            np.save(q_path + ".exact.npy", ids)
    result.put({"type": kind, "params": params, "build_seconds": round(build, 2), "index_bytes": size,
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "default_efSearch": HNSW_EF_SEARCH if kind == "hnsw" else None, "sweep": rows})


def run_semantic_search(emb_path: str, q_path: str, exact_path: str, result: mp.Queue) -> None:
    """The peer: sentence-transformers util.semantic_search (exact, torch) on the same embeddings."""
    import numpy as np
    import torch
    from sentence_transformers import util

    emb = torch.from_numpy(np.ascontiguousarray(np.load(emb_path), dtype=np.float32))
    q = torch.from_numpy(np.load(q_path))
    lat = _latencies(lambda x: util.semantic_search(x, emb, top_k=10), q[:200])  # ~0.15 s each: 200 suffice
    t1 = time.perf_counter()
    hits = util.semantic_search(q, emb, top_k=10)
    batch_s = time.perf_counter() - t1
    exact = np.load(exact_path)
    recall = float(np.mean([len({h["corpus_id"] for h in hs} & set(e)) / 10 for hs, e in zip(hits, exact)]))
    result.put({"type": "sentence_transformers.util.semantic_search", "single_query_latency_queries": 200,
                "p50_ms": round(_pct(lat, 50), 3),
                "p99_ms": round(_pct(lat, 99), 3), "qps_single": round(1000 / np.mean(lat), 1),
                "qps_batched": round(len(q) / batch_s, 1), "recall@10_vs_exact": recall,
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)})


def _child(target, *args):
    # spawn, not fork: the parent has started OpenMP threads (torch, FAISS), which a forked child deadlocks on
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, queue))
    proc.start()
    out = queue.get()
    proc.join()
    return out


def rerank_latency(model: str, emb_dir: Path, queries: list[str], n: int = 50) -> dict[str, float]:
    """Whole search latency: encode the query, HNSW top 50, re-rank the 50 with the cross-encoder."""
    import numpy as np

    from simpair import BiEncoder, CrossEncoder
    from simpair.index import apply_params, make_faiss

    emb = np.load(emb_dir / "embeddings.npy")
    texts = (emb_dir / "texts.txt").read_text(encoding="utf-8").splitlines()
    index, params = make_faiss("hnsw", emb.shape[1], emb)
    apply_params(index, params)
    index.add(emb)
    enc, ce = BiEncoder("e5-small"), CrossEncoder(model)
    ce.predict([("预热", "预热")])
    enc.encode(["预热"])
    lat = []
    for query in queries[:n]:
        t0 = time.perf_counter()
        _, rows = index.search(enc.encode([query]), 50)
        ce.predict([(query, texts[r]) for r in rows[0]])
        lat.append((time.perf_counter() - t0) * 1000)
    return {"candidates": 50, "queries": len(lat), "p50_ms": round(_pct(lat, 50), 1), "p99_ms": round(_pct(lat, 99), 1),
            "reranker": model}


def main() -> int:
    from _common import emit

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--types", default="flat,hnsw,ivf,ivfpq")
    parser.add_argument("--rerank", default=None, help="Cross-encoder for the re-ranked latency measurement.")
    parser.add_argument("--save", default=None)
    args = parser.parse_args()
    import numpy as np
    from pool_embeddings import cache_dir

    from simpair import BiEncoder

    enc = BiEncoder("e5-small")
    emb_dir = cache_dir(enc.fingerprint)
    if not (emb_dir / "embeddings.npy").is_file() or not QUERIES.is_file():
        print(json.dumps({"skipped": "run benchmarks/pool_embeddings.py first (needs ../shared)"}))
        return 0
    queries = [line.split("\t")[0] for line in QUERIES.read_text(encoding="utf-8").splitlines()[1:]][: args.queries]
    q_path = str(emb_dir / "bench-queries.npy")
    np.save(q_path, enc.encode(queries, batch_size=128))
    emb_path = str(emb_dir / "embeddings.npy")
    n, dim = np.load(emb_path, mmap_mode="r").shape
    results = {"benchmark": "index speed, 248,619 e5-small embeddings", "vectors": int(n), "dim": int(dim),
               "queries": len(queries), "threads": os.cpu_count(), "faiss": []}
    exact_path = q_path + ".exact.npy"
    for kind in ["flat"] + [k for k in args.types.split(",") if k != "flat"]:
        res = _child(run_faiss, kind, emb_path, q_path, exact_path if kind != "flat" else None)
        if kind == "flat":
            for row in res["sweep"]:
                row["recall@10_vs_exact"] = 1.0
        results["faiss"].append(res)
        print(json.dumps({"done": kind, "build_seconds": res["build_seconds"]}), file=sys.stderr, flush=True)
    peer = _child(run_semantic_search, emb_path, q_path, exact_path)
    results["peer"] = peer
    good = [dict(type=r["type"], **row) for r in results["faiss"] if r["type"] != "flat" for row in r["sweep"]
            if (row["recall@10_vs_exact"] or 0) >= 0.99]
    best = min(good, key=lambda r: r["p50_ms"]) if good else None
    results["best_ann_at_recall_0.99"] = best
    if best:
        results["speedup_vs_semantic_search_qps_single"] = round(best["qps_single"] / peer["qps_single"], 1)
        results["targets"] = {"p50_ms<=1": best["p50_ms"] <= 1.0,
                              "qps>=20x_semantic_search": best["qps_single"] >= 20 * peer["qps_single"]}
    if args.rerank:
        results["search_with_rerank"] = rerank_latency(args.rerank, emb_dir, queries)
        results.setdefault("targets", {})["rerank_p50_ms<=250"] = results["search_with_rerank"]["p50_ms"] <= 250
    emit(results, args.save)
    return 0


if __name__ == "__main__":
    sys.exit(main())
