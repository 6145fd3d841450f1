"""Past one machine, measured on one: FAISS against a Qdrant collection (local mode), and ``match --file`` in one
process against ``--engine ray``.

    python benchmarks/scale_out.py stores [--save benchmarks/results/scale_out_stores.json]
    python benchmarks/scale_out.py ray --pairs 100000 [--save benchmarks/results/scale_out_ray.json]

``stores``: (1) the LCQMC-dev retrieval set (15,917 questions, 3,786 queries) indexed by simpair's own build
paths with the bundled ``encoder``: FAISS flat, FAISS HNSW and Qdrant local, each scored by ``eval-retrieval``'s
code (Recall@1/5/10, MRR@10; target: Qdrant's R@10 within 0.005 of FAISS's); (2) the 248,619-question pool with
its cached e5-small embeddings (``benchmarks/pool_embeddings.py``): build seconds and batched search QPS of FAISS
HNSW and Qdrant local, recall@10 of each against exact search. The texts are encoded once and the same vectors
go to every store (``encode=`` of the build calls), so the stores are compared, not the encoder twice.

``ray``: the first ``--pairs`` LCQMC train pairs scored by the bundled ``matcher`` through ``CrossEncoder.match_file``
(one process, all cores) and through ``RayEngine`` (a local Ray, one worker per core, one thread each): pairs/s
and whether the two give the same scores, pair for pair. On one machine they should be close; the second scales
out by pointing ``--ray-address`` at a cluster.

Needs ../shared (research data, never copied into the project).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
SHARED = ROOT.parent / "shared" / "data"
RET = SHARED / "retrieval" / "lcqmc-dev"


def lookup(vectors: Any, texts: list[str]) -> Any:
    """An ``encode`` for the build calls that reads precomputed vectors."""
    row = {t: i for i, t in enumerate(texts)}
    return lambda batch: vectors[[row[t] for t in batch]]


def retrieval_rows(tmp: Path) -> dict[str, Any]:
    """The LCQMC-dev retrieval metrics from each store, built and searched by simpair's own code."""
    from simpair import BiEncoder
    from simpair.index import Index
    from simpair.readers import read_corpus
    from simpair.search import Searcher, evaluate_retrieval
    from simpair.stores.qdrant import QdrantIndex

    enc = BiEncoder("encoder", bulk=True)
    texts = [e.text for e in read_corpus(RET / "corpus.tsv")]
    t0 = time.perf_counter()
    vectors = enc.encode(texts, batch_size=64, progress=True)
    encode_s = time.perf_counter() - t0
    rows: dict[str, Any] = {}
    builds = {"faiss-flat": lambda e: Index.build(RET / "corpus.tsv", tmp / "flat", enc, kind="flat", progress=False,
                                                  encode=e),
              "faiss-hnsw": lambda e: Index.build(RET / "corpus.tsv", tmp / "hnsw", enc, kind="hnsw", progress=False,
                                                  encode=e),
              "qdrant-local": lambda e: QdrantIndex.build(RET / "corpus.tsv", f"qdrant+local://{tmp / 'q'}", enc,
                                                          progress=False, encode=e)}
    for name, build in builds.items():
        t0 = time.perf_counter()
        index = build(lookup(vectors, texts))
        built = time.perf_counter() - t0
        metrics = evaluate_retrieval(Searcher(index, encoder=enc), RET / "queries.tsv")
        rows[name] = {"build_seconds_without_encoding": round(built, 2), **{k: round(v, 4) for k, v in metrics.items()
                                                                          if isinstance(v, float)}}
    gap = abs(rows["qdrant-local"]["recall@10"] - rows["faiss-flat"]["recall@10"])
    return {"corpus": len(texts), "encode_seconds": round(encode_s, 1), "rows": rows,
            "target_qdrant_r10_within_0.005_of_faiss": {"gap": round(gap, 4), "met": gap <= 0.005}}


def pool_rows(tmp: Path, queries: int) -> dict[str, Any]:
    """Build and batched search on the 248k pool (cached embeddings): FAISS HNSW and Qdrant local."""
    import faiss
    import numpy as np

    from simpair import BiEncoder
    from simpair.index import Index
    from simpair.readers import read_queries
    from simpair.stores.qdrant import QdrantIndex

    enc = BiEncoder("e5-small", bulk=True)
    from pool_embeddings import cache_dir

    cache = cache_dir(enc.fingerprint)
    if not (cache / "embeddings.npy").is_file():
        return {"skipped": f"no cached pool embeddings in {cache}: run benchmarks/pool_embeddings.py first"}
    vectors = np.load(cache / "embeddings.npy")
    texts = (cache / "texts.txt").read_text(encoding="utf-8").split("\n")[: len(vectors)]
    corpus = tmp / "pool.txt"
    corpus.write_text("\n".join(texts) + "\n", encoding="utf-8")
    q = enc.encode([t for t, _, _ in read_queries(RET / "queries.tsv")[:queries]])
    exact = faiss.IndexFlatIP(vectors.shape[1])
    exact.add(vectors)
    _, exact_rows = exact.search(q, 10)
    exact_ids = [[str(r + 1) for r in row] for row in exact_rows]  # .txt corpus ids are line numbers
    rows: dict[str, Any] = {}
    for name, build in {"faiss-hnsw": lambda: Index.build(corpus, tmp / "hnsw", enc, kind="hnsw", progress=False,
                                                           encode=lookup(vectors, texts)),
                        "qdrant-local": lambda: QdrantIndex.build(corpus, f"qdrant+local://{tmp / 'qpool'}", enc,
                                                                  progress=False, encode=lookup(vectors, texts))}.items():
        t0 = time.perf_counter()
        index = build()
        built = time.perf_counter() - t0
        t0 = time.perf_counter()
        hits = index.hits(q, 10)
        search_s = time.perf_counter() - t0
        recall = float(np.mean([len({i for i, _, _ in h} & set(e)) / 10 for h, e in zip(hits, exact_ids)]))
        rows[name] = {"build_seconds_without_encoding": round(built, 1),
                      "entries_per_second": round(len(texts) / built, 1), "queries": len(q),
                      "batched_qps": round(len(q) / search_s, 1), "recall@10_vs_exact": round(recall, 4)}
        del index
    return {"pool": len(texts), "rows": rows}


def ray_rows(pairs: int, tmp: Path) -> dict[str, Any]:
    """``match --file`` on ``pairs`` LCQMC train pairs: one process against Ray, scores compared pair for pair."""
    import numpy as np

    from simpair import CrossEncoder
    from simpair.engines.ray_engine import RayEngine

    lines = (SHARED / "lcqmc" / "train.tsv").read_text(encoding="utf-8").splitlines()[:pairs]
    path = tmp / "pairs.tsv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out: dict[str, Any] = {"pairs": len(lines), "model": "matcher"}
    CrossEncoder("matcher", bulk=True)  # a bundled model's first use exports it once: not part of either timing
    t0 = time.perf_counter()
    ce = CrossEncoder("matcher", bulk=True)
    local = np.array([r["probability"] for r in ce.match_file(path)])
    run, threshold = {"backend": ce.backend, "precision": ce.precision}, ce.threshold
    out["one_process"] = {**run, "threads": os.cpu_count(), "seconds": round(time.perf_counter() - t0, 1)}
    del ce
    t0 = time.perf_counter()
    engine = RayEngine(run=run)
    remote = np.array([r["probability"] for r in engine.cross_encoder("matcher").match_file(path)])
    out["ray"] = {**run, "workers": engine.workers, "threads_per_worker": engine.cpus_per_worker,
                  "seconds": round(time.perf_counter() - t0, 1)}
    for part in ("one_process", "ray"):
        out[part]["pairs_per_second"] = round(len(lines) / out[part]["seconds"], 1)
    out["same_scores"] = {"max_abs_diff": float(np.abs(local - remote).max()),
                          "identical": bool(np.array_equal(local, remote)),
                          "decisions_equal": float(np.mean((local >= threshold) == (remote >= threshold)))}
    return out


def main() -> None:
    from _common import emit

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("part", choices=["stores", "ray"])
    ap.add_argument("--pairs", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--save", default=None)
    args = ap.parse_args()
    if not SHARED.is_dir():
        sys.exit(f"needs {SHARED} (the shared research data)")
    with tempfile.TemporaryDirectory(dir=ROOT / "runs" if (ROOT / "runs").is_dir() else None) as tmp:
        if args.part == "stores":
            result = {"benchmark": "scale_out_stores", "model": "encoder", "retrieval": retrieval_rows(Path(tmp)),
                      "pool": pool_rows(Path(tmp), args.queries)}
        else:
            result = {"benchmark": "scale_out_ray", **ray_rows(args.pairs, Path(tmp))}
    emit(result, args.save)


if __name__ == "__main__":
    main()
