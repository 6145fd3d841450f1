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
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import SimpairError
from .exports import ExportTokenizer, export_dir, find_export

OV_DIR = "openvino"
OV_META = "simpair-openvino.json"
OV_FILES = {"fp32": "model.xml", "int8": "model_int8.xml"}
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
    :class:`~simpair.backend.onnx.OnnxModel` does. One inference at a time (a lock): both cores serve it.
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
        self._request = self.compiled.create_infer_request()
        self._lock = threading.Lock()

    @property
    def output_width(self) -> int:
        """The last dimension of the first output (labels of a classifier, hidden size of an encoder)."""
        dim = self.compiled.outputs[0].get_partial_shape()[-1]
        return int(dim.get_length()) if dim.is_static else int(self.run(["dimension"])[0].shape[-1])

    def encode(self, texts_a: Sequence[str], texts_b: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """The model's inputs for a batch, as the exported model's transformers tokenizer makes them."""
        return self.tokenize(self.inputs, texts_a, texts_b)

    def infer(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        """The first output for ready-made inputs (a copy: the request reuses its buffers)."""
        with self._lock:
            out = self._request.infer(feed)[self.compiled.outputs[0]]
            return np.array(out, dtype=np.float32, copy=True)

    def run(self, texts_a: Sequence[str], texts_b: Sequence[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
        feed = self.encode(texts_a, texts_b)
        return self.infer(feed), feed["attention_mask"]
