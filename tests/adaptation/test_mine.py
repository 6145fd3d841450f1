"""simpair mine on tiny models: candidates from both neighbour searches, scored, selected, written as a pairs
file that the labeller and every reader take."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import DATA, train_tiny_pair_model, write

from simpair.adaptation.labels import LabelSession
from simpair.adaptation.mine import dedupe, dense_neighbours, lexical_neighbours
from simpair.adaptation.select import near_copy
from simpair.cli import main
from simpair.readers import read_pairs


@pytest.fixture(scope="module")
def matcher(tiny_bert: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_tiny_pair_model(tiny_bert, tmp_path_factory.mktemp("mine") / "matcher")


def test_neighbours_dense_and_lexical() -> None:
    emb = np.eye(4, dtype=np.float32)
    emb[1] = [0.9, 0.1, 0, 0]
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    assert (0, 1) in dense_neighbours(emb, 1)
    lex = lexical_neighbours(["信用卡怎么提额", "信用卡如何提额", "明天天气怎么样", "今天天气怎么样"], 1)
    assert (0, 1) in lex and (2, 3) in lex
    assert dedupe(["怎么开证明", "怎么开证明？", "别的"]) == ["怎么开证明", "别的"]


def test_mine_writes_a_selection_ready_to_label(matcher: Path, tiny_bert: Path, tmp_path: Path) -> None:
    out = tmp_path / "mined.tsv"
    res = CliRunner().invoke(main, ["mine", str(DATA / "corpus.tsv"), "--out", str(out), "-n", "40",
                                    "--model", str(matcher), "--encoder", str(tiny_bert), "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["selected"] == 40 and report["candidates"] > 40 and report["questions"] > 300
    assert report["why"] == {"check": 8, "uncertain": 19, "likely same": 6, "likely different": 7}
    header = out.read_text(encoding="utf-8").splitlines()[0].split("\t")
    assert header == ["text_a", "text_b", "label", "p_same", "why", "found_by"]
    pairs = read_pairs(out, require_labels=False, warn=False).pairs
    assert len(pairs) == 40 and all(p.label is None for p in pairs)
    assert not any(near_copy(p.text_a, p.text_b) for p in pairs)
    assert len({frozenset((p.text_a, p.text_b)) for p in pairs}) == 40
    assert LabelSession(out).state()["progress"]["total"] == 40


def test_mine_refuses_too_few_questions(matcher: Path, tiny_bert: Path, tmp_path: Path) -> None:
    path = write(tmp_path / "q.txt", "只有一个问题\n只有一个问题？\n")
    res = CliRunner().invoke(main, ["mine", str(path), "--out", str(tmp_path / "o.tsv"), "--model", str(matcher),
                                    "--encoder", str(tiny_bert)])
    assert res.exit_code == 2 and "at least 3 distinct questions" in res.output
    assert not (tmp_path / "o.tsv").exists()


def test_two_rounds_refit_the_threshold_on_the_first_rounds_labels(matcher: Path, tiny_bert: Path,
                                                                   tmp_path: Path) -> None:
    runner = CliRunner()
    common = ["--model", str(matcher), "--encoder", str(tiny_bert), "--json"]
    first = tmp_path / "checks.tsv"
    res = runner.invoke(main, ["mine", str(DATA / "corpus.tsv"), "--out", str(first), "-n", "30",
                               "--check-share", "1"] + common)
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["why"]["check"] == 30
    session = LabelSession(first)
    while (index := session.next_index()) is not None:  # both answers, so that a threshold can be fitted
        session.answer(index, "same" if index % 3 else "different")
    second = tmp_path / "picks.tsv"
    res = runner.invoke(main, ["mine", str(DATA / "corpus.tsv"), "--out", str(second), "-n", "40",
                               "--calibrate-on", str(session.out)] + common)
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["calibrated_on"]["pairs"] == 30 and report["threshold"] != report["stored_threshold"]
    seen = {frozenset((p.text_a, p.text_b)) for p in read_pairs(session.out, warn=False).pairs}
    picked = read_pairs(second, require_labels=False, warn=False).pairs
    assert len(picked) == 40 and not seen & {frozenset((p.text_a, p.text_b)) for p in picked}
    few = write(tmp_path / "few.tsv", "text_a\ttext_b\tlabel\n怎么开证明\t证明怎么开\t1\n")
    res = runner.invoke(main, ["mine", str(DATA / "corpus.tsv"), "--out", str(tmp_path / "x.tsv"),
                               "--calibrate-on", str(few)] + common)
    assert res.exit_code == 2 and "at least 20 labelled pairs" in res.output and not (tmp_path / "x.tsv").exists()
