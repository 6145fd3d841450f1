"""The bundled models (sentiment, question matcher) as a new user meets them: no --model, offline, on the
converted e5-small."""
from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from simpair.cli import main
from simpair.models import bundled_dir, list_models
from simpair.backend.onnx import find_onnx

BUNDLED = Path(__file__).resolve().parents[1] / "simpair" / "bundled" / "sentiment"
MATCHER = BUNDLED.parent / "matcher"
needs_sentiment = pytest.mark.skipif(not (BUNDLED / "adapter_config.json").is_file(), reason="no bundled sentiment")
needs_matcher = pytest.mark.skipif(not (MATCHER / "adapter_config.json").is_file(), reason="no bundled matcher")


@needs_sentiment
def test_bundled_adapter_is_small_and_documented() -> None:
    size = sum(p.stat().st_size for p in BUNDLED.iterdir())
    assert size < 12 * 2**20, f"bundled adapter is {size / 2**20:.1f} MiB"
    meta = json.loads((BUNDLED / "simpair.json").read_text())
    assert meta["base_model"] == "e5-small" and meta["labels"] == ["negative", "positive"] and meta["adapter"]
    card = (BUNDLED / "README.md").read_text()
    for needed in ("ChnSentiCorp", "SST-2", "configs/sentiment-e5-lora.yaml", "dev"):
        assert needed in card
    assert bundled_dir("sentiment") == BUNDLED


@needs_sentiment
def test_acceptance_examples(e5_dir: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(main, ["sentiment", "这家酒店的服务太差了，再也不来了", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["label"] == "negative"
    res = runner.invoke(main, ["sentiment", "AI changes the world!"])
    assert res.exit_code == 0, res.output
    assert res.stdout.startswith("positive")


@needs_sentiment
def test_bundled_model_on_our_sample(e5_dir: Path) -> None:
    from simpair.sentiment import Sentiment
    from simpair.readers import read_texts

    dev = read_texts(Path(__file__).resolve().parents[1] / "data" / "sentiment" / "dev.tsv")
    rows = Sentiment()(dev.texts)
    correct = sum(r["label"] == ("positive" if y == "1" else "negative") for r, y in zip(rows, dev.labels))
    assert correct >= 14, f"{correct} of {len(rows)} of our own sample reviews"
    assert any(m.name == "sentiment" for m in list_models())


# ---------------------------------------------------------------- the question matcher


@needs_matcher
def test_matcher_is_a_small_documented_delta() -> None:
    size = sum(p.stat().st_size for p in MATCHER.iterdir())
    assert size < 24 * 2**20, f"bundled matcher is {size / 2**20:.1f} MiB"
    meta = json.loads((MATCHER / "simpair.json").read_text())
    assert meta["base_model"] == "e5-small" and meta["adapter"] and meta["kind"] == "cross-encoder"
    assert meta["delta"]["rank"] >= 1 and 0.5 < meta["threshold"] < 0.9
    card = (MATCHER / "README.md").read_text()
    for needed in ("LCQMC", "research use", "make matcher", f"{meta['threshold']:.4f}", "0.894"):
        assert needed in card, needed
    assert bundled_dir("matcher") == MATCHER


@needs_matcher
def test_matcher_is_the_default_and_passes_the_acceptance_pairs(e5_dir: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    resolve = importlib.import_module("simpair.models.resolve")  # the module, not the function of that name

    monkeypatch.delenv("SIMPAIR_MODEL", raising=False)
    monkeypatch.setattr(resolve, "last_trained_file", lambda: tmp_path / "no-last-model")  # a fresh install
    assert resolve.default_model() == "matcher"
    runner = CliRunner()
    res = runner.invoke(main, ["match", "喜欢打篮球的男生喜欢什么样的女生", "爱打篮球的男生喜欢什么样的女生", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["same"] is True and out["model"] == "matcher"
    # the first use exported the matcher to ONNX in the cache: every start from now on skips torch
    assert find_onnx(MATCHER) is not None and out["backend"] == "onnx" and out["precision"] == "fp32"
    res = runner.invoke(main, ["match", "谁有狂三这张高清的", "这张高清图，谁有", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["same"] is False
    res = runner.invoke(main, ["match", "喜欢打篮球的男生喜欢什么样的女生", "爱打篮球的男生喜欢什么样的女生", "--json",
                               "--backend", "torch", "--precision", "fp32"])
    assert res.exit_code == 0, res.output
    torch_out = json.loads(res.stdout)
    assert torch_out["backend"] == "torch" and abs(torch_out["probability"] - out["probability"]) < 1e-5


@needs_matcher
def test_server_answers_match_with_the_bundled_matcher(e5_dir: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from fastapi.testclient import TestClient

    resolve = importlib.import_module("simpair.models.resolve")  # the module, not the function of that name
    from simpair.serve import create_app

    monkeypatch.delenv("SIMPAIR_MODEL", raising=False)
    monkeypatch.setattr(resolve, "last_trained_file", lambda: tmp_path / "no-last-model")
    with TestClient(create_app(load_sentiment=False)) as client:
        res = client.post("/match", json={"text_a": "喜欢打篮球的男生喜欢什么样的女生",
                                          "text_b": "爱打篮球的男生喜欢什么样的女生"})
        assert res.status_code == 200 and res.json()["same"] is True, res.text
