"""scripts/augment_pairs.py: the derived pairs of the matcher passes (transitive, contrast, STS as 0/1, the pairs
word overlap alone gets wrong); scripts/silver_pairs.py: neighbour pairs scored by a cross-encoder for the
bi-encoder."""
from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

import augment_pairs as aug
import numpy as np
import silver_pairs as silver
from conftest import DATA, train_tiny_pair_model

from simpair import read_pairs
from simpair.errors import InputError


def test_transitive_links_a_group_and_carries_negatives() -> None:
    rows = [("a", "b", 1), ("b", "c", 1), ("c", "x", 0), ("y", "z", 1)]
    out = aug.transitive(rows, per_group=5, rng=random.Random(0))
    positives = {frozenset(r[:2]) for r in out if r[2] == 1}
    negatives = {frozenset(r[:2]) for r in out if r[2] == 0}
    assert positives == {frozenset(("a", "c"))}  # the one unlinked pair of {a, b, c}; {y, z} has none
    assert len(negatives) == 1 and negatives <= {frozenset(("a", "x")), frozenset(("b", "x"))}
    assert not ({frozenset(r[:2]) for r in rows} & (positives | negatives))  # nothing labelled is repeated


def test_transitive_skips_a_negative_inside_one_group() -> None:
    rows = [("a", "b", 1), ("b", "c", 1), ("a", "c", 0)]  # labels that disagree: no derived negative
    assert all(r[2] == 1 for r in aug.transitive(rows, per_group=5, rng=random.Random(0)))


def test_contrast_swaps_a_shared_word_in_the_second_side() -> None:
    rows = [("怎么提高信用卡额度", "信用卡额度如何提高", 1), ("你好", "您好", 1), ("今天天气", "明天天气", 0)]
    out = aug.contrast(rows, aug.CONTRASTS_ZH, random.Random(0))
    assert out == [("怎么提高信用卡额度", "信用卡额度如何降低", 0), ("信用卡额度如何提高", "信用卡额度如何降低", 0)]


def test_overlap_counts_characters_and_english_words() -> None:
    assert aug.overlap("信用卡提额", "信用卡额度") == pytest.approx(4 / 6)
    assert aug.overlap("Buy a car?", "buy the CAR") == pytest.approx(2 / 4)
    assert aug.overlap("??", "!!") == 0.0


def test_against_overlap_keeps_the_pairs_the_overlap_cut_gets_wrong() -> None:
    rows = [("怎么提额", "怎么提额度", 1), ("余额宝转入", "转入余额宝", 1), ("手机丢了", "你好呀", 0), ("早", "晚", 0),
            ("借钱", "贷款", 1),        # a paraphrase that shares nothing
            ("我欠他钱", "他欠我钱", 0)]  # a non-paraphrase that shares every character
    # the best cut is overlap >= 0.8 (2 wrong; every other cut 3 or more): these are its two errors
    assert aug.against_overlap(rows) == [("借钱", "贷款", 1), ("我欠他钱", "他欠我钱", 0)]
    assert aug.against_overlap([r for r in rows if r[0] not in ("借钱", "我欠他钱")]) == []


def test_contrast_matches_english_whole_words_only() -> None:
    rows = [("Can I buy it now?", "Is it possible to buy it now?", 1), ("A bus stop", "A busy stop", 1)]
    out = aug.contrast(rows, [("buy", "sell"), ("bus", "car")], random.Random(0))
    assert out == [("Can I buy it now?", "Is it possible to sell it now?", 0),
                   ("Is it possible to buy it now?", "Is it possible to sell it now?", 0)]


def test_sts_scores_become_labels_and_the_middle_is_dropped(tmp_path: Path) -> None:
    sts = tmp_path / "sts.tsv"
    sts.write_text("sentence1\tsentence2\tscore\na\tb\t5.0\nc\td\t0.0\ne\tf\t2.5\n", encoding="utf-8")
    assert aug.read_sts(sts) == [("a", "b", 1), ("c", "d", 0)]


def test_main_writes_files_and_leaves_out_excluded_pairs(tmp_path: Path) -> None:
    train = tmp_path / "train.tsv"
    train.write_text("text_a\ttext_b\tlabel\na\tb\t1\nb\tc\t1\nc\td\t1\n", encoding="utf-8")
    dev = tmp_path / "dev.tsv"
    dev.write_text("text_a\ttext_b\tlabel\nd\ta\t1\n", encoding="utf-8")
    assert aug.main([str(train), "--out", str(tmp_path / "aug"), "--exclude", str(dev), "--per-group", "9"]) == 0
    lines = (tmp_path / "aug" / "transitive.tsv").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "text_a\ttext_b\tlabel"
    assert {frozenset(line.split("\t")[:2]) for line in lines[1:]} == {frozenset("ac"), frozenset("bd")}
    assert not list((tmp_path / "aug").glob("*.tmp"))


def test_a_bad_label_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tsv"
    bad.write_text("text_a\ttext_b\tlabel\na\tb\tyes\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"bad\.tsv:2: .*expected 0 or 1"):
        aug.read_labelled(bad)
    assert aug.main([str(bad), "--out", str(tmp_path / "aug")]) == 2
    assert not (tmp_path / "aug").exists()


def test_neighbours_are_found_by_rank_and_never_the_query_itself() -> None:
    angles = np.array([0.0, 0.1, 0.3, 0.6, 1.0])  # unit vectors: cosine order follows the angle gaps
    emb = np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32)
    assert silver.neighbours(emb, queries=2, ranks=[1, 2], chunk=1) == [(0, 1), (0, 2), (1, 0), (1, 2)]
    assert silver.neighbours(emb, queries=5, ranks=[4]) == [(0, 4), (1, 4), (2, 4), (3, 0), (4, 0)]


def test_main_writes_teacher_scores_without_dev_texts_or_labelled_pairs(tmp_path: Path, tiny_bert: Path) -> None:
    teacher = train_tiny_pair_model(tiny_bert, tmp_path / "teacher")
    out = tmp_path / "silver" / "silver.tsv"
    args = [str(DATA / "train.tsv"), "--out", str(out), "--teacher", str(teacher), "--student", str(tiny_bert),
            "--exclude", str(DATA / "dev.tsv"), "--queries", "40", "--per-query", "2", "--depth", "5"]
    assert silver.main(args) == 0
    data = read_pairs(out, warn=False)
    assert data.task == "regression" and 40 <= len(data.pairs) <= 80  # score file; 2 neighbours a query, deduplicated
    assert all(0.0 <= p.label <= 5.0 for p in data.pairs) and len({p.label for p in data.pairs}) > 1
    dev_texts = silver.texts_of(DATA / "dev.tsv")
    labelled = {frozenset((p.text_a, p.text_b)) for p in read_pairs(DATA / "train.tsv", warn=False).pairs}
    for p in data.pairs:
        assert p.text_a != p.text_b and not {p.text_a, p.text_b} & dev_texts
        assert frozenset((p.text_a, p.text_b)) not in labelled
    assert not list(out.parent.glob("*.tmp"))


def test_silver_bad_input_names_the_file_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "bad.tsv"
    bad.write_text("text_a\ttext_b\tlabel\na\tb\tyes\n", encoding="utf-8")
    assert silver.main([str(bad), "--out", str(tmp_path / "s" / "s.tsv")]) == 2
    assert f"{bad}:2" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()
