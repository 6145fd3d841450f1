"""The bi-encoder: one embedding per text, compared by cosine; fast candidate retrieval.

A sentence-transformers ``SentenceTransformer`` over any resolvable model. For E5 models the
texts get E5's prefix; for symmetric question matching simpair puts ``"query: "`` on both sides
(the E5 model card's advice for symmetric tasks; measured on LCQMC dev in the README).
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .backend.int8_check import check_torch_int8, file_identity, verify_int8
from .backend.onnx import OnnxModel
from .backend.openvino import OpenVinoModel
from .backend.runtime import (
    bf16_autocast,
    exported_model,
    length_sorted_batches,
    plan,
    quantize_int8,
    set_threads,
)
from .models import default_prefix, read_meta, resolve
from .models.load import sentence_transformer
from .utils import atomic_write_text, simpair_home


def weights_fingerprint(model_path: str) -> str:
    """SHA-256 over the model's weight files, cached by (path, size, mtime) in SIMPAIR_HOME."""
    files = sorted(p for p in Path(model_path).rglob("*") if p.suffix in (".safetensors", ".bin") and p.is_file())
    if not files:
        return "no-weights"
    key = "|".join(f"{p.resolve()}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files)
    cache_file = simpair_home() / "fingerprints.json"
    cache: dict[str, str] = {}
    if cache_file.is_file():
        try:
            cache = json.loads(cache_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            cache = {}
    if key in cache:
        return cache[key]
    h = hashlib.sha256()
    for p in files:
        with open(p, "rb") as fh:
            while block := fh.read(1 << 22):
                h.update(block)
    digest = h.hexdigest()[:32]
    cache[key] = digest
    try:
        atomic_write_text(cache_file, json.dumps(cache))
    except OSError:
        pass
    return digest


class BiEncoder:
    """Encode texts into L2-normalised embeddings.

    >>> enc = BiEncoder("e5-small")
    >>> enc.encode(["怎么开初婚未育证明"]).shape
    (1, 384)
    """

    def __init__(self, model: str = "e5-small", prefix: str | None = None, bf16: str | bool | None = None,
                 max_length: int | None = None, backend: str = "auto", precision: str = "auto",
                 threads: int | None = None, bulk: bool = True) -> None:
        """``backend``/``precision``/``bulk`` as for :class:`~simpair.cross_encoder.CrossEncoder`: ``auto``
        runs an OpenVINO or ONNX export (``simpair export MODEL --openvino`` / ``--onnx``) when there is one
        (:func:`~simpair.backend.runtime.choose_backend`), else torch in bf16 where it pays."""
        self.name = model
        self.path = resolve(model)
        self.backend, file, self.precision = plan(backend, self.path, precision, bf16, bulk)
        self.prefix = default_prefix(model, self.path) if prefix is None else prefix
        meta = read_meta(self.path)
        # the cosine cut chosen on dev when simpair trained it (None for a base model such as e5-small)
        self.threshold: float | None = meta.get("threshold")
        self.model: Any = None
        # an ONNX or OpenVINO export's runner (backend onnx / openvino), else None (torch)
        self.exported: OnnxModel | OpenVinoModel | None = None
        if file is not None:
            self.exported = exported_model(self.backend, file, max_length, threads, self.precision)
            self.precision = self.exported.precision
            self.dim = self.exported.output_width
        else:
            set_threads(threads)
            self.model = sentence_transformer(self.path)
            if max_length:
                self.model.max_seq_length = max_length
            get_dim = getattr(self.model, "get_embedding_dimension", None) or \
                self.model.get_sentence_embedding_dimension
            self.dim = int(get_dim())
        self.bf16 = self.precision == "bf16"
        self._fingerprint: str | None = None
        if self.precision == "int8":
            self._check_int8(file, max_length)

    def similarity(self, pairs: Sequence[tuple[str, str]], batch_size: int = 64) -> np.ndarray:
        """Cosine similarity of each pair's two embeddings."""
        vectors = self.encode([t for pair in pairs for t in pair], batch_size=batch_size)
        return (vectors[0::2] * vectors[1::2]).sum(axis=1)

    def _check_int8(self, file: Path | None, max_length: int | None) -> None:
        """Quantise (torch) and run the int8 check of :mod:`simpair.backend.int8_check` on this CPU, on the
        cosine similarities of the check pairs."""
        if file is None:
            check_torch_int8(self.name, "bi-encoder", self.path, self.similarity,
                             lambda: quantize_int8(self.model), self.threshold)
            return

        def fp32() -> Any:
            return BiEncoder(self.path, prefix=self.prefix, max_length=max_length, backend=self.backend,
                             precision="fp32").similarity

        verify_int8(self.name, file_identity(file), self.similarity, fp32, self.threshold)

    @property
    def fingerprint(self) -> str:
        """Identifies the weights: an index built with one model refuses queries from another."""
        if self._fingerprint is None:
            self._fingerprint = weights_fingerprint(self.path)
        return self._fingerprint

    def encode(self, texts: Sequence[str], batch_size: int = 64, progress: bool = False,
               processes: int = 1) -> np.ndarray:
        """float32 ``[len(texts), dim]``, L2-normalised (cosine = dot product).

        ``processes > 1`` spreads the texts over that many worker processes (sentence-transformers'
        multi-process pool): for large corpora on machines with many cores; each worker computes in fp32
        (torch backend; the ONNX backend encodes in this process).
        """
        if not len(texts):
            return np.zeros((0, self.dim), dtype=np.float32)
        items = [self.prefix + t for t in texts]
        if self.exported is not None:
            return self._encode_exported(items, batch_size, progress)
        import torch

        if processes > 1:
            pool = self.model.start_multi_process_pool(target_devices=["cpu"] * processes)
            try:
                emb = self.model.encode(items, pool=pool, batch_size=batch_size, normalize_embeddings=True,
                                        show_progress_bar=progress, convert_to_numpy=True)
            finally:
                self.model.stop_multi_process_pool(pool)
            return np.ascontiguousarray(emb, dtype=np.float32)
        with torch.inference_mode(), bf16_autocast(self.bf16):
            emb = self.model.encode(items, batch_size=batch_size, normalize_embeddings=True,
                                    show_progress_bar=progress, convert_to_numpy=True)
        return np.ascontiguousarray(emb, dtype=np.float32)

    def _encode_exported(self, items: list[str], batch_size: int, progress: bool) -> np.ndarray:
        """Length-sorted batches through the export (ONNX Runtime or OpenVINO), pooled as the model's modules
        say, L2-normalised."""
        assert self.exported is not None
        out = np.zeros((len(items), self.dim), dtype=np.float32)
        batches = length_sorted_batches([len(t) for t in items], batch_size)
        shown: Any = batches
        if progress:
            from tqdm.auto import tqdm

            shown = tqdm(batches, desc="encoding", unit="batch")
        cls = self.exported.meta.get("pooling") == "cls"

        def pool(states: np.ndarray, mask: np.ndarray) -> np.ndarray:
            if cls:
                emb = states[:, 0]
            else:
                m = mask[..., None].astype(np.float32)
                emb = (states * m).sum(axis=1) / np.clip(m.sum(axis=1), 1e-9, None)
            return emb / np.clip(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12, None)

        pooled = self.exported.run_many((([items[i] for i in idx], None) for idx in shown), pool)
        for idx, emb in zip(batches, pooled):
            out[idx] = emb
        return out

    def describe(self) -> dict[str, Any]:
        return {"model": self.name, "model_path": str(self.path), "fingerprint": self.fingerprint,
                "dim": self.dim, "prefix": self.prefix, "normalized": True}

