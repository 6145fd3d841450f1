"""Read sentence pairs from the formats the field ships, validating the whole file first.

Formats (``fmt="auto"`` picks by extension and content):
- ``tsv``: LCQMC style ``text_a<TAB>text_b<TAB>label``, with or without a header line;
- ``csv``: comma-separated with quoting and an optional byte-order mark (the BQ corpus:
  ``sentence1,sentence2,label``);
- ``jsonl``: one object a line, ``text_a/text_b/label`` or ``sentence1/sentence2/label|score``;
- ``sts``: the original STS-benchmark files: tab-separated, score in column 5, sentences in
  columns 6 and 7, some rows with extra trailing columns.

Labels are 0/1 (classification), float scores (regression; STS 0-5) or NLI classes (``nli``:
``entailment`` / ``neutral`` / ``contradiction``, kept as 2 / 1 / 0; the bi-encoder trains on them as
premise, entailed hypothesis, contradicted hypothesis). Every bad row is reported with its file and line;
nothing is trained on a file that did not validate.
"""
from __future__ import annotations

import math
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..utils import atomic_write_text
from .lines import ErrorList, check_data_file, decode_lines, detect_format, json_objects, rows_delimited, text_problem

TEXT_A_NAMES = ("text_a", "sentence1", "query", "question1", "q1", "text1", "sentence_a")
TEXT_B_NAMES = ("text_b", "sentence2", "title", "question2", "q2", "text2", "sentence_b")
LABEL_NAMES = ("label", "is_duplicate", "similar")
SCORE_NAMES = ("score", "similarity", "relatedness")
TASKS = ("auto", "classification", "regression")  # what evaluation and the cross-encoder take
READ_TASKS = TASKS + ("nli",)
NLI_LABELS = {"contradiction": 0.0, "neutral": 1.0, "entailment": 2.0}
FORMATS = ("auto", "tsv", "csv", "jsonl", "sts")


@dataclass(frozen=True)
class Pair:
    """One sentence pair; ``label`` is 0/1 or a float score, ``None`` for unlabelled input."""

    text_a: str
    text_b: str
    label: float | None = None
    line: int = 0


@dataclass
class PairData:
    """Pairs read from one file, with what was learnt about them."""

    path: str
    pairs: list[Pair]
    task: str  # "classification" | "regression" | "unlabelled"
    fmt: str
    stats: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.pairs)

    @property
    def texts_a(self) -> list[str]:
        return [p.text_a for p in self.pairs]

    @property
    def texts_b(self) -> list[str]:
        return [p.text_b for p in self.pairs]

    @property
    def labels(self) -> list[float]:
        return [float(p.label) for p in self.pairs if p.label is not None]


@dataclass
class Columns:
    """Where text_a, text_b and the label live: header names or 0-based indices."""

    text_a: str | int | None = None
    text_b: str | int | None = None
    label: str | int | None = None


def _find(header: Sequence[str], wanted: str | int | None, names: Sequence[str]) -> int | None:
    """Index of a column given by name, index, or one of the usual names."""
    lowered = [h.strip().lower() for h in header]
    if isinstance(wanted, int):
        return wanted
    if isinstance(wanted, str):
        if wanted.isdigit():
            return int(wanted)
        return lowered.index(wanted.lower()) if wanted.lower() in lowered else None
    for name in names:
        if name in lowered:
            return lowered.index(name)
    return None


def _parse_label(raw: str, task: str, score_range: tuple[float, float]) -> tuple[float | None, str | None]:
    """Parse a label for ``task``; return (value, None) or (None, what was expected)."""
    text = raw.strip()
    if task == "nli":
        if text.lower() in NLI_LABELS:
            return NLI_LABELS[text.lower()], None
        return None, f"label {raw!r}: expected entailment, neutral or contradiction (an NLI file)"
    if task == "classification":
        if text in ("0", "1", "0.0", "1.0"):
            return float(int(float(text))), None
        if text.lower() in NLI_LABELS:
            return None, (f"label {raw!r}: expected 0 or 1 (this is an NLI file: NLI rows train the bi-encoder, "
                          "simpair train --kind bi-encoder)")
        return None, (f"label {raw!r}: expected 0 or 1 (a header line needs the usual column names, "
                      f"or name the columns with --text-a-column/--text-b-column/--label-column)")
    try:
        value = float(text)
    except ValueError:
        return None, f"score {raw!r}: expected a number in {score_range[0]:g}-{score_range[1]:g}"
    lo, hi = score_range
    if not math.isfinite(value) or value < lo or value > hi:
        return None, f"score {raw!r}: expected a number in {lo:g}-{hi:g}"
    return value, None


def read_pairs(
    path: str | Path,
    fmt: str = "auto",
    task: str = "auto",
    columns: Columns | None = None,
    header: bool | None = None,
    score_range: tuple[float, float] = (0.0, 5.0),
    require_labels: bool = True,
    warn: bool = True,
    allow_nli: bool = False,
) -> PairData:
    """Read and validate a pair file; raise InputError listing every bad row.

    ``task="auto"``: a ``score`` column, or the STS format, means regression; with ``allow_nli``, NLI class
    names in the label column mean ``nli``; otherwise labels must be 0/1. ``header=None`` detects a header
    line (a label cell that is not a number).
    """
    _check_options(path, fmt, task)
    p = Path(path)
    data = _parse(p, decode_lines(p), fmt, task, columns, header, score_range, require_labels, allow_nli)
    data.stats = pair_stats(data.pairs)
    if warn:
        _warn_stats(data)
    return data


def _check_options(path: str | Path, fmt: str, task: str) -> None:
    if fmt not in FORMATS:
        raise InputError(str(path), None, f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if task not in READ_TASKS:
        raise InputError(str(path), None, f"unknown task {task!r}; expected one of {', '.join(READ_TASKS)}")


def _parse(p: Path, lines: list[tuple[int, str]], fmt: str, task: str, columns: Columns | None,
           header: bool | None, score_range: tuple[float, float], require_labels: bool, allow_nli: bool,
           empty_ok: bool = False) -> PairData:
    """Validate and parse decoded lines (a whole file, or one chunk of it with the header in front)."""
    fmt = detect_format(p, lines[0][1]) if fmt == "auto" else fmt
    cols = columns or Columns()
    errors = ErrorList(str(p))
    pairs: list[Pair] = []
    if fmt == "jsonl":
        task = _read_jsonl(lines, cols, task, score_range, require_labels, pairs, errors)
    else:
        task = _read_delimited(lines, fmt, cols, task, header, score_range, require_labels, pairs, errors, allow_nli)
    errors.raise_if_any()
    if not pairs and not empty_ok:
        raise InputError(str(p), None, "no pairs found; expected at least one row of text_a, text_b, label")
    return PairData(str(p), pairs, task if require_labels or any(x.label is not None for x in pairs) else "unlabelled", fmt)


CHUNK_LINES = 20_000


def iter_pairs(path: str | Path, fmt: str = "auto", task: str = "auto", columns: Columns | None = None,
               header: bool | None = None, score_range: tuple[float, float] = (0.0, 5.0),
               require_labels: bool = True, chunk_lines: int | None = None) -> Iterator[PairData]:
    """:func:`read_pairs` in chunks of ``chunk_lines`` lines (default :data:`CHUNK_LINES`): memory bounded by the
    chunk, not the file.

    The format, the header and the task are settled on the first chunk; every later chunk is parsed with
    them (its header line put in front, so named columns resolve) and keeps its own line numbers. A bad row
    raises when its chunk is reached: callers that must write nothing on bad input validate first
    (:func:`count_pairs`). A quoted CSV field may not span two chunks."""
    options = ReadOptions(fmt, task, columns, header, score_range, require_labels)
    for _, data in _read_chunks(path, options, chunk_lines):
        if data is not None:
            yield data


def _read_chunks(path: str | Path, options: ReadOptions, chunk_lines: int | None
                 ) -> Iterator[tuple[Chunk, PairData | None]]:
    """Each chunk of a pair file in one pass: where it starts (a :class:`Chunk`) and its pairs as parsed (None
    for a blank later chunk). What :func:`iter_pairs` and :func:`plan_chunks` both read through."""
    _check_options(path, options.fmt, options.task)
    p = Path(path)
    check_data_file(p)
    chunk_lines = chunk_lines or CHUNK_LINES
    with open(p, "rb") as fh:
        lines = [line for _, line in zip(range(chunk_lines), fh)]
        first, settled = _settle(p, lines, options)  # an empty file raises here
        yield Chunk(str(p), 0, 1, len(lines), True, options), first
        offset, number = sum(len(line) for line in lines), len(lines) + 1
        while lines := [line for _, line in zip(range(chunk_lines), fh)]:
            yield Chunk(str(p), offset, number, len(lines), False, settled), _parse_later(p, lines, number, settled)
            offset += sum(len(line) for line in lines)
            number += len(lines)


@dataclass(frozen=True)
class ReadOptions:
    """How a pair file is read: what :func:`iter_pairs` takes, and (once settled on the first chunk) what every
    later chunk is parsed with: the format, the task and the header line (``head``)."""

    fmt: str = "auto"
    task: str = "auto"
    columns: Columns | None = None
    header: bool | None = None
    score_range: tuple[float, float] = (0.0, 5.0)
    require_labels: bool = True
    head: bytes = b""


@dataclass(frozen=True)
class Chunk:
    """One chunk of a pair file as a worker elsewhere reads it (:func:`read_chunk`, a file every worker can
    open): where it starts, how many lines it has, and how to parse it."""

    path: str
    offset: int  # byte offset of its first line
    line: int  # number of its first line
    lines: int
    first: bool  # the file's first chunk: parsed as the file's start (format and header detected)
    options: ReadOptions


def _settle(p: Path, lines: list[bytes], options: ReadOptions) -> tuple[PairData, ReadOptions]:
    """The first chunk parsed, and the options every later chunk is parsed with."""
    o = options
    first = _parse(p, decode_lines(p, b"".join(lines)), o.fmt, o.task, o.columns, o.header, o.score_range,
                   o.require_labels, False)
    top = _first_text_line(lines)
    head = lines[top - 1] if first.fmt != "jsonl" and first.pairs[0].line > top else b""
    task = first.task if first.task != "unlabelled" else o.task
    return first, ReadOptions(first.fmt, task, o.columns, bool(head), o.score_range, o.require_labels, head)


def _parse_later(p: Path, lines: list[bytes], number: int, settled: ReadOptions) -> PairData | None:
    """A later chunk (starting at line ``number``), parsed as the first one settled; None when it is blank."""
    head = settled.head
    decoded = decode_lines(p, (head.rstrip(b"\r\n") + b"\n" if head else b"") + b"".join(lines),
                           first=number - (1 if head else 0))
    if not decoded:
        return None
    return _parse(p, decoded, settled.fmt, settled.task, settled.columns, bool(head), settled.score_range,
                  settled.require_labels, False, empty_ok=True)


def plan_chunks(path: str | Path, chunk_lines: int | None = None, **options: Any) -> list[Chunk]:
    """The chunks of a pair file, for workers that each read their own (:func:`read_chunk`), found in the same
    pass that validates the whole file (as :func:`count_pairs`: a bad row raises before anything runs).
    ``options`` as for :func:`iter_pairs`."""
    return [chunk for chunk, _ in _read_chunks(path, ReadOptions(**options), chunk_lines)]


def read_chunk(chunk: Chunk) -> PairData:
    """The pairs of one chunk of :func:`plan_chunks` (an empty list for a blank one)."""
    p = Path(chunk.path)
    with open(p, "rb") as fh:
        fh.seek(chunk.offset)
        lines = [line for _, line in zip(range(chunk.lines), fh)]
    if chunk.first:
        return _settle(p, lines, chunk.options)[0]
    later = _parse_later(p, lines, chunk.line, chunk.options)
    o = chunk.options
    return later if later is not None else PairData(str(p), [], o.task, o.fmt)


def _first_text_line(lines: list[bytes]) -> int:
    """The number of the first non-blank line of a file's first chunk."""
    return next((i for i, line in enumerate(lines, start=1) if line.strip()), 1)


def count_pairs(path: str | Path, **options: Any) -> tuple[int, str]:
    """Validate a whole pair file chunk by chunk, keeping nothing: (pairs, the task of its first chunk). Raises
    like read_pairs."""
    n, task = 0, ""
    for chunk in iter_pairs(path, **options):
        n, task = n + len(chunk), task or chunk.task
    return n, task


def score_pair_file(path: str | Path, score: Callable[[list[Pair]], np.ndarray],
                    **options: Any) -> tuple[np.ndarray, np.ndarray, str]:
    """(``score`` of every pair, labels, the task read) for a pair file, in file order: validated whole first
    (a bad row fails before any scoring), then read and scored chunk by chunk, so memory holds one chunk and
    one score and label a pair. ``options`` as for :func:`iter_pairs`."""
    count_pairs(path, **options)
    parts, labels, task = [], [], ""
    for chunk in iter_pairs(path, **options):
        task = task or chunk.task
        parts.append(np.asarray(score(chunk.pairs)))
        labels.extend(chunk.labels)
    return np.concatenate(parts), np.array(labels, dtype=float), task


def _read_delimited(lines, fmt, cols, task, header, score_range, require_labels, pairs, errors, allow_nli) -> str:
    rows = list(rows_delimited(lines, fmt, errors.path))
    if not rows:
        return task  # nothing parsed: reported as "no pairs found"
    first = rows[0][1]
    if fmt == "sts":
        ia, ib, il = (cols.text_a if cols.text_a is not None else 5,
                      cols.text_b if cols.text_b is not None else 6,
                      cols.label if cols.label is not None else 4)
        ia, ib, il = int(ia), int(ib), int(il)
        task = "regression" if task == "auto" else task
        has_header = bool(header)
        min_cols = max(ia, ib, il) + 1
    else:
        named_cols = any(isinstance(c, str) and not c.isdigit() for c in (cols.text_a, cols.text_b, cols.label))
        if header is None and named_cols:
            has_header = True  # columns given by name need a header line
        elif header is None:
            # a header is recognised by its column names only: a first data row with a bad label
            # ("yes") must be reported as an error, not silently taken for a header
            known = TEXT_A_NAMES + TEXT_B_NAMES + LABEL_NAMES + SCORE_NAMES
            has_header = any(c.strip().lower() in known for c in first)
        else:
            has_header = header
        hdr = first if has_header else []
        ia = _find(hdr, cols.text_a, TEXT_A_NAMES)
        ib = _find(hdr, cols.text_b, TEXT_B_NAMES)
        il = _find(hdr, cols.label, LABEL_NAMES)
        if il is None and has_header:
            il = _find(hdr, None, SCORE_NAMES)
            if il is not None and task == "auto":
                task = "regression"
        for name, idx, wanted in (("text_a", ia, cols.text_a), ("text_b", ib, cols.text_b), ("label", il, cols.label)):
            if idx is None and wanted is not None:
                errors.add(rows[0][0], f"no column {wanted!r} for {name} in the header {first!r}")
        if errors.items:
            return task
        ia = 0 if ia is None else ia
        ib = 1 if ib is None else ib
        il = 2 if il is None else il
        if task == "auto":
            nli = allow_nli and _nli_label(rows[1:] if has_header else rows, il)
            task = "nli" if nli else "classification"
        min_cols = max(ia, ib) + 1
        if require_labels:
            min_cols = max(min_cols, il + 1)
    body = rows[1:] if has_header else rows
    expected = "text_a, text_b, label" if require_labels else "text_a, text_b[, label]"
    sep = "comma" if fmt == "csv" else "tab"
    if fmt == "sts":
        allowed = range(min_cols, 1 << 30)  # the STS files carry extra trailing columns
        what = f"at least {min_cols} {sep}-separated columns (score in column {il + 1}, sentences in {ia + 1} and {ib + 1})"
    elif has_header:
        allowed = range(len(first), len(first) + 1)
        what = f"{len(first)} {sep}-separated columns like the header"
    else:
        allowed = range(min_cols, max(min_cols, 3) + 1) if not require_labels else range(min_cols, min_cols + 1)
        what = f"{min_cols} {sep}-separated columns ({expected})"
    for number, cells in body:
        if len(cells) == 1 and cells[0].strip() == "":
            continue  # blank line
        if len(cells) not in allowed:
            # a quoted cell that swallowed commas or line breaks: the quote was never closed
            hint = " (an unclosed quote?)" if fmt == "csv" and any("," in c or "\n" in c for c in cells) else ""
            errors.add(number, f"expected {what}, got {len(cells)}{hint}")
            continue
        _add_row(number, cells[ia], cells[ib], cells[il] if il < len(cells) else None,
                 task, score_range, require_labels, pairs, errors)
    return task


def _read_jsonl(lines, cols, task, score_range, require_labels, pairs, errors) -> str:
    for number, obj in json_objects(lines, errors, "text_a/text_b/label or sentence1/sentence2/label|score"):
        keys = list(obj)
        ka = _key(keys, cols.text_a, TEXT_A_NAMES)
        kb = _key(keys, cols.text_b, TEXT_B_NAMES)
        kl = _key(keys, cols.label, LABEL_NAMES)
        if kl is None and cols.label is None:
            kl = _key(keys, None, SCORE_NAMES)
            if kl is not None and task == "auto":
                task = "regression"
        if ka is None or kb is None:
            errors.add(number, f"missing text keys; expected text_a/text_b or sentence1/sentence2, got {keys}")
            continue
        a, b = obj[ka], obj[kb]
        if not isinstance(a, str) or not isinstance(b, str):
            errors.add(number, f"{ka!r} and {kb!r} must be strings")
            continue
        label = obj.get(kl) if kl is not None else None
        if require_labels and label is None:
            errors.add(number, "missing label; expected a 'label' (0/1) or 'score' key")
            continue
        task = "classification" if task == "auto" else task
        _add_row(number, a, b, None if label is None else str(label), task, score_range, require_labels, pairs, errors)
    return "classification" if task == "auto" else task


def _nli_label(rows: Sequence[tuple[int, list[str]]], il: int) -> bool:
    """Whether the first data row's label is an NLI class name (``task="auto"`` then reads the file as NLI)."""
    for _, cells in rows:
        if len(cells) > il and cells[il].strip():
            return cells[il].strip().lower() in NLI_LABELS
    return False


def _key(keys: list[str], wanted: str | int | None, names: Sequence[str]) -> str | None:
    if isinstance(wanted, str):
        return wanted if wanted in keys else None
    lowered = {k.lower(): k for k in keys}
    for name in names:
        if name in lowered:
            return lowered[name]
    return None


def _add_row(number, a, b, raw_label, task, score_range, require_labels, pairs, errors) -> None:
    problem = text_problem(a, "text_a") or text_problem(b, "text_b")
    if problem:
        errors.add(number, problem)
        return
    label = None
    if raw_label is not None and (require_labels or raw_label.strip()):
        label, problem = _parse_label(raw_label, task, score_range)
        if problem:
            errors.add(number, problem)
            return
    elif require_labels:
        errors.add(number, "missing label")
        return
    pairs.append(Pair(a.strip(), b.strip(), label, number))


def pair_stats(pairs: Iterable[Pair]) -> dict[str, int]:
    """Counts of repeated (text_a, text_b) rows, identical sides, and pairs (either order) with two labels."""
    pairs = list(pairs)
    seen: Counter[tuple[str, str]] = Counter()
    labels_by_pair: dict[tuple[str, str], set[float | None]] = {}
    identical = 0
    for p in pairs:
        seen[(p.text_a, p.text_b)] += 1
        key = tuple(sorted((p.text_a, p.text_b)))
        labels_by_pair.setdefault(key, set()).add(p.label)
        identical += p.text_a == p.text_b
    return {
        "pairs": len(pairs),
        "duplicates": sum(c - 1 for c in seen.values() if c > 1),
        "identical_sides": identical,
        "conflicting": sum(1 for labels in labels_by_pair.values() if len(labels) > 1),
    }


def _warn_stats(data: PairData) -> None:
    s = data.stats
    if s["duplicates"] or s["identical_sides"] or s["conflicting"]:
        warnings.warn(
            f"{data.path}: {s['duplicates']} repeated pairs, {s['identical_sides']} pairs with identical sides, "
            f"{s['conflicting']} pairs with conflicting labels",
            DataQualityWarning,
            stacklevel=3,
        )


class DataQualityWarning(UserWarning):
    """Duplicates, identical sides or conflicting labels in a pair file."""


def add_swapped(pairs: Sequence[Pair]) -> list[Pair]:
    """Append (b, a) for every pair whose sides differ: similarity is symmetric."""
    return list(pairs) + [Pair(p.text_b, p.text_a, p.label, p.line) for p in pairs if p.text_a != p.text_b]


def write_pairs(path: str | Path, rows: Sequence[Pair], why: Sequence[str] | None = None) -> Path:
    """Labelled pairs as a ``text_a text_b label`` TSV (0/1), atomically: what train, adapt and eval read.
    ``why`` (one per row, e.g. mine's reasons) adds a fourth column of that name, which those ignore."""
    if why is not None and len(why) != len(rows):
        raise ValueError(f"{len(why)} reasons for {len(rows)} pairs")
    head = "text_a\ttext_b\tlabel" + ("\twhy" if why is not None else "") + "\n"
    body = "".join(f"{p.text_a}\t{p.text_b}\t{int(p.label or 0)}" + (f"\t{why[k]}" if why is not None else "") + "\n"
                   for k, p in enumerate(rows))
    atomic_write_text(path, head + body)
    return Path(path)


def read_column(path: str | Path, name: str) -> dict[int, str] | None:
    """The values of the header column ``name`` of a TSV, by line number (as :class:`Pair` numbers lines);
    None when the file has no header naming it. For side columns such as mine's ``why``."""
    lines = decode_lines(Path(path))
    if not lines:
        return None
    header = [h.strip().lower() for h in lines[0][1].split("\t")]
    if name not in header:
        return None
    col = header.index(name)
    return {number: cells[col].strip() if col < len(cells) else ""
            for number, cells in ((n, text.split("\t")) for n, text in lines[1:])}
