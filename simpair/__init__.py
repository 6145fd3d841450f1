"""simpair: sentence-pair similarity — cross-encoder matching, bi-encoder search and honest metrics, offline-first.

The public API, loaded on first use (PEP 562), so that ``import simpair`` costs no torch::

    import simpair
    simpair.CrossEncoder("matcher").match("怎么开初婚未育证明", "初婚未育证明怎么开")
    simpair.train(simpair.build_config({"train": "data/train.tsv", "out": "runs/m"}))
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_API = {
    "CrossEncoder": "cross_encoder", "decide": "cross_encoder",
    "BiEncoder": "bi_encoder",
    "Sentiment": "sentiment",
    "Index": "index",
    "Searcher": "search",
    "TrainConfig": "config", "build_config": "config", "load_config": "config",
    "train": "training",
    "evaluate": "evaluation",
    "calibrate": "calibration",
    "mine": "adaptation.mine", "LabelSession": "adaptation.labels", "adapt": "adaptation.adapt",
    "AdaptOptions": "adaptation.adapt",
    "read_pairs": "readers", "read_texts": "readers", "read_corpus": "readers", "read_queries": "readers",
    "create_app": "serve",
    "SimpairError": "errors", "InputError": "errors", "ConfigError": "errors", "ModelNotFoundError": "errors",
}

__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'simpair' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
