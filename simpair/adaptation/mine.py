"""``simpair mine``: candidate pairs to label, from a list of questions that has no labels yet.

Candidates are each question's nearest neighbours by the bi-encoder (paraphrases with few shared words) and
by character n-gram TF-IDF (look-alikes that may ask something else), scored by the current matcher; then
:func:`~.select.select_pairs` picks the ones a label teaches the most, spread over clusters of the corpus.
The result is a pairs TSV with an empty ``label`` column (``text_a text_b label p_same why found_by``) that
``simpair label`` fills in and every pair reader of simpair reads.

Two rounds (``calibrate_on``): in a domain far from the matcher's, its stored threshold is far off (BQ: 0.569
accuracy from the LCQMC specialist), so "near the threshold" is near the wrong place. Label a random slice
first (``check_share=1``), then mine again with those labels: the threshold is refitted on them and the picks
are made around it (measured in docs/adaptation.md).
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..utils import atomic_write_text
from .select import normalise, select_pairs

MINED_HEADER = ("text_a", "text_b", "label", "p_same", "why", "found_by")


def dedupe(texts: Sequence[str]) -> list[str]:
    """The texts in order, each normalised form once."""
    seen: set[str] = set()
    out = []
    for t in texts:
        key = normalise(t)
        if key and key not in seen:
            seen.add(key)
            out.append(t)
    return out


def dense_neighbours(emb: np.ndarray, k: int) -> dict[tuple[int, int], float]:
    """(i, j) with i < j for each text's ``k`` nearest others by cosine (embeddings L2-normalised)."""
    import faiss

    index = faiss.IndexFlatIP(emb.shape[1])
    index.add(np.ascontiguousarray(emb, dtype=np.float32))
    sims, ids = index.search(np.ascontiguousarray(emb, dtype=np.float32), min(k + 1, len(emb)))
    out: dict[tuple[int, int], float] = {}
    for i, (row_s, row_i) in enumerate(zip(sims, ids)):
        for s, j in zip(row_s, row_i):
            if j >= 0 and j != i:
                out[(min(i, int(j)), max(i, int(j)))] = float(s)
    return out


def lexical_neighbours(texts: Sequence[str], k: int, chunk: int = 1024) -> set[tuple[int, int]]:
    """(i, j) with i < j for each text's ``k`` nearest others by character 2-3-gram TF-IDF; n-grams in more
    than 5 % of a large list (怎么, 如何) are left out, which keeps the products sparse."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 3), sublinear_tf=True,
                          max_df=0.05 if len(texts) >= 2000 else 1.0)
    x = vec.fit_transform([normalise(t) or t for t in texts]).tocsr()
    out: set[tuple[int, int]] = set()
    for start in range(0, x.shape[0], chunk):
        sims = (x[start:start + chunk] @ x.T).tocsr()
        for r in range(sims.shape[0]):
            i = start + r
            lo, hi = sims.indptr[r], sims.indptr[r + 1]
            cols, vals = sims.indices[lo:hi], sims.data[lo:hi]
            keep = vals > 0
            cols, vals = cols[keep & (cols != i)], vals[keep & (cols != i)]
            for j in cols[np.argsort(-vals)[:k]]:
                out.add((min(i, int(j)), max(i, int(j))))
    return out


def cluster_pairs(emb_a: np.ndarray, emb_b: np.ndarray, n_clusters: int, seed: int = 0) -> np.ndarray:
    """A k-means cluster id per pair, on the normalised sum of its two embeddings (what the pair is about)."""
    import faiss

    x = emb_a + emb_b
    x = np.ascontiguousarray(x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-9), dtype=np.float32)
    n_clusters = max(1, min(n_clusters, len(x)))
    if n_clusters == 1:
        return np.zeros(len(x), dtype=int)
    km = faiss.Kmeans(x.shape[1], n_clusters, niter=20, seed=seed, verbose=False, min_points_per_centroid=1)
    km.train(x)
    return km.index.search(x, 1)[1].reshape(-1).astype(int)


def candidates(texts: Sequence[str], encoder: Any, k: int = 5, lexical_k: int = 3,
               progress: bool = False) -> tuple[list[tuple[int, int]], list[str], np.ndarray]:
    """Candidate pairs (indices into ``texts``), how each was found, and the texts' embeddings."""
    emb = encoder.encode(list(texts), progress=progress)
    dense = dense_neighbours(emb, k)
    lexical = lexical_neighbours(texts, lexical_k) if lexical_k > 0 else set()
    keys = sorted(set(dense) | lexical)
    found = ["dense+lexical" if key in dense and key in lexical else "dense" if key in dense else "lexical"
             for key in keys]
    return keys, found, emb


def mine(questions: str | Path, out: str | Path, n: int = 300, model: str | None = None, encoder: str | None = None,
         k: int = 5, lexical_k: int = 3, seed: int = 0, progress: bool = False, check_share: float = 0.2,
         calibrate_on: str | Path | None = None, **run: Any) -> dict[str, Any]:
    """Mine candidate pairs from the questions in ``questions`` (``.txt`` one a line, or a corpus ``.tsv`` /
    ``.jsonl``), score them with ``model`` (default: the default matcher), pick ``n`` to label and write them
    to ``out`` (atomically). ``calibrate_on``: pairs of this domain labelled already (a first round's random
    checks): the matcher's threshold is refitted on them before the picks are made around it, and they are not
    picked again. ``run`` goes to both models (backend, precision, threads)."""
    from ..bi_encoder import BiEncoder
    from ..cross_encoder import CrossEncoder
    from ..models import default_encoder, default_model
    from ..readers import read_corpus

    started = time.time()
    texts = dedupe([e.text for e in read_corpus(questions)])
    known_pairs = read_known(calibrate_on) if calibrate_on is not None else None
    if len(texts) < 3:
        raise InputError(str(questions), None, f"mining needs at least 3 distinct questions, found {len(texts)}")
    matcher = CrossEncoder(model or default_model() or "matcher", bulk=True, **run)
    if matcher.task != "classification":
        raise InputError(str(questions), None, f"{matcher.name} scores similarity; mining needs a 0/1 pair matcher")
    bi = BiEncoder(encoder or default_encoder(), bulk=True, **run)
    keys, found, emb = candidates(texts, bi, k, lexical_k, progress)
    threshold, known = matcher.threshold, set()
    if known_pairs is not None:
        threshold, known = refit_threshold(matcher, known_pairs)
        keep = [m for m, (i, j) in enumerate(keys) if frozenset((normalise(texts[i]), normalise(texts[j]))) not in known]
        keys, found = [keys[m] for m in keep], [found[m] for m in keep]
    pairs = [(texts[i], texts[j]) for i, j in keys]
    scores = matcher.predict(pairs, progress=progress)
    groups = cluster_pairs(emb[[i for i, _ in keys]], emb[[j for _, j in keys]], max(2, n // 5), seed)
    picked = select_pairs(pairs, scores, threshold, n, groups=groups, seed=seed, check_share=check_share)
    rows = [(pairs[i][0], pairs[i][1], "", f"{scores[i]:.4f}", why, found[i]) for i, why in picked]
    write_mined(out, rows)
    reasons = {r: sum(1 for _, w in picked if w == r) for r in ("check", "uncertain", "likely same", "likely different")}
    return {"questions": len(texts), "candidates": len(pairs), "selected": len(rows), "why": reasons,
            "clusters": int(len(set(groups.tolist()))), "model": matcher.name, "encoder": bi.name,
            "threshold": threshold, "stored_threshold": matcher.threshold,
            "calibrated_on": None if known_pairs is None else {"file": str(calibrate_on), "pairs": len(known_pairs)},
            "out": str(out), "seconds": round(time.time() - started, 2)}


def read_known(labelled: str | Path) -> list[Any]:
    """The labelled pairs a threshold is refitted on, checked before any model loads: at least 20, both labels."""
    from ..readers import read_pairs

    known = read_pairs(labelled, task="classification", warn=False).pairs
    labels = [int(p.label or 0) for p in known]
    if len(known) < 20 or len(set(labels)) < 2:
        raise InputError(str(labelled), None, f"refitting the threshold needs at least 20 labelled pairs with both "
                                              f"labels, found {len(known)} ({sum(labels)} same)")
    return known


def refit_threshold(matcher: Any, known: Sequence[Any]) -> tuple[float, set[frozenset[str]]]:
    """The matcher's threshold refitted on labelled pairs of the new domain (where a logistic fit of the labels
    on its scores crosses 0.5, as ``adapt`` calibrates), and those pairs (normalised, either order)."""
    from ..metrics import platt_threshold

    scores = matcher.predict([(p.text_a, p.text_b) for p in known])
    threshold = platt_threshold(scores, [int(p.label or 0) for p in known])
    return threshold, {frozenset((normalise(p.text_a), normalise(p.text_b))) for p in known}


def write_mined(out: str | Path, rows: Sequence[Sequence[str]]) -> None:
    """The mined pairs as a TSV with a header, atomically."""
    lines = ["\t".join(MINED_HEADER)] + ["\t".join(str(c).replace("\t", " ") for c in row) for row in rows]
    atomic_write_text(out, "\n".join(lines) + "\n")
