"""Read labelled single texts for ``simpair train --task classify`` (sentiment, topics, stars).

Formats, picked like the pair readers (``fmt="auto"``: extension, then content):
- ``tsv``: ``label<TAB>text`` or ``text<TAB>label`` (ChnSentiCorp and SST-2 ship one each), with or
  without a header line; without one the label is the column whose every value is an integer;
- ``csv``: the same two columns with quoting and an optional byte-order mark;
- ``jsonl``: ``{"text": ..., "label": ...}`` (``sentence``/``review``/``content`` also name the text).

Labels are integers (0..K-1, or any integers such as 1-5 stars) or names ("positive"). Class ids
follow ``label_names`` when given, else the sorted labels of the training file; a dev label that
training never saw is an error naming its line. Every bad row is reported with file and line.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError
from .lines import ErrorList, decode_lines, detect_format, json_objects, rows_delimited, text_problem

TEXT_NAMES = ("text", "text_a", "sentence", "review", "content", "comment", "sentence1", "document")
CLASS_NAMES = ("label", "labels", "sentiment", "class", "category", "target", "stars", "rating")
MAX_CLASSES = 1000


@dataclass
class TextData:
    """Texts with their label strings as read; ``encode`` turns labels into class ids."""

    path: str
    texts: list[str]
    labels: list[str]
    lines: list[int]
    fmt: str
    stats: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.texts)

    def label_names(self) -> list[str]:
        """Distinct labels, integers in numeric order, names in alphabetical order."""
        return sort_labels(self.labels)

    def encode(self, names: Sequence[str]) -> list[int]:
        """Class ids for ``names`` (the training label set); unknown labels name their line."""
        index = {str(n): i for i, n in enumerate(names)}
        errors = ErrorList(self.path)
        ids: list[int] = []
        for label, line in zip(self.labels, self.lines):
            if label in index:
                ids.append(index[label])
            elif is_int(label) and str(int(label)) in index:
                ids.append(index[str(int(label))])
            else:
                errors.add(line, f"label {label!r}: expected one of the training labels {list(names)}")
        errors.raise_if_any()
        return ids


def is_int(text: str) -> bool:
    try:
        int(text)
        return True
    except ValueError:
        return False


def sort_labels(labels: Iterable[str]) -> list[str]:
    """Distinct labels: integers first in numeric order, then names alphabetically."""
    return sorted(set(labels), key=lambda x: (0, int(x), "") if is_int(x) else (1, 0, x))


def read_texts(path: str | Path, fmt: str = "auto", text_column: str | int | None = None,
               label_column: str | int | None = None, require_labels: bool = True) -> TextData:
    """Read and validate a labelled text file; raise InputError listing every bad row."""
    p = Path(path)
    lines = decode_lines(p)
    fmt = detect_format(p, lines[0][1]) if fmt == "auto" else fmt
    if fmt not in ("tsv", "csv", "jsonl"):
        raise InputError(str(p), None, f"format {fmt!r} is for pairs; expected tsv, csv or jsonl for texts")
    errors = ErrorList(str(p))
    data = TextData(str(p), [], [], [], fmt)
    if fmt == "jsonl":
        _read_jsonl(lines, text_column, label_column, require_labels, data, errors)
    else:
        _read_delimited(lines, fmt, text_column, label_column, require_labels, data, errors)
    errors.raise_if_any()
    if not data.texts:
        raise InputError(str(p), None, "no texts found; expected rows of label and text")
    if require_labels and len(set(data.labels)) > MAX_CLASSES:
        raise InputError(str(p), None, f"{len(set(data.labels))} distinct labels; expected at most {MAX_CLASSES} "
                                       "classes (is the label column right?)")
    counts = Counter(data.labels)
    data.stats = {"texts": len(data.texts), "classes": len(counts), "duplicates": len(data.texts) - len(set(data.texts)),
                  **{f"label_{k}": v for k, v in sorted(counts.items())}}
    return data


def _index(header: list[str], wanted: str | int | None, names: Sequence[str]) -> int | None:
    lowered = [h.strip().lower() for h in header]
    if isinstance(wanted, int) or (isinstance(wanted, str) and wanted.isdigit()):
        return int(wanted)
    if isinstance(wanted, str):
        return lowered.index(wanted.lower()) if wanted.lower() in lowered else None
    return next((lowered.index(n) for n in names if n in lowered), None)


def _read_delimited(lines, fmt, text_column, label_column, require_labels, data, errors) -> None:
    rows = [(n, cells) for n, cells in rows_delimited(lines, fmt, errors.path)
            if not (len(cells) == 1 and not cells[0].strip())]
    if not rows:
        return  # only blank rows (a lone quote in a CSV parses to one): reported as "no texts found"
    first = rows[0][1]
    lowered = [c.strip().lower() for c in first]
    by_name = any(isinstance(c, str) and not c.isdigit() for c in (text_column, label_column))
    has_header = by_name or any(c in TEXT_NAMES + CLASS_NAMES for c in lowered)
    sep = "comma" if fmt == "csv" else "tab"
    body = rows[1:] if has_header else rows
    if has_header:
        it, il = _index(first, text_column, TEXT_NAMES), _index(first, label_column, CLASS_NAMES)
        if it is None or (il is None and require_labels):
            errors.add(rows[0][0], f"header {first!r}: expected a text column ({'/'.join(TEXT_NAMES[:4])}) and a "
                                   f"label column ({'/'.join(CLASS_NAMES[:4])}), or --text-column/--label-column")
            return
        width = len(first)
    else:
        width = max(Counter(len(c) for _, c in body).most_common(1)[0][0], 1)
        if width == 1 and not require_labels:
            it, il = 0, None
        elif width != 2 and (text_column is None or label_column is None):
            errors.add(body[0][0], f"expected 2 {sep}-separated columns (label and text), got {width}; "
                                   "add a header line or name the columns")
            return
        else:
            it, il = _guess_columns(body, text_column, label_column)
    what = f"{width} {sep}-separated columns" + (" like the header" if has_header else " (label and text)")
    for number, cells in body:
        if len(cells) != width and not (not require_labels and len(cells) == 1 and width <= 2):
            errors.add(number, f"expected {what}, got {len(cells)}")
            continue
        text = cells[it] if it is not None and it < len(cells) else ""
        label = cells[il] if il is not None and il < len(cells) else None
        _add(number, text, label, require_labels, data, errors)


def _guess_columns(body, text_column, label_column) -> tuple[int, int]:
    """Without a header: the label is the column that holds only integers, else the one with
    fewer distinct values (column 0 on a tie)."""
    if text_column is not None or label_column is not None:
        it = int(text_column) if text_column is not None else 1 - int(label_column)
        return it, (int(label_column) if label_column is not None else 1 - it)
    rows = [c for _, c in body if len(c) == 2]
    ints = [all(is_int(c[k].strip()) for c in rows) for k in (0, 1)]
    if ints[0] != ints[1]:
        il = 0 if ints[0] else 1
    else:
        il = 1 if len({c[1] for c in rows}) < len({c[0] for c in rows}) else 0
    return 1 - il, il


def _read_jsonl(lines, text_column, label_column, require_labels, data, errors) -> None:
    for number, obj in json_objects(lines, errors, "'text' and 'label'"):
        keys = {k.lower(): k for k in obj}
        kt = text_column if isinstance(text_column, str) else next((keys[n] for n in TEXT_NAMES if n in keys), None)
        kl = label_column if isinstance(label_column, str) else next((keys[n] for n in CLASS_NAMES if n in keys), None)
        if kt is None or kt not in obj:
            errors.add(number, f"missing text key; expected one of {', '.join(TEXT_NAMES[:4])}, got {list(obj)}")
            continue
        if not isinstance(obj[kt], str):
            errors.add(number, f"{kt!r} must be a string")
            continue
        label = obj.get(kl) if kl is not None else None
        if isinstance(label, (bool, dict, list)) or (isinstance(label, float) and not label.is_integer()):
            errors.add(number, f"label {label!r}: expected an integer class or a class name")
            continue
        _add(number, obj[kt], None if label is None else str(int(label) if isinstance(label, float) else label),
             require_labels, data, errors)


def _add(number: int, text: str, label: str | None, require_labels: bool, data: TextData, errors: ErrorList) -> None:
    problem = text_problem(text, "text")
    if problem:
        errors.add(number, problem)
        return
    if label is not None:
        label = label.strip()
    if require_labels and not label:
        errors.add(number, "missing label; expected an integer class or a class name")
        return
    data.texts.append(text.strip())
    data.labels.append(label or "")
    data.lines.append(number)
