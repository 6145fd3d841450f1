"""The README and docs stay true: short README, every command in them parses as the CLI defines it, every
results file and docs page they cite exists, none cites a result file git ignores."""
from __future__ import annotations

import itertools
import re
import shlex
import subprocess
from pathlib import Path

import click
import pytest

from simpair.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
CURRENT_DOCS = [README, *sorted((ROOT / "docs").glob("*.md"))]  # docs/results/ is dated history: left as written


def _bash_blocks(text: str) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", text, flags=re.S)


def _commands(path: Path) -> list[tuple[int, list[str]]]:
    """(line, argv) of every `simpair ...` line in the file's bash blocks, comments and `&` dropped."""
    text = path.read_text(encoding="utf-8")
    out = []
    for block in _bash_blocks(text):
        start = text[: text.index(block)].count("\n") + 1
        for i, line in enumerate(block.splitlines()):
            line = line.split("  #")[0].strip().rstrip("&").strip()
            if line.startswith("simpair "):
                out.append((start + i, shlex.split(line)[1:]))
    return out


def _parse(argv: list[str]) -> None:
    """Parse argv down to the leaf command, as click would before running it (nothing runs)."""
    command: click.Command = main
    ctx = command.make_context("simpair", list(argv), resilient_parsing=False)
    while isinstance(command, click.Group):
        name, sub, rest = command.resolve_command(ctx, ctx.protected_args + ctx.args)
        command = sub
        ctx = sub.make_context(name, rest, parent=ctx)


def test_readme_is_short_and_starts_with_the_two_commands() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 250, len(lines)
    first_screen = "\n".join(lines[:40])
    assert "simpair match" in first_screen and "simpair search" in first_screen
    assert "## Quick start" in first_screen


@pytest.mark.parametrize("doc", CURRENT_DOCS, ids=lambda p: p.name)
def test_every_command_in_the_docs_parses(doc: Path) -> None:
    bad = []
    for line, argv in _commands(doc):
        try:
            _parse(argv)
        except click.exceptions.Exit:
            pass
        except click.ClickException as exc:
            bad.append(f"{doc.name}:{line}: simpair {' '.join(argv)}: {exc.format_message()}")
    assert not bad, "\n".join(bad)


def _expand(ref: str) -> list[str]:
    """Shell brace expansion of one reference: a{,_2}.json -> a.json, a_2.json."""
    parts = re.split(r"\{([^{}]*)\}", ref)
    fixed, choices = parts[0::2], [p.split(",") for p in parts[1::2]]
    return ["".join(x for pair in itertools.zip_longest(fixed, combo, fillvalue="") for x in pair)
            for combo in itertools.product(*choices)]


def test_every_cited_file_exists() -> None:
    missing = []
    for doc in CURRENT_DOCS:
        text = doc.read_text(encoding="utf-8")
        for ref in re.findall(r"(?:benchmarks/results|benchmarks/data|docs|configs)/[\w{},./-]+\.(?:json|tsv|md|yaml)",
                              text):
            missing += [f"{doc.name}: {p}" for p in _expand(ref) if not (ROOT / p).exists()]
        for name in re.findall(r"`(\w+\.json)`", text):  # a bare result file name in a benchmarks table
            if doc.name == "benchmarks.md" and not (ROOT / "benchmarks" / "results" / name).exists():
                missing.append(f"{doc.name}: benchmarks/results/{name}")
    assert not missing, "\n".join(missing)


def test_no_doc_cites_a_result_that_git_ignores() -> None:
    """A figure's evidence must be in the repository: no result or report file under an ignored folder."""
    cited = sorted({m for doc in CURRENT_DOCS
                    for m in re.findall(r"[\w./-]+\.(?:json|png|txt|csv)\b", doc.read_text(encoding="utf-8"))
                    if "/" in m and not m.startswith(("http", "/", "$", "~", "../"))})
    ignored = subprocess.run(["git", "check-ignore", "--no-index", *cited], cwd=ROOT, capture_output=True,
                             text=True).stdout.split() if cited else []
    assert not ignored, ignored
