"""Batch scoring and encoding on Ray: one loaded model per worker, the results in input order.

Pairs: the driver validates the file whole (nothing runs on a bad one) and plans its chunks
(:func:`simpair.readers.plan_chunks`: byte offsets, no texts); ``ray.data`` carries the chunk plan, and
``map_batches`` with an actor pool sends each chunk to a worker that reads those lines itself with simpair's
reader and scores them with its own model. So the driver holds one chunk of results at a time, the workers
read in parallel, and the file must be where every worker can open it (one machine, or a shared filesystem
on a cluster). Texts (``index build`` / ``add``): the texts go through ``ray.data`` in blocks and come back as
vectors. Order is kept (``preserve_order``), so results equal the one-process path's, row for row.

``address``: None starts (or joins) a Ray on this machine; ``auto`` or ``ray://HOST:10001`` joins a cluster.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..utils import require_extra

TEXT_BLOCK = 512  # texts a worker encodes per call


class _PairScorer:
    """A Ray actor: a cross-encoder loaded once, scoring the chunks it is given."""

    def __init__(self, model: str, run: dict[str, Any], domain: str | None, batch_size: int,
                 symmetric: bool) -> None:
        from ..cross_encoder import CrossEncoder

        self.ce = CrossEncoder(model, domain=domain, bulk=True, **run)
        self.batch_size, self.symmetric = batch_size, symmetric

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from ..readers import read_chunk

        pairs = [p for chunk in batch["chunk"] for p in read_chunk(chunk).pairs]
        scores = self.ce.predict([(p.text_a, p.text_b) for p in pairs], self.batch_size, self.symmetric)
        return {"line": np.array([p.line for p in pairs], dtype=np.int64),
                "text_a": np.array([p.text_a for p in pairs], dtype=object),
                "text_b": np.array([p.text_b for p in pairs], dtype=object),
                "label": np.array([np.nan if p.label is None else p.label for p in pairs], dtype=np.float64),
                "score": scores.astype(np.float32)}


class _TextEncoder:
    """A Ray actor: a bi-encoder loaded once, encoding the blocks of texts it is given."""

    def __init__(self, model: str, prefix: str, run: dict[str, Any], batch_size: int) -> None:
        from ..bi_encoder import BiEncoder

        self.encoder = BiEncoder(model, prefix=prefix, bulk=True, **run)
        self.batch_size = batch_size

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"vector": self.encoder.encode(list(batch["text"]), batch_size=self.batch_size)}


def _describe(model: str, domain: str | None, run: dict[str, Any]) -> dict[str, Any]:
    """What the driver needs to know of a pair model (loaded on a worker, so the driver loads none)."""
    from ..cross_encoder import CrossEncoder

    ce = CrossEncoder(model, domain=domain, bulk=True, **run)
    return {"name": ce.name, "task": ce.task, "threshold": ce.threshold, "trained": ce.trained,
            "backend": ce.backend, "precision": ce.precision}


class RayEngine:
    """A connection to Ray and the pool size: ``workers`` actors (default: one per ``threads`` CPUs that Ray
    has), each with ``run`` (backend, precision, threads) for its model."""

    def __init__(self, address: str | None = None, workers: int | None = None,
                 run: dict[str, Any] | None = None, chunk_lines: int | None = None) -> None:
        ray = require_extra("ray", "ray", "--engine ray")
        require_extra("ray.data", "ray", "--engine ray")
        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level="warning")
        logging.getLogger("ray.data").setLevel(logging.WARNING)  # no per-run execution plans on stderr
        self.run = {k: v for k, v in (run or {}).items() if v is not None}
        self.cpus_per_worker = int(self.run.get("threads") or 1)
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.workers = workers or max(1, cpus // self.cpus_per_worker)
        self.chunk_lines = chunk_lines  # lines a worker reads and scores at a time (None: the readers' default)

    def _pool(self, cls: type, kwargs: dict[str, Any], batch_size: int, blocks: int) -> dict[str, Any]:
        """``map_batches`` arguments: an actor pool of ``cls`` (no more actors than there are blocks)."""
        from ray.data import ActorPoolStrategy

        return {"fn": cls, "fn_constructor_kwargs": kwargs, "batch_size": batch_size, "batch_format": "numpy",
                "compute": ActorPoolStrategy(size=max(1, min(self.workers, blocks))),
                "num_cpus": self.cpus_per_worker}

    def _worker_run(self) -> dict[str, Any]:
        """A worker's backend, precision and threads: as many threads as the CPUs Ray gives it."""
        return {**self.run, "threads": self.cpus_per_worker}

    @staticmethod
    def _ordered() -> None:
        import ray.data

        ctx = ray.data.DataContext.get_current()
        ctx.execution_options.preserve_order = True
        ctx.enable_progress_bars = False

    def describe(self, model: str, domain: str | None = None) -> dict[str, Any]:
        import ray

        return ray.get(ray.remote(_describe).options(num_cpus=self.cpus_per_worker).remote(model, domain,
                                                                                  self._worker_run()))

    def score_chunks(self, model: str, chunks: list[Any], batch_size: int = 64, symmetric: bool = False,
                     domain: str | None = None) -> Iterator[dict[str, np.ndarray]]:
        """The scored pairs of a planned file (:func:`simpair.readers.plan_chunks`: validated, nothing runs on a
        bad one) as column batches (line, text_a, text_b, label, score), in file order."""
        import ray.data

        self._ordered()
        ds = ray.data.from_items([{"chunk": c} for c in chunks], override_num_blocks=len(chunks))
        kwargs = {"model": model, "run": self._worker_run(), "domain": domain, "batch_size": batch_size,
                  "symmetric": symmetric}
        scored = ds.map_batches(**self._pool(_PairScorer, kwargs, 1, len(chunks)))
        yield from scored.iter_batches(batch_size=None, batch_format="numpy")

    def encode(self, model: str, prefix: str, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """float32 ``[len(texts), dim]`` L2-normalised vectors, in input order, encoded by the workers."""
        import ray.data

        if not texts:
            from ..bi_encoder import BiEncoder

            return np.zeros((0, BiEncoder(model, prefix=prefix).dim), dtype=np.float32)
        self._ordered()
        blocks = max(1, min(-(-len(texts) // TEXT_BLOCK), 32 * self.workers))
        ds = ray.data.from_items([{"text": t} for t in texts], override_num_blocks=blocks)
        kwargs = {"model": model, "prefix": prefix, "run": self._worker_run(), "batch_size": batch_size}
        encoded = ds.map_batches(**self._pool(_TextEncoder, kwargs, TEXT_BLOCK, blocks))
        parts = [b["vector"] for b in encoded.iter_batches(batch_size=None, batch_format="numpy")]
        return np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)

    def encoder(self, model: str, prefix: str, batch_size: int = 64) -> Any:
        """``encode`` bound to a model: the ``encode`` argument of ``Index.build`` / ``add``."""
        return lambda texts: self.encode(model, prefix, list(texts), batch_size)

    def cross_encoder(self, model: str, domain: str | None = None) -> RayCrossEncoder:
        return RayCrossEncoder(self, model, domain)


class RayCrossEncoder:
    """What ``match --file`` and ``eval`` use of a :class:`~simpair.cross_encoder.CrossEncoder`
    (``match_file``, ``score_file``, the name, task and threshold), with the scoring done by Ray workers."""

    def __init__(self, engine: RayEngine, model: str, domain: str | None = None) -> None:
        self.engine, self.model, self.domain = engine, model, domain
        info = engine.describe(model, domain)
        self.name, self.task, self.threshold = info["name"], info["task"], float(info["threshold"])
        self.trained, self.backend, self.precision = info["trained"], info["backend"], info["precision"]

    def match_file(self, path: str | Path, batch_size: int = 64, symmetric: bool = False
                   ) -> Iterator[dict[str, Any]]:
        """As :meth:`simpair.cross_encoder.CrossEncoder.match_file`, row for row."""
        from ..cross_encoder import decide
        from ..readers import plan_chunks

        chunks = plan_chunks(path, chunk_lines=self.engine.chunk_lines, require_labels=False)
        for b in self.engine.score_chunks(self.model, chunks, batch_size, symmetric, self.domain):
            for line, a, bb, label, score in zip(b["line"].tolist(), b["text_a"], b["text_b"], b["label"].tolist(),
                                                 b["score"].tolist()):
                row: dict[str, Any] = {"line": line, "text_a": a, "text_b": bb}
                if self.task == "regression":
                    row["score"] = score
                else:
                    row.update(probability=score, same=decide(score, self.threshold))
                if label == label:  # not NaN: the file has a label here
                    row["gold"] = label
                yield row

    def score_file(self, path: str | Path, fmt: str = "auto", task: str = "auto", batch_size: int = 64,
                   symmetric: bool = False, progress: bool = False) -> tuple[np.ndarray, np.ndarray, str]:
        """As :meth:`simpair.cross_encoder.CrossEncoder.score_file`: (scores, labels, the task read)."""
        from ..readers import plan_chunks, read_chunk

        chunks = plan_chunks(path, chunk_lines=self.engine.chunk_lines, fmt=fmt, task=task)
        scores, labels = [], []
        for b in self.engine.score_chunks(self.model, chunks, batch_size, symmetric, self.domain):
            scores.append(b["score"])
            labels.append(b["label"])
        return np.concatenate(scores), np.concatenate(labels), read_chunk(chunks[0]).task
