"""``--engine ray`` on a local Ray: the same rows, scores, metrics and vectors as the one-process path, in input
order across several chunks; a bad file fails before any work and writes nothing."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import DATA, hide_package, train_tiny_pair_model, write

from simpair.bi_encoder import BiEncoder
from simpair.cli import main
from simpair.cross_encoder import CrossEncoder
from simpair.errors import InputError, SimpairError
from simpair.evaluation import evaluate

pytest.importorskip("ray")

FP32 = {"backend": "torch", "precision": "fp32"}
CHUNK = 25  # 108 dev pairs: five chunks over two workers


@pytest.fixture(scope="module")
def matcher(tiny_bert: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(train_tiny_pair_model(tiny_bert, tmp_path_factory.mktemp("ray") / "match"))


@pytest.fixture(scope="module")
def engine(ray_local: object) -> object:
    from simpair.engines.ray_engine import RayEngine

    return RayEngine(workers=2, run=FP32, chunk_lines=CHUNK)


@pytest.fixture()
def local_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """The one-process path reads in chunks of the same size: the pairs are batched alike, so the scores are
    equal bit for bit (a different batching pads differently and moves the last float digit)."""
    monkeypatch.setattr("simpair.readers.pairs.CHUNK_LINES", CHUNK)


def test_match_file_rows_equal_the_local_path_in_order(engine: object, matcher: str, local_chunks: None) -> None:
    local = list(CrossEncoder(matcher, **FP32).match_file(DATA / "dev.tsv"))
    remote = list(engine.cross_encoder(matcher).match_file(DATA / "dev.tsv"))  # type: ignore[attr-defined]
    assert len(remote) == len(local) == 108
    assert [r["line"] for r in remote] == [r["line"] for r in local]
    assert remote == local  # same keys, texts, labels, decisions and scores (same weights, same kernels)


def test_eval_metrics_equal_the_local_path(engine: object, matcher: str, local_chunks: None) -> None:
    local = evaluate(matcher, str(DATA / "dev.tsv"), **FP32)
    remote = evaluate(matcher, str(DATA / "dev.tsv"), engine=engine)
    assert remote["pairs"] == local["pairs"] == 108
    assert remote["metrics"] == local["metrics"]


def test_encode_equals_the_local_path(engine: object, tiny_bert: Path) -> None:
    texts = [line.split("\t")[1] for line in (DATA / "corpus.tsv").read_text(encoding="utf-8").splitlines()[1:]]
    local = BiEncoder(str(tiny_bert), **FP32).encode(texts)
    remote = engine.encode(str(tiny_bert), "", texts)  # type: ignore[attr-defined]
    assert remote.shape == local.shape and np.array_equal(remote, local)


def test_a_bad_file_fails_before_any_work(engine: object, matcher: str, tmp_path: Path) -> None:
    bad = write(tmp_path / "bad.tsv", "".join(f"问题{i}\t问题{i + 1}\t1\n" for i in range(60)) + "a\tb\tyes\n")
    with pytest.raises(InputError) as err:
        list(engine.cross_encoder(matcher).match_file(bad))  # type: ignore[attr-defined]
    assert err.value.line == 61


def test_cli_match_file_with_ray_writes_the_same_file_atomically(ray_local: object, matcher: str,
                                                                tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["match", "--model", matcher, "--file", str(DATA / "dev.tsv"), "--backend", "torch", "--precision",
            "fp32", "--json"]
    res = runner.invoke(main, args + ["--out", str(tmp_path / "local.jsonl")])
    assert res.exit_code == 0, res.output
    res = runner.invoke(main, args + ["--engine", "ray", "--out", str(tmp_path / "ray.jsonl")])
    assert res.exit_code == 0, res.output
    local = (tmp_path / "local.jsonl").read_text(encoding="utf-8")
    assert (tmp_path / "ray.jsonl").read_text(encoding="utf-8") == local and len(local.splitlines()) == 108
    assert json.loads(local.splitlines()[0])["line"] == 2
    bad = write(tmp_path / "bad.tsv", "a\tb\t1\nc\td\tmaybe\n")
    res = runner.invoke(main, ["match", "--model", matcher, "--file", str(bad), "--engine", "ray", "--out",
                               str(tmp_path / "bad.out")])
    assert res.exit_code == 2 and "bad.tsv:2" in res.output and not (tmp_path / "bad.out").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.tsv", "local.jsonl", "ray.jsonl"]


def test_missing_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from simpair.engines import make_engine

    hide_package(monkeypatch, "ray")
    with pytest.raises(SimpairError, match=r"pip install 'simpair\[ray\]'"):
        make_engine("ray")


def test_cli_index_build_and_add_with_ray_equal_the_local_index(ray_local: object, tiny_bert: Path,
                                                               tmp_path: Path) -> None:
    from simpair.index import Index

    runner = CliRunner()
    for name, extra in (("local", []), ("ray", ["--engine", "ray"])):
        res = runner.invoke(main, ["index", "build", str(DATA / "corpus.tsv"), "--out", str(tmp_path / name),
                                   "--model", str(tiny_bert), "--json"] + extra)
        assert res.exit_code == 0, res.output
        more = write(tmp_path / f"more-{name}.tsv", "id\ttext\nn1\t一个新的问题\n")
        res = runner.invoke(main, ["index", "add", str(tmp_path / name), str(more), "--json"] + extra)
        assert res.exit_code == 0 and json.loads(res.stdout)["count"] == 336, res.output
    local, remote = Index.load(tmp_path / "local"), Index.load(tmp_path / "ray")
    assert np.array_equal(local.exact_vectors(None), remote.exact_vectors(None)) and local.ids == remote.ids
