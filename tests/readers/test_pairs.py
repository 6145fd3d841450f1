"""Readers: every supported format, column mapping, stats, and bad input naming file and line."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
from conftest import SHARED, needs_shared, write

from simpair.readers import Columns, DataQualityWarning, Pair, add_swapped, pair_stats, read_pairs
from simpair.errors import InputError


def test_lcqmc_tsv_with_and_without_header(tmp_path: Path) -> None:
    body = "热爱篮球的男生通常会欣赏哪类女生\t爱好篮球的男孩一般会喜欢哪种女孩\t1\n我手机丢了\t我想换个手机\t0\n"
    with_header = read_pairs(write(tmp_path / "h.tsv", "text_a\ttext_b\tlabel\n" + body))
    without = read_pairs(write(tmp_path / "n.tsv", body))
    assert with_header.pairs == [Pair(p.text_a, p.text_b, p.label, p.line + 1) for p in without.pairs]
    assert without.task == "classification" and without.labels == [1.0, 0.0]
    assert without.pairs[1].line == 2


def test_bq_csv_with_bom_and_quotes(tmp_path: Path) -> None:
    text = '\ufeffsentence1,sentence2,label\n"用微信借款, 能借多少","微信借钱额度是多少",1\n"他说""你好""",怎么还款,0\n'
    data = read_pairs(write(tmp_path / "bq.csv", text))
    assert data.fmt == "csv"
    assert data.pairs[0].text_a == "用微信借款, 能借多少"
    assert data.pairs[1].text_a == '他说"你好"'
    assert data.labels == [1.0, 0.0]


def test_jsonl_label_and_score(tmp_path: Path) -> None:
    lab = write(tmp_path / "a.jsonl", json.dumps({"text_a": "a", "text_b": "b", "label": 1}) + "\n")
    sco = write(tmp_path / "b.jsonl", json.dumps({"sentence1": "x", "sentence2": "y", "score": 3.5}) + "\n")
    assert read_pairs(lab).task == "classification"
    scored = read_pairs(sco)
    assert scored.task == "regression" and scored.labels == [3.5]


def test_sts_benchmark_format_with_extra_columns(tmp_path: Path) -> None:
    rows = [
        "main-captions\tMSRvid\t2012test\t0001\t5.000\tA plane is taking off.\tAn air plane is taking off.",
        "main-news\theadlines\t2013\t0002\t1.5\tOne sentence.\tAnother one.\textra\tcolumns",
    ]
    data = read_pairs(write(tmp_path / "sts-dev.csv", "\n".join(rows) + "\n"))
    assert data.fmt == "sts" and data.task == "regression"
    assert data.pairs[1] == Pair("One sentence.", "Another one.", 1.5, 2)


def test_column_mapping(tmp_path: Path) -> None:
    path = write(tmp_path / "m.tsv", "id\tq\tcandidate\tsame\n1\t你好\t您好\t1\n2\t早\t晚\t0\n")
    data = read_pairs(path, columns=Columns("q", "candidate", "same"))
    assert data.pairs[0] == Pair("你好", "您好", 1.0, 2)
    by_index = read_pairs(path, columns=Columns(1, 2, 3), header=True)
    assert by_index.pairs == data.pairs


def test_crlf_lines(tmp_path: Path) -> None:
    data = read_pairs(write(tmp_path / "crlf.tsv", b"a\tb\t1\r\nc\td\t0\r\n"))
    assert data.pairs[0].label == 1.0 and data.pairs[1].text_b == "d"


@pytest.mark.parametrize(
    ("content", "line", "expected"),
    [
        (b"a\tb\t1\nc\td\n", 2, "expected 3 tab-separated columns"),
        (b"a\tb\t1\nc\td\tyes\n", 2, "expected 0 or 1"),
        (b"a\tb\t2\n", 1, "expected 0 or 1"),
        (b"a\tb\tyes\nc\td\t1\n", 1, "expected 0 or 1"),
        (b"a\tb\t-1\n", 1, "expected 0 or 1"),
        (b"a\t \t1\n", 1, "empty text_b"),
        (b"\tb\t1\n", 1, "empty text_a"),
        (b"a\tb\t1\n\xff\xfe bad\tb\t0\n", 2, "invalid UTF-8"),
        (b"a\tb\t1\tx\n", 1, "expected 3 tab-separated columns"),
    ],
)
def test_bad_tsv_rows_name_file_and_line(tmp_path: Path, content: bytes, line: int, expected: str) -> None:
    path = write(tmp_path / "bad.tsv", content)
    with pytest.raises(InputError) as err:
        read_pairs(path)
    assert err.value.line == line
    assert f"{path}:{line}:" in str(err.value)
    assert expected in str(err.value)


def test_every_bad_row_is_reported(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.tsv", "a\tb\t1\nc\td\tyes\ne\tf\t1\ng\th\tno\n")
    with pytest.raises(InputError) as err:
        read_pairs(path)
    assert f"{path}:2:" in str(err.value) and f"{path}:4:" in str(err.value)


def test_sts_score_out_of_range(tmp_path: Path) -> None:
    path = write(tmp_path / "s.jsonl", '{"sentence1": "a", "sentence2": "b", "score": 7}\n')
    with pytest.raises(InputError, match="expected a number in 0-5"):
        read_pairs(path)


def test_jsonl_bad_line(tmp_path: Path) -> None:
    path = write(tmp_path / "x.jsonl", '{"text_a": "a", "text_b": "b", "label": 1}\n{not json}\n')
    with pytest.raises(InputError) as err:
        read_pairs(path)
    assert err.value.line == 2 and "not valid JSON" in str(err.value)


def test_empty_missing_and_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="empty file"):
        read_pairs(write(tmp_path / "e.tsv", ""))
    with pytest.raises(InputError, match="no such file"):
        read_pairs(tmp_path / "missing.tsv")
    with pytest.raises(InputError, match="is a directory"):
        read_pairs(tmp_path)


def test_unlabelled_pairs_for_scoring(tmp_path: Path) -> None:
    data = read_pairs(write(tmp_path / "u.tsv", "a\tb\nc\td\n"), require_labels=False)
    assert [p.label for p in data.pairs] == [None, None]


def test_stats_and_warning(tmp_path: Path) -> None:
    path = write(tmp_path / "q.tsv", "a\tb\t1\na\tb\t1\nb\ta\t0\nc\tc\t1\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = read_pairs(path)
    assert data.stats == {"pairs": 4, "duplicates": 1, "identical_sides": 1, "conflicting": 1}
    assert any(issubclass(w.category, DataQualityWarning) for w in caught)


def test_add_swapped_skips_identical_sides() -> None:
    pairs = [Pair("a", "b", 1.0, 1), Pair("c", "c", 1.0, 2)]
    out = add_swapped(pairs)
    assert out[2] == Pair("b", "a", 1.0, 1) and len(out) == 3
    assert pair_stats(out)["pairs"] == 3


def test_project_sample_data(train_file: Path, dev_file: Path) -> None:
    train, dev = read_pairs(train_file), read_pairs(dev_file)
    assert len(train) >= 300 and len(dev) >= 80
    assert set(train.labels) == {0.0, 1.0} == set(dev.labels)
    assert not {(p.text_a, p.text_b) for p in dev.pairs} & {(p.text_a, p.text_b) for p in train.pairs}


@needs_shared
def test_shared_lcqmc_and_sts_files() -> None:
    lcqmc = read_pairs(SHARED / "lcqmc/sample/dev.tsv")
    assert len(lcqmc) == 1000 and lcqmc.task == "classification"
    sts = read_pairs(SHARED / "stsb-en/sts-dev.csv", warn=False)
    assert sts.fmt == "sts" and len(sts) == 1500
    zh = read_pairs(SHARED / "stsb-zh/dev.tsv", warn=False)
    assert zh.task == "regression" and max(zh.labels) == 5.0


def test_nli_files_are_read_only_where_allowed(tmp_path: Path) -> None:
    from simpair.readers.pairs import NLI_LABELS

    path = tmp_path / "nli.tsv"
    path.write_text("text_a\ttext_b\tlabel\n前提\t假设\tentailment\n前提\t反面\tcontradiction\n前提\t别的\tneutral\n",
                    encoding="utf-8")
    data = read_pairs(path, allow_nli=True)
    assert data.task == "nli" and [p.label for p in data.pairs] == [NLI_LABELS["entailment"], 0.0, 1.0]
    with pytest.raises(InputError, match=r"nli.tsv:2: .*NLI file.*--kind bi-encoder"):
        read_pairs(path)
    bad = tmp_path / "bad.tsv"
    bad.write_text("text_a\ttext_b\tlabel\na\tb\tentailment\nc\td\tmaybe\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"bad.tsv:3: .*expected entailment, neutral or contradiction"):
        read_pairs(bad, allow_nli=True)
