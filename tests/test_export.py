"""simpair export: a LoRA adapter merged into a plain model; a full model stored as a low-rank delta."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from conftest import DATA, classify_cfg

from simpair.cli import main
from simpair.config import build_config
from simpair.cross_encoder import CrossEncoder
from simpair.errors import SimpairError
from simpair.export import lowrank_delta, merge_adapter
from simpair.models import load_classifier
from simpair.training import train

PAIRS = [("怎么开初婚未育证明", "初婚未育证明怎么开"), ("今天天气怎么样", "手机怎么充电"), ("很好", "不好")]


@pytest.fixture(scope="module")
def full_pair_model(tiny_bert: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny pair model fully fine-tuned with its word embeddings frozen (as simpair does for e5-small)."""
    out = tmp_path_factory.mktemp("export") / "full"
    train(build_config(dict(model=str(tiny_bert), train=str(DATA / "train.tsv"), dev=str(DATA / "dev.tsv"),
                            out=str(out), max_steps=8, eval_steps=4, batch_size=16, learning_rate=5e-3,
                            freeze_embeddings="yes", bf16="no", max_length=48)), progress=False)
    return out


def test_export_merge_writes_a_plain_model(tiny_bert: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    out = tmp_path / "lora"
    train(classify_cfg(tiny_bert, out, "lora"), progress=False)
    merge_adapter(str(out), tmp_path / "merged")
    plain = AutoModelForSequenceClassification.from_pretrained(str(tmp_path / "merged")).eval()
    tok = AutoTokenizer.from_pretrained(str(tmp_path / "merged"))
    merged, _, _, _ = load_classifier(out)
    enc = tok(["很好", "bad"], padding=True, return_tensors="pt")
    with torch.inference_mode():
        assert torch.allclose(plain(**enc).logits, merged(**enc).logits, atol=1e-5)
    assert plain.config.id2label == {0: "negative", 1: "positive"}
    train(classify_cfg(tiny_bert, tmp_path / "prompt", "prompt"), progress=False)
    with pytest.raises(SimpairError, match="only LoRA"):
        merge_adapter(str(tmp_path / "prompt"), tmp_path / "m2")


def test_lowrank_delta_at_full_rank_reproduces_the_model(full_pair_model: Path, tiny_bert: Path,
                                                          tmp_path: Path) -> None:
    full = CrossEncoder(str(full_pair_model), bf16=False)
    hidden = full.model.config.hidden_size  # full rank of every square and rectangular weight here
    result = lowrank_delta(str(full_pair_model), str(tiny_bert), hidden, tmp_path / "delta")
    assert result["energy_kept"] == pytest.approx(1.0, abs=1e-6)
    delta = CrossEncoder(str(tmp_path / "delta"), bf16=False)
    assert delta.meta["adapter"] and delta.meta["base_model"] == str(tiny_bert)
    assert delta.threshold == full.threshold and delta.max_length == full.max_length
    # stored in fp16: equal to the full model up to half-precision rounding
    assert full.predict(PAIRS) == pytest.approx(delta.predict(PAIRS), abs=2e-3)
    weights = (tmp_path / "delta" / "adapter_model.safetensors").stat().st_size
    assert weights < (full_pair_model / "model.safetensors").stat().st_size


def test_lowrank_delta_cuts_each_change_to_its_rank(full_pair_model: Path, tiny_bert: Path, tmp_path: Path) -> None:
    high = lowrank_delta(str(full_pair_model), str(tiny_bert), 16, tmp_path / "r16")
    low = lowrank_delta(str(full_pair_model), str(tiny_bert), 1, tmp_path / "r1")
    assert low["saved_bytes"] < high["saved_bytes"] and low["energy_kept"] < high["energy_kept"] < 1.0
    merged = load_classifier(tmp_path / "r1")[0].state_dict()
    full = load_classifier(full_pair_model)[0].state_dict()
    base = {f"bert.{k}": v for k, v in load_classifier(tiny_bert)[0].bert.state_dict().items()}
    weight = "bert.encoder.layer.0.intermediate.dense.weight"
    assert torch.linalg.matrix_rank(merged[weight] - base[weight], atol=1e-4) == 1
    assert not torch.allclose(merged[weight], full[weight], atol=1e-3)
    for whole in ("bert.encoder.layer.0.intermediate.dense.bias", "bert.encoder.layer.1.output.LayerNorm.weight",
                  "bert.embeddings.position_embeddings.weight", "classifier.weight"):  # kept whole (fp16)
        assert torch.allclose(merged[whole], full[whole], atol=1e-2), whole


def test_lowrank_delta_refusals(full_pair_model: Path, tiny_bert: Path, tmp_path: Path) -> None:
    train(classify_cfg(tiny_bert, tmp_path / "lora", "lora"), progress=False)
    with pytest.raises(SimpairError, match="already an adapter"):
        lowrank_delta(str(tmp_path / "lora"), str(tiny_bert), 4, tmp_path / "d1")
    unfrozen = tmp_path / "unfrozen"
    train(build_config(dict(model=str(tiny_bert), train=str(DATA / "train.tsv"), out=str(unfrozen), max_steps=2,
                            batch_size=16, learning_rate=5e-3, freeze_embeddings="no", bf16="no")), progress=False)
    with pytest.raises(SimpairError, match="word embeddings differ"):
        lowrank_delta(str(unfrozen), str(tiny_bert), 4, tmp_path / "d2")
    assert not (tmp_path / "d1").exists() and not (tmp_path / "d2").exists()
    runner = CliRunner()
    res = runner.invoke(main, ["export", str(full_pair_model), "--out", str(tmp_path / "d3"), "--merge",
                               "--delta-rank", "2"])
    assert res.exit_code == 2 and "choose one" in res.output
    res = runner.invoke(main, ["export", str(full_pair_model), "--out", str(tmp_path / "d4"), "--delta-rank", "2",
                               "--base", str(tiny_bert), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["rank"] == 2 and (tmp_path / "d4" / "adapter_config.json").is_file()


def test_bi_encoder_delta_becomes_a_sentence_transformers_directory(tiny_bert: Path, tmp_path: Path,
                                                                     train_file: Path) -> None:
    """A fine-tuned bi-encoder written as a full-rank delta over its base and merged back
    (simpair.models.bundled_encoder) embeds as the original does; a changed bundle is merged again."""
    from sentence_transformers import SentenceTransformer

    from simpair.models.bundled_encoder import materialize

    bi = tmp_path / "bi"
    train(build_config(dict(kind="bi-encoder", model=str(tiny_bert), train=str(train_file), out=str(bi),
                            max_steps=4, batch_size=8, bf16="no", freeze_embeddings="yes", prefix="q: ")),
          progress=False)
    hidden = SentenceTransformer(str(bi), device="cpu")[0].auto_model.config.hidden_size  # full rank here
    result = lowrank_delta(str(bi), str(tiny_bert), hidden, tmp_path / "delta")
    assert result["energy_kept"] == pytest.approx(1.0, abs=1e-6)
    assert (tmp_path / "delta" / "modules.json").is_file() and not (tmp_path / "delta" / "model.safetensors").exists()
    out = materialize(tmp_path / "delta", tiny_bert, tmp_path / "home" / "encoder")
    texts = ["q: 怎么开初婚未育证明", "q: 你好"]
    want = SentenceTransformer(str(bi), device="cpu").encode(texts, normalize_embeddings=True)
    got = SentenceTransformer(str(out), device="cpu").encode(texts, normalize_embeddings=True)
    assert got == pytest.approx(want, abs=3e-3)  # fp16 storage
    stamp = (out / "bundle.json").stat().st_mtime_ns
    assert materialize(tmp_path / "delta", tiny_bert, out) == out and (out / "bundle.json").stat().st_mtime_ns == stamp
    lowrank_delta(str(bi), str(tiny_bert), 1, tmp_path / "delta1")
    for name in ("adapter_config.json", "adapter_model.safetensors"):  # a new bundle in the same place
        shutil.copy2(tmp_path / "delta1" / name, tmp_path / "delta" / name)
    materialize(tmp_path / "delta", tiny_bert, out)
    assert (out / "bundle.json").stat().st_mtime_ns != stamp


def test_a_bi_encoder_delta_directory_loads_and_merges_by_path(tiny_bert: Path, tmp_path: Path,
                                                               train_file: Path) -> None:
    """The delta `export --delta-rank` writes for a bi-encoder is usable where it lies: BiEncoder(path) merges it
    once into the cache, and `export --merge` writes it out as a plain sentence-transformers directory."""
    from sentence_transformers import SentenceTransformer

    from simpair.bi_encoder import BiEncoder
    from simpair.models import resolve

    bi = tmp_path / "bi"
    train(build_config(dict(kind="bi-encoder", model=str(tiny_bert), train=str(train_file), out=str(bi),
                            max_steps=4, batch_size=8, bf16="no", freeze_embeddings="yes", prefix="q: ")),
          progress=False)
    hidden = SentenceTransformer(str(bi), device="cpu")[0].auto_model.config.hidden_size
    lowrank_delta(str(bi), str(tiny_bert), hidden, tmp_path / "delta")
    texts = ["怎么开初婚未育证明", "你好"]
    want = BiEncoder(str(bi)).encode(texts)
    cached = Path(resolve(str(tmp_path / "delta")))
    assert cached != tmp_path / "delta" and (cached / "model.safetensors").is_file()
    assert Path(resolve(str(tmp_path / "delta"))) == cached  # merged once, found again
    assert BiEncoder(str(tmp_path / "delta")).encode(texts) == pytest.approx(want, abs=3e-3)
    res = CliRunner().invoke(main, ["export", str(tmp_path / "delta"), "--merge", "--out", str(tmp_path / "plain")])
    assert res.exit_code == 0, res.output
    meta = json.loads((tmp_path / "plain" / "simpair.json").read_text(encoding="utf-8"))
    assert meta["adapter"] is False and meta["merged_from"] == str(tmp_path / "delta")
    assert not any((tmp_path / "plain" / name).exists() for name in ("adapter_config.json", "bundle.json"))
    got = SentenceTransformer(str(tmp_path / "plain"), device="cpu").encode(["q: " + t for t in texts],
                                                                           normalize_embeddings=True)
    assert got == pytest.approx(want, abs=3e-3)
