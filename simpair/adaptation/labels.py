"""A labelling session over a pairs file (typically ``simpair mine``'s output): one answer at a time, resumable,
every answer on disk at once.

The truth is the progress file ``OUT.progress.json``: the source file's hash and the history of answers
(``[pair index, "same" | "different" | "skip"]``, undo pops the last). After each answer it is written
atomically, then ``OUT`` is rewritten from it, also atomically: a standard ``text_a text_b label`` TSV of the
answered pairs in source order (same = 1, different = 0; skipped pairs are left out), which ``simpair adapt``,
``train``, ``eval`` and ``calibrate`` read; a ``why`` column of the source (mine's reasons) is carried over, so
``adapt`` finds the random check pairs. A crash between the two writes loses nothing: the next session
rewrites ``OUT`` from the history. The terminal (``simpair label``) and the page of ``simpair serve --label``
both drive this class, so they write the same files.
"""
from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..utils import atomic_write_text, file_sha256

ANSWERS = {"same": 1, "different": 0, "skip": None}


def default_out(source: str | Path) -> Path:
    """``mined.tsv`` → ``mined.labelled.tsv`` beside it."""
    p = Path(source)
    return p.with_name(f"{p.stem}.labelled.tsv")


class LabelSession:
    """Answers for the pairs of ``source``, kept in ``out`` (default :func:`default_out`) and its progress file."""

    def __init__(self, source: str | Path, out: str | Path | None = None) -> None:
        from ..readers import read_pairs
        from ..readers.pairs import read_column

        self.source = Path(source)
        self.out = Path(out) if out is not None else default_out(source)
        if self.out.resolve() == self.source.resolve():
            raise InputError(str(self.out), None, "the labels must go to another file than the pairs they label")
        self.progress_file = self.out.with_name(self.out.name + ".progress.json")
        self.pairs = read_pairs(self.source, task="classification", require_labels=False, warn=False).pairs
        self.why = read_column(self.source, "why")
        self.sha256 = file_sha256(self.source)
        if self.out.exists() and not self.progress_file.is_file():
            raise InputError(str(self.out), None, "exists and holds no labelling session (no "
                                                  f"{self.progress_file.name} beside it); choose another --out")
        self.history: list[tuple[int, str]] = self._load()
        self.lock = threading.Lock()
        self._write_out()

    def _load(self) -> list[tuple[int, str]]:
        if not self.progress_file.is_file():
            return []
        try:
            state = json.loads(self.progress_file.read_text(encoding="utf-8"))
            history = [(int(i), str(a)) for i, a in state["history"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(str(self.progress_file), None, f"not a simpair label progress file ({exc})") from exc
        if state.get("source_sha256") != self.sha256:
            raise InputError(str(self.source), None, f"changed since labelling started (its answers are in "
                                                     f"{self.progress_file}); label a copy of the old file, or "
                                                     f"move the progress file away to start over")
        if any(a not in ANSWERS or not 0 <= i < len(self.pairs) for i, a in history):
            raise InputError(str(self.progress_file), None, "holds an answer that does not fit the pairs file")
        return history

    def answers(self) -> dict[int, str]:
        """The current answer of each answered pair (a later answer replaces an earlier one)."""
        return dict(self.history)

    def next_index(self) -> int | None:
        """The first pair not answered yet, in file order; None when every pair has an answer."""
        done = self.answers()
        return next((i for i in range(len(self.pairs)) if i not in done), None)

    def item(self, index: int | None) -> dict[str, Any] | None:
        if index is None:
            return None
        p = self.pairs[index]
        return {"index": index, "text_a": p.text_a, "text_b": p.text_b, "line": p.line}

    def progress(self) -> dict[str, Any]:
        values = list(self.answers().values())
        counts = {a: values.count(a) for a in ANSWERS}
        return {"total": len(self.pairs), "answered": len(values), "left": len(self.pairs) - len(values),
                **counts, "out": str(self.out)}

    def state(self) -> dict[str, Any]:
        """What a client shows: the next pair (None when done) and the progress."""
        return {"item": self.item(self.next_index()), "progress": self.progress(),
                "can_undo": bool(self.history)}

    def answer(self, index: int, answer: str) -> dict[str, Any]:
        """Record ``answer`` for pair ``index`` and save; returns :meth:`state`."""
        if answer not in ANSWERS:
            raise ValueError(f"answer {answer!r}: expected one of {', '.join(ANSWERS)}")
        if not 0 <= index < len(self.pairs):
            raise ValueError(f"pair {index}: expected 0 to {len(self.pairs) - 1}")
        with self.lock:
            self.history.append((index, answer))
            self._save()
            return self.state()

    def undo(self) -> dict[str, Any]:
        """Take back the last answer (that pair is asked again next) and save; returns :meth:`state`."""
        with self.lock:
            if self.history:
                self.history.pop()
                self._save()
            return self.state()

    def _save(self) -> None:
        state = {"source": str(self.source), "source_sha256": self.sha256, "history": self.history}
        atomic_write_text(self.progress_file, json.dumps(state, ensure_ascii=False))
        self._write_out()

    def _write_out(self) -> None:
        from ..readers.pairs import Pair, write_pairs

        done = self.answers()
        kept = [(p, ANSWERS[done[i]]) for i, p in enumerate(self.pairs) if ANSWERS.get(done.get(i, "skip")) is not None]
        why = None if self.why is None else [self.why.get(p.line, "") for p, _ in kept]
        write_pairs(self.out, [Pair(p.text_a, p.text_b, float(label)) for p, label in kept], why)
