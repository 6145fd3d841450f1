"""Pair files of any size in bounded memory: the chunked reader, and eval / match --file on top of it."""
from __future__ import annotations

import json
import random
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import train_tiny_pair_model

from simpair.cli import main
from simpair.cross_encoder import CrossEncoder
from simpair.errors import InputError
from simpair.evaluation import evaluate_file
from simpair.readers import count_pairs, iter_pairs, pairs as pairs_module, plan_chunks, read_chunk, read_pairs

WORDS = ["怎么", "开", "证明", "信用卡", "额度", "密码", "reset", "password", "how", "提高", "花呗", "逾期"]


def _generated(path: Path, n: int, header: bool = True, seed: int = 0) -> Path:
    rng = random.Random(seed)
    rows = ["text_a\ttext_b\tlabel"] if header else []
    for i in range(n):
        a = "".join(rng.choices(WORDS, k=rng.randint(2, 8))) + str(i)
        b = "".join(rng.choices(WORDS, k=rng.randint(2, 8)))
        rows.append(f"{a}\t{b}\t{rng.randint(0, 1)}")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("header", [True, False])
def test_chunks_read_what_the_whole_file_reads(tmp_path: Path, header: bool) -> None:
    file = _generated(tmp_path / "p.tsv", 1000, header)
    whole = read_pairs(file, warn=False)
    chunks = list(iter_pairs(file, chunk_lines=97))
    assert len(chunks) == 11 and [p for c in chunks for p in c.pairs] == whole.pairs  # lines numbered as a whole
    assert {c.task for c in chunks} == {"classification"} and count_pairs(file) == (1000, "classification")


@pytest.mark.parametrize("header", [True, False])
def test_planned_chunks_read_back_what_the_chunked_reader_reads(tmp_path: Path, header: bool) -> None:
    file = _generated(tmp_path / "p.tsv", 1000, header)
    plan = plan_chunks(file, chunk_lines=97)
    assert len(plan) == 11 and plan[0].first and not any(c.first for c in plan[1:])
    assert [read_chunk(c).pairs for c in plan] == [c.pairs for c in iter_pairs(file, chunk_lines=97)]


@pytest.mark.parametrize("content", ["", "\n\n"])
def test_an_empty_file_is_refused_by_every_chunked_read(tmp_path: Path, content: str) -> None:
    file = tmp_path / "e.tsv"
    file.write_text(content, encoding="utf-8")
    for read in (count_pairs, plan_chunks, lambda f: list(iter_pairs(f))):
        with pytest.raises(InputError, match="empty file"):
            read(file)


def test_a_bad_row_in_a_late_chunk_names_its_line(tmp_path: Path) -> None:
    file = _generated(tmp_path / "p.tsv", 500)
    lines = file.read_text(encoding="utf-8").splitlines()
    lines[400] = "only one column"
    file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"p\.tsv:401"):
        count_pairs(file, chunk_lines=50)
    with pytest.raises(InputError, match=r"p\.tsv:401"):
        plan_chunks(file, chunk_lines=50)


def test_memory_is_bounded_by_the_chunk_not_the_file(tmp_path: Path) -> None:
    file = _generated(tmp_path / "big.tsv", 40_000)

    def peak(fn) -> int:
        tracemalloc.start()
        fn()
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    whole = peak(lambda: read_pairs(file, warn=False))
    chunked = peak(lambda: sum(len(c) for c in iter_pairs(file, chunk_lines=1000)))
    assert chunked * 10 < whole, (chunked, whole)


def test_eval_and_match_file_stream_in_chunks(tiny_bert: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = train_tiny_pair_model(tiny_bert, tmp_path / "model")
    file = _generated(tmp_path / "p.tsv", 300)
    whole = evaluate_file(str(model), str(file))
    monkeypatch.setattr(pairs_module, "CHUNK_LINES", 64)  # 300 pairs: five chunks
    chunked = evaluate_file(str(model), str(file))
    assert chunked["pairs"] == whole["pairs"] == 300
    # other batches pad differently: probabilities move by ~1e-6, and the tiny model's near-tied ranking a little
    assert chunked["metrics"]["roc_auc"] == pytest.approx(whole["metrics"]["roc_auc"], abs=0.01)
    out = CliRunner().invoke(main, ["match", "--model", str(model), "--file", str(file), "--json",
                                    "--precision", "fp32"])
    assert out.exit_code == 0, out.output
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["line"] for r in rows] == list(range(2, 302))
    scores = np.array([r["probability"] for r in rows])
    pairs = [(p.text_a, p.text_b) for p in read_pairs(file, warn=False).pairs]
    np.testing.assert_allclose(scores, CrossEncoder(str(model), precision="fp32").predict(pairs), atol=1e-5)
    assert len(set(np.round(scores, 6))) > 1
    lines = file.read_text(encoding="utf-8").splitlines()
    file.write_text("\n".join(lines[:250] + ["bad row"] + lines[250:]) + "\n", encoding="utf-8")
    bad = CliRunner().invoke(main, ["match", "--model", str(model), "--file", str(file), "--json"])
    assert bad.exit_code == 2 and "p.tsv:251" in bad.output and not bad.stdout.strip().startswith("{")
