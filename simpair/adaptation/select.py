"""Which candidate pairs to label: the most a label can teach.

A label teaches little where the matcher is already sure and right, and nothing on a near-copy ("怎么开
证明" / "怎么开证明？"). It teaches most near the decision threshold (uncertainty sampling), but a
selection made only of those is narrow: it skews to one topic and to the pairs the matcher is torn about,
and leaves the threshold's far sides unlabelled, where a wrong-but-sure domain shift hides. So the selection
mixes three parts: ``uncertain_share`` of the pairs by smallest margin to the threshold (in logit space),
the rest split between likely-same and likely-different pairs drawn at random; every part is spread over
clusters of the corpus (no cluster takes more than twice its even share) and no question appears in more
than ``max_per_question`` selected pairs.

Before those, ``check_share`` of the pairs is drawn uniformly at random from the candidates ("check"):
``simpair adapt`` holds these out to set the threshold and to report before → after. Pairs picked for what
they teach are not a sample of the candidates (most sit near the old threshold), so a threshold tuned on them
is biased and a gain measured on them is inflated; a random slice estimates both for the user's own pairs.
The picks come back in a seeded shuffled order, so a user who stops labelling early still has every part in
proportion. Seeded: the same input gives the same selection.
"""
from __future__ import annotations

import difflib
import math
import random
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence

import numpy as np

NEAR_COPY_RATIO = 0.95  # difflib ratio of the normalised texts at or above which a pair is a near-copy
_PUNCT = re.compile(r"[\W_]+", re.UNICODE)


def normalise(text: str) -> str:
    """Text as compared for copies: NFKC, lower case, no punctuation or spaces."""
    return _PUNCT.sub("", unicodedata.normalize("NFKC", text).lower())


def near_copy(a: str, b: str) -> bool:
    """True for two texts that differ only in punctuation, case, spacing or a character in twenty."""
    return _near_normalised(normalise(a), normalise(b))


def _near_normalised(na: str, nb: str) -> bool:
    return na == nb or difflib.SequenceMatcher(None, na, nb, autojunk=False).ratio() >= NEAR_COPY_RATIO


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def select_pairs(pairs: Sequence[tuple[str, str]], scores: Sequence[float], threshold: float, n: int,
                 groups: Sequence[int] | None = None, seed: int = 0, uncertain_share: float = 0.6,
                 max_per_question: int = 2, check_share: float = 0.2) -> list[tuple[int, str]]:
    """Indices of up to ``n`` pairs to label, each with why it was picked ("check", "uncertain", "likely same",
    "likely different"), in a seeded shuffled order. ``groups`` (a cluster id per pair) spreads the picks over
    the corpus."""
    for name, share in (("uncertain_share", uncertain_share), ("check_share", check_share)):
        if not 0 <= share <= 1:
            raise ValueError(f"{name} must be in [0, 1], got {share}")
    scores = np.asarray(scores, dtype=float)
    groups = np.zeros(len(pairs), dtype=int) if groups is None else np.asarray(groups)
    keys = [(normalise(a), normalise(b)) for a, b in pairs]  # each text normalised once
    usable = _usable(keys)
    margin = np.abs(_logit(scores) - _logit(np.array([threshold]))[0])
    rng = random.Random(seed)
    n = min(n, len(usable))
    picker = _Picker(keys, groups, n, max_per_question)
    picker.add(rng.sample(usable, round(n * check_share)), "check")  # uniform: no spread rules
    rest = n - len(picker.picked)
    n_uncertain = round(rest * uncertain_share)
    n_same = (rest - n_uncertain) // 2
    parts = [("uncertain", sorted(usable, key=lambda i: (margin[i], i)), n_uncertain),
             ("likely same", _shuffled([i for i in usable if scores[i] >= threshold], rng), n_same),
             ("likely different", _shuffled([i for i in usable if scores[i] < threshold], rng), rest - n_uncertain - n_same)]
    for reason, order, want in parts:
        picker.take(order, want, reason)
    if len(picker.picked) < n:  # one side short (a lopsided pool): fill up by margin, the spread rules kept
        picker.take(parts[0][1], n - len(picker.picked), "uncertain")
    if len(picker.picked) < n:  # still short (a small pool): the spread rules give way
        picker.relax()
        picker.take(parts[0][1], n - len(picker.picked), "uncertain")
    return _shuffled(picker.picked, rng)


def _shuffled(items: list, rng: random.Random) -> list:
    rng.shuffle(items)
    return items


def _usable(keys: Sequence[tuple[str, str]]) -> list[int]:
    """Pairs (given normalised) that are not near-copies and not repeats of an earlier pair (either order)."""
    seen: set[frozenset[str]] = set()
    keep = []
    for i, (a, b) in enumerate(keys):
        key = frozenset((a, b))
        if key in seen or _near_normalised(a, b):
            continue
        seen.add(key)
        keep.append(i)
    return keep


class _Picker:
    """The picks so far and the spread rules: a cap per cluster and per (normalised) question."""

    def __init__(self, keys: Sequence[tuple[str, str]], groups: np.ndarray, n: int, max_per_question: int) -> None:
        self.keys, self.groups = keys, groups
        self.group_cap = 2 * math.ceil(n / max(len(set(groups.tolist())), 1))
        self.question_cap = max_per_question
        self.per_group: Counter = Counter()
        self.per_question: Counter = Counter()
        self.picked: list[tuple[int, str]] = []
        self.taken: set[int] = set()

    def relax(self) -> None:
        self.group_cap = self.question_cap = 1 << 30

    def add(self, items: Sequence[int], reason: str) -> None:
        """Take ``items`` as they are (no caps checked); they count towards the caps of later picks."""
        for i in items:
            a, b = self.keys[i]
            self.taken.add(i)
            self.per_group[self.groups[i]] += 1
            self.per_question[a] += 1
            self.per_question[b] += 1
            self.picked.append((i, reason))

    def take(self, order: Sequence[int], want: int, reason: str) -> None:
        """Up to ``want`` more of ``order``, in order, skipping what the caps forbid."""
        got = 0
        for i in order:
            if got >= want:
                break
            a, b = self.keys[i]
            if (i in self.taken or self.per_group[self.groups[i]] >= self.group_cap
                    or self.per_question[a] >= self.question_cap or self.per_question[b] >= self.question_cap):
                continue
            self.add([i], reason)
            got += 1
