"""The ONNX Runtime backend: where a model's export lives, whether it is current, and running it.

``simpair export MODEL --onnx [--int8]`` (:mod:`simpair.backend.onnx_export`) writes ``onnx/`` beside the
model (for a model inside the installed package: a folder in the cache): ``model.onnx`` (fp32, fused),
``model_int8.onnx``, ``tokenizer.json`` and ``simpair-onnx.json``. :class:`OnnxModel` runs it with ONNX
Runtime and the ``tokenizers`` library alone: no torch, no transformers.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..config import MAX_LENGTH_FALLBACK
from ..utils import simpair_home

ONNX_DIR = "onnx"
ONNX_META = "simpair-onnx.json"
ONNX_FILES = {"fp32": "model.onnx", "int8": "model_int8.onnx"}
# the feed-forward output projections, kept out of int8 (names in the exported graph)
FFN_OUT_ONNX = r"layer\.\d+/output/dense/MatMul"


def weights_stamp(model_path: str | Path) -> str:
    """Size and mtime of the weight files: an ONNX export older than its weights is not used."""
    path = Path(model_path)
    files = sorted(p for p in path.glob("*") if p.suffix in (".safetensors", ".bin") and p.is_file())
    return "|".join(f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files)


def onnx_dir(model_path: str | Path) -> Path:
    """Where the ONNX export of ``model_path`` lives: ``onnx/`` beside it, or for a model inside the
    installed package (read-only, shipped small) a folder in the cache named after its path."""
    path = Path(model_path).resolve()
    package = Path(__file__).resolve().parent.parent  # simpair/
    if package in path.parents:
        key = hashlib.sha256(str(path).encode()).hexdigest()[:12]
        return simpair_home() / "onnx" / f"{path.name}-{key}"
    return path / ONNX_DIR


def find_onnx(model_path: str | Path, precision: str = "auto") -> Path | None:
    """The usable ONNX file for ``model_path`` at ``precision`` (auto: fp32 if exported, else int8), or None
    when there is none or it is older than the weights."""
    folder = onnx_dir(model_path)
    meta_file = folder / ONNX_META
    if not meta_file.is_file():
        return None
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
    except ValueError:
        return None
    if meta.get("source_stamp") != weights_stamp(model_path):
        import warnings

        warnings.warn(f"{folder}: exported before the model's weights last changed; not used "
                      f"(re-run 'simpair export {model_path} --onnx')", stacklevel=2)
        return None
    order = {"auto": ("fp32", "int8"), "fp32": ("fp32",), "int8": ("int8",)}.get(precision, ())
    for p in order:
        file = folder / ONNX_FILES[p]
        if file.is_file():
            return file
    return None


class OnnxModel:
    """An exported model under ONNX Runtime, tokenised by ``tokenizers``: no torch import.

    ``run(texts_a, texts_b)`` returns the first output (logits for a classifier, token states for an
    encoder) and the attention mask, for batches already length-sorted by the caller.
    """

    def __init__(self, file: str | Path, max_length: int | None = None, threads: int | None = None) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.file = Path(file)
        folder = self.file.parent
        self.meta = json.loads((folder / ONNX_META).read_text(encoding="utf-8"))
        self.precision = "int8" if self.file.name == ONNX_FILES["int8"] else "fp32"
        self.max_length = int(max_length or self.meta.get("max_length") or MAX_LENGTH_FALLBACK["cross-encoder"])
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(self.max_length)
        self.tokenizer.enable_padding(pad_id=int(self.meta["pad_id"]), pad_token=self.meta["pad_token"])
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = int(threads)
        self.session = ort.InferenceSession(str(self.file), options, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]

    def encode(self, texts_a: Sequence[str], texts_b: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """The model's inputs for a batch, as the exported model's transformers tokenizer makes them."""
        items = list(zip(texts_a, texts_b)) if texts_b is not None else list(texts_a)
        enc = self.tokenizer.encode_batch(items)
        arrays = {"input_ids": [e.ids for e in enc], "attention_mask": [e.attention_mask for e in enc],
                  "token_type_ids": [e.type_ids for e in enc]}
        return {k: np.asarray(arrays[k], dtype=np.int64) for k in self.inputs}

    def run(self, texts_a: Sequence[str], texts_b: Sequence[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
        feed = self.encode(texts_a, texts_b)
        return self.session.run(None, feed)[0], feed["attention_mask"]
