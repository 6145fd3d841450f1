"""Temperature sampling over several training files, and the one threshold for several dev files."""
from __future__ import annotations

import random
from pathlib import Path

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


def test_weights_multiply_each_files_share() -> None:
    sizes = [400, 100]
    assert temperature_counts(sizes, 2.0, 300) == [200, 100]  # square roots 20 : 10
    assert temperature_counts(sizes, 2.0, 300, weights=[1, 2]) == [150, 150]  # 20 : 20
    assert temperature_counts(sizes, 1.0, weights=[1, 4]) == [250, 250]  # T = 1, every row: 400 : 400
    for bad in ([1], [1, 0], [1, -2]):
        with pytest.raises(ValueError, match="sample_weights"):
            temperature_counts(sizes, 2.0, weights=bad)
    a, b = [("a", i) for i in range(40)], [("b", i) for i in range(10)]
    rows, counts = mix([a, b], None, None, seed=3, weights=[1, 4])  # weights alone: T = 1, every row in all
    assert counts == [25, 25] and sum(r[0] == "b" for r in rows) == 25


def test_read_examples_records_the_weights(tmp_path: Path) -> None:
    from conftest import write

    from simpair.config import build_config
    from simpair.training.examples import read_examples

    one = write(tmp_path / "one.tsv", "".join(f"问题{i}\t问{i}\t{i % 2}\n" for i in range(30)))
    two = write(tmp_path / "two.tsv", "".join(f"句子{i}\t句{i}\t{i % 2}\n" for i in range(10)))
    ex = read_examples(build_config({"train": [str(one), str(two)], "sample_weights": "1,2", "sample_size": 40}))
    assert [(m["weight"], m["drawn"]) for m in ex.records["train_mix"]] == [(1.0, 24), (2.0, 16)]
    assert len(ex.train[0]) == 40
