"""What every reader shares: decoding a file into numbered lines, collecting errors by line, the format
sniffing rule, delimited rows, JSON objects, and the limits on one text.

Every reader (:mod:`.pairs`, :mod:`.texts`, :mod:`.corpus`) reports a bad file the same way: an
:class:`~simpair.errors.InputError` naming the file, the line and what was expected.
"""
from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterator
from pathlib import Path

from ..errors import InputError

MAX_ERRORS_SHOWN = 20
# longest text a data file may hold: a question or a review, not a document (a longer one is almost
# always a lost line break or an unclosed quote that swallowed the lines after it)
MAX_TEXT_CHARS = 20_000


def text_problem(text: str, what: str) -> str | None:
    """Why ``text`` cannot be used (empty, or too long), or None."""
    if not text.strip():
        return f"empty {what}; expected a non-empty text"
    if len(text) > MAX_TEXT_CHARS:
        return (f"{what} of {len(text):,} characters; expected at most {MAX_TEXT_CHARS:,} "
                "(a lost line break or an unclosed quote?)")
    return None


class ErrorList:
    """Collects row errors so that one run reports every bad line at once."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.items: list[tuple[int, str]] = []

    def add(self, line: int, message: str) -> None:
        self.items.append((line, message))

    def raise_if_any(self) -> None:
        if not self.items:
            return
        self.items.sort(key=lambda item: item[0])  # stable: a line's problems keep their order
        line, message = self.items[0]
        shown = [f"{self.path}:{ln}: {msg}" for ln, msg in self.items[1:MAX_ERRORS_SHOWN]]
        more = len(self.items) - MAX_ERRORS_SHOWN
        extra = "".join(f"\n{s}" for s in shown) + (f"\n... and {more} more bad rows" if more > 0 else "")
        raise InputError(self.path, line, message + extra)


def check_data_file(path: Path) -> None:
    """Refuse a path that is missing or a directory, naming it."""
    if not path.exists():
        raise InputError(str(path), None, "no such file")
    if path.is_dir():
        raise InputError(str(path), None, "is a directory; expected a data file")


def decode_lines(path: Path, raw: bytes | None = None, expected: str = "sentence pairs",
                 first: int = 1) -> list[tuple[int, str]]:
    """Decode a file (or ``raw`` bytes read from it, e.g. stdin, or one chunk of it whose first line is line
    ``first``) as UTF-8 line by line (BOM and CRLF tolerated); bad bytes name their line; an empty input says
    what was ``expected``."""
    if raw is None:
        check_data_file(path)
        raw = path.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    out: list[tuple[int, str]] = []
    for number, chunk in enumerate(raw.split(b"\n"), start=first):
        if chunk.endswith(b"\r"):
            chunk = chunk[:-1]
        try:
            out.append((number, chunk.decode("utf-8")))
        except UnicodeDecodeError as exc:
            raise InputError(str(path), number, f"invalid UTF-8 at byte {exc.start} of the line; expected UTF-8 text") from exc
    while out and out[-1][1].strip() == "":
        out.pop()
    if not out and first == 1:
        raise InputError(str(path), None, f"empty file; expected {expected}")
    return out


def is_json_object(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def detect_format(path: Path, first_line: str) -> str:
    """Pick a format from the extension, then the first line."""
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json", ".ndjson"):
        return "jsonl"
    if suffix == ".csv" and "\t" not in first_line:
        return "csv"
    if suffix != ".tsv" and first_line.lstrip().startswith("{") and is_json_object(first_line):
        return "jsonl"  # a TSV line may start with "{" too: only a whole JSON object makes a JSONL file
    cells = first_line.split("\t")
    if len(cells) >= 7 and is_number(cells[4]):
        return "sts"
    if "\t" not in first_line and "," in first_line:
        return "csv"
    return "tsv"


def rows_delimited(lines: list[tuple[int, str]], fmt: str, path: str) -> Iterator[tuple[int, list[str]]]:
    if fmt == "csv":
        # csv needs the text back to handle quoted newlines; keep line numbers of row starts.
        text = "\n".join(t for _, t in lines)
        reader = csv.reader(io.StringIO(text))
        try:
            for row in reader:
                yield reader.line_num, row
        except csv.Error as exc:  # e.g. a bare carriage return inside a line
            why = "a carriage return inside a line" if "new-line" in str(exc) else str(exc)
            raise InputError(path, reader.line_num, f"not valid CSV ({why}); expected comma-separated rows, "
                                                    "one a line") from exc
    else:
        for number, text in lines:
            yield number, text.split("\t")


def json_objects(lines: list[tuple[int, str]], errors: ErrorList, expected: str) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each JSONL line; a line that is not a JSON object is an error."""
    for number, text in lines:
        if not text.strip():
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            errors.add(number, f"not valid JSON ({exc.msg}); expected one object a line with {expected}")
            continue
        if not isinstance(obj, dict):
            errors.add(number, f"expected a JSON object with {expected}")
            continue
        yield number, obj


def read_text_lines(path: str | Path, raw: bytes | None = None, expected: str = "one text a line",
                    first_column: bool = False) -> list[str]:
    """The non-empty lines of a UTF-8 file (or of ``raw``, e.g. stdin), stripped; with ``first_column``,
    only what comes before the first tab (a query file that also holds relevance ids)."""
    texts = [text.split("\t")[0] if first_column else text for _, text in decode_lines(Path(path), raw, expected)]
    return [t.strip() for t in texts if t.strip()]
