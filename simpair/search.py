"""Search an index: the bi-encoder retrieves candidates, the cross-encoder (optionally) re-ranks.

>>> s = Searcher("idx", reranker="runs/quick")
>>> s.search("怎么开初婚未育证明", k=5)
[{'id': 'q0012', 'text': '初婚未育证明怎么开', 'score': 0.93, 'rerank_score': 0.97, 'same': True}, ...]

Re-ranked hits are ordered by ``cosine + RERANK_WEIGHT · probability`` (:func:`fused_scores`), not by the
probability alone: among 50 near neighbours the cosines differ by hundredths and the probabilities by whole
units, so the small weight lets the cross-encoder settle near-ties and push rejected candidates down without
overturning the bi-encoder's order among paraphrases it accepts (measured in ``benchmarks/rerank_fusion_probe.py``).
"""
from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .bi_encoder import BiEncoder
from .cross_encoder import CrossEncoder, decide
from .index import Index
from .readers import read_queries
from .stores import open_index

RERANK_WEIGHT = 0.05  # mid 0.02-0.1, where LCQMC and AFQMC retrieval gain, BQ holds (rerank_fusion_probe.py)


def fused_scores(cosine: Sequence[float] | np.ndarray, probability: Sequence[float] | np.ndarray,
                 weight: float = RERANK_WEIGHT) -> np.ndarray:
    """The re-ranked order's key (higher first): ``cosine + weight · probability``; ``weight`` inf orders by
    the probability alone (the cosine only breaks ties); 0 keeps the bi-encoder's order."""
    cos, prob = np.asarray(cosine, dtype=np.float64), np.asarray(probability, dtype=np.float64)
    if math.isinf(weight):
        return prob + 1e-6 * cos
    return cos + weight * prob


def check_rerank_weight(weight: float) -> float:
    """``weight`` if usable (a number ≥ 0, inf included), else a clear error."""
    from .errors import SimpairError

    if not isinstance(weight, (int, float)) or math.isnan(weight) or weight < 0:
        raise SimpairError(f"rerank weight: expected a number >= 0 (inf: the probability alone), got {weight!r}")
    return float(weight)


class Searcher:
    """Bi-encoder retrieval over an :class:`Index`, with optional cross-encoder re-ranking."""

    def __init__(self, index: Index | str | Path, reranker: CrossEncoder | str | None = None,
                 encoder: BiEncoder | None = None, bf16: str | bool | None = None, backend: str = "auto",
                 precision: str = "auto", threads: int | None = None, bulk: bool = True,
                 domain: str | None = None, rerank_weight: float = RERANK_WEIGHT) -> None:
        """``backend``/``precision``/``threads``/``bulk`` apply to both models (see :mod:`simpair.backend.runtime`);
        ``domain`` picks the re-ranker's threshold calibrated under that name; ``rerank_weight`` is the
        probability's weight in the re-ranked order (:func:`fused_scores`)."""
        if isinstance(index, (str, Path)):
            index = open_index(index)
        self.index = index
        self.progress = False  # a progress bar on stderr while re-ranking (long evaluations)
        self.rerank_weight = check_rerank_weight(rerank_weight)
        m = index.manifest
        run = {"bf16": bf16, "backend": backend, "precision": precision, "threads": threads, "bulk": bulk}
        self.encoder = encoder or BiEncoder(m["model"], prefix=m["prefix"], **run)
        index.check_encoder(self.encoder)
        self.reranker = CrossEncoder(reranker, domain=domain, **run) if isinstance(reranker, str) else reranker

    def search(self, query: str, k: int = 10, candidates: int = 50, exclude: set[str] | None = None,
               rerank: bool | None = None) -> list[dict[str, Any]]:
        """Top ``k`` hits for one query."""
        return self.search_batch([query], k, candidates, [exclude or set()], rerank=rerank)[0]

    def search_batch(self, queries: Sequence[str], k: int = 10, candidates: int = 50,
                     exclude: Sequence[set[str]] | None = None, batch_size: int = 64,
                     rerank: bool | None = None, exclude_own: bool = False) -> list[list[dict[str, Any]]]:
        """Top ``k`` hits for each query; ``exclude[i]`` holds ids never returned for query i, and
        ``exclude_own`` leaves out the entries whose text is the query's own. ``rerank=False`` skips the
        re-ranker for this call (None: re-rank when there is one)."""
        from .errors import SimpairError

        if rerank and self.reranker is None:
            raise SimpairError("search: re-ranking asked for, but no re-ranking model was given")
        reranker = self.reranker if rerank is not False else None
        vectors = self.encoder.encode(list(queries), batch_size=batch_size)
        found = self.index.hits(vectors, candidates if reranker else k, exclude_ids=exclude,
                                exclude_texts=list(queries) if exclude_own else None)
        results = [[{"id": i, "text": t, "score": s} for i, t, s in hits] for hits in found]
        if reranker:
            pairs = [(q, h["text"]) for q, hits in zip(queries, results) for h in hits]
            probs = reranker.predict(pairs, batch_size=batch_size, progress=self.progress) if pairs else np.zeros(0)
            self._rerank(results, probs, reranker.threshold)
        return [hits[:k] for hits in results]

    def _rerank(self, results: list[list[dict[str, Any]]], probs: np.ndarray, threshold: float) -> None:
        """Attach each hit's probability and decision, and sort each query's hits by :func:`fused_scores`."""
        at = 0
        for hits in results:
            for h in hits:
                h["rerank_score"] = float(probs[at])
                h["same"] = decide(probs[at], threshold)
                at += 1
            key = fused_scores([h["score"] for h in hits], [h["rerank_score"] for h in hits], self.rerank_weight)
            hits[:] = [hits[i] for i in np.argsort(-key, kind="stable")]


# ------------------------------------------------------------------------------ metrics


def retrieval_metrics(ranked: Sequence[Sequence[str]], relevant: Sequence[set[str]],
                      ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """Recall@k (hit rate: at least one relevant id in the top k), MRR@10 and nDCG@10 (binary gains)."""
    n = len(ranked)
    out: dict[str, float] = {}
    for k in ks:
        out[f"recall@{k}"] = sum(bool(set(r[:k]) & rel) for r, rel in zip(ranked, relevant)) / max(n, 1)
    mrr = ndcg = 0.0
    for r, rel in zip(ranked, relevant):
        for pos, doc in enumerate(r[:10]):
            if doc in rel:
                mrr += 1.0 / (pos + 1)
                break
        dcg = sum(1.0 / math.log2(pos + 2) for pos, doc in enumerate(r[:10]) if doc in rel)
        ideal = sum(1.0 / math.log2(pos + 2) for pos in range(min(len(rel), 10)))
        ndcg += dcg / ideal if ideal else 0.0
    out["mrr@10"] = mrr / max(n, 1)
    out["ndcg@10"] = ndcg / max(n, 1)
    return out


def evaluate_retrieval(searcher: Searcher, queries_file: str | Path, k: int = 10, candidates: int = 50,
                       limit: int | None = None) -> dict[str, Any]:
    """Recall@1/5/10, MRR@10, nDCG@10; the query's own corpus entry (same text) never counts as a hit."""
    queries = read_queries(queries_file)[:limit]
    t0 = time.perf_counter()
    hits = searcher.search_batch([q for q, _, _ in queries], k=max(k, 10), candidates=candidates, exclude_own=True)
    seconds = time.perf_counter() - t0
    ranked = [[h["id"] for h in hs] for hs in hits]
    metrics = retrieval_metrics(ranked, [rel for _, rel, _ in queries])
    reranked = searcher.reranker is not None
    return {"queries": len(queries), "reranked": reranked, "candidates": candidates,
            **({"rerank_weight": _weight_for_json(searcher.rerank_weight)} if reranked else {}),
            "seconds": round(seconds, 2), "queries_per_second": round(len(queries) / max(seconds, 1e-9), 1),
            **metrics}


def _weight_for_json(weight: float) -> float | str:
    """The weight as JSON can hold it ("inf": the probability alone)."""
    return "inf" if math.isinf(weight) else weight


def ann_recall_vs_exact(index: Any, encoder: BiEncoder, queries: Sequence[str], k: int = 10) -> float:
    """Mean overlap of the index's (approximate) top-k with the exact top-k, over ``queries``."""
    q = encoder.encode(list(queries), batch_size=128)
    ann = [[i for i, _, _ in hits] for hits in index.hits(q, k)]
    exact = index.exact_hits(q, k, encoder)
    return float(np.mean([len(set(a) & set(e)) / k for a, e in zip(ann, exact)]))
