"""How to combine the bi-encoder's cosine with the cross-encoder's probability when re-ranking.

    python benchmarks/rerank_fusion_probe.py [--encoder encoder] [--reranker matcher] [--limit 1000]
                                             [--pairs ../shared/data/bq/dev.tsv]
                                             [--cache runs/fusion_cache.npz]
                                             [--save benchmarks/results/rerank_fusion.json]

On ``retrieval/lcqmc-dev`` (``../shared``), or on a retrieval set built from a labelled pair file (``--pairs``:
every distinct text is a corpus entry, every text with a positive partner a query whose relevant entries are its
partners), it retrieves 50 candidates per query with the encoder (exact search, the query's own entry left out),
scores every candidate with the re-ranker, and compares ordering rules, each with its one parameter tuned on one
half of the queries and scored on the other (both ways, averaged):

- ``cosine``: the bi-encoder's order (no re-ranking);
- ``probability``: the cross-encoder's order (what ``--rerank`` did before);
- ``add``: cosine + a·probability (simpair's order, :func:`simpair.search.fused_scores`), a on a log grid:
  among 50 near neighbours the cosines spread over ~0.05 and the probabilities over ~1, so the useful a are
  small (w·cos + (1−w)·prob is a = (1−w)/w: a grid of w in steps of 0.1 jumps from a = 0.11 to the cosine alone);
- ``gate``: the cosine order, but candidates the cross-encoder rejects (probability < t) go below those it
  accepts — re-ranking that only removes wrong answers from the top;
- ``rrf``: reciprocal-rank fusion 1/(c + rank_cos) + 1/(c + rank_prob).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
RET = ROOT.parent / "shared" / "data" / "retrieval" / "lcqmc-dev"
K = 50


def from_pairs(path: Path) -> tuple[list, list]:
    """(corpus, queries) of a retrieval set made from a pair file's positive pairs (in ``read_queries``' shape)."""
    from types import SimpleNamespace

    from simpair import read_pairs

    ids: dict[str, str] = {}
    partners: dict[str, set[str]] = {}
    for p in read_pairs(path, warn=False).pairs:
        for t in (p.text_a, p.text_b):
            ids.setdefault(t, str(len(ids)))
        if p.label == 1 and p.text_a != p.text_b:
            partners.setdefault(p.text_a, set()).add(ids[p.text_b])
            partners.setdefault(p.text_b, set()).add(ids[p.text_a])
    corpus = [SimpleNamespace(id=i, text=t) for t, i in ids.items()]
    return corpus, [(q, rel, len(rel)) for q, rel in partners.items()]


def candidates(encoder: str, reranker: str, limit: int, cache: Path | None, pairs: Path | None = None):
    """(candidate ids [q, K], cosines [q, K], probabilities [q, K], relevant sets) for the first ``limit`` queries."""
    import numpy as np

    from simpair import read_corpus, read_queries

    if pairs:
        corpus, queries = from_pairs(pairs)
        queries = queries[:limit]
    else:
        corpus, queries = read_corpus(RET / "corpus.tsv"), read_queries(RET / "queries.tsv")[:limit]
    relevant = [rel for _, rel, _ in queries]
    if cache and cache.exists():
        z = np.load(cache, allow_pickle=False)
        return z["ids"], z["cos"], z["prob"], relevant
    import faiss

    from simpair import BiEncoder, CrossEncoder

    enc = BiEncoder(encoder)
    vec = enc.encode([e.text for e in corpus], batch_size=128)
    row_of_text = {e.text: r for r, e in enumerate(corpus)}
    index = faiss.IndexFlatIP(vec.shape[1])
    index.add(vec)
    qvec = vec[[row_of_text[q] for q, _, _ in queries]]
    cos, rows = index.search(qvec, K + 1)
    keep = [[j for j, r in enumerate(rr) if r != row_of_text[q]][:K] for rr, (q, _, _) in zip(rows, queries)]
    rows = np.array([rr[k] for rr, k in zip(rows, keep)])
    cos = np.array([cc[k] for cc, k in zip(cos, keep)], dtype=np.float32)
    ce = CrossEncoder(reranker)
    pairs = [(q, corpus[r].text) for (q, _, _), rr in zip(queries, rows) for r in rr]
    prob = ce.predict(pairs, batch_size=64, progress=True).reshape(len(queries), K)
    ids = np.array([[corpus[r].id for r in rr] for rr in rows])
    if cache:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, ids=ids, cos=cos, prob=prob)
    return ids, cos, prob, relevant


def rules(cos, prob):
    """name -> (parameter grid, function(parameter) -> ordering scores [q, K]); higher ranks first."""
    import numpy as np

    from simpair.search import fused_scores

    rank_cos = np.argsort(np.argsort(-cos, axis=1, kind="stable"), axis=1)
    rank_prob = np.argsort(np.argsort(-prob, axis=1, kind="stable"), axis=1)
    return {
        "cosine": ([None], lambda _: cos),
        "probability": ([None], lambda _: fused_scores(cos, prob, math.inf)),
        "add": ([0.003, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.5], lambda a: fused_scores(cos, prob, a)),
        "gate": ([0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6], lambda t: cos + (prob >= t)),
        "rrf": ([1, 5, 10, 30, 60], lambda c: 1 / (c + rank_cos) + 1 / (c + rank_prob)),
    }


def score(ids, order, relevant, part):
    """Retrieval metrics of ``order`` on the queries in ``part``."""
    import numpy as np

    from simpair.search import retrieval_metrics

    idx = np.argsort(-order[part], axis=1, kind="stable")[:, :10]
    ranked = [list(row[i]) for row, i in zip(ids[part], idx)]
    return retrieval_metrics(ranked, [relevant[j] for j in range(len(relevant))[part]])


def main() -> int:
    from _common import emit

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", default="encoder")
    parser.add_argument("--reranker", default="matcher")
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("--pairs", default=None, help="Build the retrieval set from this labelled pair file.")
    parser.add_argument("--cache", default=None,
                        help="Keep the candidates and scores here (research data: outside git).")
    parser.add_argument("--save", default=None)
    args = parser.parse_args()
    source = Path(args.pairs) if args.pairs else RET
    if not source.exists():
        print(json.dumps({"skipped": f"{source} not found"}))
        return 0
    ids, cos, prob, relevant = candidates(args.encoder, args.reranker, args.limit,
                                          Path(args.cache) if args.cache else None,
                                          Path(args.pairs) if args.pairs else None)
    n = len(relevant)
    halves = [slice(0, n // 2), slice(n // 2, n)]
    out: dict = {}
    for name, (grid, fn) in rules(cos, prob).items():
        held = []
        for tune, test in (halves, halves[::-1]):
            tuned = {p: score(ids, fn(p), relevant, tune) for p in grid}
            best = max(grid, key=lambda p: (tuned[p]["recall@1"], tuned[p]["mrr@10"]))
            held.append((best, score(ids, fn(best), relevant, test)))
        out[name] = {"parameter_per_half": [p for p, _ in held],
                     "held_out": {m: round(sum(s[m] for _, s in held) / 2, 4) for m in held[0][1]},
                     "whole_set_by_parameter": {str(p): round(score(ids, fn(p), relevant, slice(0, n))["recall@1"], 4)
                                                for p in grid}}
        print(json.dumps({name: out[name]["held_out"]}), file=sys.stderr, flush=True)
    name = f"positive pairs of {args.pairs}" if args.pairs else "retrieval/lcqmc-dev"
    emit({"benchmark": f"re-ranking rules on {name} (50 candidates, exact search)",
          "encoder": args.encoder, "reranker": args.reranker, "queries": n, "rules": out}, args.save)
    return 0


if __name__ == "__main__":
    sys.exit(main())
