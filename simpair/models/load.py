"""Load a trained sequence classifier — a full model directory or a small peft adapter.

An adapter directory (adapter_config.json + adapter_model.safetensors + simpair.json) holds only
what training changed: LoRA matrices, prompt/prefix embeddings and the classification head. Its
base is named in simpair.json (``e5-small``, a directory or a hub id) and resolved offline like
any other model; LoRA is merged into the base weights on load, so inference costs nothing extra.
"""
from __future__ import annotations

import contextlib
import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import ModelNotFoundError
from .resolve import resolve

META_FILE = "simpair.json"
ADAPTER_CONFIG = "adapter_config.json"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt",
                   "sentencepiece.bpe.model")


def read_meta(model_dir: str | Path) -> dict[str, Any]:
    """The ``simpair.json`` of a trained model, or {} for a plain transformers directory."""
    path = Path(model_dir) / META_FILE
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    return {}


def is_adapter(model_dir: str | Path) -> bool:
    return (Path(model_dir) / ADAPTER_CONFIG).is_file()


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence transformers' "newly initialized" note: an adapter's head is loaded right after."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)


def label_kwargs(meta: dict[str, Any]) -> dict[str, Any]:
    """num_labels / id2label for the base model of an adapter, from simpair.json."""
    names = meta.get("labels")
    if meta.get("task") == "regression":
        return {"num_labels": 1, "problem_type": "regression"}
    if names:
        return {"num_labels": len(names), "id2label": dict(enumerate(names)),
                "label2id": {n: i for i, n in enumerate(names)}}
    return {"num_labels": 2}


def load_classifier(model: str | Path, merge: bool = True) -> tuple[Any, Any, dict[str, Any], Path]:
    """(model in eval mode, tokenizer, simpair.json, resolved path) for a name or directory."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = Path(resolve(str(model)))
    meta = read_meta(path)
    if not is_adapter(path):
        tokenizer = AutoTokenizer.from_pretrained(path)
        return AutoModelForSequenceClassification.from_pretrained(path).eval(), tokenizer, meta, path
    from peft import PeftModel

    adapter_cfg = json.loads((path / ADAPTER_CONFIG).read_text(encoding="utf-8"))
    base_name = meta.get("base_model") or adapter_cfg.get("base_model_name_or_path")
    if not base_name:
        raise ModelNotFoundError(f"{path}: adapter names no base model (simpair.json 'base_model')")
    base_path = resolve(base_name)
    with _quiet():
        base = AutoModelForSequenceClassification.from_pretrained(base_path, **label_kwargs(meta))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # peft's use of deprecated transformers names
        warnings.simplefilter("ignore", DeprecationWarning)
        net = PeftModel.from_pretrained(base, str(path))
        if merge and adapter_cfg.get("peft_type") == "LORA":
            net = net.merge_and_unload()
    has_tok = any((path / f).is_file() for f in TOKENIZER_FILES)
    tokenizer = AutoTokenizer.from_pretrained(path if has_tok else base_path)
    return net.eval(), tokenizer, meta, path
