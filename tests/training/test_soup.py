"""Weight averaging: the weighted mean of the tensors, the threshold picked again on dev, refusals."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import train_tiny_pair_model

from simpair.errors import ConfigError, InputError
from simpair.metrics import best_threshold
from simpair.readers import read_pairs
from simpair.training.soup import average_models


@pytest.fixture(scope="module")
def parents(tiny_bert: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny trained cross-encoder and a copy of it with every float weight shifted by +1."""
    from safetensors.torch import load_file, save_file

    root = tmp_path_factory.mktemp("soup")
    a = train_tiny_pair_model(tiny_bert, root / "a")
    b = root / "b"
    shutil.copytree(a, b)
    state = load_file(str(a / "model.safetensors"))
    frozen = next(k for k in state if "word_embeddings" in k)  # kept as it is, as training with frozen embeddings does
    save_file({k: v + 1 if v.is_floating_point() and k != frozen else v for k, v in state.items()},
              str(b / "model.safetensors"))
    return a, b


def test_average_is_the_weighted_mean_with_a_threshold_picked_on_dev(parents: tuple[Path, Path], tmp_path: Path,
                                                                      dev_file: Path) -> None:
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForSequenceClassification

    from simpair.cross_encoder import CrossEncoder

    a, b = parents
    out = tmp_path / "soup"
    res = average_models([str(a), str(b)], out, weights=[3, 1], dev=[str(dev_file)], dev_limit=60)
    first, soup = load_file(str(a / "model.safetensors")), load_file(str(out / "model.safetensors"))
    assert soup.keys() == first.keys()
    frozen = next(k for k in first if "word_embeddings" in k)
    assert all(torch.allclose(soup[k], first[k] + 0.25, atol=1e-5) for k in first
               if first[k].is_floating_point() and k != frozen)
    assert torch.equal(soup[frozen], first[frozen])  # bit for bit: 0.75 x + 0.25 x would round
    meta = json.loads((out / "simpair.json").read_text(encoding="utf-8"))
    assert meta["averaged_from"] == [{"model": str(a), "weight": 0.75}, {"model": str(b), "weight": 0.25}]
    assert meta["threshold"] == res["threshold"] and "picked after averaging" in meta["threshold_rule"]
    assert "dev_metrics_per_file" not in meta and "threshold_f1" not in meta  # the first model's, not the soup's
    pairs = read_pairs(dev_file, warn=False).pairs[:60]
    scores = CrossEncoder(str(out)).predict([(p.text_a, p.text_b) for p in pairs])
    labels = np.array([p.label for p in pairs], dtype=int)
    _, best = best_threshold(scores, labels)
    assert ((scores >= meta["threshold"]) == (labels == 1)).mean() == pytest.approx(best)
    assert res["dev_accuracy_per_file"][str(dev_file)] == pytest.approx(best)
    AutoModelForSequenceClassification.from_pretrained(out)  # a plain transformers directory


def test_refusals_leave_nothing_written(parents: tuple[Path, Path], tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    a, b = parents
    out = tmp_path / "soup"
    with pytest.raises(ConfigError, match="two models or more"):
        average_models([str(a)], out)
    with pytest.raises(ConfigError, match="expected 2 weights"):
        average_models([str(a), str(b)], out, weights=[1, -1])
    odd = tmp_path / "odd"
    shutil.copytree(a, odd)
    state = load_file(str(a / "model.safetensors"))
    save_file({k: v for i, (k, v) in enumerate(state.items()) if i}, str(odd / "model.safetensors"))
    with pytest.raises(ConfigError, match="not the architecture of"):
        average_models([str(a), str(odd)], out)
    scores = tmp_path / "scores.tsv"
    scores.write_text("你好\t您好\t3.5\n", encoding="utf-8")
    with pytest.raises(InputError, match="scores.tsv:1"):
        average_models([str(a), str(b)], out, dev=[str(scores)])
    (odd / "model.safetensors").unlink()
    with pytest.raises(ConfigError, match="no model.safetensors"):
        average_models([str(a), str(odd)], out)
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".soup")]


def test_cli_average_prints_json_and_refuses_bad_weights(parents: tuple[Path, Path], tmp_path: Path) -> None:
    from click.testing import CliRunner

    from simpair.cli import main

    a, b = parents
    res = CliRunner().invoke(main, ["average", str(a), str(b), "--out", str(tmp_path / "s"), "--json"])
    assert res.exit_code == 0, res.output
    got = json.loads(res.output)
    assert [m["weight"] for m in got["averaged_from"]] == [0.5, 0.5] and got["dev_accuracy_per_file"] is None
    bad = CliRunner().invoke(main, ["average", str(a), str(b), "--out", str(tmp_path / "t"), "--weights", "1,x"])
    assert bad.exit_code == 2 and "--weights" in bad.output and not (tmp_path / "t").exists()
    bad = CliRunner().invoke(main, ["average", str(a), "--out", str(tmp_path / "t")])
    assert bad.exit_code == 2 and "two models or more" in bad.output
