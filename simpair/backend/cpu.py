"""What this CPU can do, read from the instructions it really executes: the features every speed and int8
decision in simpair rests on, and the description every benchmark result records.

The features come from numpy's own ``cpuid`` dispatch table (``__cpu_features__``): no torch import, and true
under an emulator (``qemu-x86_64 -cpu EPYC-Rome`` reports an AVX2-only CPU there, while ``/proc/cpuinfo``
still shows the host). ``/proc/cpuinfo`` fills in only what numpy does not probe (AVX-VNNI, AMX), and only
when its AVX-512 flags agree with cpuid, that is when it describes the CPU this process runs on.

``SIMPAIR_CPU_ISA=avx2`` (or ``avx512``) caps what simpair believes the CPU has, for its own choices; it does
not change the kernels the runtimes pick (those follow cpuid: use the emulator for that, as ``make test``
does).
"""
from __future__ import annotations

import functools
import os
import platform
from pathlib import Path
from typing import Any

# numpy's feature names -> the Linux /proc/cpuinfo names simpair speaks in
_NUMPY = {"AVX2": "avx2", "FMA3": "fma", "AVX512F": "avx512f", "AVX512BW": "avx512bw", "AVX512VL": "avx512vl",
          "AVX512VNNI": "avx512_vnni", "AVX512BF16": "avx512_bf16", "AVX512FP16": "avx512_fp16"}
_ONLY_PROC = ("avx_vnni", "amx_tile", "amx_int8", "amx_bf16")
# what each SIMPAIR_CPU_ISA cap keeps
_CAPS = {"avx2": {"avx2", "fma"}, "avx512": {"avx2", "fma", "avx512f", "avx512bw", "avx512vl"}}
VNNI = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})
BF16 = frozenset({"avx512_bf16", "amx_bf16"})


def _proc_cpuinfo() -> tuple[str, set[str]]:
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return platform.processor() or platform.machine(), set()
    name, flags = "", set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and not name:
            name = value.strip()
        elif key.strip() == "flags" and not flags:
            flags = set(value.split())
    return name or platform.machine(), flags


def _cpuid_flags() -> dict[str, bool]:
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as found
    except ImportError:  # numpy < 2
        from numpy.core._multiarray_umath import __cpu_features__ as found  # type: ignore[no-redef]
    return {ours: bool(found.get(theirs)) for theirs, ours in _NUMPY.items()}


@functools.lru_cache(maxsize=None)
def _detect(cap: str) -> tuple[str, frozenset[str], str]:
    name, proc = _proc_cpuinfo()
    cpuid = _cpuid_flags()
    flags = {f for f, on in cpuid.items() if on}
    source = "cpuid"
    if cpuid["avx512f"] == ("avx512f" in proc):  # /proc/cpuinfo describes this CPU: take what numpy lacks
        flags |= proc & set(_ONLY_PROC)
    else:
        source = "cpuid (emulated: /proc/cpuinfo describes the host)"
    if cap in _CAPS:
        flags &= _CAPS[cap]
        source += f", capped by SIMPAIR_CPU_ISA={cap}"
    return name, frozenset(flags), source


def cpu_flags() -> frozenset[str]:
    """The CPU features simpair decides by (Linux names: ``avx2``, ``avx512f``, ``avx512_vnni``, ...)."""
    return _detect(os.environ.get("SIMPAIR_CPU_ISA", "").lower())[1]


def has_vnni() -> bool:
    """8-bit dot products that do not saturate (AVX-512 VNNI, AVX-VNNI or AMX-INT8)."""
    return bool(cpu_flags() & VNNI)


def has_bf16() -> bool:
    """Native bf16 arithmetic (AVX-512 BF16 or AMX-BF16)."""
    return bool(cpu_flags() & BF16)


def isa_class() -> str:
    """A short name for the kernels this CPU gets: ``amx``, ``avx512-vnni-bf16``, ``avx512-vnni``,
    ``avx512``, ``avx2`` or ``baseline``. The int8 check is cached per class and model name."""
    flags = cpu_flags()
    if "amx_tile" in flags or "amx_int8" in flags:
        return "amx"
    if "avx512f" in flags:
        return "avx512" + ("-vnni" if flags & VNNI else "") + ("-bf16" if flags & BF16 else "")
    if "avx2" in flags:
        return "avx2" + ("-vnni" if "avx_vnni" in flags else "")
    return "baseline"


def describe() -> dict[str, Any]:
    """The CPU as a benchmark result records it: model name, cores, ISA class and flags, how they were read."""
    name, flags, source = _detect(os.environ.get("SIMPAIR_CPU_ISA", "").lower())
    return {"model": name, "cores": os.cpu_count(), "isa": isa_class(), "flags": sorted(flags),
            "vnni": has_vnni(), "bf16": has_bf16(), "features_from": source}
