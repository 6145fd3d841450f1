"""A Qdrant collection as a simpair index: the same build / add / search / evaluate as the FAISS directory.

``qdrant+local://PATH`` is Qdrant's local mode (``QdrantClient(path=PATH)``: no server, what its authors use in
tests; one process at a time); ``qdrant://HOST:PORT/COLLECTION`` (``qdrants://`` for https, the API key from
``$QDRANT_API_KEY``) is a Qdrant server or cluster, where the same code runs. In local mode the collection is
``simpair`` unless ``?collection=NAME`` says otherwise.

Each corpus entry is one point: its id is a UUID derived from the question id (so writing an entry twice
overwrites it, never duplicates it), its payload the id and the text. The collection's metadata holds the
manifest (model, weights fingerprint, dimension, prefix), checked against the query model as for FAISS.
Distance is the dot product of L2-normalised vectors: the inner product FAISS uses, so both stores rank alike;
excluded ids and a query's own text are left out of the results, the search widened until ``k`` remain.

``NAME`` is an alias of a collection ``NAME-<time>``: a rebuild fills a new collection and then moves the alias
in one step, so a reader never sees a half-built index (Qdrant's documented way to re-index without downtime).
"""
from __future__ import annotations

import atexit
import os
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import numpy as np

from .. import __version__
from ..errors import InputError, SimpairError
from ..index import FORMAT_VERSION, ON_DUPLICATE, Encode, Hit, check_encoder
from ..readers import read_corpus
from ..utils import require_extra

SCHEMES = ("qdrant", "qdrants", "qdrant+local")
ID_NAMESPACE = uuid.UUID("6f1c2f3e-8b1a-5d7e-9c4b-2a7e0d5f9b31")  # question id -> point id, fixed for good
WRITE_CHUNK = 2048  # entries encoded and upserted at a time: memory bounded by a chunk, not the corpus
QUANTIZATION = ("none", "int8")
EXCLUDE_SLACK = 4  # extra hits asked for when a query's own text is excluded (it may be stored more than once)
_LOCAL_CLIENTS: dict[str, Any] = {}  # local-mode clients of this process, by directory


@dataclass(frozen=True)
class StoreURL:
    """A parsed store address."""

    scheme: str
    location: str  # a directory (local mode) or http(s)://host:port
    collection: str

    @classmethod
    def parse(cls, spec: str) -> StoreURL:
        url = urlparse(spec)
        if url.scheme not in SCHEMES:
            raise SimpairError(f"{spec}: not a store address; expected one of "
                               "qdrant+local://PATH[?collection=NAME], qdrant://HOST:PORT/COLLECTION")
        if url.scheme == "qdrant+local":
            path = (url.netloc + url.path) or "."
            name = parse_qs(url.query).get("collection", ["simpair"])[0]
            return cls(url.scheme, path, name)
        name = url.path.strip("/")
        if not url.hostname or not name or "/" in name:
            raise SimpairError(f"{spec}: expected {url.scheme}://HOST:PORT/COLLECTION")
        http = "https" if url.scheme == "qdrants" else "http"
        return cls(url.scheme, f"{http}://{url.hostname}:{url.port or 6333}", name)

    @property
    def local(self) -> bool:
        return self.scheme == "qdrant+local"

    def client(self) -> Any:
        """A client for the store; in local mode one per directory and process (the mode's own rule: one client
        holds the directory, so a search and an add in one process share it)."""
        qc = require_extra("qdrant_client", "qdrant", "a Qdrant store")
        if not self.local:
            return qc.QdrantClient(url=self.location, api_key=os.environ.get("QDRANT_API_KEY") or None)
        key = str(Path(self.location).resolve())
        if not _LOCAL_CLIENTS:
            atexit.register(_close_local_clients)  # closed before shutdown, not by __del__ during it
        if key not in _LOCAL_CLIENTS:
            Path(key).mkdir(parents=True, exist_ok=True)
            try:
                _LOCAL_CLIENTS[key] = qc.QdrantClient(path=key)
            except RuntimeError as err:  # the directory is held by another process
                raise SimpairError(f"{self}: {err}") from err
        return _LOCAL_CLIENTS[key]

    def __str__(self) -> str:
        if self.local:
            return f"qdrant+local://{self.location}" + ("" if self.collection == "simpair"
                                                        else f"?collection={self.collection}")
        return f"{self.scheme}://{self.location.split('://', 1)[1]}/{self.collection}"


def _close_local_clients() -> None:
    while _LOCAL_CLIENTS:
        _LOCAL_CLIENTS.popitem()[1].close()


def is_qdrant(spec: Any) -> bool:
    return isinstance(spec, str) and spec.split("://", 1)[0] in SCHEMES and "://" in spec


def point_id(doc_id: str) -> str:
    """The point id of a question id (a UUID, as Qdrant wants), the same on every run and machine."""
    return str(uuid.uuid5(ID_NAMESPACE, doc_id))


def _models() -> Any:
    return require_extra("qdrant_client.models", "qdrant", "a Qdrant store")


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


class QdrantIndex:
    """A loaded Qdrant collection with the calls :class:`simpair.index.Index` has."""

    kind = "qdrant"

    def __init__(self, url: StoreURL, client: Any, manifest: dict[str, Any]) -> None:
        self.url, self.client, self.manifest = url, client, manifest
        self.path = str(url)

    def __len__(self) -> int:
        return int(self.client.count(self.url.collection, exact=True).count)

    # ------------------------------------------------------------------ building

    @classmethod
    def build(cls, corpus: str | Path, store: str, encoder: Any, batch_size: int = 64, progress: bool = True,
              hnsw_m: int | None = None, ef_construct: int | None = None, quantization: str = "none",
              encode: Encode | None = None) -> QdrantIndex:
        """Encode ``corpus`` and write it to a new collection, then point the store's name at it (the old
        collection, if any, is dropped after the switch)."""
        m = _models()
        if quantization not in QUANTIZATION:
            raise SimpairError(f"quantization {quantization!r}: expected one of {', '.join(QUANTIZATION)}")
        entries = read_corpus(corpus)
        url = StoreURL.parse(store)
        client = url.client()
        old = _alias_target(client, url.collection)
        physical = f"{url.collection}-{time.strftime('%Y%m%d%H%M%S')}-{uuid.uuid4().hex[:8]}"
        params = {"hnsw_m": hnsw_m, "ef_construct": ef_construct, "quantization": quantization}
        manifest = {"format_version": FORMAT_VERSION, "simpair_version": __version__, **encoder.describe(),
                    "index_type": "qdrant", "params": {k: v for k, v in params.items() if v is not None},
                    "corpus": str(corpus), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        client.create_collection(
            physical, vectors_config=m.VectorParams(size=encoder.dim, distance=m.Distance.DOT),
            hnsw_config=m.HnswConfigDiff(m=hnsw_m, ef_construct=ef_construct) if hnsw_m or ef_construct else None,
            quantization_config=m.ScalarQuantization(scalar=m.ScalarQuantizationConfig(
                type=m.ScalarType.INT8, always_ram=True)) if quantization == "int8" else None,
            metadata={"simpair": manifest})
        try:
            _upsert(client, physical, entries, _encoder_fn(encoder, batch_size, encode), progress)
        except BaseException:
            client.delete_collection(physical)
            raise
        ops = ([m.DeleteAliasOperation(delete_alias=m.DeleteAlias(alias_name=url.collection))] if old else [])
        ops.append(m.CreateAliasOperation(create_alias=m.CreateAlias(collection_name=physical,
                                                                     alias_name=url.collection)))
        client.update_collection_aliases(change_aliases_operations=ops)  # one step: readers see old or new
        if old:
            client.delete_collection(old)
        return cls(url, client, manifest)

    def add(self, corpus: str | Path, encoder: Any, on_duplicate: str = "error", batch_size: int = 64,
            progress: bool = True, encode: Encode | None = None) -> dict[str, int]:
        """Upsert the entries of ``corpus`` whose ids are new (``on_duplicate``: ``error`` rejects a file with
        ids already stored, naming the first one's line; ``skip`` leaves those as they are)."""
        if on_duplicate not in ON_DUPLICATE:
            raise SimpairError(f"on_duplicate {on_duplicate!r}: expected one of {', '.join(ON_DUPLICATE)}")
        self.check_encoder(encoder)
        entries = read_corpus(corpus)
        stored = self._stored_ids([e.id for e in entries])
        dup = [e for e in entries if e.id in stored]
        if dup and on_duplicate == "error":
            raise InputError(str(corpus), dup[0].line, f"id {dup[0].id!r} is already in the index "
                             f"({len(dup)} such ids); use --on-duplicate skip to add only new ids")
        new = [e for e in entries if e.id not in stored]
        _upsert(self.client, self.url.collection, new, _encoder_fn(encoder, batch_size, encode), progress)
        return {"added": len(new), "skipped": len(dup), "count": len(self)}

    def _stored_ids(self, ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for part in _chunks(list(ids), 1024):
            for rec in self.client.retrieve(self.url.collection, [point_id(i) for i in part], with_payload=["id"]):
                found.add(str(rec.payload["id"]))
        return found

    # ------------------------------------------------------------------ loading

    @classmethod
    def load(cls, store: str, encoder: Any = None) -> QdrantIndex:
        """Open a store's collection; with ``encoder``, refuse a model that differs from the one it was built with."""
        url = StoreURL.parse(store)
        client = url.client()
        if not client.collection_exists(url.collection):
            raise SimpairError(f"{url}: no such collection; build it with simpair index build CORPUS --store {url}")
        manifest = (client.get_collection(url.collection).config.metadata or {}).get("simpair")
        if not isinstance(manifest, dict) or "fingerprint" not in manifest:
            raise SimpairError(f"{url}: the collection was not written by simpair (no simpair manifest in its "
                               "metadata); refusing to search it")
        loaded = cls(url, client, manifest)
        if encoder is not None:
            loaded.check_encoder(encoder)
        return loaded

    def check_encoder(self, encoder: Any) -> None:
        check_encoder(self.url, self.manifest, encoder)

    def info(self) -> dict[str, Any]:
        return {**self.manifest, "path": str(self.url), "count": len(self),
                "collection": _alias_of(self.client, self.url.collection) or self.url.collection}

    # ------------------------------------------------------------------ searching

    def hits(self, queries: np.ndarray, k: int, exclude_ids: Sequence[set[str]] | None = None,
             exclude_texts: Sequence[str] | None = None, exact: bool = False) -> list[list[Hit]]:
        """As :meth:`simpair.index.Index.hits`. Exclusions are applied to the results, with the search widened
        until ``k`` are left (Qdrant's filters would do it inside the search, but local mode evaluates a filter
        point by point in Python: minutes for a retrieval evaluation)."""
        n = len(queries)
        banned_ids = [set(e) for e in exclude_ids] if exclude_ids is not None else [set() for _ in range(n)]
        banned_text = list(exclude_texts) if exclude_texts is not None else [None] * n
        limit = [k + len(b) + (EXCLUDE_SLACK if exclude_texts is not None else 0) for b in banned_ids]
        out: list[list[Hit]] = [[] for _ in range(n)]
        todo = list(range(n))
        while todo:
            found = self._search(np.asarray(queries, dtype=np.float32)[todo], [limit[i] for i in todo], exact)
            again = []
            for i, raw in zip(todo, found):
                out[i] = [h for h in raw if h[0] not in banned_ids[i] and h[1] != banned_text[i]][:k]
                if len(out[i]) < k and len(raw) == limit[i]:  # some were excluded and more may be stored
                    limit[i] *= 2
                    again.append(i)
            todo = again
        return out

    def _search(self, vectors: np.ndarray, limits: Sequence[int], exact: bool) -> list[list[Hit]]:
        """The nearest ``limits[i]`` points of each vector, as (id, text, score), batched."""
        m = _models()
        params = m.SearchParams(exact=True) if exact else None
        requests = [m.QueryRequest(query=v.tolist(), limit=int(lim), with_payload=True, params=params)
                    for v, lim in zip(vectors, limits)]
        out: list[list[Hit]] = []
        for part in _chunks(requests, 256):
            for res in self.client.query_batch_points(self.url.collection, list(part)):
                out.append([(str(p.payload["id"]), str(p.payload["text"]), float(p.score)) for p in res.points])
        return out

    def exact_hits(self, queries: np.ndarray, k: int, encoder: Any = None) -> list[list[str]]:
        """The ids of the exact top ``k`` (Qdrant's full scan), for ANN recall."""
        return [[i for i, _, _ in hits] for hits in self.hits(queries, k, exact=True)]

    def close(self) -> None:
        """Close a server connection (a local directory's client stays open for this process's other users)."""
        if not self.url.local:
            self.client.close()


def _alias_of(client: Any, name: str) -> str | None:
    """The collection that the alias ``name`` points at; None when ``name`` is no alias."""
    return next((str(a.collection_name) for a in client.get_aliases().aliases if a.alias_name == name), None)


def _alias_target(client: Any, name: str) -> str | None:
    """As :func:`_alias_of`, and an error when ``name`` is a collection of its own (not simpair's to replace)."""
    target = _alias_of(client, name)
    if target is None and client.collection_exists(name):
        raise SimpairError(f"{name}: a collection that simpair did not create (not an alias simpair manages); "
                           "refusing to replace it")
    return target


def _encoder_fn(encoder: Any, batch_size: int, encode: Encode | None) -> Encode:
    return encode if encode is not None else (lambda texts: encoder.encode(texts, batch_size=batch_size))


def _upsert(client: Any, collection: str, entries: Sequence[Any], encode: Encode, progress: bool) -> None:
    """Encode and upsert ``entries`` chunk by chunk (idempotent: a point's id is its question id's UUID)."""
    m = _models()
    bar = None
    if progress and entries:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(entries), desc="encoding + upserting", unit="text")
    for part in _chunks(list(entries), WRITE_CHUNK):
        vectors = encode([e.text for e in part])
        client.upsert(collection, points=[m.PointStruct(id=point_id(e.id), vector=v.tolist(),
                                                        payload={"id": e.id, "text": e.text})
                                          for e, v in zip(part, vectors)], wait=True)
        if bar is not None:
            bar.update(len(part))
    if bar is not None:
        bar.close()
