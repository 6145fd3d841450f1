"""The cross-encoder: both questions in one input, one probability that they mean the same.

A trained model is a standard transformers directory (``AutoModelForSequenceClassification``
loads it; ERNIE checkpoints come back as ``ErnieForSequenceClassification``) plus ``simpair.json``
holding what plain transformers does not keep: the decision threshold chosen on dev, the
maximum length, the task and dev metrics.
"""
from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .backend.onnx import OnnxModel, find_onnx, onnx_dir
from .backend.int8_check import check_torch_int8, file_identity, verify_int8
from .backend.openvino import OpenVinoModel
from .backend.runtime import (
    bf16_autocast,
    bf16_supported,
    exported_model,
    length_sorted_batches,
    onnx_wanted,
    plan,
    quantize_int8,
    set_threads,
    use_bf16,
)
from .config import MAX_LENGTH_FALLBACK
from .errors import SimpairError
from .models import META_FILE, load_classifier, read_meta, resolve
from .models.resolve import default_model
from .utils import dir_lock, simpair_home

__all__ = ["META_FILE", "CrossEncoder", "bf16_autocast", "bf16_supported", "decide", "default_model",
           "domain_threshold", "length_sorted_batches", "read_meta", "use_bf16"]


def decide(score: float, threshold: float) -> bool:
    """The one decision rule: a pair is "same" when its probability reaches the model's threshold."""
    return bool(score >= threshold)


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

    from .backend.onnx_export import export_onnx

    logging.getLogger("simpair").info("preparing the bundled matcher for fast starts (once): ONNX export "
                                      "into %s", simpair_home())
    with dir_lock(onnx_dir(path)):  # two first runs at once: one exports, the other then finds it
        if find_onnx(path) is None:
            export_onnx(str(path))


def domain_threshold(meta: dict[str, Any], domain: str | None, model: str) -> float:
    """The decision threshold: the model's own, or the one calibrated for ``domain``."""
    if domain is None:
        return float(meta.get("threshold", 0.5))
    named = meta.get("thresholds") or {}
    if domain not in named:
        known = ", ".join(sorted(named)) or "none yet"
        raise SimpairError(f"{model}: no threshold calibrated for domain {domain!r} (calibrated: {known}); "
                           f"run 'simpair calibrate {model} DEV.tsv --name {domain}'")
    return float(named[domain]["threshold"])


class CrossEncoder:
    """Load a sequence-classification model and score pairs.

    >>> ce = CrossEncoder("runs/quick")
    >>> ce.match("怎么开初婚未育证明", "初婚未育证明怎么开")
    {'probability': 0.97, 'same': True, 'threshold': 0.43, ...}
    """

    def __init__(self, model: str, max_length: int | None = None, bf16: str | bool | None = None,
                 threads: int | None = None, backend: str = "auto", precision: str = "auto",
                 bulk: bool = True, domain: str | None = None) -> None:
        """``backend``: ``torch``, ``onnx`` / ``openvino`` (exports made by ``simpair export --onnx`` /
        ``--openvino``) or ``auto`` (the rule of :func:`~simpair.backend.runtime.choose_backend`: an export
        when there is one for the precision; pass ``bulk=False`` for a few pairs, where start-up time
        dominates); ``precision``: ``fp32``, ``bf16`` (torch, OpenVINO), ``int8`` or ``auto`` (bf16 where the
        CPU has it).
        ``bf16`` (``auto|yes|no``) is the older switch. ``domain``: decide with the threshold calibrated under
        that name (``simpair calibrate MODEL DEV --name NAME``) instead of the model's own."""
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
        self.backend, file, self.precision = plan(backend, path, precision, bf16, bulk)
        self.max_length = int(max_length or self.meta.get("max_length") or MAX_LENGTH_FALLBACK["cross-encoder"])
        self.model: Any = None
        self.tokenizer: Any = None
        # an ONNX or OpenVINO export's runner (backend onnx / openvino), else None (torch)
        self.exported: OnnxModel | OpenVinoModel | None = None
        if file is not None:
            self.exported = exported_model(self.backend, file, self.max_length, threads, self.precision)
            self.precision = self.exported.precision
            self.num_labels = self.exported.output_width
        else:
            set_threads(threads)
            self.model, self.tokenizer, self.meta, _ = load_classifier(model)
            self.num_labels = int(self.model.config.num_labels)
        self.bf16 = self.precision == "bf16"
        self.task = self.meta.get("task") or ("regression" if self.num_labels == 1 else "classification")
        self.domain = domain
        self.threshold = domain_threshold(self.meta, domain, model)
        self.score_scale = float(self.meta.get("score_scale", 1.0))
        if self.precision == "int8":
            self._check_int8(file)

    def _check_int8(self, file: Path | None) -> None:
        """Quantise (torch) and run the int8 check of :mod:`simpair.backend.int8_check` on this CPU: an int8
        whose scores drift from fp32 here is refused before it scores anything."""
        scale = self.score_scale if self.task == "regression" else 1.0  # compare scores on the 0-1 scale

        def score(pairs: Sequence[tuple[str, str]]) -> np.ndarray:
            return self.predict(pairs) / scale

        threshold = None if self.task == "regression" else self.threshold
        if file is None:
            check_torch_int8(self.name, "cross-encoder", self.path, score,
                             lambda: quantize_int8(self.model), threshold)
            return

        def fp32() -> Any:
            ref = CrossEncoder(self.path, max_length=self.max_length, backend=self.backend, precision="fp32")
            return lambda pairs: ref.predict(pairs) / scale

        verify_int8(self.name, file_identity(file), score, fp32, threshold)

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
        if self.exported is not None:
            return self.exported.run(texts_a, texts_b)[0]
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
        shown: Iterable[np.ndarray] = batches
        if progress:
            from tqdm.auto import tqdm

            shown = tqdm(batches, desc="scoring", unit="batch")
        texts = (([pairs[i][0] for i in idx], [pairs[i][1] for i in idx]) for idx in shown)
        if self.exported is not None:  # the export's own loop (OpenVINO: two batches in flight)
            scored = self.exported.run_many(texts, lambda logits, _mask: self._scores(logits))
        else:
            scored = (self._scores(self.logits(a, b)) for a, b in texts)
        for idx, scores in zip(batches, scored):
            out[idx] = scores
        return out

    def match(self, text_a: str, text_b: str, symmetric: bool = False) -> dict[str, Any]:
        """One pair: probability, decision by the stored threshold, and the threshold."""
        prob = float(self.predict([(text_a, text_b)], symmetric=symmetric)[0])
        result: dict[str, Any] = {"text_a": text_a, "text_b": text_b}
        if self.task == "regression":
            result.update(score=prob)
        else:
            same = decide(prob, self.threshold)
            result.update(probability=prob, same=same, label="same" if same else "different",
                          threshold=self.threshold)
        result.update(model=self.name, backend=self.backend, precision=self.precision)
        if self.domain is not None:
            result["domain"] = self.domain
        return result

    def match_file(self, path: str | Path, batch_size: int = 64, symmetric: bool = False) -> Iterator[dict[str, Any]]:
        """Every pair of a file (any supported format; labels optional), scored chunk by chunk: one row per
        pair with its line, probability and decision (or score), and the gold label when the file has one.
        The whole file is validated first (nothing is yielded for a bad one); memory is bounded by a chunk."""
        from .readers import count_pairs, iter_pairs

        count_pairs(path, require_labels=False)
        for chunk in iter_pairs(path, require_labels=False):
            scores = self.predict([(p.text_a, p.text_b) for p in chunk.pairs], batch_size, symmetric)
            for p, score in zip(chunk.pairs, scores.tolist()):
                row: dict[str, Any] = {"line": p.line, "text_a": p.text_a, "text_b": p.text_b}
                if self.task == "regression":
                    row["score"] = score
                else:
                    row.update(probability=score, same=decide(score, self.threshold))
                if p.label is not None:
                    row["gold"] = p.label
                yield row

    def score_file(self, path: str | Path, fmt: str = "auto", task: str = "auto", batch_size: int = 64,
                   symmetric: bool = False, progress: bool = False) -> tuple[np.ndarray, np.ndarray, str]:
        """(scores, labels, the task read) for a labelled pair file, in file order, in bounded memory
        (:func:`~simpair.readers.score_pair_file`: validated whole first, then scored chunk by chunk)."""
        from .readers import score_pair_file

        return score_pair_file(path, lambda pairs: self.predict([(p.text_a, p.text_b) for p in pairs],
                                                                 batch_size=batch_size, symmetric=symmetric,
                                                                 progress=progress), fmt=fmt, task=task)

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

