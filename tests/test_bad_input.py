"""Malformed input across every reader and command: exit code 2, one message naming the file, the line
and what was expected, no traceback, and nothing written (issue 8's bad-input suite)."""
from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import DATA, write

from simpair.cli import main

GOOD = "怎么开初婚未育证明\t初婚未育证明怎么开\t1\n今天天气怎么样\t手机怎么充电\t0\n"
LONG = "长" * 100_000


@dataclass
class Case:
    """A malformed file given to a command; ``where`` is the file:line (or file) the message must name."""

    name: str
    command: str  # train | train-classify | train-sts | eval | match | index-build | index-add | sentiment | config
    content: bytes | str | None  # None: the path does not exist; "<dir>": a directory
    line: int | None
    expected: str  # a word of the message saying what was expected
    suffix: str = ".tsv"


CASES = [
    # pair files (LCQMC-style TSV), read by train / eval / match
    Case("invalid-utf8", "train", b"\xff\xfe\x00bad\tb\t1\n", 1, "UTF-8"),
    Case("truncated-utf8", "train", GOOD.encode() + "问题\t问".encode()[:-1], 3, "UTF-8"),
    Case("too-few-columns", "train", GOOD + "只有一列\n", 3, "column"),
    Case("too-many-columns", "train", GOOD + "a\tb\t1\textra\tmore\n", 3, "column"),
    Case("empty-text", "train", GOOD + "\t初婚未育证明怎么开\t1\n", 3, "empty"),
    Case("label-2", "train", GOOD + "a\tb\t2\n", 3, "0 or 1"),
    Case("label-minus-1", "train", GOOD + "a\tb\t-1\n", 3, "0 or 1"),
    Case("label-yes", "train", GOOD + "a\tb\tyes\n", 3, "label"),
    Case("utf16-bom", "train", "\ufeffa\tb\t1\n".encode("utf-16"), 1, "UTF-8"),
    Case("bom-then-bad-row", "train", ("\ufeff" + GOOD + "a\tb\tmaybe\n").encode(), 3, "label"),
    Case("crlf-then-bad-row", "train", GOOD.replace("\n", "\r\n") + "a\tb\r\n", 3, "column"),
    Case("dev-file-bad-label", "train-dev", GOOD + "a\tb\tno\n", 3, "label"),
    Case("100k-char-line", "train", GOOD + f"{LONG}\tb\t1\n", 3, "characters"),
    Case("empty-file", "train", "", None, "empty"),
    Case("header-only", "train", "text_a\ttext_b\tlabel\n", None, "no"),
    Case("directory", "train", "<dir>", None, "directory"),
    Case("missing-file", "train", None, None, "no such file"),
    Case("jsonl-not-json", "train", '{"text_a": "a", "text_b": "b", "label": 1}\n{text_a: a}\n', 2, "JSON", ".jsonl"),
    Case("jsonl-missing-key", "train", '{"text_a": "a", "text_b": "b", "label": 1}\n{"text_a": "a", "label": 1}\n',
         2, "text_b", ".jsonl"),
    Case("jsonl-not-object", "train", '{"text_a": "a", "text_b": "b", "label": 1}\n[1, 2]\n', 2, "object", ".jsonl"),
    Case("csv-unclosed-quote", "train", 'text_a,text_b,label\na,b,1\n"c,d,1\n', 3, "quote", ".csv"),
    Case("sts-score-above-5", "train-sts", "a\tb\t4.5\nc\td\t7\n", 2, "0"),
    Case("sts-score-below-0", "train-sts", "a\tb\t4.5\nc\td\t-1\n", 2, "0"),
    Case("sts-score-not-a-number", "train-sts", "a\tb\t4.5\nc\td\tfive\n", 2, "number"),
    Case("eval-bad-label", "eval", GOOD + "a\tb\t3\n", 3, "0 or 1"),
    Case("match-file-bad-row", "match", GOOD + "only one column\n", 3, "column"),
    # single-text files (classification, sentiment)
    Case("classify-empty-text", "train-classify", "label\ttext\n1\t很好\n0\t\n", 3, "empty"),
    Case("classify-bad-jsonl", "train-classify", '{"text": "好", "label": 1}\nnot json\n', 2, "JSON", ".jsonl"),
    Case("sentiment-invalid-utf8", "sentiment", b"good\n\xc3\x28 bad\n", 2, "UTF-8", ".txt"),
    # corpora for the index
    Case("corpus-duplicate-ids", "index-build", "id\ttext\nq1\t问题一\nq2\t问题二\nq1\t问题三\n", 4, "duplicate"),
    Case("corpus-empty-text", "index-build", "id\ttext\nq1\t问题一\nq2\t\n", 3, "empty"),
    Case("corpus-empty-file", "index-build", "", None, "empty"),
    Case("corpus-jsonl-not-json", "index-build", '{"id": "q1", "text": "问题"}\n{"id": "q2"\n', 2, "JSON", ".jsonl"),
    Case("add-duplicate-of-stored-id", "index-add", "id\ttext\nq0\t又一个问题\n", 2, "duplicate"),
    # configs
    Case("config-unknown-key", "config", "model: e5-small\nlearning_rat: 1e-4\n", None, "learning_rat", ".yaml"),
    Case("config-wrong-type", "config", "model: e5-small\nbatch_size: many\n", None, "batch_size", ".yaml"),
    Case("config-bad-yaml", "config", "model: [e5-small\n", None, "YAML", ".yaml"),
    Case("config-not-a-mapping", "config", "- a\n- b\n", None, "mapping", ".yaml"),
]


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def models(tiny_bert: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A pair model, a classifier and an index built from good data, for the commands that need them."""
    from simpair.config import build_config
    from simpair.training import train

    root = tmp_path_factory.mktemp("bad-input")
    common = dict(model=str(tiny_bert), max_steps=2, batch_size=8, bf16="no", max_length=32)
    train(build_config(dict(common, train=str(DATA / "train.tsv"), out=str(root / "pair"))), progress=False)
    train(build_config(dict(common, train=str(DATA / "sentiment" / "train.tsv"), task="classify",
                            out=str(root / "clf"))), progress=False)
    corpus = write(root / "corpus.tsv", "id\ttext\nq0\t怎么开初婚未育证明\nq1\t微信密码忘了怎么办\n")
    res = CliRunner().invoke(main, ["index", "build", str(corpus), "--out", str(root / "idx"), "--model",
                                    str(tiny_bert)])
    assert res.exit_code == 0, res.output
    return {"pair": root / "pair", "clf": root / "clf", "idx": root / "idx", "tiny": tiny_bert}


def _place(case: Case, tmp_path: Path) -> Path:
    path = tmp_path / f"input{case.suffix}"
    if case.content == "<dir>":
        path.mkdir()
    elif case.content is not None:
        write(path, case.content)
    return path


def _command(case: Case, path: Path, out: Path, models: dict[str, Path]) -> list[str]:
    tiny, dev = str(models["tiny"]), str(DATA / "dev.tsv")
    commands: dict[str, Callable[[], list[str]]] = {
        "train": lambda: ["train", "--model", tiny, "--train", str(path), "--dev", dev, "--out", str(out)],
        "train-dev": lambda: ["train", "--model", tiny, "--train", str(DATA / "train.tsv"), "--dev", str(path),
                              "--out", str(out)],
        "train-sts": lambda: ["train", "--model", tiny, "--train", str(path), "--task", "regression",
                              "--out", str(out)],
        "train-classify": lambda: ["train", "--model", tiny, "--task", "classify", "--train", str(path),
                                   "--out", str(out)],
        "eval": lambda: ["eval", str(models["pair"]), str(path), "--report", str(out)],
        "match": lambda: ["match", "--model", str(models["pair"]), "--file", str(path)],
        "sentiment": lambda: ["sentiment", "--model", str(models["clf"]), "--file", str(path)],
        "index-build": lambda: ["index", "build", str(path), "--out", str(out), "--model", tiny],
        "index-add": lambda: ["index", "add", str(models["idx"]), str(path)],
        "config": lambda: ["train", "--config", str(path), "--out", str(out)],
    }
    return commands[case.command]()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_exits_2_names_the_place_and_writes_nothing(case: Case, models: dict[str, Path],
                                                              tmp_path: Path) -> None:
    from simpair.models import default_file

    path = _place(case, tmp_path)
    out = tmp_path / "out"
    marker = default_file()
    marker_before = marker.read_text() if marker.is_file() else None
    index_before = _digest(models["idx"])
    res = CliRunner().invoke(main, _command(case, path, out, models))
    message = res.output
    assert res.exit_code == 2, f"{case.name}: exit {res.exit_code}\n{message}\n{res.exception!r}"
    assert "Traceback" not in message and len(message.strip().splitlines()) <= 25, message
    where = f"{path}:{case.line}" if case.line is not None else str(path)
    assert where in message, f"{case.name}: message does not name {where}:\n{message}"
    assert case.expected.lower() in message.lower(), f"{case.name}: message lacks {case.expected!r}:\n{message}"
    assert not out.exists(), f"{case.name}: wrote {out}"
    assert (marker.read_text() if marker.is_file() else None) == marker_before
    assert _digest(models["idx"]) == index_before


def test_stray_quotes_in_tsv_are_text(tmp_path: Path) -> None:
    """TSV has no quoting: a quote is part of the text and never swallows the lines after it."""
    from simpair.readers import read_pairs

    data = read_pairs(write(tmp_path / "q.tsv", GOOD + '"a\tb\t1\n' + 'c"\td\t1\n' + '"e"\tf\t0\n'), warn=False)
    assert len(data) == 5 and data.texts_a[2:] == ['"a', 'c"', '"e"']


def test_the_suite_is_large_enough() -> None:
    assert len(CASES) >= 30


def test_real_process_exit_code_and_stderr(tmp_path: Path) -> None:
    """Outside click's test runner: the installed entry point exits 2 with one line on stderr."""
    bad = write(tmp_path / "bad.tsv", GOOD + "a\tb\tyes\n")
    proc = subprocess.run([sys.executable, "-m", "simpair", "train", "--train", str(bad), "--out",
                           str(tmp_path / "o")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: ") and f"{bad}:3" in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stdout == "" and not (tmp_path / "o").exists()


@pytest.mark.parametrize("damage", ["garbage", "truncated", "a-list"])
def test_damaged_model_and_index_files_exit_2_naming_the_file(damage: str, models: dict[str, Path],
                                                              tmp_path: Path) -> None:
    """A hand-edited or half-copied simpair.json / index manifest.json: a clear error naming the file and
    line, exit 2, no JSONDecodeError traceback (issue 39's probe)."""
    import shutil

    text = {"garbage": "not json at all", "truncated": '{"threshold": 0.5,\n  "kind": ', "a-list": "[1, 2]"}[damage]
    model, index = tmp_path / "model", tmp_path / "idx"
    shutil.copytree(models["pair"], model)
    shutil.copytree(models["idx"], index)
    (model / "simpair.json").write_text(text, encoding="utf-8")
    (index / "manifest.json").write_text(text, encoding="utf-8")
    line = 2 if damage == "truncated" else 1
    for args, name in ((["match", "--model", str(model), "a", "b"], model / "simpair.json"),
                       (["search", str(index), "问题"], index / "manifest.json")):
        res = CliRunner().invoke(main, args)
        assert res.exit_code == 2, f"{args}: exit {res.exit_code}\n{res.output}\n{res.exception!r}"
        assert f"{name}:{line}" in res.output and "Traceback" not in res.output, res.output
        assert ("JSON" in res.output) and "expected" in res.output, res.output
