"""The OpenVINO backend: the fastest CPU path for int8 here, and bf16 without torch.

``simpair export MODEL --openvino [--int8]`` (:mod:`simpair.backend.openvino_export`) writes ``openvino/``
beside the model (bundled models: a folder in the cache): ``model.xml/.bin`` (fp32 weights),
``model_int8.xml/.bin`` (static int8 by NNCF: SmoothQuant on the feed-forward inputs, activation ranges
calibrated on sample pairs), ``tokenizer.json`` and ``simpair-openvino.json``. :class:`OpenVinoModel`
runs it with OpenVINO and the ``tokenizers`` library: no torch, no transformers.

Precisions: ``fp32`` (the fp32 model, f32 arithmetic), ``bf16`` (the same model with OpenVINO's bf16
inference hint, on CPUs with native bf16), ``int8`` (the quantised model; its few unquantised operations in
OpenVINO's default precision for the CPU).
"""
from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from ..errors import SimpairError
from .exports import ExportTokenizer, export_dir, find_export

OV_DIR = "openvino"
OV_META = "simpair-openvino.json"
OV_FILES = {"fp32": "model.xml", "int8": "model_int8.xml"}
# Input lengths are padded to a multiple of this (see OpenVinoModel.encode). 1: no extra padding. 8 was measured
# against 1 (benchmarks/probes/ov_length_step_probe.py, fresh model per round): bulk -5% pairs/s, server-like batches -4%
# mean / +4% p99 latency: no win, so off.
LENGTH_STEP = 1
OV_INSTALL = "OpenVINO is not installed; pip install 'simpair[openvino]' (openvino, and nncf for int8)"


def openvino_available() -> bool:
    """True when the ``openvino`` package imports."""
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


def openvino_dir(model_path: str | Path) -> Path:
    """Where the OpenVINO export of ``model_path`` lives (:func:`~simpair.backend.exports.export_dir`)."""
    return export_dir(model_path, OV_DIR)


def find_openvino(model_path: str | Path, precision: str = "auto") -> Path | None:
    """The usable OpenVINO model for ``model_path`` at ``precision`` (auto/bf16: the fp32 model, else the
    int8 one when only it was exported), or None."""
    return find_export(model_path, OV_DIR, OV_META, OV_FILES, precision, "--openvino")


class OpenVinoModel:
    """An exported model compiled by OpenVINO for the CPU, tokenised by ``tokenizers``.

    ``run(texts_a, texts_b)`` returns the first output (logits, or token states) and the attention mask, as
    :class:`~simpair.backend.onnx.OnnxModel` does. One call at a time (a lock): both cores serve it.
    """

    def __init__(self, file: str | Path, max_length: int | None = None, threads: int | None = None,
                 precision: str | None = None) -> None:
        try:
            import openvino as ov
        except ImportError as exc:
            raise SimpairError(OV_INSTALL) from exc
        self.file = Path(file)
        self.meta = json.loads((self.file.parent / OV_META).read_text(encoding="utf-8"))
        self.precision = "int8" if self.file.name == OV_FILES["int8"] else (precision or "fp32")
        self.tokenize = ExportTokenizer(self.file.parent, self.meta, max_length)
        self.max_length = self.tokenize.max_length
        config: dict[str, object] = {"PERFORMANCE_HINT": "LATENCY"}
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        if self.precision in ("fp32", "bf16"):
            config["INFERENCE_PRECISION_HINT"] = "f32" if self.precision == "fp32" else "bf16"
        core = ov.Core()
        self.compiled = core.compile_model(core.read_model(str(self.file)), "CPU", config)
        self.inputs = [p.get_any_name() for p in self.compiled.inputs]
        # two requests, made once: run uses the first, run_many both (a new request costs ~10% of a batch)
        self._requests = [self.compiled.create_infer_request() for _ in range(2)]
        self._lock = threading.Lock()
        self._pad_id = int(self.meta["pad_id"])

    @property
    def output_width(self) -> int:
        """The last dimension of the first output (labels of a classifier, hidden size of an encoder)."""
        dim = self.compiled.outputs[0].get_partial_shape()[-1]
        return int(dim.get_length()) if dim.is_static else int(self.run(["dimension"])[0].shape[-1])

    def encode(self, texts_a: Sequence[str], texts_b: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """The model's inputs for a batch, as the exported model's transformers tokenizer makes them, padded
        further to a multiple of :data:`LENGTH_STEP` tokens when it is above 1 (masked: the scores do not
        change). OpenVINO prepares each new input shape once, ~1.3x the time of a known one (median,
        interleaved); fewer lengths mean fewer new shapes, but the padding costs as much as it saves here."""
        feed = self.tokenize(self.inputs, texts_a, texts_b)
        length = feed["input_ids"].shape[1]
        target = min(-(-length // LENGTH_STEP) * LENGTH_STEP, max(self.max_length, length))
        if target == length:
            return feed
        fill = {"input_ids": self._pad_id}
        return {k: np.pad(v, ((0, 0), (0, target - length)), constant_values=fill.get(k, 0)) for k, v in feed.items()}

    def infer(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        """The first output for ready-made inputs (a copy: the request reuses its buffers)."""
        with self._lock:
            out = self._requests[0].infer(feed)[self.compiled.outputs[0]]
            return np.array(out, dtype=np.float32, copy=True)

    def run(self, texts_a: Sequence[str], texts_b: Sequence[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
        feed = self.encode(texts_a, texts_b)
        return self.infer(feed), feed["attention_mask"]

    def run_many(self, batches: Iterable[tuple[Sequence[str], Sequence[str] | None]],
                 reduce: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> list[np.ndarray]:
        """``reduce(output, mask)`` of every batch, in order, with two requests in flight: the next batch is
        tokenised and the last one reduced while the current one runs (+9% pairs/s here, interleaved
        measurement: ``benchmarks/probes/ov_streams_probe.py``). Each request still gets every thread.

        No Python callback: everything Python runs in the caller's thread. (A callback runs in an OpenVINO
        thread, where a garbage collection may free another model's requests and abort the process with
        "Resource deadlock avoided".)"""
        out: list[np.ndarray] = []
        pending: tuple[object, np.ndarray] | None = None
        with self._lock:  # the model's two requests are this call's until it returns
            try:
                for i, (texts_a, texts_b) in enumerate(batches):
                    feed = self.encode(texts_a, texts_b)
                    request = self._requests[i % 2]
                    request.start_async(feed)
                    if pending is not None:
                        out.append(self._finish(*pending, reduce))
                    pending = (request, feed["attention_mask"])
                if pending is not None:
                    out.append(self._finish(*pending, reduce))
            finally:
                for request in self._requests:  # an error mid-way: let requests in flight end first
                    request.wait()
        return out

    def _finish(self, request: object, mask: np.ndarray,
                reduce: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> np.ndarray:
        """Wait for ``request`` and reduce its first output (copied: the request reuses its buffers)."""
        request.wait()  # type: ignore[attr-defined]
        output = request.get_output_tensor(0).data  # type: ignore[attr-defined]
        return reduce(np.array(output, dtype=np.float32, copy=True), mask)
