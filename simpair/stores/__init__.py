"""Where an index lives: a FAISS directory (the default, :mod:`simpair.index`) or a Qdrant collection
(:mod:`simpair.stores.qdrant`, ``pip install 'simpair[qdrant]'``), named by an address such as
``qdrant+local://PATH`` or ``qdrant://HOST:PORT/COLLECTION``. Both answer the same calls (``hits``,
``exact_hits``, ``add``, ``info``, ``check_encoder``, ``manifest``, ``kind``, ``len``), so search, re-ranking,
evaluation and the server do not care which one they were given."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .qdrant import QUANTIZATION, is_qdrant


def open_index(spec: str | Path, encoder: Any = None) -> Any:
    """The index at ``spec``: a Qdrant address, else a FAISS index directory."""
    if is_qdrant(str(spec)):
        from .qdrant import QdrantIndex

        return QdrantIndex.load(str(spec), encoder=encoder)
    from ..index import Index

    return Index.load(spec, encoder=encoder)


def add_to_store(spec: str, corpus: str | Path, on_duplicate: str = "error", batch_size: int = 64,
                 progress: bool = True, engine: Any = None) -> dict[str, int]:
    """``simpair index add``: new entries of ``corpus`` encoded with the model the index was built with."""
    from ..index import add_to_index, add_with_its_model
    from ..readers import read_corpus

    if not is_qdrant(spec):
        return add_to_index(spec, corpus, on_duplicate=on_duplicate, batch_size=batch_size, progress=progress,
                            engine=engine)
    read_corpus(corpus)  # validate before loading a model
    idx = open_index(spec)
    try:
        return add_with_its_model(idx, corpus, on_duplicate, batch_size, progress, engine)
    finally:
        idx.close()


__all__ = ["QUANTIZATION", "add_to_store", "is_qdrant", "open_index"]
