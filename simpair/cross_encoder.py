"""The cross-encoder: both questions in one input, one probability that they mean the same.

A trained model is a standard transformers directory (``AutoModelForSequenceClassification``
loads it; ERNIE checkpoints come back as ``ErnieForSequenceClassification``) plus ``simpair.json``
holding what plain transformers does not keep: the decision threshold chosen on dev, the
maximum length, the task and dev metrics.
"""
from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ModelNotFoundError, SimpairError
from .models import META_FILE, load_classifier, read_meta
from .models.resolve import bundled_dir
from .utils import simpair_home

__all__ = ["META_FILE", "CrossEncoder", "default_model", "read_meta"]


def bf16_supported() -> bool:
    """True on CPUs with native bf16 (AVX-512 BF16 or AMX), where autocast pays off."""
    import torch

    checker = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    amx = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return bool((checker and checker()) or (amx and amx()))


def use_bf16(setting: str | bool | None) -> bool:
    """Resolve an ``auto|yes|no`` bf16 setting against this CPU."""
    if setting in (True, "yes", "true", "1"):
        return True
    if setting in (False, "no", "false", "0"):
        return False
    return bf16_supported()


def bf16_autocast(enabled: bool) -> Any:
    """``torch.autocast`` to bf16 on the CPU when ``enabled``, else a context that does nothing."""
    import torch

    return torch.autocast("cpu", dtype=torch.bfloat16) if enabled else contextlib.nullcontext()


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


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[np.ndarray]:
    """Index batches over items sorted by length (longest first): less padding per batch."""
    order = np.argsort(-np.asarray(lengths), kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


class CrossEncoder:
    """Load a sequence-classification model and score pairs.

    >>> ce = CrossEncoder("runs/quick")
    >>> ce.match("怎么开初婚未育证明", "初婚未育证明怎么开")
    {'probability': 0.97, 'same': True, 'threshold': 0.43, ...}
    """

    def __init__(self, model: str, max_length: int | None = None, bf16: str | bool = "auto",
                 threads: int | None = None) -> None:
        import torch

        if threads:
            torch.set_num_threads(int(threads))
        self.name = model
        self.model, self.tokenizer, self.meta, path = load_classifier(model)
        self.path = str(path)
        if self.meta.get("kind") == "bi-encoder":
            raise SimpairError(f"{model}: is a bi-encoder (retrieval model); use it with 'simpair index build "
                               f"--model {model}', and a cross-encoder for match/eval/--rerank")
        if self.meta.get("task") == "classify":
            raise SimpairError(f"{model}: is a single-text classifier; use it with 'simpair sentiment --model "
                               f"{model}', and a pair model for match/eval/--rerank")
        self.num_labels = int(self.model.config.num_labels)
        self.task = self.meta.get("task") or ("regression" if self.num_labels == 1 else "classification")
        self.threshold = float(self.meta.get("threshold", 0.5))
        self.max_length = int(max_length or self.meta.get("max_length") or 128)
        self.score_scale = float(self.meta.get("score_scale", 1.0))
        self.bf16 = use_bf16(bf16)

    @property
    def trained(self) -> bool:
        """False for a base encoder whose classification head is still random."""
        return bool(self.meta)

    def _scores(self, logits: Any) -> np.ndarray:
        import torch

        logits = logits.float()
        if self.num_labels == 1:
            out = logits[:, 0]
            out = out * self.score_scale if self.task == "regression" else torch.sigmoid(out)
        else:
            out = torch.softmax(logits, dim=-1)[:, 1]
        return out.numpy()

    def predict(self, pairs: Sequence[tuple[str, str]], batch_size: int = 64, symmetric: bool = False,
                progress: bool = False) -> np.ndarray:
        """Probability of "same" (or the score, for regression) for each pair, in input order."""
        import torch

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
        with torch.inference_mode(), bf16_autocast(self.bf16):
            for idx in batches:
                enc = self.tokenizer(
                    [pairs[i][0] for i in idx], [pairs[i][1] for i in idx],
                    truncation=True, max_length=self.max_length, padding=True, return_tensors="pt",
                )
                out[idx] = self._scores(self.model(**enc).logits)
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
        result["model"] = self.name
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

