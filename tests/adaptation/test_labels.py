"""Labelling: the session's files after each answer, undo, resume, and the terminal command under a real
pseudo-terminal."""
from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
import tty
from pathlib import Path

import pytest
from conftest import write

from simpair.adaptation.labels import LabelSession
from simpair.errors import InputError
from simpair.readers import read_pairs
from simpair.readers.pairs import read_column

MINED = ("text_a\ttext_b\tlabel\tp_same\twhy\tfound_by\n"
         "怎么开证明\t证明怎么开\t\t0.51\tuncertain\tdense\n"
         "明天会下雨吗\t昨天下雨了吗\t\t0.48\tuncertain\tlexical\n"
         "How do I reset it\tHow to reset it\t\t0.90\tlikely same\tdense\n"
         "信用卡怎么提额\t信用卡怎么注销\t\t0.10\tlikely different\tdense+lexical\n")


def _labels(path: Path) -> list[tuple[str, str, float]]:
    return [(p.text_a, p.text_b, p.label) for p in read_pairs(path, warn=False).pairs]


def test_every_answer_is_on_disk_and_undo_and_resume_work(tmp_path: Path) -> None:
    src = write(tmp_path / "mined.tsv", MINED)
    s = LabelSession(src)
    assert s.out == tmp_path / "mined.labelled.tsv" and s.state()["item"]["index"] == 0
    s.answer(0, "same")
    assert _labels(s.out) == [("怎么开证明", "证明怎么开", 1.0)]
    s.answer(1, "skip")
    s.answer(2, "different")
    s.undo()  # takes back "different" on pair 2: it is asked next
    assert s.state()["item"]["index"] == 2 and len(_labels(s.out)) == 1
    again = LabelSession(src)  # a new process: resumes from the progress file
    assert again.state()["item"]["index"] == 2
    assert again.progress() == {"total": 4, "answered": 2, "left": 2, "same": 1, "different": 0, "skip": 1,
                                "out": str(s.out)}
    again.answer(2, "same")
    again.answer(3, "different")
    assert again.state()["item"] is None
    assert [y for *_, y in _labels(s.out)] == [1.0, 1.0, 0.0]  # source order, the skipped pair left out
    assert read_column(s.out, "why") == {2: "uncertain", 3: "likely same", 4: "likely different"}  # carried over


def test_refuses_a_changed_source_and_a_foreign_out_file(tmp_path: Path) -> None:
    src = write(tmp_path / "mined.tsv", MINED)
    LabelSession(src).answer(0, "same")
    write(src, MINED.replace("怎么开证明", "怎么开一个证明"))
    with pytest.raises(InputError, match="changed since labelling started"):
        LabelSession(src)
    other = write(tmp_path / "mine.tsv", "text_a\ttext_b\tlabel\na\tb\t1\n")
    with pytest.raises(InputError, match="holds no labelling session"):
        LabelSession(src, out=other)
    with pytest.raises(ValueError, match="expected one of"):
        LabelSession(src, out=tmp_path / "x.tsv").answer(0, "maybe")


class _Screen:
    """What the program wrote to the terminal, read up to each expected text (what follows it is kept)."""

    def __init__(self, fd: int) -> None:
        self.fd, self.pending = fd, ""

    def until(self, wanted: str, timeout: float = 60.0) -> str:
        end = time.time() + timeout
        while wanted not in self.pending:
            if time.time() > end:
                raise AssertionError(f"no {wanted!r} in the terminal output:\n{self.pending}")
            ready, _, _ = select.select([self.fd], [], [], 0.5)
            if ready:
                try:
                    self.pending += os.read(self.fd, 4096).decode("utf-8", "replace")
                except OSError:
                    break
        cut = self.pending.index(wanted) + len(wanted)
        seen, self.pending = self.pending[:cut], self.pending[cut:]
        return seen


def test_terminal_labelling_one_key_per_answer_under_a_pty(tmp_path: Path) -> None:
    src = write(tmp_path / "mined.tsv", MINED)
    master, slave = pty.openpty()
    tty.setraw(slave)  # keys reach the program one by one even if they arrive before it switches to raw mode
    proc = subprocess.Popen([sys.executable, "-m", "simpair", "label", str(src)], stdin=slave, stdout=slave,
                            stderr=slave, close_fds=True, env={**os.environ, "COLUMNS": "100"})
    os.close(slave)
    screen = _Screen(master)

    def press(key: bytes, then: str) -> str:
        # click.getchar switches the terminal to raw mode with TCSAFLUSH, which drops a key typed before it:
        # press only once the prompt is up and the program has had a moment to wait on the key
        time.sleep(0.5)
        os.write(master, key)
        return screen.until(then)

    try:
        screen.until("[q]uit")
        press(b"s", "[2/4]")           # pair 0 same
        screen.until("[q]uit")
        press(b"d", "[3/4]")           # pair 1 different
        screen.until("[q]uit")
        press(b"u", "[q]uit")          # undo: pair 1 again
        press(b"k", "How do I reset it")  # pair 1 skipped
        screen.until("[q]uit")
        press(b"x", "(s, d, k, u or q)")  # not a key: asked again
        screen.until("[q]uit")
        out = press(b"q", "pairs left)")
        out += screen.until("--out DIR")
        assert proc.wait(timeout=30) == 0
    finally:
        os.close(master)
        proc.kill()
    assert "1 answers in" in out and "2 pairs left" in out
    assert _labels(tmp_path / "mined.labelled.tsv") == [("怎么开证明", "证明怎么开", 1.0)]
