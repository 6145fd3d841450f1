"""Which pairs mine's selection picks: a random check slice, then mostly uncertain ones, both sides of the
threshold, spread over clusters and questions, no near-copies, shuffled, seeded."""
from __future__ import annotations

import numpy as np

from simpair.adaptation.select import near_copy, normalise, select_pairs


def _pool(n: int = 200) -> tuple[list[tuple[str, str]], np.ndarray]:
    pairs = [(f"问题{i}怎么办", f"请问问题{i}该如何处理{i % 7}") for i in range(n)]
    scores = np.linspace(0.01, 0.99, n)
    return pairs, scores


def test_near_copies_differ_only_in_punctuation_case_or_spacing() -> None:
    assert normalise("How do I reset it? ") == "howdoiresetit"
    assert near_copy("怎么开初婚未育证明", "怎么开初婚未育证明？")
    assert near_copy("How do I reset my password", "how do i reset my password!")
    assert not near_copy("明天会下雨吗", "昨天下雨了吗")


def test_uncertain_pairs_dominate_and_both_sides_are_covered() -> None:
    pairs, scores = _pool()
    picked = select_pairs(pairs, scores, threshold=0.5, n=40, seed=1, check_share=0.0)
    assert len(picked) == 40 and len({i for i, _ in picked}) == 40
    reasons = [why for _, why in picked]
    assert reasons.count("uncertain") == 24  # 60 %
    uncertain = [i for i, why in picked if why == "uncertain"]
    margins = np.abs(scores[uncertain] - 0.5)
    assert margins.max() < np.sort(np.abs(scores - 0.5))[40]  # the closest to the threshold, not any
    same = [i for i, why in picked if why == "likely same"]
    different = [i for i, why in picked if why == "likely different"]
    assert len(same) == len(different) == 8
    assert all(scores[i] >= 0.5 for i in same) and all(scores[i] < 0.5 for i in different)


def test_a_random_check_slice_comes_first_and_the_order_is_mixed() -> None:
    pairs, scores = _pool(1000)
    checks = []
    for seed in range(20):
        picked = select_pairs(pairs, scores, 0.5, n=50, seed=seed)
        assert [why for _, why in picked].count("check") == 10  # 20 %
        checks += [scores[i] for i, why in picked if why == "check"]
        first = {why for _, why in picked[:15]}
        assert len(first) >= 3  # any prefix holds several parts, not only the uncertain band
    # drawn uniformly from the candidates, not from the band near the threshold: scores spread over [0, 1]
    assert abs(np.mean(checks) - 0.5) < 0.05 and np.mean(np.abs(np.array(checks) - 0.5)) > 0.2


def test_near_copies_and_repeats_are_never_picked() -> None:
    pairs = [("怎么开证明", "怎么开证明？"), ("a b", "b a"), ("问题一", "问题二"), ("问题二", "问题一"), ("x", "y")]
    picked = select_pairs(pairs, [0.5, 0.5, 0.5, 0.5, 0.5], 0.5, n=5)
    chosen = {i for i, _ in picked}
    assert 0 not in chosen and not {2, 3} <= chosen and len(chosen) == 3


def test_no_cluster_takes_more_than_twice_its_share_while_others_have_pairs() -> None:
    pairs, scores = _pool()
    groups = np.array([0] * 150 + [1] * 25 + [2] * 25)  # one cluster holds most of the uncertain band
    scores = np.where(groups == 0, 0.5, scores)
    picked = select_pairs(pairs, scores, 0.5, n=30, groups=groups, seed=0)
    counts = np.bincount(groups[[i for i, _ in picked]], minlength=3)
    assert counts[0] <= 2 * 10 and counts[1] > 0 and counts[2] > 0


def test_a_question_is_in_at_most_two_pairs_unless_the_pool_runs_out() -> None:
    pairs = [("同一个问题", f"别的问题{i}") for i in range(20)] + [(f"甲{i}", f"乙{i}") for i in range(20)]
    picked = select_pairs(pairs, np.full(40, 0.5), 0.5, n=10)
    assert sum(1 for i, _ in picked if i < 20) <= 2
    everything = select_pairs(pairs, np.full(40, 0.5), 0.5, n=40)  # asked for all: the rule gives way
    assert len(everything) == 40


def test_seeded() -> None:
    pairs, scores = _pool()
    assert select_pairs(pairs, scores, 0.5, 30, seed=3) == select_pairs(pairs, scores, 0.5, 30, seed=3)
    assert select_pairs(pairs, scores, 0.5, 30, seed=3) != select_pairs(pairs, scores, 0.5, 30, seed=4)
