"""Training methods on tiny random models: only the intended parameters change; adapters round-trip."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import DATA, classify_cfg

from simpair.config import build_config
from simpair.errors import ConfigError
from simpair.models import load_classifier
from simpair.training import train

SENT = DATA / "sentiment"
HEAD = ("classifier", "pooler")


def _weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _base_weights(tiny: Path) -> dict[str, torch.Tensor]:
    from transformers import AutoModel

    return {f"bert.{k}": v for k, v in _weights(AutoModel.from_pretrained(str(tiny))).items()}


def _changed(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> set[str]:
    return {k for k, v in before.items() if k in after and not torch.equal(v, after[k])}


@pytest.mark.parametrize(("method", "extra"), [("full", {}), ("freeze", {"freeze_layers": 1}), ("bitfit", {})])
def test_full_model_methods_change_only_their_parameters(method: str, extra: dict, tiny_bert: Path,
                                                         tmp_path: Path) -> None:
    meta = train(classify_cfg(tiny_bert, tmp_path / method, method, freeze_embeddings="yes", **extra),
                 progress=False)
    model, _, saved, _ = load_classifier(tmp_path / method)
    changed = _changed(_base_weights(tiny_bert), _weights(model))
    assert changed, "training changed nothing"
    assert not any("word_embeddings" in k for k in changed)
    if method == "freeze":
        assert not any(".layer.0." in k for k in changed) and any(".layer.1." in k for k in changed)
    if method == "bitfit":
        assert all(k.endswith(".bias") or any(h in k for h in HEAD) for k in changed)
        assert meta["parameters"]["trainable_parameters"] < meta["parameters"]["total_parameters"] / 10
    if method == "full":
        assert any(k.endswith(".weight") and "layer" in k for k in changed)
    assert saved["method"] == method and not saved["adapter"]


def test_lora_changes_only_target_modules_and_saves_small(tiny_bert: Path, tmp_path: Path) -> None:
    out = tmp_path / "lora"
    meta = train(classify_cfg(tiny_bert, out, "lora", lora_r=4), progress=False)
    assert (out / "adapter_model.safetensors").is_file() and not (out / "model.safetensors").exists()
    assert not (out / "tokenizer.json").exists(), "the adapter loads its tokenizer from the base"
    cfg = json.loads((out / "adapter_config.json").read_text())
    assert cfg["base_model_name_or_path"] == str(tiny_bert) and cfg["r"] == 4
    merged, _, saved, _ = load_classifier(out)
    changed = _changed(_base_weights(tiny_bert), _weights(merged))
    targets = ("query.weight", "key.weight", "value.weight", "dense.weight")
    assert changed and all(k.endswith(targets) or any(h in k for h in HEAD) for k in changed)
    assert not any("LayerNorm" in k or "embeddings" in k for k in changed)
    assert meta["parameters"]["trainable_parameters"] < meta["parameters"]["total_parameters"]
    assert saved["adapter"] and saved["labels"] == ["negative", "positive"]


def test_merge_equals_unmerged_and_reload_reproduces_dev_metrics(tiny_bert: Path, tmp_path: Path) -> None:
    from simpair.metrics import multiclass_metrics
    from simpair.readers import read_texts

    out = tmp_path / "lora"
    meta = train(classify_cfg(tiny_bert, out, "lora"), progress=False)
    merged, tok, _, _ = load_classifier(out, merge=True)
    unmerged, _, _, _ = load_classifier(out, merge=False)
    dev = read_texts(SENT / "dev.tsv")
    enc = tok(dev.texts, truncation=True, max_length=48, padding=True, return_tensors="pt")
    with torch.inference_mode():
        a = merged(**enc).logits
        b = unmerged(**enc).logits
    assert torch.allclose(a, b, atol=1e-5)
    probs = torch.softmax(a, -1).numpy()
    m = multiclass_metrics(probs, dev.encode(["0", "1"]), ["negative", "positive"])
    assert m["accuracy"] == pytest.approx(meta["dev_metrics"]["accuracy"])
    assert m["roc_auc"] == pytest.approx(meta["dev_metrics"]["roc_auc"], abs=1e-6)


@pytest.mark.parametrize("method", ["prompt", "prefix"])
def test_prompt_and_prefix_adapters_hold_only_prompt_and_head(method: str, tiny_bert: Path, tmp_path: Path) -> None:
    from safetensors import safe_open

    out = tmp_path / method
    meta = train(classify_cfg(tiny_bert, out, method, num_virtual_tokens=5), progress=False)
    with safe_open(str(out / "adapter_model.safetensors"), "pt") as f:
        keys = list(f.keys())
    assert keys and all("prompt_embeddings" in k or any(h in k for h in HEAD) for k in keys)
    assert any("prompt_embeddings" in k for k in keys)
    model, tok, _, _ = load_classifier(out)
    enc = tok(["还不错", "terrible"], padding=True, return_tensors="pt")
    with torch.inference_mode():
        probs = torch.softmax(model(**enc).logits, -1).numpy()
    assert probs.shape == (2, 2) and np.allclose(probs.sum(1), 1.0)
    with torch.inference_mode():  # the virtual tokens really take part: moving them moves the output
        emb = model.prompt_encoder["default"].embedding.weight
        emb.add_(torch.randn_like(emb))
        shifted = torch.softmax(model(**enc).logits, -1).numpy()
    assert not np.allclose(probs, shifted, atol=1e-6)
    assert meta["parameters"]["trainable_parameters"] < meta["parameters"]["total_parameters"] / 3


def test_lora_on_pairs_and_on_ernie(tiny_bert: Path, tiny_ernie: Path, tmp_path: Path) -> None:
    from simpair.cross_encoder import CrossEncoder

    for name, model in (("bert", tiny_bert), ("ernie", tiny_ernie)):
        cfg = build_config(dict(model=str(model), train=str(DATA / "train.tsv"), dev=str(DATA / "dev.tsv"),
                                out=str(tmp_path / name), method="lora", max_steps=4, eval_steps=2, batch_size=16,
                                bf16="no", max_length=48))
        meta = train(cfg, progress=False)
        ce = CrossEncoder(str(tmp_path / name))
        assert ce.meta["adapter"] and 0.0 <= ce.match("问题一", "问题二")["probability"] <= 1.0
        assert meta["task"] == "classification"
    assert type(ce.model).__name__ == "ErnieForSequenceClassification"


def test_bad_lora_target_is_a_config_error(tiny_bert: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="lora_target_modules"):
        train(classify_cfg(tiny_bert, tmp_path / "x", "lora", lora_target_modules="q_proj"), progress=False)
    assert not (tmp_path / "x").exists()
