"""Texts to search and queries to evaluate retrieval with: corpus files (``.txt``, ``.tsv``, ``.jsonl``)
and ``query<TAB>relevant_ids`` files."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from .lines import ErrorList, decode_lines, json_objects, text_problem


@dataclass
class Entry:
    id: str
    text: str
    line: int


def read_corpus(path: str | Path) -> list[Entry]:
    """Read a corpus: ``.txt`` (one text a line; id = line number), ``.tsv`` (id<TAB>text, header
    optional) or ``.jsonl`` (``{"id": …, "text": …}``). Bad lines and duplicate ids are errors."""
    p = Path(path)
    lines = decode_lines(p)
    suffix = p.suffix.lower()
    entries: list[Entry] = []
    problems = ErrorList(str(p))
    if suffix in (".jsonl", ".json", ".ndjson"):
        for number, obj in json_objects(lines, problems, '"id" and "text"'):
            if not isinstance(obj.get("text"), str):
                problems.add(number, 'expected an object with a string "text" (and an "id")')
                continue
            entries.append(Entry(str(obj.get("id", number)), obj["text"].strip(), number))
    elif suffix == ".tsv":
        first = lines[0][1].split("\t")
        body = lines[1:] if [c.strip().lower() for c in first] == ["id", "text"] else lines
        for number, text in body:
            if not text.strip():
                continue
            cells = text.split("\t")
            if len(cells) != 2:
                problems.add(number, f"expected 2 tab-separated columns (id, text), got {len(cells)}")
                continue
            entries.append(Entry(cells[0].strip(), cells[1].strip(), number))
    else:
        entries = [Entry(str(number), text.strip(), number) for number, text in lines if text.strip()]
    for e in entries:
        if not e.id:
            problems.add(e.line, "empty id")
        problem = text_problem(e.text, "text")
        if problem:
            problems.add(e.line, problem)
    seen: dict[str, int] = {}
    for e in entries:
        if e.id in seen:
            problems.add(e.line, f"duplicate id {e.id!r} (first on line {seen[e.id]}); ids must be unique")
        else:
            seen[e.id] = e.line
    problems.raise_if_any()
    if not entries:
        raise InputError(str(p), None, "no texts found")
    return entries


def read_queries(path: str | Path) -> list[tuple[str, set[str], int]]:
    """``query<TAB>relevant_ids`` (comma-separated), header optional, as in the lcqmc-dev retrieval set."""
    lines = decode_lines(Path(path))
    out = []
    start = 1 if lines[0][1].split("\t")[0].strip().lower() == "query" else 0
    for number, text in lines[start:]:
        if not text.strip():
            continue
        cells = text.split("\t")
        if len(cells) != 2 or not cells[0].strip():
            raise InputError(str(path), number, f"expected query<TAB>relevant_ids, got {len(cells)} columns")
        ids = {i.strip() for i in cells[1].split(",") if i.strip()}
        if not ids:
            raise InputError(str(path), number, "no relevant ids; expected a comma-separated list")
        out.append((cells[0].strip(), ids, number))
    return out
