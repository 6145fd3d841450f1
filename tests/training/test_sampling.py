"""Temperature sampling over several training files, and the one threshold for several dev files."""
from __future__ import annotations

import random

import numpy as np
import pytest

from simpair.training.sampling import draw, mean_accuracy_threshold, mix, temperature_counts


def test_temperature_counts_follow_the_rule_and_add_up() -> None:
    sizes = [10_000, 100]
    assert temperature_counts(sizes, 1.0) == sizes  # T = 1: as the files are
    sq = temperature_counts(sizes, 2.0)  # T = 2: square roots, 100 : 10
    assert sum(sq) == sum(sizes) and sq[1] == pytest.approx(sum(sizes) * 10 / 110, abs=1)
    flat = temperature_counts(sizes, 1000.0, total=2_000)
    assert sum(flat) == 2_000 and abs(flat[0] - flat[1]) < 20  # large T: nearly uniform
    with pytest.raises(ValueError):
        temperature_counts(sizes, 0.0)


def test_draw_repeats_whole_copies_then_a_subset() -> None:
    rows = list(range(10))
    got = draw(rows, 25, random.Random(0))
    counts = np.bincount(got, minlength=10)
    assert len(got) == 25 and counts.min() == 2 and counts.max() == 3 and (counts == 3).sum() == 5
    few = draw(rows, 4, random.Random(0))
    assert len(set(few)) == 4 and set(few) <= set(rows)


def test_mix_is_seeded_and_concatenates_without_a_rule() -> None:
    a, b = [("a", i) for i in range(300)], [("b", i) for i in range(3)]
    assert mix([a, b], None, None, 1) == (a + b, [300, 3])
    rows, counts = mix([a, b], 2.0, None, seed=1)
    assert counts == temperature_counts([300, 3], 2.0) and len(rows) == 303
    assert sum(r[0] == "b" for r in rows) == counts[1] > 3  # the small file is drawn more than once
    assert mix([a, b], 2.0, None, seed=1) == (rows, counts) != mix([a, b], 2.0, None, seed=2)


def test_mean_accuracy_threshold_weighs_files_equally() -> None:
    # a large file whose best cut is 0.3 and a small one whose best cut is 0.7
    big = (np.r_[np.full(90, 0.2), np.full(90, 0.4)], np.r_[np.zeros(90), np.ones(90)].astype(int))
    small = (np.r_[0.6, 0.65, 0.75, 0.8, 0.45, 0.5], np.array([0, 0, 1, 1, 1, 1]))
    t, mean = mean_accuracy_threshold([big, small])
    accs = [((s >= t) == y).mean() for s, y in (big, small)]
    assert mean == pytest.approx(np.mean(accs))
    # every other cut does no better on the mean of the two accuracies
    for cut in np.linspace(0, 1, 201):
        assert np.mean([((s >= cut) == y).mean() for s, y in (big, small)]) <= mean + 1e-12
