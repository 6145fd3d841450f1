"""Shared by the benchmark scripts: timing, ratios against the peer, and the JSON result."""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def timed(fn: Callable[[], object], repeats: int) -> tuple[object, float]:
    """(result of the last pass, best seconds over ``repeats`` passes) after one untimed warm-up."""
    fn()
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return out, best


def compare_to_peer(results: dict[str, dict[str, float]], peer: str, rate: str) -> None:
    """Round each row's ``rate`` and add ``vs_sentence_transformers``: its ratio to row ``peer``."""
    base = results[peer][rate]
    for row in results.values():
        row["vs_sentence_transformers"] = round(row[rate] / base, 2)
        row[rate] = round(row[rate], 1)


def emit(result: dict[str, Any], save: str | None) -> None:
    """Print ``result`` as JSON on stdout (numpy scalars as numbers) and write it to ``save``. Every result
    records the CPU it ran on (model, cores, ISA class and flags): a speed figure means nothing without it."""
    from simpair.backend.cpu import describe

    result = {**result, "cpu": result.get("cpu") or describe(), **provenance(result.get("model"))}
    text = json.dumps(result, indent=2, default=lambda o: o.item() if hasattr(o, "item") else str(o))
    print(text)
    if save:
        Path(save).parent.mkdir(parents=True, exist_ok=True)
        Path(save).write_text(text + "\n", encoding="utf-8")


def provenance(model: Any) -> dict[str, Any]:
    """The commit the result was measured at (``+dirty`` with uncommitted changes) and, for a model name or
    directory, a hash of its weights: an alias such as ``matcher`` meant another model at each run."""
    import subprocess

    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True).stdout.strip()
    except OSError:
        commit, dirty = "", ""
    out: dict[str, Any] = {"commit": (commit + "+dirty" if dirty else commit) or None}
    if isinstance(model, str):
        from simpair.bi_encoder import weights_fingerprint
        from simpair.errors import SimpairError
        from simpair.models import resolve

        try:
            out["model_weights_sha256"] = weights_fingerprint(str(resolve(model)))
        except (SimpairError, OSError):  # a peer's name or a hub id: nothing here to hash
            pass
    return out


def simpair_paths(model_dir: str) -> list[tuple[str, str]]:
    """Every (backend, precision) simpair can run ``model_dir`` on: torch fp32/bf16/int8, ONNX fp32/int8 and
    OpenVINO fp32/bf16/int8 — exported first (``simpair export --onnx --int8``, ``--openvino --int8`` with
    simpair's own calibration sample) when there is no current export and the directory is writable, so no
    benchmark silently drops a row. OpenVINO rows need the ``openvino`` package (bf16: a bf16 CPU)."""
    import os

    from simpair.backend.onnx import find_onnx
    from simpair.backend.onnx_export import export_onnx
    from simpair.backend.openvino import find_openvino, openvino_available
    from simpair.backend.runtime import bf16_supported

    writable = os.access(model_dir, os.W_OK)
    if find_onnx(model_dir, "int8") is None and writable:
        export_onnx(str(model_dir), int8=True)
    paths = [("torch", "fp32"), ("torch", "bf16"), ("torch", "int8")]
    paths += [("onnx", p) for p in ("fp32", "int8") if find_onnx(model_dir, p) is not None]
    if not openvino_available():
        return paths
    if find_openvino(model_dir, "int8") is None and writable:
        from simpair.backend.openvino_export import export_openvino

        export_openvino(str(model_dir), int8=True)
    precisions = ("fp32", "bf16", "int8") if bf16_supported() else ("fp32", "int8")
    return paths + [("openvino", p) for p in precisions if find_openvino(model_dir, p) is not None]
