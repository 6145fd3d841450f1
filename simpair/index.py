"""A FAISS index of a question corpus, persisted with everything needed to query it safely.

An index directory holds ``index.faiss`` (the vectors), ``store.sqlite`` (row → id, text) and
``manifest.json`` (model name and weights fingerprint, dimension, normalisation, prefix, index
type and parameters, row count, file checksums). It is written aside and renamed into place, so a
reader never sees a half-written index; loading it with a different model is an error.

Types: ``flat`` (exact inner product), ``hnsw`` (graph), ``ivf`` (inverted lists), ``ivfpq``
(inverted lists + product quantisation, for millions of vectors). ``auto`` picks flat below
``AUTO_FLAT_MAX`` vectors, HNSW below ``AUTO_HNSW_MAX``, IVF-PQ above (README: measured thresholds).
"""
from __future__ import annotations

import json
import math
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .errors import InputError, SimpairError
from .readers import read_corpus
from .utils import atomic_dir, dir_lock, file_sha256, read_json

FORMAT_VERSION = 1
AUTO_FLAT_MAX = 20_000
AUTO_HNSW_MAX = 2_000_000
TYPES = ("auto", "flat", "hnsw", "ivf", "ivfpq")
ON_DUPLICATE = ("error", "skip")  # an id already in the index: reject the file, or skip that entry
HNSW_M, HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH = 32, 80, 64
Hit = tuple[str, str, float]  # (id, text, score) of one stored entry found for a query
Encode = Callable[[list[str]], np.ndarray]  # texts -> their L2-normalised vectors, in order


def choose_type(n: int) -> str:
    """The ``auto`` rule: exact search while it is fast enough, then HNSW, then IVF-PQ."""
    if n <= AUTO_FLAT_MAX:
        return "flat"
    return "hnsw" if n <= AUTO_HNSW_MAX else "ivfpq"


def make_faiss(kind: str, dim: int, vectors: np.ndarray) -> tuple[Any, dict[str, Any]]:
    import faiss

    n = len(vectors)
    if kind == "flat":
        return faiss.IndexFlatIP(dim), {}
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        return index, {"M": HNSW_M, "efConstruction": HNSW_EF_CONSTRUCTION, "efSearch": HNSW_EF_SEARCH}
    nlist = max(1, min(int(4 * math.sqrt(n)), n // 39))
    quantizer = faiss.IndexFlatIP(dim)
    if kind == "ivf":
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        params = {"nlist": nlist, "nprobe": min(nlist, 32)}
    else:
        m = next(m for m in (48, 32, 24, 16, 12, 8, 6, 4, 3, 2, 1) if dim % m == 0)
        bits = 8 if n >= 256 * 39 else max(1, int(math.log2(max(2, n // 39))))
        index = faiss.IndexIVFPQ(quantizer, dim, nlist, m, bits, faiss.METRIC_INNER_PRODUCT)
        params = {"nlist": nlist, "nprobe": min(nlist, 32), "pq_m": m, "pq_bits": bits}
    sample = vectors[np.random.default_rng(0).permutation(n)[: max(nlist * 64, 10_000)]]
    index.train(sample)
    return index, params


def apply_params(index: Any, params: dict[str, Any]) -> None:
    if "efSearch" in params:
        index.hnsw.efSearch = int(params["efSearch"])
    if "nprobe" in params:
        index.nprobe = int(params["nprobe"])


def memory_estimate(n: int, dim: int, kind: str) -> int:
    """Approximate bytes the index needs in memory (printed before large builds)."""
    if kind == "ivfpq":
        m = next(m for m in (48, 32, 24, 16, 12, 8, 6, 4, 3, 2, 1) if dim % m == 0)
        return n * (m + 8)
    per = dim * 4 + (HNSW_M * 2 * 4 + 8 if kind == "hnsw" else 8 if kind == "ivf" else 0)
    return n * per


class Index:
    """A loaded index: FAISS vectors, ids and texts, and the manifest that describes them."""

    def __init__(self, path: Path, faiss_index: Any, ids: list[str], texts: list[str], manifest: dict[str, Any]):
        self.path = path
        self.faiss = faiss_index
        self.ids = ids
        self.texts = texts
        self.manifest = manifest
        self.row_of = {i: r for r, i in enumerate(ids)}
        self._by_text: dict[str, list[int]] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def kind(self) -> str:
        return str(self.manifest["index_type"])

    # ------------------------------------------------------------------ building

    @classmethod
    def build(cls, corpus: str | Path, out: str | Path, encoder: Any, kind: str = "auto", batch_size: int = 64,
              progress: bool = True, processes: int = 1, encode: Encode | None = None) -> Index:
        """Encode ``corpus`` with ``encoder`` (a BiEncoder; ``processes`` workers, or ``encode``: another way to
        run it, such as :mod:`simpair.engines.ray`) and write a new index to ``out``."""
        if kind not in TYPES:
            raise SimpairError(f"index type {kind!r}: expected one of {', '.join(TYPES)}")
        entries = read_corpus(corpus)
        texts = [e.text for e in entries]
        vectors = encode(texts) if encode is not None else encoder.encode(
            texts, batch_size=batch_size, progress=progress, processes=processes)
        chosen = choose_type(len(entries)) if kind == "auto" else kind
        t0 = time.perf_counter()
        index, params = make_faiss(chosen, encoder.dim, vectors)
        apply_params(index, params)
        index.add(vectors)
        manifest = {
            "format_version": FORMAT_VERSION,
            "simpair_version": __version__,
            **encoder.describe(),
            "index_type": chosen,
            "requested_type": kind,
            "params": params,
            "count": len(entries),
            "corpus": str(corpus),
            "build_seconds": round(time.perf_counter() - t0, 3),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        out = Path(out)
        _check_target(out)
        with dir_lock(out), atomic_dir(out) as tmp:
            _write(tmp, index, [e.id for e in entries], [e.text for e in entries], manifest)
        return cls.load(out, encoder=encoder)

    def add(self, corpus: str | Path, encoder: Any, on_duplicate: str = "error", batch_size: int = 64,
            progress: bool = True, encode: Encode | None = None) -> dict[str, int]:
        """Append the texts of ``corpus``; only the new texts are encoded.

        ``on_duplicate``: ``error`` (default) rejects ids already in the index, naming their lines;
        ``skip`` leaves the stored entry as it is and adds only new ids. Writers take turns (a lock beside
        the index): a second writer waits, and a copy loaded before another writer's add first catches up
        with what is on disk, so that nothing either of them added is lost.
        """
        self.check_encoder(encoder)
        entries = read_corpus(corpus)  # validated before waiting for the lock
        with dir_lock(self.path):
            if not self._is_current():
                self._catch_up()
            dup = [e for e in entries if e.id in self.row_of]
            if dup and on_duplicate == "error":
                first = dup[0]
                raise InputError(str(corpus), first.line, f"id {first.id!r} is already in the index "
                                 f"({len(dup)} such ids); use --on-duplicate skip to add only new ids")
            new = [e for e in entries if e.id not in self.row_of]
            if new:
                texts = [e.text for e in new]
                vectors = encode(texts) if encode is not None else encoder.encode(texts, batch_size=batch_size,
                                                                                  progress=progress)
                self.faiss.add(vectors)
                self.ids += [e.id for e in new]
                self.texts += [e.text for e in new]
                self.row_of.update({e.id: len(self.row_of) + k for k, e in enumerate(new)})
                self._by_text = None
                self.manifest["count"] = len(self.ids)
                self.manifest["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
                with atomic_dir(self.path) as tmp:
                    self.manifest["files"] = _write(tmp, self.faiss, self.ids, self.texts, self.manifest)
        return {"added": len(new), "skipped": len(dup), "count": len(self.ids)}

    def _is_current(self) -> bool:
        """Whether the index on disk is still the one this copy was loaded from."""
        on_disk = self.path / "manifest.json"
        files = read_json(on_disk, "an index manifest").get("files") if on_disk.is_file() else None
        return files == self.manifest.get("files")

    def _catch_up(self) -> None:
        """Reload what another writer wrote since this copy was loaded (under the writers' lock)."""
        fresh = Index.load(self.path)
        self.faiss, self.ids, self.texts, self.manifest = fresh.faiss, fresh.ids, fresh.texts, fresh.manifest
        self.row_of, self._by_text = fresh.row_of, None

    # ------------------------------------------------------------------ loading

    @classmethod
    def load(cls, path: str | Path, encoder: Any = None) -> Index:
        """Open an index directory; with ``encoder``, refuse a model that differs from the one it was built with."""
        import faiss

        p = Path(path)
        manifest = read_json(manifest_path(p), "an index manifest")
        for name, digest in manifest.get("files", {}).items():
            if not (p / name).is_file() or file_sha256(p / name) != digest:
                raise SimpairError(f"{p}: {name} is missing or does not match its checksum; the index is damaged")
        index = faiss.read_index(str(p / "index.faiss"))
        apply_params(index, manifest.get("params", {}))
        with sqlite3.connect(f"file:{p / 'store.sqlite'}?mode=ro", uri=True) as db:
            rows = db.execute("SELECT id, text FROM items ORDER BY row").fetchall()
        if len(rows) != index.ntotal:
            raise SimpairError(f"{p}: {len(rows)} stored texts but {index.ntotal} vectors; the index is damaged")
        loaded = cls(p, index, [r[0] for r in rows], [r[1] for r in rows], manifest)
        if encoder is not None:
            loaded.check_encoder(encoder)
        return loaded

    def check_encoder(self, encoder: Any) -> None:
        check_encoder(self.path, self.manifest, encoder)

    def info(self) -> dict[str, Any]:
        from .utils import dir_size

        return {**self.manifest, "path": str(self.path), "size_bytes": dir_size(self.path)}

    def search_vectors(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, rows) of the ``k`` nearest stored vectors for each query row."""
        k = max(1, min(k, len(self.ids)))
        scores, rows = self.faiss.search(np.ascontiguousarray(queries, dtype=np.float32), k)
        return scores, rows

    def hits(self, queries: np.ndarray, k: int, exclude_ids: Sequence[set[str]] | None = None,
             exclude_texts: Sequence[str] | None = None) -> list[list[Hit]]:
        """The ``k`` nearest entries of each query row as (id, text, score), best first, never one whose id is in
        ``exclude_ids[i]`` or whose text is ``exclude_texts[i]`` (a query's own entry). The interface every
        store has (:mod:`simpair.stores`)."""
        banned = [set(e) for e in exclude_ids] if exclude_ids is not None else [set() for _ in range(len(queries))]
        if exclude_texts is not None:
            by_text = self._rows_by_text()
            for ban, text in zip(banned, exclude_texts):
                ban.update(self.ids[r] for r in by_text.get(text, ()))
        scores, rows = self.search_vectors(queries, k + max((len(b) for b in banned), default=0))
        return [[(self.ids[r], self.texts[r], float(s)) for s, r in zip(srow, rrow)
                 if r >= 0 and self.ids[r] not in ban][:k] for srow, rrow, ban in zip(scores, rows, banned)]

    def _rows_by_text(self) -> dict[str, list[int]]:
        if self._by_text is None:
            self._by_text = {}
            for r, t in enumerate(self.texts):
                self._by_text.setdefault(t, []).append(r)
        return self._by_text

    def exact_hits(self, queries: np.ndarray, k: int, encoder: Any) -> list[list[str]]:
        """The ids of the exact top ``k`` (inner product over the stored vectors), for ANN recall."""
        import faiss

        exact = faiss.IndexFlatIP(self.faiss.d)
        exact.add(self.exact_vectors(encoder))
        _, rows = exact.search(np.ascontiguousarray(queries, dtype=np.float32), min(k, len(self.ids)))
        return [[self.ids[r] for r in row if r >= 0] for row in rows]

    def exact_vectors(self, encoder: Any) -> np.ndarray:
        """The stored vectors, exactly: reconstructed where FAISS keeps them, re-encoded for IVF-PQ."""
        import faiss

        if self.kind == "ivfpq":  # PQ codes only approximate the vectors
            return encoder.encode(self.texts, batch_size=128)
        if self.kind == "ivf":
            faiss.extract_index_ivf(self.faiss).make_direct_map()
        return self.faiss.reconstruct_n(0, self.faiss.ntotal)


def check_encoder(where: Any, manifest: dict[str, Any], encoder: Any) -> None:
    """Refuse a query model other than the one an index (``where``, any store) was built with."""
    m = manifest
    if encoder.fingerprint != m["fingerprint"] or encoder.dim != m["dim"]:
        raise SimpairError(
            f"{where}: built with model {m['model']} (fingerprint {m['fingerprint'][:12]}, dim {m['dim']}), "
            f"but the query model is {encoder.name} (fingerprint {encoder.fingerprint[:12]}, dim {encoder.dim}); "
            f"search with --model {m['model']} or rebuild the index"
        )


def _check_target(out: Path) -> None:
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / "manifest.json").is_file())):
        raise SimpairError(f"{out}: exists and is not a simpair index; refusing to replace it")


def manifest_path(index_dir: str | Path) -> Path:
    """The manifest of an index directory; an error when there is none (not an index)."""
    path = Path(index_dir) / "manifest.json"
    if not path.is_file():
        raise SimpairError(f"{index_dir}: not a simpair index (no manifest.json)")
    return path


def _write(tmp: Path, index: Any, ids: list[str], texts: list[str], manifest: dict[str, Any]) -> dict[str, str]:
    """Write the index files, then the manifest with their checksums (the last file written: its presence
    with matching checksums marks a complete index). Returns the checksums."""
    import faiss

    faiss.write_index(index, str(tmp / "index.faiss"))
    with sqlite3.connect(tmp / "store.sqlite") as db:
        db.execute("CREATE TABLE items (row INTEGER PRIMARY KEY, id TEXT UNIQUE NOT NULL, text TEXT NOT NULL)")
        db.executemany("INSERT INTO items VALUES (?, ?, ?)", ((r, i, t) for r, (i, t) in enumerate(zip(ids, texts))))
    db.close()
    manifest = dict(manifest)
    manifest["files"] = {name: file_sha256(tmp / name) for name in ("index.faiss", "store.sqlite")}
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
    return manifest["files"]



def add_to_index(index_dir: str | Path, corpus: str | Path, on_duplicate: str = "error", batch_size: int = 64,
                 progress: bool = True, engine: Any = None) -> dict[str, int]:
    """``simpair index add``: the corpus validated, then — holding the writers' lock — the index loaded as it
    is now and the new texts encoded with the model it was built with and added."""
    read_corpus(corpus)  # validate before waiting for the lock or loading a model
    manifest_path(index_dir)  # an index is there: else nothing is created, not even the lock file
    with dir_lock(index_dir):  # a second writer waits here, then adds to what the first wrote
        return add_with_its_model(Index.load(index_dir), corpus, on_duplicate, batch_size, progress, engine)


def add_with_its_model(idx: Any, corpus: str | Path, on_duplicate: str, batch_size: int, progress: bool,
                       engine: Any) -> dict[str, int]:
    """``idx.add`` (any store) with the model its manifest names, encoding on ``engine`` when one is given."""
    from .bi_encoder import BiEncoder

    model, prefix = idx.manifest["model"], idx.manifest["prefix"]
    encode = engine.encoder(model, prefix, batch_size) if engine else None
    return idx.add(corpus, BiEncoder(model, prefix=prefix), on_duplicate=on_duplicate, batch_size=batch_size,
                   progress=progress, encode=encode)
