"""Readers for single-text classification: both column orders, CSV, JSONL, headers, bad input."""
from __future__ import annotations

from pathlib import Path

import pytest
from conftest import DATA, SHARED, needs_shared, write

from simpair.errors import InputError
from simpair.readers import read_texts


def test_label_first_and_text_first_with_headers(tmp_path: Path) -> None:
    a = read_texts(write(tmp_path / "a.tsv", "label\ttext_a\n1\t很好\n0\t很差\n"))
    b = read_texts(write(tmp_path / "b.tsv", "sentence\tlabel\ngood film \t1\nbad film \t0\n"))
    assert a.texts == ["很好", "很差"] and a.labels == ["1", "0"]
    assert b.texts == ["good film", "bad film"] and b.labels == ["1", "0"]
    assert a.stats["classes"] == 2 and a.stats["label_1"] == 1


def test_headerless_columns_are_guessed_from_the_integers(tmp_path: Path) -> None:
    a = read_texts(write(tmp_path / "a.tsv", "0\tthe worst\n1\tthe best\n"))
    b = read_texts(write(tmp_path / "b.tsv", "the worst\t0\nthe best\t1\n"))
    c = read_texts(write(tmp_path / "c.tsv", "the worst\tneg\nawful\tneg\nthe best\tpos\n"))
    assert a.texts == b.texts == ["the worst", "the best"] and a.labels == b.labels == ["0", "1"]
    assert c.labels == ["neg", "neg", "pos"] and c.texts[0] == "the worst"


def test_csv_jsonl_and_multiclass_names(tmp_path: Path) -> None:
    csv = read_texts(write(tmp_path / "r.csv", '\ufefftext,stars\n"great, really",5\nok,3\nbad,1\n'))
    assert csv.texts[0] == "great, really" and csv.label_names() == ["1", "3", "5"]
    assert csv.encode(["1", "3", "5"]) == [2, 1, 0]
    js = read_texts(write(tmp_path / "r.jsonl", '{"text": "good", "label": "pos"}\n{"review": "bad", "label": "neg"}\n'))
    assert js.labels == ["pos", "neg"] and js.label_names() == ["neg", "pos"]


def test_crlf_and_bom_are_accepted(tmp_path: Path) -> None:
    d = read_texts(write(tmp_path / "w.tsv", b"\xef\xbb\xbflabel\ttext\r\n1\tfine\r\n0\tnot fine\r\n"))
    assert d.texts == ["fine", "not fine"]


@pytest.mark.parametrize(
    ("name", "content", "line", "expected"),
    [
        ("cols.tsv", "label\ttext\n1\tok\n0\tbad\textra\n", 3, "expected 2 tab-separated columns"),
        ("empty_text.tsv", "label\ttext\n1\t  \n", 2, "empty text"),
        ("no_label.tsv", "label\ttext\n\tgood\n", 2, "missing label"),
        ("bad.jsonl", '{"text": "a", "label": 1}\nnot json\n', 2, "not valid JSON"),
        ("float.jsonl", '{"text": "a", "label": 0.5}\n', 1, "expected an integer class"),
        ("nokey.jsonl", '{"body": "a", "label": 1}\n', 1, "missing text key"),
        ("header.tsv", "foo\tbar\tbaz\nx\ty\tz\n", 1, "expected 2 tab-separated columns"),
    ],
)
def test_bad_rows_name_file_and_line(tmp_path: Path, name: str, content: str, line: int, expected: str) -> None:
    path = write(tmp_path / name, content)
    with pytest.raises(InputError) as err:
        read_texts(path)
    assert err.value.line == line and expected in str(err.value) and str(path) in str(err.value)


def test_unknown_dev_label_names_its_line(tmp_path: Path) -> None:
    dev = read_texts(write(tmp_path / "dev.tsv", "label\ttext\n0\ta\n2\tb\n"))
    with pytest.raises(InputError) as err:
        dev.encode(["0", "1"])
    assert err.value.line == 3 and "training labels" in str(err.value)


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        read_texts(tmp_path / "nope.tsv")
    with pytest.raises(InputError, match="empty file"):
        read_texts(write(tmp_path / "empty.tsv", ""))
    with pytest.raises(InputError, match="is a directory"):
        read_texts(tmp_path)


def test_our_sample_sentiment_data() -> None:
    train = read_texts(DATA / "sentiment" / "train.tsv")
    assert train.label_names() == ["0", "1"] and train.stats["duplicates"] == 0
    assert abs(train.stats["label_0"] - train.stats["label_1"]) <= 2


@needs_shared
def test_shared_sentiment_files_read() -> None:
    chn = read_texts(SHARED / "sentiment" / "chnsenticorp" / "dev.tsv")
    sst = read_texts(SHARED / "sentiment" / "sst2" / "dev.tsv")
    assert len(chn) == 1200 and len(sst) == 872 and chn.label_names() == sst.label_names() == ["0", "1"]
