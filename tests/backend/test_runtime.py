"""Fast inference paths: ONNX export (outputs equal torch), backend choice, int8, order after length sorting."""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import train_tiny_pair_model

from simpair.bi_encoder import BiEncoder
from simpair.cli import main
from simpair.cross_encoder import CrossEncoder
from simpair.errors import SimpairError
from simpair.backend.onnx_export import export_onnx
from simpair.backend.onnx import ONNX_META, find_onnx, onnx_dir
from simpair.backend.runtime import FFN_OUT, choose_backend, length_sorted_batches, resolve_precision

PAIRS = [("你好", "您好"), ("一个很长很长很长很长的问题在这里，还有更多的字", "另一个也很长很长很长的问题"),
         ("a", "b"), ("怎么开初婚未育证明", "初婚未育证明怎么开"), ("早", "晚上好吗"),
         ("How do I reset my password?", "reset password")]


@pytest.fixture(scope="module")
def exported(tiny_bert: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny trained cross-encoder with an fp32 and an int8 ONNX export beside it."""
    out = train_tiny_pair_model(tiny_bert, tmp_path_factory.mktemp("rt") / "model")
    export_onnx(str(out), int8=True)
    return out


def test_export_writes_graphs_beside_the_model(exported: Path) -> None:
    meta = json.loads((exported / "onnx" / ONNX_META).read_text(encoding="utf-8"))
    assert (exported / "onnx" / "model.onnx").is_file() and (exported / "onnx" / "model_int8.onnx").is_file()
    assert meta["kind"] == "classifier" and meta["pairs"] and meta["output"] == "logits"
    assert meta["fused"].get("Attention") == 2  # the tiny model's two layers: ONNX Runtime fused attention
    assert meta["max_abs_diff_vs_torch"]["fp32"] < 1e-4
    assert find_onnx(exported) == exported / "onnx" / "model.onnx"
    assert find_onnx(exported, "int8") == exported / "onnx" / "model_int8.onnx"


def test_onnx_scores_equal_torch(exported: Path) -> None:
    torch_ce = CrossEncoder(str(exported), backend="torch", precision="fp32")
    onnx_ce = CrossEncoder(str(exported), bulk=False)  # auto: the export beside the model
    assert (torch_ce.backend, onnx_ce.backend, onnx_ce.precision) == ("torch", "onnx", "fp32")
    expected = torch_ce.predict(PAIRS, batch_size=4)
    np.testing.assert_allclose(onnx_ce.predict(PAIRS, batch_size=4), expected, atol=1e-5)
    int8 = CrossEncoder(str(exported), precision="int8")  # explicit int8: the int8 export
    assert (int8.backend, int8.precision) == ("onnx", "int8")
    got = int8.predict(PAIRS, batch_size=4)
    assert np.abs(got - expected).max() < 0.05 and not np.allclose(got, expected, atol=1e-7)


def test_onnx_restores_input_order_after_length_sorting(exported: Path) -> None:
    ce = CrossEncoder(str(exported), backend="onnx")
    batched = ce.predict(PAIRS, batch_size=2)
    one_by_one = np.array([ce.predict([p], batch_size=1)[0] for p in PAIRS])
    np.testing.assert_allclose(batched, one_by_one, atol=1e-5)
    assert len(set(np.round(batched, 6))) > 1
    order = np.concatenate(length_sorted_batches([len(a) + len(b) for a, b in PAIRS], 2))
    assert order.tolist() != list(range(len(PAIRS)))  # the batches really were reordered


def test_torch_int8_stays_close_to_fp32(exported: Path) -> None:
    fp32 = CrossEncoder(str(exported), backend="torch", precision="fp32")
    int8 = CrossEncoder(str(exported), backend="torch", precision="int8")
    assert "Int8Linear" in {type(m).__name__ for m in int8.model.modules()}
    left = [n for n, m in int8.model.named_modules() if type(m).__name__ in ("Linear", "Bf16Linear")]
    assert left and all(re.search(FFN_OUT, n) for n in left)  # only the feed-forward outputs stay unquantised
    np.testing.assert_allclose(int8.predict(PAIRS), fp32.predict(PAIRS), atol=0.05)


def test_backend_choice_and_refusals(exported: Path, tiny_bert: Path) -> None:
    assert choose_backend("auto", exported, "bf16") == ("torch", None)  # bf16 only on torch
    assert choose_backend("torch", exported, "auto") == ("torch", None)
    assert choose_backend("auto", tiny_bert, "auto") == ("torch", None)  # nothing exported
    with pytest.raises(SimpairError, match="simpair export .* --onnx"):
        choose_backend("onnx", tiny_bert, "auto")
    with pytest.raises(SimpairError, match="bf16 runs on the torch or openvino backend"):
        choose_backend("onnx", exported, "bf16")
    with pytest.raises(SimpairError, match="unknown precision"):
        resolve_precision("fp8")


def test_auto_prefers_torch_bf16_for_bulk_work_on_bf16_cpus(exported: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import simpair.backend.runtime as runtime

    monkeypatch.setattr(runtime, "bf16_supported", lambda: True)
    assert choose_backend("auto", exported, "auto", bulk=True) == ("torch", None)  # files, indexes, servers
    assert choose_backend("auto", exported, "auto", bulk=False)[0] == "onnx"  # a few pairs: start-up wins
    assert choose_backend("auto", exported, "fp32", bulk=True)[0] == "onnx"  # asked for fp32: the export
    monkeypatch.setattr(runtime, "bf16_supported", lambda: False)
    assert choose_backend("auto", exported, "auto", bulk=True)[0] == "onnx"  # ONNX fp32 beats torch fp32


def test_an_export_older_than_the_weights_is_not_used(exported: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(exported, copy)
    assert find_onnx(copy) is not None
    weights = copy / "model.safetensors"
    stat = weights.stat()
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # retrained after the export
    with pytest.warns(UserWarning, match="exported before"):
        assert find_onnx(copy) is None
    with pytest.warns(UserWarning, match="exported before"):
        assert CrossEncoder(str(copy), bulk=False).backend == "torch"


def test_bi_encoder_onnx_equals_torch(tiny_bert: Path, tmp_path: Path) -> None:
    model = tmp_path / "enc"
    shutil.copytree(tiny_bert, model)
    result = export_onnx(str(model))
    assert result["kind"] == "encoder" and onnx_dir(model) == model / "onnx"
    texts = ["你好", "一个很长很长很长很长的问题在这里", "a b c", "怎么开初婚未育证明"]
    torch_enc = BiEncoder(str(model), backend="torch", precision="fp32")
    onnx_enc = BiEncoder(str(model), bulk=False)
    assert onnx_enc.backend == "onnx" and onnx_enc.dim == torch_enc.dim
    got = onnx_enc.encode(texts, batch_size=3)
    np.testing.assert_allclose(got, torch_enc.encode(texts), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_cli_export_and_match_with_each_backend(exported: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    model = tmp_path / "m"
    shutil.copytree(exported, model, ignore=shutil.ignore_patterns("onnx"))
    res = runner.invoke(main, ["export", str(model), "--onnx", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["files"] == {"fp32": str(model / "onnx" / "model.onnx")}
    probs = {}
    for backend in ("torch", "onnx"):
        res = runner.invoke(main, ["match", "--model", str(model), "你好", "您好", "--backend", backend,
                                   "--precision", "fp32", "--json"])
        assert res.exit_code == 0, res.output
        probs[backend] = json.loads(res.output)["probability"]
    assert abs(probs["torch"] - probs["onnx"]) < 1e-5
    res = runner.invoke(main, ["match", "--model", str(model), "你好", "您好", "--precision", "int8", "--backend",
                               "onnx"])
    assert res.exit_code == 2 and "--onnx --int8" in res.output  # int8 was not exported
    res = runner.invoke(main, ["export", str(model), "--int8"])
    assert res.exit_code == 2 and "--int8 goes with --onnx" in res.output


def test_an_export_is_stale_once_its_adapter_is_laid_over_another_base(tmp_path: Path) -> None:
    """An adapter's export was made over one base (e5-small); moved to the pruned base it must be redone."""
    from simpair.backend.exports import weights_stamp

    (tmp_path / "adapter_model.safetensors").write_bytes(b"x")
    (tmp_path / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "e5-small"}))
    first = weights_stamp(tmp_path)
    (tmp_path / "simpair.json").write_text(json.dumps({"base_model": "e5-small-zh-en"}))
    assert weights_stamp(tmp_path) != first and "e5-small-zh-en" in weights_stamp(tmp_path)
