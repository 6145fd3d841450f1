"""``simpair sentiment``: transformers' ``pipeline("sentiment-analysis")`` on a model that works offline.

Without a model name it uses the sentiment model bundled with simpair (e5-small + a LoRA adapter
trained on ChnSentiCorp and SST-2; see ``simpair/bundled/sentiment/README.md``). Any classifier
trained with ``simpair train --task classify``, any local directory and, online, any hub id
(``tabularisai/multilingual-sentiment-analysis``, tutorial 01's five-class example) work too.
``explain`` walks one text through the pipeline's three stages (tutorial 04): tokenizer → model
logits → softmax probabilities.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from .config import MAX_LENGTH_FALLBACK
from .errors import SimpairError
from .models import load_classifier
from .backend.int8_check import check_torch_int8
from .backend.runtime import bf16_autocast, length_sorted_batches, quantize_int8, resolve_precision, set_threads

DEFAULT_MODEL = "sentiment"


def default_sentiment_model() -> str:
    """``$SIMPAIR_SENTIMENT_MODEL``, else the bundled model."""
    return os.environ.get("SIMPAIR_SENTIMENT_MODEL") or DEFAULT_MODEL


class Sentiment:
    """A text-classification pipeline with simpair's loading (adapters, offline names) and batching.

    >>> Sentiment()("这家酒店的服务太差了，再也不来了")
    [{'label': 'negative', 'score': 0.98, 'text': '这家酒店的服务太差了，再也不来了'}]
    """

    def __init__(self, model: str | None = None, max_length: int | None = None, bf16: str | bool | None = "auto",
                 threads: int | None = None, backend: str = "auto", precision: str = "auto") -> None:
        """``precision``: ``fp32``, ``bf16``, ``int8`` (dynamic quantisation of the linear layers) or ``auto``
        (bf16 where the CPU has it); ``bf16`` (``auto|yes|no``) is the older switch. The pipeline runs on
        torch: ``backend`` ``auto`` or ``torch``; ``onnx`` / ``openvino`` are refused with a clear error."""
        from transformers import pipeline

        if backend not in ("auto", "torch"):
            raise SimpairError(f"sentiment: backend {backend!r}; the sentiment pipeline runs on torch "
                               "(--backend auto or torch; ONNX and OpenVINO serve match, eval and search)")
        set_threads(threads)
        self.name = model or default_sentiment_model()
        self.model, self.tokenizer, self.meta, self.path = load_classifier(self.name)
        if self.meta.get("kind") == "bi-encoder" or self.meta.get("task") in ("classification", "regression"):
            raise SimpairError(f"{self.name}: is a sentence-pair model ({self.meta.get('kind')}); "
                               "sentiment needs a single-text classifier (simpair train --task classify)")
        self.max_length = int(max_length or self.meta.get("max_length") or MAX_LENGTH_FALLBACK["classifier"])
        self.precision = resolve_precision(precision, bf16)
        self.bf16 = self.precision == "bf16"
        self.pipe = pipeline("sentiment-analysis", model=self.model, tokenizer=self.tokenizer, device="cpu")
        if self.precision == "int8":  # quantised in place (the pipeline holds the same model), checked first
            check_torch_int8(self.name, "classifier", self.path,
                             self._check_scores, lambda: quantize_int8(self.model))

    def _check_scores(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """Every class probability of the check pairs' first texts, flattened: what the int8 check compares."""
        rows = self([a for a, _ in pairs], top_k=None)
        return np.array([[r["scores"][name] for name in self.labels] for r in rows]).ravel()

    @property
    def labels(self) -> list[str]:
        return [self.model.config.id2label[i] for i in range(self.model.config.num_labels)]

    def __call__(self, texts: str | Sequence[str], batch_size: int = 32, top_k: int | None = 1) -> list[dict[str, Any]]:
        """Label and score per text, in input order (batched by length: less padding)."""
        items = [texts] if isinstance(texts, str) else list(texts)
        for i, t in enumerate(items):
            if not isinstance(t, str) or not t.strip():
                raise SimpairError(f"sentiment: text {i + 1} is empty; expected a non-empty text")
        out: list[dict[str, Any]] = [{} for _ in items]
        with bf16_autocast(self.bf16):
            for idx in length_sorted_batches([len(t) for t in items], batch_size):
                batch = [items[i] for i in idx]
                res = self.pipe(batch, batch_size=len(batch), truncation=True, max_length=self.max_length,
                                top_k=top_k)
                for i, r in zip(idx, res):
                    r = r if isinstance(r, list) else [r]
                    best = max(r, key=lambda x: x["score"])  # top_k=None need not come sorted
                    row = {"text": items[i], "label": best["label"], "score": float(best["score"])}
                    if top_k is None or (top_k and top_k > 1):
                        row["scores"] = {x["label"]: float(x["score"]) for x in r}
                    out[i] = row
        return out

    def explain(self, text: str) -> dict[str, Any]:
        """The pipeline's three stages for one text: token ids, logits, probabilities."""
        import torch

        if not text.strip():
            raise SimpairError("sentiment: empty text; expected a non-empty text")
        enc = self.tokenizer(text, truncation=True, max_length=self.max_length, return_tensors="pt")
        with torch.inference_mode(), bf16_autocast(self.bf16):
            logits = self.model(**enc).logits.float()[0]
        probs = torch.softmax(logits, dim=-1).numpy()
        ids = enc["input_ids"][0].tolist()
        best = int(np.argmax(probs))
        return {
            "text": text,
            "model": self.name,
            "1_tokenizer": {"tokens": self.tokenizer.convert_ids_to_tokens(ids), "input_ids": ids},
            "2_model": {"logits": [round(float(x), 4) for x in logits.numpy()]},
            "3_postprocess": {"softmax": {lab: round(float(p), 4) for lab, p in zip(self.labels, probs)}},
            "label": self.labels[best],
            "score": float(probs[best]),
        }
