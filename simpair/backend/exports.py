"""What the exported backends (ONNX Runtime, OpenVINO) share: where an export lives, whether it is current,
and the ``tokenizers``-only tokenisation that feeds it.

An export is a folder beside the model (``onnx/``, ``openvino/``; for a model inside the installed package,
a folder in the cache) holding the graph files, ``tokenizer.json`` and a JSON file of facts about it
(kind, inputs, pooling, max length, the weights it was made from).
"""
from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..config import MAX_LENGTH_FALLBACK
from ..utils import read_json, simpair_home


def weights_stamp(model_path: str | Path) -> str:
    """Size and mtime of the weight files, and for an adapter the base it is laid over: an export older than
    its weights, or made over another base (e5-small before the pruned e5-small-zh-en), is not used."""
    path = Path(model_path)
    files = sorted(p for p in path.glob("*") if p.suffix in (".safetensors", ".bin") and p.is_file())
    stamp = "|".join(f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files)
    if (path / "adapter_config.json").is_file():
        meta = read_json(path / "simpair.json") if (path / "simpair.json").is_file() else {}
        base = meta.get("base_model") or read_json(path / "adapter_config.json").get("base_model_name_or_path")
        stamp += f"|base:{base}"
    return stamp


def export_dir(model_path: str | Path, folder: str) -> Path:
    """Where the ``folder`` export of ``model_path`` lives: beside it, or for a model inside the installed
    package (read-only, shipped small) a folder in the cache named after its path."""
    path = Path(model_path).resolve()
    package = Path(__file__).resolve().parent.parent  # simpair/
    if package in path.parents:
        key = hashlib.sha256(str(path).encode()).hexdigest()[:12]
        return simpair_home() / folder / f"{path.name}-{key}"
    return path / folder


def find_export(model_path: str | Path, folder: str, meta_name: str, files: dict[str, str],
                precision: str = "auto", how: str = "") -> Path | None:
    """The usable file of ``files`` for ``precision`` (auto: fp32 if exported, else int8) in the ``folder``
    export of ``model_path``, or None when there is none or it is older than the weights."""
    where = export_dir(model_path, folder)
    meta_file = where / meta_name
    if not meta_file.is_file():
        return None
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
    except ValueError:
        return None
    if meta.get("source_stamp") != weights_stamp(model_path):
        warnings.warn(f"{where}: exported before the model's weights last changed; not used "
                      f"(re-run 'simpair export {model_path} {how}')", stacklevel=3)
        return None
    order = {"auto": ("fp32", "int8"), "fp32": ("fp32",), "bf16": ("fp32",), "int8": ("int8",)}.get(precision, ())
    for p in order:
        file = where / files[p]
        if file.is_file():
            return file
    return None


class ExportTokenizer:
    """The export's ``tokenizer.json`` under the ``tokenizers`` library, truncating and padding as the
    model's transformers tokenizer does (checked at export time)."""

    def __init__(self, folder: Path, meta: dict[str, Any], max_length: int | None = None) -> None:
        from tokenizers import Tokenizer

        self.max_length = int(max_length or meta.get("max_length") or MAX_LENGTH_FALLBACK["cross-encoder"])
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(self.max_length)
        self.tokenizer.enable_padding(pad_id=int(meta["pad_id"]), pad_token=meta["pad_token"])

    def __call__(self, names: Sequence[str], texts_a: Sequence[str],
                 texts_b: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """The arrays ``names`` (input ids, attention mask, token types) for a batch of texts or pairs."""
        items = list(zip(texts_a, texts_b)) if texts_b is not None else list(texts_a)
        enc = self.tokenizer.encode_batch(items)
        arrays = {"input_ids": [e.ids for e in enc], "attention_mask": [e.attention_mask for e in enc],
                  "token_type_ids": [e.type_ids for e in enc]}
        return {k: np.asarray(arrays[k], dtype=np.int64) for k in names}
