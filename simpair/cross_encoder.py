"""The cross-encoder: both questions in one input, one probability that they mean the same.

A trained model is a standard transformers directory (``AutoModelForSequenceClassification``
loads it; ERNIE checkpoints come back as ``ErnieForSequenceClassification``) plus ``simpair.json``
holding what plain transformers does not keep: the decision threshold chosen on dev, the
maximum length, the task and dev metrics.
"""
from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ModelNotFoundError, SimpairError
from .models import META_FILE, load_classifier, read_meta, resolve
from .models.resolve import bundled_dir
from .runtime import (OnnxModel, bf16_autocast, bf16_supported, find_onnx, length_sorted_batches, onnx_dir, onnx_wanted,
                      plan, quantize_int8, set_threads, use_bf16)
from .utils import dir_lock, simpair_home

__all__ = ["META_FILE", "CrossEncoder", "bf16_autocast", "bf16_supported", "default_model", "length_sorted_batches",
           "read_meta", "use_bf16"]


def last_trained_file() -> Path:
    """Where the last trained pair model is recorded (the default of ``match``)."""
    return simpair_home() / "last-model"


def default_model() -> str | None:
    """The model ``match``/``eval``/``--rerank`` use without ``--model``.

    $SIMPAIR_MODEL, else the last pair model trained with this $SIMPAIR_HOME, else the bundled
    ``matcher`` (None only when an installation lacks it).
    """
    env = os.environ.get("SIMPAIR_MODEL")
    if env:
        return env
    marker = last_trained_file()
    if marker.is_file():
        path = marker.read_text(encoding="utf-8").strip()
        if path and Path(path, META_FILE).is_file():
            return path
    try:
        bundled_dir("matcher")
    except ModelNotFoundError:
        return None
    return "matcher"


def prepare_bundled(path: Path) -> None:
    """Export a bundled matcher to ONNX in the cache on its first use (once, ~40 s): every later start
    then loads the fp32 graph (same scores as torch fp32) in about a second instead of importing torch,
    loading the base and merging the adapter (~6 s). Set SIMPAIR_NO_AUTO_ONNX=1 to skip."""
    if os.environ.get("SIMPAIR_NO_AUTO_ONNX", "").lower() in ("1", "true", "yes"):
        return
    if Path(__file__).resolve().parent / "bundled" not in path.resolve().parents or find_onnx(path) is not None:
        return
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return
    import logging

    from .export import export_onnx

    logging.getLogger("simpair").info("preparing the bundled matcher for fast starts (once): ONNX export "
                                      "into %s", simpair_home())
    with dir_lock(onnx_dir(path)):  # two first runs at once: one exports, the other then finds it
        if find_onnx(path) is None:
            export_onnx(str(path))


class CrossEncoder:
    """Load a sequence-classification model and score pairs.

    >>> ce = CrossEncoder("runs/quick")
    >>> ce.match("怎么开初婚未育证明", "初婚未育证明怎么开")
    {'probability': 0.97, 'same': True, 'threshold': 0.43, ...}
    """

    def __init__(self, model: str, max_length: int | None = None, bf16: str | bool | None = None,
                 threads: int | None = None, backend: str = "auto", precision: str = "auto",
                 bulk: bool = True) -> None:
        """``backend``: ``torch``, ``onnx`` (an export made by ``simpair export --onnx``) or ``auto`` (the
        export when there is one for the precision — except, with ``bulk``, on CPUs with native bf16, where
        torch bf16 is faster; pass ``bulk=False`` for a few pairs, where start-up time dominates);
        ``precision``: ``fp32``, ``bf16`` (torch), ``int8`` or ``auto`` (bf16 where the CPU has it).
        ``bf16`` (``auto|yes|no``) is the older switch."""
        self.name = model
        path = Path(resolve(model))
        self.path = str(path)
        self.meta = read_meta(path)
        if self.meta.get("kind") == "bi-encoder":
            raise SimpairError(f"{model}: is a bi-encoder (retrieval model); use it with 'simpair index build "
                               f"--model {model}', and a cross-encoder for match/eval/--rerank")
        if self.meta.get("task") == "classify":
            raise SimpairError(f"{model}: is a single-text classifier; use it with 'simpair sentiment --model "
                               f"{model}', and a pair model for match/eval/--rerank")
        if precision == "auto" and bf16 in (None, "auto") and backend == "auto" and onnx_wanted(backend, bulk=bulk):
            prepare_bundled(path)  # the export auto would run
        self.backend, onnx_file, self.precision = plan(backend, path, precision, bf16, bulk)
        self.max_length = int(max_length or self.meta.get("max_length") or 128)
        self.model: Any = None
        self.tokenizer: Any = None
        self.onnx: OnnxModel | None = None
        if self.backend == "onnx":
            self.onnx = OnnxModel(onnx_file, max_length=self.max_length, threads=threads)
            self.precision = self.onnx.precision
            self.num_labels = int(self.onnx.session.get_outputs()[0].shape[-1])
        else:
            set_threads(threads)
            self.model, self.tokenizer, self.meta, _ = load_classifier(model)
            if self.precision == "int8":
                quantize_int8(self.model)
            self.num_labels = int(self.model.config.num_labels)
        self.bf16 = self.precision == "bf16"
        self.task = self.meta.get("task") or ("regression" if self.num_labels == 1 else "classification")
        self.threshold = float(self.meta.get("threshold", 0.5))
        self.score_scale = float(self.meta.get("score_scale", 1.0))

    @property
    def trained(self) -> bool:
        """False for a base encoder whose classification head is still random."""
        return bool(self.meta)

    def _scores(self, logits: np.ndarray) -> np.ndarray:
        logits = np.asarray(logits, dtype=np.float32)
        if self.num_labels == 1:
            out = logits[:, 0]
            return out * self.score_scale if self.task == "regression" else 1.0 / (1.0 + np.exp(-out.clip(-60, 60)))
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return (e / e.sum(axis=1, keepdims=True))[:, 1]

    def logits(self, texts_a: Sequence[str], texts_b: Sequence[str]) -> np.ndarray:
        """The model's raw output for one batch (no sorting): float32 ``[batch, num_labels]``."""
        if self.onnx is not None:
            return self.onnx.run(texts_a, texts_b)[0]
        import torch

        enc = self.tokenizer(list(texts_a), list(texts_b), truncation=True, max_length=self.max_length,
                             padding=True, return_tensors="pt")
        with torch.inference_mode(), bf16_autocast(self.bf16):
            return self.model(**enc).logits.float().numpy()

    def predict(self, pairs: Sequence[tuple[str, str]], batch_size: int = 64, symmetric: bool = False,
                progress: bool = False) -> np.ndarray:
        """Probability of "same" (or the score, for regression) for each pair, in input order.

        Pairs are scored in batches of similar length (longest first: little padding), and each score is
        written back at its pair's position.
        """
        pairs = list(pairs)
        if symmetric:
            fwd = self.predict(pairs, batch_size)
            bwd = self.predict([(b, a) for a, b in pairs], batch_size)
            return (fwd + bwd) / 2
        out = np.zeros(len(pairs), dtype=np.float32)
        if not pairs:
            return out
        batches = length_sorted_batches([len(a) + len(b) for a, b in pairs], batch_size)
        if progress:
            from tqdm.auto import tqdm

            batches = tqdm(batches, desc="scoring", unit="batch")
        for idx in batches:
            out[idx] = self._scores(self.logits([pairs[i][0] for i in idx], [pairs[i][1] for i in idx]))
        return out

    def match(self, text_a: str, text_b: str, symmetric: bool = False) -> dict[str, Any]:
        """One pair: probability, decision by the stored threshold, and the threshold."""
        prob = float(self.predict([(text_a, text_b)], symmetric=symmetric)[0])
        result: dict[str, Any] = {"text_a": text_a, "text_b": text_b}
        if self.task == "regression":
            result.update(score=prob)
        else:
            same = prob >= self.threshold
            result.update(probability=prob, same=same, label="same" if same else "different",
                          threshold=self.threshold)
        result.update(model=self.name, backend=self.backend, precision=self.precision)
        return result

    def stream(self, pairs: Iterable[tuple[str, str]], batch_size: int = 64, symmetric: bool = False,
               chunk: int = 1024) -> Iterable[tuple[int, float]]:
        """Score an iterable of pairs chunk by chunk; yields (index, score)."""
        buf: list[tuple[str, str]] = []
        start = 0
        for pair in pairs:
            buf.append(pair)
            if len(buf) >= chunk:
                yield from enumerate(self.predict(buf, batch_size, symmetric).tolist(), start)
                start += len(buf)
                buf = []
        if buf:
            yield from enumerate(self.predict(buf, batch_size, symmetric).tolist(), start)

    def timed_predict(self, pairs: Sequence[tuple[str, str]], **kwargs: Any) -> tuple[np.ndarray, float]:
        """``predict`` plus the pairs/s it achieved."""
        t0 = time.perf_counter()
        scores = self.predict(pairs, **kwargs)
        return scores, len(pairs) / max(time.perf_counter() - t0, 1e-9)

