"""Silver pairs for the bi-encoder, scored by the cross-encoder (issue 17): the Augmented SBERT recipe.

A bi-encoder learns from the pairs it is shown; the labelled files show it few of the near neighbours it must
tell apart at search time. For each 0/1 pair file this script samples questions, finds each one's nearest
neighbours among the file's other questions with the bi-encoder (the student), has the cross-encoder (the
teacher, which sees both texts at once and ranks pairs better) score every (question, neighbour) pair, and writes
them as a 0-5 score file that ``simpair train --kind bi-encoder`` trains on with CoSENT (score = 5 x the
teacher's probability). Pairs the file labels are left out (they are trained on as labelled), and so is every
pair with a text of an ``--exclude`` file (dev sets): nothing of a dev set reaches training, not even its texts.

    python scripts/silver_pairs.py --teacher matcher --student encoder --out runs/silver/silver.tsv \\
        --exclude ../shared/data/lcqmc/dev.tsv ... ../shared/data/lcqmc/train.tsv ../shared/data/bq/train.tsv ...
"""
from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from augment_pairs import read_labelled, write

from simpair import read_pairs
from simpair.errors import SimpairError


def texts_of(path: Path) -> set[str]:
    """Every text of a pair file, whatever its labels (0/1 or 0-5 scores)."""
    return {t for p in read_pairs(path, task="regression", warn=False).pairs for t in (p.text_a, p.text_b)}


def sample_texts(rows: Sequence[tuple[str, str, int]], banned: set[str], pool: int,
                 rng: random.Random) -> list[str]:
    """Up to ``pool`` distinct texts of a file, none of them a dev text, in a seeded random order."""
    texts = sorted({t for a, b, _ in rows for t in (a, b)} - banned)
    rng.shuffle(texts)
    return texts[:pool]


def neighbours(emb: np.ndarray, queries: int, ranks: Sequence[int], chunk: int = 1024) -> list[tuple[int, int]]:
    """(query index, neighbour index) for the first ``queries`` rows of ``emb`` (L2-normalised) and each wanted
    rank among the others by cosine (1 = the nearest)."""
    out = []
    deepest = min(max(ranks) + 1, len(emb))  # the wanted ranks, and the query itself among them
    for start in range(0, min(queries, len(emb)), chunk):
        sims = emb[start:min(start + chunk, queries)] @ emb.T
        top = np.argpartition(-sims, deepest - 1, axis=1)[:, :deepest]
        for i, cand in enumerate(top):
            order = [int(j) for j in cand[np.argsort(-sims[i, cand], kind="stable")] if j != start + i]
            out += [(start + i, order[r - 1]) for r in ranks if r - 1 < len(order)]
    return out


def mine(rows: Sequence[tuple[str, str, int]], student: object, banned: set[str], args: argparse.Namespace,
         rng: random.Random) -> list[tuple[str, str]]:
    """The (question, neighbour) pairs of one file that no label covers, deduplicated in either order within the
    file. Every question of the file gets the same ranks: the nearest, and ``per_query - 1`` ranks drawn once
    for the file in 2..depth with the seeded generator."""
    texts = sample_texts(rows, banned, args.pool, rng)
    if len(texts) < 2:
        return []
    emb = student.encode(texts, batch_size=64, progress=args.progress)
    ranks = [1] + [rng.randint(2, args.depth) for _ in range(args.per_query - 1)]
    labelled = {frozenset((a, b)) for a, b, _ in rows}
    seen: set[frozenset[str]] = set()
    pairs = []
    for q, n in neighbours(emb, args.queries, sorted(set(ranks))):
        key = frozenset((texts[q], texts[n]))
        if texts[q] != texts[n] and key not in labelled and key not in seen:
            seen.add(key)
            pairs.append((texts[q], texts[n]))
    return pairs


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path, help="0/1 pair files (each one neighbour space)")
    parser.add_argument("--out", type=Path, required=True, help="the 0-5 score file to write")
    parser.add_argument("--teacher", default="matcher", help="cross-encoder that scores the pairs")
    parser.add_argument("--student", default="encoder", help="bi-encoder that finds the neighbours")
    parser.add_argument("--exclude", type=Path, action="append", default=[],
                        help="pair files (dev sets) none of whose texts may appear in the output")
    parser.add_argument("--pool", type=int, default=30000, help="texts per file to search among")
    parser.add_argument("--queries", type=int, default=6000, help="questions per file given neighbours")
    parser.add_argument("--per-query", type=int, default=2, help="neighbours per question: the nearest, then "
                        "ranks drawn at random in 2..--depth (once per file)")
    parser.add_argument("--depth", type=int, default=10)
    parser.add_argument("--seed", type=int, default=23)
    parser.add_argument("--progress", action="store_true")
    args = parser.parse_args(argv)
    try:
        return run(args)
    except (OSError, SimpairError) as exc:  # every file is read before the output is written
        print(f"error: {exc}", file=sys.stderr)
        return 2


def run(args: argparse.Namespace) -> int:
    """Read every input, mine, score, then write the one file (aside, then renamed)."""
    from simpair import BiEncoder, CrossEncoder

    rng = random.Random(args.seed)
    inputs = [(path, read_labelled(path)) for path in args.files]
    banned = {t for path in args.exclude for t in texts_of(path)}
    student = BiEncoder(args.student)
    pairs: list[tuple[str, str]] = []
    for path, rows in inputs:
        mined = mine(rows, student, banned, args, rng)
        print(f"{path}: {len(rows)} rows -> {len(mined)} neighbour pairs", file=sys.stderr)
        pairs += mined
    probs = CrossEncoder(args.teacher).predict(pairs, batch_size=64, progress=args.progress)
    rows = [(a, b, f"{5 * float(p):.3f}") for (a, b), p in zip(pairs, probs)]
    rng.shuffle(rows)
    write(args.out, rows, column="score")
    hist = np.histogram(probs, bins=5, range=(0, 1))[0]
    print(f"{args.out}: {len(rows)} pairs; teacher probability by fifths {hist.tolist()}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
