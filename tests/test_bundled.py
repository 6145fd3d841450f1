"""The bundled sentiment model, as a new user meets it: no --model, offline, on the converted e5-small."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from simpair.cli import main
from simpair.models import bundled_dir, list_models

BUNDLED = Path(__file__).resolve().parents[1] / "simpair" / "bundled" / "sentiment"
pytestmark = pytest.mark.skipif(not (BUNDLED / "adapter_config.json").is_file(), reason="no bundled sentiment model")


def test_bundled_adapter_is_small_and_documented() -> None:
    size = sum(p.stat().st_size for p in BUNDLED.iterdir())
    assert size < 12 * 2**20, f"bundled adapter is {size / 2**20:.1f} MiB"
    meta = json.loads((BUNDLED / "simpair.json").read_text())
    assert meta["base_model"] == "e5-small" and meta["labels"] == ["negative", "positive"] and meta["adapter"]
    card = (BUNDLED / "README.md").read_text()
    for needed in ("ChnSentiCorp", "SST-2", "configs/sentiment-e5-lora.yaml", "dev"):
        assert needed in card
    assert bundled_dir("sentiment") == BUNDLED


def test_acceptance_examples(e5_dir: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(main, ["sentiment", "这家酒店的服务太差了，再也不来了", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["label"] == "negative"
    res = runner.invoke(main, ["sentiment", "AI changes the world!"])
    assert res.exit_code == 0, res.output
    assert res.stdout.startswith("positive")


def test_bundled_model_on_our_sample(e5_dir: Path) -> None:
    from simpair.sentiment import Sentiment
    from simpair.texts import read_texts

    dev = read_texts(Path(__file__).resolve().parents[1] / "data" / "sentiment" / "dev.tsv")
    rows = Sentiment()(dev.texts)
    correct = sum(r["label"] == ("positive" if y == "1" else "negative") for r, y in zip(rows, dev.labels))
    assert correct >= 14, f"{correct} of {len(rows)} of our own sample reviews"
    assert any(m.name == "sentiment" for m in list_models())
