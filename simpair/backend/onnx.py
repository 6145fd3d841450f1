"""The ONNX Runtime backend: where a model's export lives, whether it is current, and running it.

``simpair export MODEL --onnx [--int8]`` (:mod:`simpair.backend.onnx_export`) writes ``onnx/`` beside the
model (for a model inside the installed package: a folder in the cache): ``model.onnx`` (fp32, fused),
``model_int8.onnx``, ``tokenizer.json`` and ``simpair-onnx.json``. :class:`OnnxModel` runs it with ONNX
Runtime and the ``tokenizers`` library alone: no torch, no transformers.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from .exports import ExportTokenizer, export_dir, find_export, weights_stamp

__all__ = ["FFN_OUT_ONNX", "ONNX_DIR", "ONNX_FILES", "ONNX_META", "OnnxModel", "find_onnx", "onnx_dir",
           "weights_stamp"]

ONNX_DIR = "onnx"
ONNX_META = "simpair-onnx.json"
ONNX_FILES = {"fp32": "model.onnx", "int8": "model_int8.onnx"}
# the feed-forward output projections, kept out of int8 (names in the exported graph)
FFN_OUT_ONNX = r"layer\.\d+/output/dense/MatMul"


def onnx_dir(model_path: str | Path) -> Path:
    """Where the ONNX export of ``model_path`` lives (:func:`~simpair.backend.exports.export_dir`)."""
    return export_dir(model_path, ONNX_DIR)


def find_onnx(model_path: str | Path, precision: str = "auto") -> Path | None:
    """The usable ONNX file for ``model_path`` at ``precision`` (auto: fp32 if exported, else int8), or None
    when there is none or it is older than the weights."""
    return find_export(model_path, ONNX_DIR, ONNX_META, ONNX_FILES, precision, "--onnx")


class OnnxModel:
    """An exported model under ONNX Runtime, tokenised by ``tokenizers``: no torch import.

    ``run(texts_a, texts_b)`` returns the first output (logits for a classifier, token states for an
    encoder) and the attention mask, for batches already length-sorted by the caller.
    """

    def __init__(self, file: str | Path, max_length: int | None = None, threads: int | None = None) -> None:
        import json

        import onnxruntime as ort

        self.file = Path(file)
        self.meta = json.loads((self.file.parent / ONNX_META).read_text(encoding="utf-8"))
        self.precision = "int8" if self.file.name == ONNX_FILES["int8"] else "fp32"
        self.tokenize = ExportTokenizer(self.file.parent, self.meta, max_length)
        self.max_length = self.tokenize.max_length
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = int(threads)
        self.session = ort.InferenceSession(str(self.file), options, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]

    @property
    def output_width(self) -> int:
        """The last dimension of the first output (labels of a classifier, hidden size of an encoder)."""
        dim = self.session.get_outputs()[0].shape[-1]
        return dim if isinstance(dim, int) else int(self.run(["dimension"])[0].shape[-1])

    def encode(self, texts_a: Sequence[str], texts_b: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """The model's inputs for a batch, as the exported model's transformers tokenizer makes them."""
        return self.tokenize(self.inputs, texts_a, texts_b)

    def run(self, texts_a: Sequence[str], texts_b: Sequence[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
        feed = self.encode(texts_a, texts_b)
        return self.session.run(None, feed)[0], feed["attention_mask"]

    def run_many(self, batches: Iterable[tuple[Sequence[str], Sequence[str] | None]],
                 reduce: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> list[np.ndarray]:
        """``reduce(output, mask)`` of every batch, in order (one after another)."""
        return [reduce(*self.run(texts_a, texts_b)) for texts_a, texts_b in batches]
