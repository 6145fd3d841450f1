"""CPU features: read by cpuid (true under an emulator), capped by SIMPAIR_CPU_ISA, described for results."""
from __future__ import annotations

import os

import pytest

from simpair.backend import cpu, runtime


@pytest.fixture(autouse=True)
def fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SIMPAIR_CPU_ISA", raising=False)
    cpu._detect.cache_clear()


def test_features_agree_with_cpuid() -> None:
    from numpy._core._multiarray_umath import __cpu_features__ as found

    flags = cpu.cpu_flags()
    assert ("avx2" in flags) == bool(found["AVX2"])
    assert ("avx512f" in flags) == bool(found["AVX512F"])
    assert ("avx512_vnni" in flags) == bool(found["AVX512VNNI"])
    assert cpu.has_vnni() == runtime.vnni_supported() == bool(flags & cpu.VNNI)
    assert cpu.has_bf16() == runtime.bf16_supported()


def test_isa_cap_hides_vnni_and_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIMPAIR_CPU_ISA", "avx2")
    assert not cpu.has_vnni() and not cpu.has_bf16()
    assert cpu.cpu_flags() <= {"avx2", "fma"}
    assert cpu.isa_class() in ("avx2", "baseline")
    assert runtime.resolve_precision("auto") == "fp32"  # no bf16 to pick
    assert "SIMPAIR_CPU_ISA=avx2" in cpu.describe()["features_from"]


def test_describe_names_what_a_result_needs() -> None:
    d = cpu.describe()
    assert set(d) >= {"model", "cores", "isa", "flags", "vnni", "bf16", "features_from"}
    assert d["cores"] and d["model"] and d["isa"] == cpu.isa_class()
    assert d["flags"] == sorted(cpu.cpu_flags())


@pytest.mark.skipif(not os.environ.get("SIMPAIR_EXPECT_ISA"), reason="set by make test-avx2 (an emulated CPU)")
def test_the_emulated_cpu_is_the_one_asked_for() -> None:
    """make test-avx2 means nothing if the emulator passed the host's AVX-512 and VNNI through."""
    assert cpu.isa_class() == os.environ["SIMPAIR_EXPECT_ISA"]
    assert not cpu.has_vnni() and not cpu.has_bf16()
