"""The int8 check: before an int8 model first scores anything on a kind of CPU, it scores a fixed set of
pairs beside its fp32 original, and simpair refuses it there when it drifts.

Why: int8 accuracy depends on the CPU. Without VNNI, the int8 kernels of ONNX Runtime, oneDNN (OpenVINO,
torch) and fbgemm add pairs of u8 x s8 products in int16 and saturate; simpair's own exports avoid it (7-bit
weights), but an export made elsewhere, an older export, or torch's dynamic int8 may not. The verdict is
cached per model file and CPU class in ``$SIMPAIR_HOME/int8-checks/``, so the check costs a few seconds once.

The bound is on the mean |score difference| over the check pairs. Measured (docs/performance.md): an int8
that is right stays at 0.004-0.014 (the matcher's ONNX, OpenVINO and torch int8 on a VNNI CPU, its ONNX int8 on
an emulated AVX2 one, the tiny test models); saturation gave 0.025 (the matcher's old ONNX int8 on AVX2, LCQMC
pairs), 0.037 and 0.058 (tiny models). ``SIMPAIR_INT8_CHECK=off`` skips the check (benchmarks that measure a
saturating int8 on purpose).
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SimpairError
from ..utils import atomic_write_text, simpair_home
from .cpu import describe, isa_class
from .exports import weights_stamp

CHECK_FILE = Path(__file__).resolve().parent / "calibration.tsv"
CHECK_PAIRS = 128
MEAN_BOUND = 0.02  # mean |int8 - fp32| over the check pairs; see the module docstring for the measurements

Scorer = Callable[[Sequence[tuple[str, str]]], np.ndarray]


class Int8Refused(SimpairError):
    """An int8 model whose scores drift from fp32 on this CPU."""


def check_pairs(limit: int = CHECK_PAIRS) -> list[tuple[str, str]]:
    """The fixed pairs the check scores: simpair's own hand-written sample."""
    rows = [line.split("\t") for line in CHECK_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [(r[0], r[1]) for r in rows[:limit]]


def check_disabled() -> bool:
    return os.environ.get("SIMPAIR_INT8_CHECK", "").lower() in ("0", "off", "no", "false")


class Int8Check:
    """The cached verdict for one int8 model (``identity``: its file, size and mtime, or its weights) on
    this CPU class. ``needed`` says whether to score; :meth:`record` compares and stores, and refuses."""

    def __init__(self, model: str, identity: str) -> None:
        self.model = model
        key = f"{identity}|{isa_class()}|{describe()['model']}"
        self.file = simpair_home() / "int8-checks" / (hashlib.sha256(key.encode()).hexdigest()[:24] + ".json")
        self.verdict: dict[str, Any] | None = None
        if self.file.is_file():
            try:
                self.verdict = json.loads(self.file.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                self.verdict = None
        if self.verdict is not None and not check_disabled():
            self._enforce()

    @property
    def needed(self) -> bool:
        return self.verdict is None and not check_disabled()

    def record(self, int8: np.ndarray, fp32: np.ndarray, threshold: float | None = None) -> dict[str, Any]:
        """Compare the check pairs' int8 scores with fp32, store the verdict, raise :class:`Int8Refused`
        when the mean difference is past :data:`MEAN_BOUND`."""
        diff = np.abs(np.asarray(int8, dtype=np.float64) - np.asarray(fp32, dtype=np.float64))
        cut = 0.5 if threshold is None else float(threshold)
        self.verdict = {"model": self.model, "cpu": describe(), "pairs": int(diff.size),
                        "mean_abs_diff": round(float(diff.mean()), 5), "max_abs_diff": round(float(diff.max()), 5),
                        "decisions_changed": int(((np.asarray(int8) >= cut) != (np.asarray(fp32) >= cut)).sum()),
                        "bound": MEAN_BOUND, "ok": bool(diff.mean() <= MEAN_BOUND)}
        try:
            atomic_write_text(self.file, json.dumps(self.verdict, indent=2))
        except OSError:
            pass  # a read-only cache: the check runs again next time
        self._enforce()
        return self.verdict

    def _enforce(self) -> None:
        v = self.verdict or {}
        if v.get("ok", True):
            return
        cpu = v.get("cpu", {})
        raise Int8Refused(
            f"{self.model}: int8 is refused on this CPU ({cpu.get('model')}, {cpu.get('isa')}): on {v['pairs']} "
            f"check pairs its scores differ from fp32 by {v['mean_abs_diff']:.3f} on average (bound {v['bound']}), "
            f"{v['decisions_changed']} decisions changed. Without VNNI, int8 kernels can saturate; simpair's ONNX "
            f"int8 (7-bit weights) holds there: 'simpair export {self.model} --onnx --int8', then --backend onnx. "
            f"Or run --precision fp32 (bf16 where the CPU has it). SIMPAIR_INT8_CHECK=off skips this check.")


def file_identity(file: str | Path) -> str:
    """A model file as the check knows it: path, size and mtime (a re-export is checked again)."""
    p = Path(file).resolve()
    st = p.stat()
    return f"{p}:{st.st_size}:{st.st_mtime_ns}"


def verify_int8(model: str, identity: str, int8: Scorer, fp32: Callable[[], Scorer],
                threshold: float | None = None) -> dict[str, Any] | None:
    """Run the check for an int8 model unless its verdict is cached; ``fp32`` builds the reference scorer
    (only when needed). Returns the new verdict, or None when it was cached or the check is off."""
    check = Int8Check(model, identity)
    if not check.needed:
        return None
    pairs = check_pairs()
    return check.record(int8(pairs), fp32()(pairs), threshold)


def check_torch_int8(model: str, kind: str, path: str | Path, score: Scorer, quantize: Callable[[], object],
                     threshold: float | None = None) -> dict[str, Any] | None:
    """torch's dynamic int8 of the weights in ``path``: score the check pairs in fp32, ``quantize()`` in place,
    score again and judge (the quantisation always happens; the scoring only when no verdict is cached).
    ``kind`` (cross-encoder, bi-encoder, classifier) keeps apart two uses of one directory."""
    check = Int8Check(model, f"torch-{kind}:{path}:{weights_stamp(path)}")
    reference = score(check_pairs()) if check.needed else None
    quantize()
    return None if reference is None else check.record(score(check_pairs()), reference, threshold)
