"""Mixing several training files of different sizes: temperature sampling, and thresholds for several dev files.

With files of 239k (LCQMC), 100k (BQ) and 1.5k (PAWS-X) pairs, plain concatenation gives the small
domains almost no weight. Temperature sampling (as in multilingual pre-training: XLM-R, mT5) draws
file *i* with probability proportional to ``n_i ** (1 / T)``: ``T = 1`` is concatenation, ``T = 2``
the square root, large ``T`` nearly uniform. A file asked for more rows than it has is repeated (whole
copies, then a random remainder); one asked for fewer gives a random subset. Per-file ``weights``
multiply those shares, for a domain that matters more than its size says (e.g. the bank set in a pass meant
for it). Everything is seeded.
"""
from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")


def temperature_counts(sizes: Sequence[int], temperature: float, total: int | None = None,
                       weights: Sequence[float] | None = None) -> list[int]:
    """Rows to draw from each file: ``total`` (default: all rows) split by ``w_i * n_i ** (1/T)``."""
    if temperature <= 0:
        raise ValueError(f"sample_temperature must be > 0, got {temperature}")
    if weights is not None and (len(weights) != len(sizes) or min(weights) <= 0):
        raise ValueError(f"sample_weights: one weight > 0 per train file ({len(sizes)}), got {list(weights)}")
    total = sum(sizes) if total is None else total
    share = np.array([n ** (1.0 / temperature) if n else 0.0 for n in sizes], dtype=float)
    share *= np.asarray(weights, dtype=float) if weights is not None else 1.0
    share = share / share.sum() * total
    counts = np.floor(share).astype(int)
    # largest remainders get the rows that rounding down left over, so the counts add up to total
    for i in np.argsort(-(share - counts))[: total - int(counts.sum())]:
        counts[i] += 1
    return [int(c) for c in counts]


def draw(rows: Sequence[T], count: int, rng: random.Random) -> list[T]:
    """``count`` rows of ``rows``: whole shuffled copies while ``count`` exceeds it, then a random subset."""
    out: list[T] = []
    while count >= len(rows) > 0:
        copy = list(rows)
        rng.shuffle(copy)
        out += copy
        count -= len(rows)
    out += rng.sample(list(rows), count) if count else []
    return out


def mix_per_file(files: Sequence[Sequence[T]], temperature: float | None, total: int | None,
                 seed: int | random.Random, weights: Sequence[float] | None = None
                 ) -> tuple[list[list[T]], list[int]]:
    """The rows drawn from each file by ``temperature``, ``total`` and ``weights`` (all None: every file as it
    is), and how many each gave."""
    sizes = [len(f) for f in files]
    if temperature is None and total is None and weights is None:
        return [list(f) for f in files], sizes
    counts = temperature_counts(sizes, temperature or 1.0, total, weights)
    rng = seed if isinstance(seed, random.Random) else random.Random(seed)
    return [draw(rows, count, rng) for rows, count in zip(files, counts)], counts


def mix(files: Sequence[Sequence[T]], temperature: float | None, total: int | None, seed: int,
        weights: Sequence[float] | None = None) -> tuple[list[T], list[int]]:
    """The training rows of several files mixed by ``temperature`` and ``weights`` (all None: concatenated as
    they are) and shuffled together, and how many rows each file gave."""
    if temperature is None and total is None and weights is None:
        return [r for f in files for r in f], [len(f) for f in files]
    rng = random.Random(seed)
    per_file, counts = mix_per_file(files, temperature, total, rng, weights)
    out = [r for rows in per_file for r in rows]
    rng.shuffle(out)
    return out, counts


def mean_accuracy_threshold(parts: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[float, float]:
    """The one threshold that maximises the mean of the per-file accuracies (each dev file counts the same,
    whatever its size), and that mean. ``parts`` holds (scores, 0/1 labels) per file."""
    cands = np.unique(np.concatenate([s for s, _ in parts] + [np.array([0.5])]))
    mids = np.concatenate([[cands[0]], (cands[1:] + cands[:-1]) / 2]) if len(cands) > 1 else cands
    accs = np.zeros(len(mids))
    for scores, labels in parts:
        # positives below the cut are wrong, negatives at or above it are wrong
        pos = np.sort(scores[labels == 1])
        neg = np.sort(scores[labels == 0])
        fn = np.searchsorted(pos, mids, side="left")
        tn = np.searchsorted(neg, mids, side="left")
        accs += ((len(pos) - fn) + tn) / max(len(scores), 1)
    accs /= len(parts)
    best = accs.max()
    ties = np.flatnonzero(np.isclose(accs, best))
    pick = ties[np.argmin(np.abs(mids[ties] - 0.5))]
    return float(mids[pick]), float(accs[pick])


def describe(paths: Sequence[str], sizes: Sequence[int], counts: Sequence[int],
             weights: Sequence[float] | None = None) -> list[dict[str, Any]]:
    """Per file: its rows, its weight when one was given, and how many were drawn, for simpair.json."""
    return [{"path": p, "rows": n, **({"weight": weights[i]} if weights else {}), "drawn": c}
            for i, (p, n, c) in enumerate(zip(paths, sizes, counts))]
