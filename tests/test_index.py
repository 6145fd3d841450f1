"""Index build/search/persist round trip, incremental add, model mismatch, corpus errors, auto types."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import DATA, write
from tiny import make_tiny_model

from simpair.bi_encoder import BiEncoder
from simpair.cli import main
from simpair.errors import InputError, SimpairError
from simpair.index import AUTO_FLAT_MAX, AUTO_HNSW_MAX, Index, choose_type
from simpair.readers import read_corpus
from simpair.search import Searcher, ann_recall_vs_exact


@pytest.fixture(scope="module")
def encoder(tiny_bert: Path) -> BiEncoder:
    return BiEncoder(str(tiny_bert), bf16=False)


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    rows = ["id\ttext"] + [f"d{i}\t{t}" for i, t in enumerate(
        ["怎么开初婚未育证明", "微信的密码忘掉了该怎么办", "How do I reset my password?", "北京到上海的高铁要多久",
         "狗狗不吃东西怎么办", "信用卡怎么提高额度"])]
    return write(tmp_path / "corpus.tsv", "\n".join(rows) + "\n")


def test_build_search_persist_round_trip(encoder: BiEncoder, corpus: Path, tmp_path: Path) -> None:
    idx = Index.build(corpus, tmp_path / "idx", encoder, progress=False)
    assert idx.kind == "flat" and len(idx) == 6
    m = json.loads((tmp_path / "idx" / "manifest.json").read_text())
    assert m["fingerprint"] == encoder.fingerprint and m["dim"] == encoder.dim and m["normalized"] is True
    assert set(m["files"]) == {"index.faiss", "store.sqlite"}
    searcher = Searcher(Index.load(tmp_path / "idx"), encoder=encoder)
    hits = searcher.search("微信的密码忘掉了该怎么办", k=3)
    assert hits[0]["id"] == "d1" and hits[0]["text"] == "微信的密码忘掉了该怎么办"
    assert hits[0]["score"] == pytest.approx(1.0, abs=1e-4)
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    assert "d1" not in [h["id"] for h in searcher.search("微信的密码忘掉了该怎么办", k=3, exclude={"d1"})]


def test_incremental_add(encoder: BiEncoder, corpus: Path, tmp_path: Path) -> None:
    idx = Index.build(corpus, tmp_path / "idx", encoder, progress=False)
    before = idx.faiss.reconstruct_n(0, 6)
    more = write(tmp_path / "more.jsonl", '{"id": "n1", "text": "苹果手机截图要怎么操作"}\n{"id": "n2", "text": "电脑没有声音"}\n')
    assert idx.add(more, encoder, progress=False) == {"added": 2, "skipped": 0, "count": 8}
    again = Index.load(tmp_path / "idx", encoder=encoder)
    assert len(again) == 8 and again.ids[-2:] == ["n1", "n2"]
    np.testing.assert_array_equal(again.faiss.reconstruct_n(0, 6), before)  # old vectors untouched
    assert Searcher(again, encoder=encoder).search("苹果手机截图要怎么操作", k=1)[0]["id"] == "n1"
    dup = write(tmp_path / "dup.tsv", "d2\tduplicate id\nn3\tnew one\n")
    with pytest.raises(InputError, match="already in the index"):
        again.add(dup, encoder, progress=False)
    assert len(Index.load(tmp_path / "idx")) == 8  # nothing written on rejection
    assert again.add(dup, encoder, on_duplicate="skip", progress=False) == {"added": 1, "skipped": 1, "count": 9}


def test_model_mismatch(encoder: BiEncoder, corpus: Path, tmp_path: Path) -> None:
    Index.build(corpus, tmp_path / "idx", encoder, progress=False)
    other_dir = make_tiny_model(tmp_path / "other", ["怎么开初婚未育证明微信密码"], seed=1)
    other = BiEncoder(str(other_dir), bf16=False)
    with pytest.raises(SimpairError, match="built with model"):
        Index.load(tmp_path / "idx", encoder=other)


def test_damaged_index_is_refused(encoder: BiEncoder, corpus: Path, tmp_path: Path) -> None:
    Index.build(corpus, tmp_path / "idx", encoder, progress=False)
    with open(tmp_path / "idx" / "index.faiss", "ab") as fh:
        fh.write(b"x")
    with pytest.raises(SimpairError, match="checksum"):
        Index.load(tmp_path / "idx")


@pytest.mark.parametrize(("content", "name", "line", "expected"), [
    ("a\tone\nb\ttwo\textra\n", "c.tsv", 2, "expected 2 tab-separated columns"),
    ("a\tone\na\ttwo\n", "c.tsv", 2, "duplicate id 'a'"),
    ("a\tone\nb\t \n", "c.tsv", 2, "empty text"),
    ('{"id": 1, "text": "x"}\n{oops\n', "c.jsonl", 2, "not valid JSON"),
    ('{"id": 1, "txt": "x"}\n', "c.jsonl", 1, 'string "text"'),
])
def test_bad_corpus_lines(tmp_path: Path, content: str, name: str, line: int, expected: str) -> None:
    path = write(tmp_path / name, content)
    with pytest.raises(InputError) as err:
        read_corpus(path)
    assert err.value.line == line and expected in str(err.value)


def test_txt_corpus_ids_are_line_numbers(tmp_path: Path) -> None:
    entries = read_corpus(write(tmp_path / "c.txt", "first\n\nthird\n"))
    assert [(e.id, e.text) for e in entries] == [("1", "first"), ("3", "third")]


def test_auto_type_choice() -> None:
    assert choose_type(10) == "flat" and choose_type(AUTO_FLAT_MAX) == "flat"
    assert choose_type(AUTO_FLAT_MAX + 1) == "hnsw" and choose_type(AUTO_HNSW_MAX) == "hnsw"
    assert choose_type(AUTO_HNSW_MAX + 1) == "ivfpq"


@pytest.mark.parametrize("kind", ["hnsw", "ivf", "ivfpq"])
def test_ann_types_build_and_recall(encoder: BiEncoder, tmp_path: Path, kind: str) -> None:
    texts = [line.split("\t")[1] for line in (DATA / "corpus.tsv").read_text(encoding="utf-8").splitlines()[1:]]
    path = write(tmp_path / "c.txt", "\n".join(texts) + "\n")
    idx = Index.build(path, tmp_path / kind, encoder, kind=kind, progress=False)
    assert idx.kind == kind and len(idx) == len(texts)
    reloaded = Index.load(tmp_path / kind, encoder=encoder)
    recall = ann_recall_vs_exact(reloaded, encoder, texts[:40])
    assert 0.3 <= recall <= 1.0
    if kind != "ivfpq":
        assert recall >= 0.8


def test_cli_build_search_add_info(tiny_bert: Path, corpus: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "idx"
    res = runner.invoke(main, ["index", "build", str(corpus), "--out", str(out), "--model", str(tiny_bert), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["count"] == 6
    res = runner.invoke(main, ["search", str(out), "狗狗不吃东西怎么办", "-k", "2", "--json"])
    assert res.exit_code == 0, res.output
    hits = json.loads(res.stdout)["hits"]
    assert hits[0]["id"] == "d4" and {"id", "text", "score"} <= set(hits[0])
    more = write(tmp_path / "more.txt", "新的问题\n")
    res = runner.invoke(main, ["index", "add", str(out), str(more), "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout)["count"] == 7
    res = runner.invoke(main, ["index", "info", str(out), "--json"])
    assert json.loads(res.stdout)["count"] == 7
    bad = write(tmp_path / "bad.tsv", "x\tone\nx\ttwo\n")
    res = runner.invoke(main, ["index", "build", str(bad), "--out", str(tmp_path / "never"), "--model", str(tiny_bert)])
    assert res.exit_code == 2 and f"{bad}:2:" in res.stderr and not (tmp_path / "never").exists()


# ---------------------------------------------------------------- crashes and concurrent writers


def _cli(*args: str) -> list[str]:
    import sys

    return [sys.executable, "-m", "simpair", *args]


def _big_corpus(path: Path, prefix: str, n: int) -> Path:
    return write(path, "id\ttext\n" + "".join(f"{prefix}{i}\t问题{prefix}{i} 怎么办 {i * 7919 % 1000}\n"
                                                for i in range(n)))


def _index_dirs(root: Path) -> list[str]:
    """Directories that could be taken for the index: only the index itself (hidden temporaries aside)."""
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def test_index_helpers_are_atomic_and_locked(tmp_path: Path) -> None:
    """atomic_dir swaps whole directories; dir_lock is exclusive across processes and re-entrant within one."""
    import subprocess
    import sys

    from simpair.utils import atomic_dir, dir_lock

    target = tmp_path / "d"
    with atomic_dir(target) as tmp:
        (tmp / "f").write_text("one")
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "f").write_text("half")
        raise RuntimeError("crash while writing")
    assert (target / "f").read_text() == "one" and _index_dirs(tmp_path) == ["d"]
    with atomic_dir(target) as tmp:
        (tmp / "f").write_text("two")
    assert (target / "f").read_text() == "two"
    hold = ("import sys, time; sys.path.insert(0, %r); from simpair.utils import dir_lock\n"
            "with dir_lock(%r):\n    print('held', flush=True); time.sleep(3)\n") % (str(Path.cwd()), str(target))
    proc = subprocess.Popen([sys.executable, "-c", hold], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    with pytest.raises(SimpairError, match="another process is writing"), dir_lock(target, timeout=0.5):
        pass
    with dir_lock(target, timeout=30), dir_lock(target):  # waits for the other process; re-entrant
        assert proc.wait(timeout=30) == 0  # it let go: its sleep is over


def _built_index(tiny_bert: Path, corpus: Path, tmp_path: Path) -> Path:
    idx = tmp_path / "idx"
    res = CliRunner().invoke(main, ["index", "build", str(corpus), "--out", str(idx), "--model", str(tiny_bert)])
    assert res.exit_code == 0, res.output
    return idx


def _kill(args: list[str], tmp_path: Path, delay: float | None = None) -> int:
    """Run ``simpair ARGS`` and SIGKILL it after ``delay`` seconds, or (None) as soon as its new index
    directory is being written; its exit status."""
    import signal
    import subprocess
    import time

    proc = subprocess.Popen(_cli(*args), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if delay is None:
        while proc.poll() is None and not list(tmp_path.glob(".idx.tmp-*")):
            time.sleep(0.002)
    else:
        time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    return proc.wait()


def _assert_intact(idx: Path, sizes: tuple[int, int]) -> int:
    """The index loads (checksums and row counts verified) with its old or its complete new content."""
    n = len(Index.load(idx))
    assert n in sizes, n
    assert _index_dirs(idx.parent) == [idx.name]
    return n


@pytest.mark.slow
def test_kill_9_during_index_add_keeps_the_previous_index(tiny_bert: Path, corpus: Path, tmp_path: Path) -> None:
    import signal
    import subprocess

    idx = _built_index(tiny_bert, corpus, tmp_path)
    add = ["index", "add", str(idx), str(_big_corpus(tmp_path / "big.tsv", "b", 4000)), "--on-duplicate", "skip",
           "--json"]
    # first a kill while the new index is being written (its temporary directory exists), then at set times
    assert _kill(add, tmp_path) == -signal.SIGKILL, "the add finished before its write could be interrupted"
    _assert_intact(idx, (6, 4006))
    for delay in (3.0, 4.0, 5.0, 6.0, 7.0, 8.0):
        _kill(add, tmp_path, delay)
        if _assert_intact(idx, (6, 4006)) == 4006:
            break
    # whatever the kills left behind, a later add completes
    proc = subprocess.run(_cli(*add), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert len(Index.load(idx)) == 4006


@pytest.mark.slow
def test_kill_9_during_index_build_keeps_the_previous_index(tiny_bert: Path, corpus: Path, tmp_path: Path) -> None:
    import signal

    idx = _built_index(tiny_bert, corpus, tmp_path)
    build = ["index", "build", str(_big_corpus(tmp_path / "big.tsv", "b", 4000)), "--out", str(idx), "--model",
             str(tiny_bert)]
    assert _kill(build, tmp_path) == -signal.SIGKILL, "the build finished before its write could be interrupted"
    _assert_intact(idx, (6, 4000))
    for delay in (3.0, 4.5, 6.0):
        _kill(build, tmp_path, delay)
        _assert_intact(idx, (6, 4000))


@pytest.mark.slow
def test_two_writers_take_turns(tiny_bert: Path, corpus: Path, tmp_path: Path) -> None:
    import subprocess

    idx = _built_index(tiny_bert, corpus, tmp_path)
    a = _big_corpus(tmp_path / "a.tsv", "a", 1500)
    b = _big_corpus(tmp_path / "b.tsv", "b", 1500)
    procs = [subprocess.Popen(_cli("index", "add", str(idx), str(c), "--json"), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for c in (a, b)]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    loaded = Index.load(idx)
    assert len(loaded) == 3006 and {"a0", "b1499", "d0"} <= set(loaded.ids)


def test_a_stale_copy_catches_up_and_never_loses_a_newer_add(encoder: BiEncoder, corpus: Path, tmp_path: Path) -> None:
    Index.build(corpus, tmp_path / "idx", encoder, progress=False)
    first, second = Index.load(tmp_path / "idx"), Index.load(tmp_path / "idx")
    n = len(first)
    first.add(write(tmp_path / "x.tsv", "id\ttext\nx1\t新问题一\n"), encoder, progress=False)
    second.add(write(tmp_path / "y.tsv", "id\ttext\ny1\t新问题二\n"), encoder, progress=False)  # loaded before x1
    on_disk = Index.load(tmp_path / "idx")
    assert len(on_disk) == n + 2 and {"x1", "y1"} <= set(on_disk.ids) and on_disk.ids == second.ids
    with pytest.raises(InputError, match="already in the index"):  # the catch-up sees x1 as stored
        second.add(write(tmp_path / "z.tsv", "id\ttext\nx1\t新问题一\n"), encoder, progress=False)


def test_multi_process_encoding_equals_one_process(encoder: BiEncoder, tiny_bert: Path, tmp_path: Path) -> None:
    texts = [f"问题{i} 怎么办 {i * 31 % 97}" for i in range(40)]
    fp32 = BiEncoder(str(tiny_bert), bf16=False)
    one = fp32.encode(texts, batch_size=8)
    two = fp32.encode(texts, batch_size=8, processes=2)
    assert two.shape == one.shape and np.allclose(one, two, atol=1e-5)
    corpus = write(tmp_path / "c.tsv", "id\ttext\n" + "".join(f"q{i}\t{t}\n" for i, t in enumerate(texts)))
    res = CliRunner().invoke(main, ["index", "build", str(corpus), "--out", str(tmp_path / "idx"), "--model",
                                    str(tiny_bert), "--processes", "2", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["count"] == 40


def test_add_to_a_missing_index_creates_nothing(corpus: Path, tmp_path: Path) -> None:
    res = CliRunner().invoke(main, ["index", "add", str(tmp_path / "nowhere" / "idx"), str(corpus)])
    assert res.exit_code == 2 and "not a simpair index" in res.output
    assert not (tmp_path / "nowhere").exists()
