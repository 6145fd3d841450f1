"""The int8 check: an int8 model is compared with fp32 on this CPU before first use; one that drifts is
refused with a clear message, and the verdict is cached per model file and CPU class."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import train_tiny_pair_model

from simpair.backend.int8_check import MEAN_BOUND, Int8Check, Int8Refused, check_pairs, verify_int8
from simpair.backend.onnx_export import export_onnx
from simpair.cli import main
from simpair.cross_encoder import CrossEncoder
from simpair.utils import simpair_home


@pytest.fixture(scope="module")
def exported(tiny_bert: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = train_tiny_pair_model(tiny_bert, tmp_path_factory.mktemp("i8") / "model")
    export_onnx(str(out), int8=True)
    return out


def _checks() -> list[Path]:
    return sorted((simpair_home() / "int8-checks").glob("*.json"))


def test_verdict_is_cached_and_a_drift_refused() -> None:
    pairs = check_pairs()
    assert len(pairs) == 128 and all(a and b for a, b in pairs)
    fp32 = np.linspace(0, 1, len(pairs))
    calls = []

    def reference() -> object:
        calls.append(1)
        return lambda p: fp32

    assert verify_int8("good", "id-good", lambda p: fp32 + MEAN_BOUND / 2, reference)["ok"]
    assert verify_int8("good", "id-good", lambda p: fp32 + 1, reference) is None  # cached: not scored again
    assert len(calls) == 1
    with pytest.raises(Int8Refused, match=r"int8 is refused on this CPU .*differ from fp32 by 0\.100"):
        verify_int8("bad", "id-bad", lambda p: fp32 + 0.1, reference, threshold=0.5)
    with pytest.raises(Int8Refused, match="--precision fp32"):  # the cached refusal, before any scoring
        Int8Check("bad", "id-bad")


def test_check_can_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIMPAIR_INT8_CHECK", "off")
    assert verify_int8("off", "id-off", lambda p: np.ones(len(p)), lambda: lambda p: np.zeros(len(p))) is None
    assert not Int8Check("off", "id-off").needed


def test_exported_int8_passes_and_records_its_cpu(exported: Path) -> None:
    before = set(_checks())
    ce = CrossEncoder(str(exported), precision="int8")
    assert (ce.backend, ce.precision) == ("onnx", "int8")
    new = set(_checks()) - before
    assert len(new) == 1
    verdict = json.loads(next(iter(new)).read_text(encoding="utf-8"))
    assert verdict["ok"] and verdict["pairs"] == 128 and verdict["mean_abs_diff"] <= MEAN_BOUND
    assert verdict["cpu"]["isa"] and "flags" in verdict["cpu"]
    CrossEncoder(str(exported), precision="int8")
    assert set(_checks()) == before | new  # the second load read the verdict


def test_an_int8_file_that_drifts_is_refused_by_the_cli(exported: Path, tmp_path: Path) -> None:
    """A real int8 graph whose classifier bias was shifted: every CPU sees it drift."""
    import shutil

    import onnx
    from onnx import numpy_helper

    model = tmp_path / "drifted"
    shutil.copytree(exported, model)
    file = model / "onnx" / "model_int8.onnx"
    graph = onnx.load(str(file), load_external_data=False)
    for init in graph.graph.initializer:
        if init.name.endswith("classifier.bias"):
            bias = numpy_helper.to_array(init).copy()
            bias[-1] += 2.0  # the "same" logit
            init.CopyFrom(numpy_helper.from_array(bias, init.name))
    onnx.save(graph, str(file))
    result = CliRunner().invoke(main, ["match", "--model", str(model), "--precision", "int8", "你好", "您好"])
    assert result.exit_code == 2
    assert "int8 is refused on this CPU" in result.output and "Traceback" not in result.output
    fp32 = CliRunner().invoke(main, ["match", "--model", str(model), "--precision", "fp32", "你好", "您好", "--json"])
    assert fp32.exit_code == 0, fp32.output


def test_torch_int8_is_checked_too(exported: Path) -> None:
    before = set(_checks())
    ce = CrossEncoder(str(exported), backend="torch", precision="int8")
    assert "Int8Linear" in {type(m).__name__ for m in ce.model.modules()}
    new = set(_checks()) - before
    assert len(new) == 1 and json.loads(new.pop().read_text(encoding="utf-8"))["pairs"] == 128
