"""How inference runs fast on a CPU: precision, threads, and which backend (torch, ONNX Runtime, OpenVINO).

Precisions (torch backend): ``fp32``; ``bf16`` autocast (CPUs with AVX-512 BF16 or AMX: same accuracy,
~3x faster here); ``int8``, dynamic quantisation of the ``nn.Linear`` layers (per-channel int8 weights, activations
quantised per batch; the feed-forward output projections in bf16). On CPUs with VNNI the activations
keep all 8 bits: torch's default 7-bit range ("reduce_range", which guards older CPUs against 16-bit
overflow) cost e5-small ~14 points of LCQMC accuracy here.

ONNX (``simpair export MODEL --onnx [--int8]``) writes ``onnx/`` beside the model (or, for a bundled
model, in the cache): ``model.onnx`` (fp32, fused by ONNX Runtime's transformer optimiser),
``model_int8.onnx``, the ``tokenizer.json`` and ``simpair-onnx.json``. :class:`OnnxModel` runs it with
ONNX Runtime and the ``tokenizers`` library alone — no torch, no transformers — which is what makes a
cold ``simpair match`` answer in about a second (:mod:`simpair.backend.onnx`). OpenVINO (``simpair export
MODEL --openvino [--int8]``, :mod:`simpair.backend.openvino`) is the fastest path at every precision here;
its int8 is static (NNCF, SmoothQuant) and keeps fp32 accuracy where dynamic int8 loses it.
"""
from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SimpairError
from .cpu import has_bf16, has_vnni
from .onnx import OnnxModel, find_onnx
from .openvino import OV_INSTALL, OpenVinoModel, find_openvino, openvino_available

PRECISIONS = ("auto", "fp32", "bf16", "int8")
BACKENDS = ("auto", "torch", "onnx", "openvino")


# --------------------------------------------------------------------------- CPU features, threads


def bf16_supported() -> bool:
    """True on CPUs with native bf16 (AVX-512 BF16 or AMX), where autocast pays off."""
    return has_bf16()


def vnni_supported() -> bool:
    """True on CPUs with 8-bit dot products (AVX-512 VNNI, AVX-VNNI or AMX-INT8)."""
    return has_vnni()


def use_bf16(setting: str | bool | None) -> bool:
    """Resolve an ``auto|yes|no`` bf16 setting against this CPU."""
    if setting in (True, "yes", "true", "1"):
        return True
    if setting in (False, "no", "false", "0"):
        return False
    return bf16_supported()


def resolve_precision(precision: str | None = "auto", bf16: str | bool | None = None) -> str:
    """``fp32``, ``bf16`` or ``int8``: ``auto`` is bf16 where the CPU has it, else fp32 (never int8,
    which changes scores slightly: the user asks for it). A legacy ``bf16`` setting overrides ``auto``."""
    precision = precision or "auto"
    if precision not in PRECISIONS:
        raise SimpairError(f"unknown precision {precision!r}; expected one of {', '.join(PRECISIONS)}")
    if precision != "auto":
        return precision
    return "bf16" if use_bf16(bf16 if bf16 is not None else "auto") else "fp32"


def bf16_autocast(enabled: bool) -> Any:
    """``torch.autocast`` to bf16 on the CPU when ``enabled``, else a context that does nothing."""
    import torch

    return torch.autocast("cpu", dtype=torch.bfloat16) if enabled else contextlib.nullcontext()


def set_threads(threads: int | None) -> None:
    """Use ``threads`` CPU threads for torch (ONNX sessions take theirs in :class:`OnnxModel`)."""
    if threads:
        import torch

        torch.set_num_threads(int(threads))


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[np.ndarray]:
    """Index batches over items sorted by length (longest first): less padding per batch. Callers
    write each batch's results back at these indices, so the output keeps the input order."""
    order = np.argsort(-np.asarray(lengths), kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


# --------------------------------------------------------------------------- int8 (torch)


# The feed-forward output projections: their inputs (GELU outputs) carry the outliers that per-tensor
# activation quantisation handles worst. Kept in bf16 (fp32 without bf16), they cost e5-small's LCQMC
# accuracy 0.07 points instead of 0.32, for ~15% of int8's speed (benchmarks/results/match_speed.json).
FFN_OUT = r"(^|\.)layer\.\d+\.output\.dense$"


def quantize_int8(model: Any) -> Any:
    """``model`` with its ``nn.Linear`` layers dynamically quantised to int8 (per-channel weights), in
    place; the feed-forward output projections instead run in bf16 (or stay fp32)."""
    import re
    import warnings

    import torch
    from torch.ao.nn.quantized import dynamic as nnqd
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    full_range = vnni_supported()

    class Int8Linear(nnqd.Linear):
        """torch's dynamic int8 Linear, with the full 8-bit activation range where VNNI allows it."""

        def forward(self, x: Any) -> Any:
            y = torch.ops.quantized.linear_dynamic(x.float(), self._packed_params._packed_params,
                                                   reduce_range=not full_range)
            return y.to(x.dtype)

    class Bf16Linear(torch.nn.Module):
        """A Linear computed in bf16 (weights stored in bf16), returning the input's dtype."""

        def __init__(self, linear: torch.nn.Linear) -> None:
            super().__init__()
            self.weight = torch.nn.Parameter(linear.weight.detach().bfloat16(), requires_grad=False)
            self.bias = None if linear.bias is None else torch.nn.Parameter(linear.bias.detach().bfloat16(),
                                                                             requires_grad=False)

        def forward(self, x: Any) -> Any:
            return torch.nn.functional.linear(x.bfloat16(), self.weight, self.bias).to(x.dtype)

    sensitive = {n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and re.search(FFN_OUT, n)}
    if "onednn" in torch.backends.quantized.supported_engines and full_range:
        torch.backends.quantized.engine = "onednn"  # measured fastest with VNNI
    spec = {n: per_channel_dynamic_qconfig for n, m in model.named_modules()
            if isinstance(m, torch.nn.Linear) and n not in sensitive}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch's notice that quantized tensors are deprecated
        quantize_dynamic(model, spec, dtype=torch.qint8, mapping={torch.nn.Linear: Int8Linear}, inplace=True)
    if bf16_supported():
        for name in sensitive:
            parent, _, child = name.rpartition(".")
            owner = model.get_submodule(parent) if parent else model
            setattr(owner, child, Bf16Linear(getattr(owner, child)))
    return model


# --------------------------------------------------------------------------- which backend


def onnx_wanted(backend: str, precision: str = "auto", bulk: bool = True) -> bool:
    """Whether ``backend``/``precision`` run an ONNX export when there is one (the rule of
    :func:`choose_backend`)."""
    if backend == "torch" or precision == "bf16":
        return False
    return not (backend == "auto" and precision == "auto" and bulk and bf16_supported())


def choose_backend(backend: str, model_path: str | Path, precision: str = "auto",
                   bulk: bool = True) -> tuple[str, Path | None]:
    """(``torch``, ``onnx`` or ``openvino``; the exported file) for the user's ``backend`` and ``precision``.

    ``auto`` runs an OpenVINO export when one exists for that precision (``simpair export --openvino``;
    fastest at every precision here: int8 ~2x ONNX int8, its bf16 ~1.4x torch bf16) — for a few pairs
    (not ``bulk``) only when there is no ONNX export, which starts faster. Else an ONNX export (``auto``
    precision: fp32, else int8), except for ``bulk`` work on a CPU with native bf16, where torch bf16
    outruns ONNX fp32 at the same accuracy. Else torch. An explicit ``bf16`` runs on torch or OpenVINO.
    """
    if backend not in BACKENDS:
        raise SimpairError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")
    if precision not in PRECISIONS:
        raise SimpairError(f"unknown precision {precision!r}; expected one of {', '.join(PRECISIONS)}")
    if backend == "onnx" and precision == "bf16":
        raise SimpairError("bf16 runs on the torch or openvino backend; ONNX has fp32 and int8")
    if backend == "torch":
        return "torch", None
    if backend == "openvino":
        file = find_openvino(model_path, precision)
        if file is None:
            raise _no_export(model_path, "OpenVINO", precision)
        if not openvino_available():
            raise SimpairError(OV_INSTALL)
        return "openvino", file
    onnx_file = find_onnx(model_path, precision) if onnx_wanted(backend, precision, bulk) else None
    if backend == "onnx":
        if onnx_file is None:
            raise _no_export(model_path, "ONNX", precision)
        return "onnx", onnx_file
    ov_file = find_openvino(model_path, precision)  # a file check first: importing openvino takes ~0.4 s
    if ov_file is not None and (bulk or onnx_file is None) and openvino_available():
        return "openvino", ov_file
    return ("onnx", onnx_file) if onnx_file is not None else ("torch", None)


def auto_rule() -> dict[str, Any]:
    """What ``auto`` picks on this CPU and why, for ``simpair models --json`` / ``--verbose``."""
    from .cpu import describe

    cpu = describe()
    if cpu["bf16"]:
        why = ("native bf16: bulk scoring runs in bf16 (OpenVINO export, else torch); a few pairs run an ONNX fp32 "
               "export, which starts without importing torch")
    else:
        why = ("no native bf16 (it would be converted in software), so auto runs fp32 on an OpenVINO or ONNX "
               "export (torch fp32 when there is none)")
    int8 = ("int8 is never picked by auto; asked for (--precision int8), it is checked against fp32 on this CPU "
            "first" + ("" if cpu["vnni"] else ": without VNNI, int8 kernels can saturate; ONNX int8 (7-bit weights) "
                       "holds, OpenVINO's int8 drifted under emulation and is refused where it does"))
    return {"cpu": cpu, "precision": resolve_precision("auto"),
            "bulk": "openvino export, else " + ("torch bf16" if cpu["bf16"] else "onnx export, else torch fp32"),
            "few_pairs": "onnx export, else openvino export, else torch", "why": why, "int8": int8}


def _no_export(model_path: str | Path, runtime: str, precision: str) -> SimpairError:
    """The error for a backend asked for by name whose export is missing, with the command that makes it."""
    int8 = " --int8" if precision == "int8" else ""
    return SimpairError(f"{model_path}: no {runtime} export{' in int8' if int8 else ''}; run "
                        f"'simpair export {model_path} --{runtime.lower()}{int8}'")


def exported_model(backend: str, file: Path, max_length: int | None = None, threads: int | None = None,
                   precision: str | None = None) -> OnnxModel | OpenVinoModel:
    """The runner of an exported model: ONNX Runtime or OpenVINO (``precision``: its fp32/bf16 hint)."""
    if backend == "onnx":
        return OnnxModel(file, max_length=max_length, threads=threads)
    return OpenVinoModel(file, max_length=max_length, threads=threads, precision=precision)


def plan(backend: str, model_path: str | Path, precision: str = "auto", bf16: str | bool | None = None,
         bulk: bool = True) -> tuple[str, Path | None, str]:
    """(backend, exported file or None, precision) for a model: :func:`choose_backend`, then ``auto``
    precision resolved. ``bf16`` (``yes``/``no``) is the older switch: it pins torch bf16 / fp32."""
    if bf16 not in (None, "auto") and precision == "auto":
        precision = "bf16" if use_bf16(bf16) else "fp32"
    chosen, file = choose_backend(backend, model_path, precision, bulk)
    return chosen, file, resolve_precision(precision)
