"""The OpenVINO backend: export (fp32 equal to torch, int8 calibrated), backend choice, refusals, the CLI."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import train_tiny_pair_model

from simpair.backend.onnx_export import export_onnx
from simpair.backend.openvino import OV_META, find_openvino, openvino_dir
from simpair.backend.int8_check import Int8Refused
from simpair.backend.runtime import bf16_supported, choose_backend, vnni_supported
from simpair.bi_encoder import BiEncoder
from simpair.cli import main
from simpair.cross_encoder import CrossEncoder
from simpair.errors import InputError, SimpairError

pytest.importorskip("openvino")
pytest.importorskip("nncf")
from simpair.backend.openvino_export import export_openvino

PAIRS = [("你好", "您好"), ("一个很长很长很长很长的问题在这里，还有更多的字", "另一个也很长很长很长的问题"),
         ("a", "b"), ("怎么开初婚未育证明", "初婚未育证明怎么开"), ("早", "晚上好吗"),
         ("How do I reset my password?", "reset password")]


@pytest.fixture(scope="module")
def trained(tiny_bert: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny trained cross-encoder, nothing exported."""
    return train_tiny_pair_model(tiny_bert, tmp_path_factory.mktemp("ov") / "model")


@pytest.fixture(scope="module")
def ov_model(trained: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of ``trained`` with an fp32 and an int8 OpenVINO export (simpair's own calibration sample)."""
    model = tmp_path_factory.mktemp("ov") / "m"
    shutil.copytree(trained, model)
    export_openvino(str(model), int8=True)
    return model


def test_export_writes_both_models_and_its_facts(ov_model: Path) -> None:
    meta = json.loads((openvino_dir(ov_model) / OV_META).read_text(encoding="utf-8"))
    assert meta["kind"] == "classifier" and meta["pairs"] and meta["output"] == "logits"
    assert meta["max_abs_diff_vs_torch"]["fp32"] < 1e-4
    assert meta["int8_calibration"]["inputs"] == 256  # every pair of the shipped sample (fewer than 300)
    assert find_openvino(ov_model) == ov_model / "openvino" / "model.xml"
    assert find_openvino(ov_model, "int8") == ov_model / "openvino" / "model_int8.xml"
    assert not (ov_model / "openvino" / "raw.onnx").exists()


def test_openvino_scores_equal_torch_and_int8_stays_close(ov_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = CrossEncoder(str(ov_model), backend="torch", precision="fp32").predict(PAIRS, batch_size=4)
    fp32 = CrossEncoder(str(ov_model), backend="openvino", precision="fp32")
    assert (fp32.backend, fp32.precision, fp32.num_labels) == ("openvino", "fp32", 2)
    np.testing.assert_allclose(fp32.predict(PAIRS, batch_size=4), expected, atol=1e-5)
    np.testing.assert_allclose(fp32.predict(PAIRS, batch_size=1), expected, atol=1e-5)  # order kept
    ov = fp32.exported
    bare = ov.tokenize(ov.inputs, ["你好"], ["您好"])
    assert all(np.array_equal(v, bare[k]) for k, v in ov.encode(["你好"], ["您好"]).items())  # LENGTH_STEP 1
    monkeypatch.setattr("simpair.backend.openvino.LENGTH_STEP", 8)  # padded to a multiple of 8, masked
    np.testing.assert_allclose(fp32.predict(PAIRS, batch_size=4), expected, atol=1e-5)
    feed = ov.encode(["你好"], ["您好"])
    width = bare["input_ids"].shape[1]
    assert feed["input_ids"].shape[1] == -(-width // 8) * 8 > width - 1
    assert np.array_equal(feed["input_ids"][:, :width], bare["input_ids"]) and feed["attention_mask"].sum() == width
    _int8_close_or_refused(ov_model, expected)
    if bf16_supported():
        bf16 = CrossEncoder(str(ov_model), backend="openvino", precision="bf16")
        assert bf16.precision == "bf16"
        np.testing.assert_allclose(bf16.predict(PAIRS, batch_size=4), expected, atol=0.02)


def _int8_close_or_refused(model: Path, expected: np.ndarray) -> None:
    """OpenVINO's int8 is right where the CPU has VNNI; on an AVX2-only CPU it drifts (mean 0.058 on the check
    pairs under emulation, max 0.135), and the int8 check must then refuse it, not serve it."""
    try:
        int8 = CrossEncoder(str(model), backend="openvino", precision="int8")
    except Int8Refused as exc:
        assert not vnni_supported(), f"int8 refused on a VNNI CPU: {exc}"
        assert "--precision fp32" in str(exc)
        return
    got = int8.predict(PAIRS, batch_size=4)
    assert int8.precision == "int8"
    assert np.abs(got - expected).max() < 0.05 and not np.allclose(got, expected, atol=1e-7)


def test_auto_prefers_openvino_for_bulk_and_onnx_for_a_few_pairs(ov_model: Path, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from simpair.backend import runtime

    assert choose_backend("auto", ov_model, "auto", bulk=False)[0] == "openvino"  # the only export
    both = tmp_path / "both"
    shutil.copytree(ov_model, both)
    export_onnx(str(both))
    assert choose_backend("auto", both, "auto", bulk=True)[0] == "openvino"
    assert choose_backend("auto", both, "bf16", bulk=True)[0] == "openvino"
    assert choose_backend("auto", both, "auto", bulk=False)[0] == "onnx"  # starts faster
    assert choose_backend("auto", both, "int8", bulk=False) == ("openvino", both / "openvino" / "model_int8.xml")
    monkeypatch.setattr(runtime, "openvino_available", lambda: False)  # exported, but openvino uninstalled
    assert choose_backend("auto", both, "auto", bulk=True)[0] in ("torch", "onnx")
    with pytest.raises(SimpairError, match="OpenVINO is not installed"):
        choose_backend("openvino", both, "auto")


def test_refusals_name_the_missing_export(trained: Path, tmp_path: Path) -> None:
    with pytest.raises(SimpairError, match=r"simpair export .* --openvino'"):
        choose_backend("openvino", trained, "auto")
    fp32_only = tmp_path / "fp32"
    shutil.copytree(trained, fp32_only)
    export_openvino(str(fp32_only))
    assert find_openvino(fp32_only, "int8") is None
    with pytest.raises(SimpairError, match="--openvino --int8"):
        choose_backend("openvino", fp32_only, "int8")


def test_bi_encoder_openvino_equals_torch(tiny_bert: Path, tmp_path: Path) -> None:
    model = tmp_path / "enc"
    shutil.copytree(tiny_bert, model)
    assert export_openvino(str(model), int8=True)["kind"] == "encoder"
    texts = ["你好", "一个很长很长很长很长的问题在这里", "a b c", "怎么开初婚未育证明"]
    torch_enc = BiEncoder(str(model), backend="torch", precision="fp32")
    ov_enc = BiEncoder(str(model), backend="openvino", precision="fp32")
    assert ov_enc.backend == "openvino" and ov_enc.dim == torch_enc.dim
    got = ov_enc.encode(texts, batch_size=3)
    np.testing.assert_allclose(got, torch_enc.encode(texts), atol=1e-5)
    try:
        int8 = BiEncoder(str(model), backend="openvino", precision="int8").encode(texts)
    except Int8Refused:
        assert not vnni_supported()  # refused only where int8 kernels saturate (see _int8_close_or_refused)
        return
    assert (got * int8).sum(axis=1).min() > 0.95  # cosine to the fp32 embeddings


def test_encoder_calibration_texts_carry_the_bi_encoders_prefix(tiny_bert: Path, tmp_path: Path) -> None:
    """int8 ranges are calibrated on what the bi-encoder feeds the model: its texts with their prefix."""
    from simpair.backend.onnx_export import trace
    from simpair.backend.openvino_export import CALIBRATION, _calibration_batches
    from simpair.readers import read_pairs

    model = tmp_path / "enc"
    shutil.copytree(tiny_bert, model)
    (model / "simpair.json").write_text(json.dumps({"kind": "bi-encoder", "prefix": "query: "}), encoding="utf-8")
    t = trace(str(model))
    first = read_pairs(CALIBRATION, require_labels=False, warn=False).pairs[:2]
    texts = [x for p in first for x in (p.text_a, p.text_b)]
    got = _calibration_batches(t, CALIBRATION, 4)[0]["input_ids"]
    want = t.src.tokenizer(["query: " + x for x in texts], padding=True, return_tensors="np")["input_ids"]
    bare = t.src.tokenizer(texts, padding=True, return_tensors="np")["input_ids"]
    assert np.array_equal(got, want) and not np.array_equal(want, bare)


def test_bad_calibration_file_is_refused_and_nothing_is_written(trained: Path, tmp_path: Path) -> None:
    model = tmp_path / "m"
    shutil.copytree(trained, model)
    bad = tmp_path / "calib.tsv"
    bad.write_text("你好\t您好\t1\n只有一列\n", encoding="utf-8")
    with pytest.raises(InputError, match="calib.tsv"):
        export_openvino(str(model), int8=True, calibration=bad)
    assert not openvino_dir(model).exists()
    res = CliRunner().invoke(main, ["export", str(model), "--openvino", "--int8", "--calibration", str(bad)])
    assert res.exit_code == 2 and "calib.tsv:2: expected 2 tab-separated columns" in res.output
    assert not openvino_dir(model).exists()


def test_cli_export_openvino_json_and_match(trained: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    model = tmp_path / "m"
    shutil.copytree(trained, model)
    calib = tmp_path / "mine.tsv"
    calib.write_text("".join(f"{a}\t{b}\n" for a, b in PAIRS), encoding="utf-8")  # labels optional
    res = runner.invoke(main, ["export", str(model), "--openvino", "--int8", "--calibration", str(calib), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)  # NNCF's progress bars went to stderr, not into the JSON
    assert set(out["files"]) == {"fp32", "int8"}
    meta = json.loads((openvino_dir(model) / OV_META).read_text(encoding="utf-8"))
    assert meta["int8_calibration"] == {"file": str(calib), "inputs": len(PAIRS)}
    res = runner.invoke(main, ["match", "--model", str(model), "你好", "您好", "--backend", "openvino",
                               "--precision", "int8", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["backend"] == "openvino" and json.loads(res.output)["precision"] == "int8"
    res = runner.invoke(main, ["export", str(model), "--calibration", str(calib)])
    assert res.exit_code == 2 and "--calibration goes with --openvino --int8" in res.output


def test_run_many_keeps_batch_order_and_raises_what_reduce_raises(ov_model: Path) -> None:
    from simpair.backend.openvino import OpenVinoModel

    model = OpenVinoModel(find_openvino(ov_model), precision="fp32")
    batches = [(["你好"], ["您好"]), (["a", "b"], ["c", "d"]), ([a for a, _ in PAIRS], [b for _, b in PAIRS])]
    got = model.run_many(batches, lambda out, _mask: out)  # two requests in flight, answers in submission order
    assert [g.shape[0] for g in got] == [1, 2, len(PAIRS)]
    for (a, b), g in zip(batches, got):
        np.testing.assert_allclose(g, model.run(a, b)[0], atol=1e-6)

    def failing(out: np.ndarray, _mask: np.ndarray) -> np.ndarray:
        raise ZeroDivisionError("reduce failed")

    with pytest.raises(ZeroDivisionError, match="reduce failed"):  # raised in OpenVINO's thread, re-raised here
        model.run_many(batches, failing)
