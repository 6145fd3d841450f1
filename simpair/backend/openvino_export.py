"""``simpair export --openvino [--int8]``: an OpenVINO model that :class:`~simpair.backend.openvino.OpenVinoModel`
runs, checked against torch before anything is written.

Phases: trace the model to a plain ONNX graph (:func:`~simpair.backend.onnx_export.trace`, the same as the
ONNX export), convert it with OpenVINO (fp32 weights), compare with torch (within 1e-3, or nothing is
written) and, with ``int8``, quantise it statically with NNCF: ``ModelType.TRANSFORMER`` applies SmoothQuant
(it moves the outliers of the GELU outputs into the weights, which is what lets the feed-forward output
projections run in int8 without the accuracy loss dynamic int8 has there) and calibrates activation ranges
on sample inputs — the user's own pairs (``--calibration FILE``) or the hand-written sample shipped with
simpair (``calibration.tsv``, built by ``data/build_sample.py``).
"""
from __future__ import annotations

import contextlib
import json
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SimpairError
from ..utils import atomic_dir, dir_size
from .onnx_export import SAMPLE_A, Traced, trace
from .openvino import OV_FILES, OV_INSTALL, OV_META, OpenVinoModel, openvino_dir

CALIBRATION = Path(__file__).resolve().parent / "calibration.tsv"
CALIBRATION_BATCH = 16
INT8_RECIPE = "static int8 (NNCF transformer preset, SmoothQuant; MatMul weights in 7 bits)"


def export_openvino(model: str, int8: bool = False, calibration: str | Path | None = None,
                    limit: int = 300) -> dict[str, Any]:
    """Export ``model`` for OpenVINO beside it (``openvino/``; bundled models: the cache), checked against
    torch; with ``int8`` also a statically quantised copy calibrated on the first ``limit`` pairs of
    ``calibration`` (default: simpair's own sample)."""
    try:
        import openvino as ov
    except ImportError as exc:
        raise SimpairError(OV_INSTALL) from exc
    t = trace(model)
    batches = _calibration_batches(t, Path(calibration) if calibration else CALIBRATION, limit) if int8 else []
    target = openvino_dir(t.path)
    with atomic_dir(target) as tmp:
        raw = tmp / "raw.onnx"
        t.write_raw(raw)
        fp32 = tmp / OV_FILES["fp32"]
        ov.save_model(ov.convert_model(str(raw)), str(fp32), compress_to_fp16=False)
        raw.unlink()
        t.src.tokenizer.backend_tokenizer.save(str(tmp / "tokenizer.json"))
        info = {**t.info(), "openvino": ov.__version__}
        (tmp / OV_META).write_text(json.dumps(info, indent=2), encoding="utf-8")
        diffs = {"fp32": _check(fp32, t, tokens=True)}
        if diffs["fp32"] > t.tolerance():
            raise SimpairError(f"{model}: the OpenVINO model differs from torch by {diffs['fp32']:.2g}; not written")
        if int8:
            _quantize(fp32, tmp / OV_FILES["int8"], batches)
            info["int8_recipe"] = INT8_RECIPE
            info["int8_calibration"] = {"file": str(calibration or "simpair sample (calibration.tsv)"),
                                        "inputs": sum(len(b["input_ids"]) for b in batches)}
            diffs["int8"] = _check(tmp / OV_FILES["int8"], t)
        info["max_abs_diff_vs_torch"] = {k: float(f"{v:.3g}") for k, v in diffs.items()}
        (tmp / OV_META).write_text(json.dumps(info, indent=2), encoding="utf-8")
    files = {p: str(target / f) for p, f in OV_FILES.items() if (target / f).is_file()}
    return {"model": model, "kind": t.src.kind, "out": str(target), "files": files,
            "max_abs_diff_vs_torch": info["max_abs_diff_vs_torch"], "saved_bytes": dir_size(target)}


def _calibration_batches(t: Traced, file: Path, limit: int) -> list[dict[str, np.ndarray]]:
    """The model's inputs for the first ``limit`` pairs of ``file`` (an encoder: their texts, with the prefix
    the bi-encoder puts on them, so that the ranges are those it meets), in batches."""
    from ..models import default_prefix
    from ..readers import read_pairs

    pairs = read_pairs(file, require_labels=False, warn=False).pairs[:limit]
    if t.src.pairs:
        items: list[tuple[str, str | None]] = [(p.text_a, p.text_b) for p in pairs]
    else:
        prefix = default_prefix(t.model, t.path)
        texts = dict.fromkeys(x for p in pairs for x in (p.text_a, p.text_b))
        items = [(prefix + s, None) for s in texts][:limit]
    out = []
    for i in range(0, len(items), CALIBRATION_BATCH):
        chunk = items[i : i + CALIBRATION_BATCH]
        second = [b for _, b in chunk] if t.src.pairs else None
        enc = t.src.tokenizer([a for a, _ in chunk], second, truncation=True, max_length=t.src.max_length,
                              padding=True, return_tensors="np")
        out.append({n: enc[n].astype(np.int64) for n in t.names})
    return out


def _quantize(fp32: Path, out: Path, batches: list[dict[str, np.ndarray]]) -> None:
    """Static int8 by NNCF (transformer preset: SmoothQuant, fast bias correction); progress on stderr.

    NNCF already stores the MatMul weights in 7 bits ([-63, 64]); ``OverflowFix.ENABLE`` changed nothing on
    the tiny test model and cost the matcher accuracy on a VNNI CPU, so it is not used. On an AVX2-only CPU
    (emulated) this int8 still drifts from fp32 (mean 0.058 on the check pairs): the int8 check
    (:mod:`simpair.backend.int8_check`) refuses it there."""
    try:
        import nncf
    except ImportError as exc:
        raise SimpairError(OV_INSTALL) from exc
    import openvino as ov

    nncf.set_log_level(logging.ERROR)
    with contextlib.redirect_stdout(sys.stderr):  # NNCF's progress bars: keep stdout for --json
        quantized = nncf.quantize(ov.Core().read_model(str(fp32)), nncf.Dataset(batches),
                                  model_type=nncf.ModelType.TRANSFORMER, subset_size=len(batches))
    ov.save_model(quantized, str(out), compress_to_fp16=False)


def _check(file: Path, t: Traced, tokens: bool = False) -> float:
    """Largest |OpenVINO - torch| on the sample batch, in f32 arithmetic; with ``tokens``, also that the
    ``tokenizers``-only inputs equal the transformers tokenizer's."""
    runner = OpenVinoModel(file, max_length=None, precision="fp32")
    if tokens:
        t.check_tokens(runner.tokenize(runner.inputs, SAMPLE_A, t.sample_b), file.parent)  # before length padding
    return t.diff(runner.infer({n: t.enc[n].numpy() for n in t.names}))
