"""A pruned vocabulary: e5-small's 250k SentencePiece pieces cut to the ones Chinese and English text use.

The embedding table is ~96 M of e5-small's ~118 M parameters, so it is most of every model file, of load
time and of resident memory. :func:`prune_model` writes a standard transformers directory whose tokenizer
keeps only ``keep`` (ids remapped in order) and whose embedding table keeps only their rows.

Why scores do not change on covered text: the tokenizer is a Unigram model, which picks the segmentation
with the best total score among the pieces it has. If the full tokenizer's best segmentation of a text
uses only kept pieces, the same segmentation is still available and still the best among fewer pieces.
Two things could still move it, and both are kept fixed:

- a character with no piece of its own gets an ``<unk>`` node scored from the *lowest* piece score, so the
  lowest-scoring piece is always kept;
- ``<unk>`` nodes are only added where no one-character piece starts, so every one-character piece is kept
  (which also means any Chinese or English text still tokenises: a dropped word splits into its pieces).

Same ids in → same embedding rows → the same network outputs. :func:`covered` says whether a text is
covered; the tests check outputs on covered text to 1e-5.
"""
from __future__ import annotations

import base64
import json
import shutil
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SimpairError
from ..utils import atomic_dir

EMBEDDINGS = "embeddings.word_embeddings.weight"
COPIED = ("config.json", "tokenizer_config.json", "special_tokens_map.json", "modules.json",
          "sentence_bert_config.json", "config_sentence_transformers.json", "simpair-source.json", "1_Pooling", "2_Normalize")
VOCAB_FILE = "simpair-vocabulary.json"
# the kept set of the bundled models' base, e5-small-zh-en (written by scripts/prune_vocab.py)
KEPT_FILE = Path(__file__).resolve().parent.parent / "bundled" / "e5-small-zh-en.json"


def count_pieces(tokenizer: Any, texts: Iterable[str], vocab_size: int, batch: int = 4096) -> np.ndarray:
    """How often each piece id occurs in ``texts`` under ``tokenizer`` (a ``tokenizers.Tokenizer``)."""
    counts = np.zeros(vocab_size, dtype=np.int64)
    chunk: list[str] = []
    for text in texts:
        chunk.append(text)
        if len(chunk) >= batch:
            _add_counts(counts, tokenizer, chunk)
            chunk = []
    if chunk:
        _add_counts(counts, tokenizer, chunk)
    return counts


def _add_counts(counts: np.ndarray, tokenizer: Any, texts: list[str]) -> None:
    ids = [i for enc in tokenizer.encode_batch(texts, add_special_tokens=False) for i in enc.ids]
    np.add.at(counts, np.asarray(ids, dtype=np.int64), 1)


def pieces_to_keep(tokenizer_json: dict[str, Any], counts: np.ndarray, floor: int = 1) -> list[int]:
    """The ids to keep: special and added tokens, every one-character piece, the lowest-scoring piece, and
    every piece seen at least ``floor`` times (see the module for why the first three)."""
    model = tokenizer_json["model"]
    if model.get("type") != "Unigram":
        raise SimpairError(f"vocabulary pruning needs a Unigram (SentencePiece) tokenizer, not {model.get('type')}")
    vocab = model["vocab"]
    keep = {t["id"] for t in tokenizer_json.get("added_tokens", [])} | {model.get("unk_id", 0)}
    keep |= {i for i, (piece, _) in enumerate(vocab) if len(piece.lstrip("\u2581")) <= 1}
    keep.add(int(np.argmin([score for _, score in vocab])))
    keep |= {int(i) for i in np.flatnonzero(counts[:len(vocab)] >= floor)}
    return sorted(keep)


def _is_han_or_digits(piece: str) -> bool:
    text = piece.replace("\u2581", "")
    han = any(0x3400 <= ord(c) <= 0x9FFF or 0xF900 <= ord(c) <= 0xFAFF for c in text)
    fits = all(c.isascii() or 0x3000 <= ord(c) <= 0x9FFF or 0xF900 <= ord(c) <= 0xFFEF for c in text)
    return bool(text) and fits and (han or text.isdigit())


def han_and_digit_pieces(tokenizer_json: dict[str, Any]) -> set[int]:
    """Every piece made of Chinese characters (with ASCII or CJK punctuation) or of digits: kept whether or not
    the counted texts used them, so Chinese text and numbers are covered beyond the texts counted."""
    return {i for i, (piece, _) in enumerate(tokenizer_json["model"]["vocab"]) if _is_han_or_digits(piece)}


def prune_tokenizer(tokenizer_json: dict[str, Any], keep: Sequence[int]) -> dict[str, Any]:
    """The tokenizer.json with only ``keep`` (ascending ids), renumbered 0.. in the same order."""
    new_id = {old: new for new, old in enumerate(keep)}
    out = json.loads(json.dumps(tokenizer_json))
    vocab = out["model"]["vocab"]
    out["model"]["vocab"] = [vocab[i] for i in keep if i < len(vocab)]
    out["model"]["unk_id"] = new_id[out["model"].get("unk_id", 0)]
    for token in out.get("added_tokens", []):
        token["id"] = new_id[token["id"]]
    for token in (out.get("post_processor") or {}).get("special_tokens", {}).values():
        token["ids"] = [new_id[i] for i in token["ids"]]
    return out


def prune_model(src: str | Path, out: str | Path, keep: Sequence[int], why: str = "", **record: Any) -> Path:
    """Write ``src`` (a transformers / sentence-transformers directory with a Unigram tokenizer.json and
    model.safetensors) to ``out`` with only the ``keep`` pieces, atomically."""
    from safetensors.numpy import load_file, save_file

    src, keep = Path(src), sorted(set(int(i) for i in keep))
    tokenizer = json.loads((src / "tokenizer.json").read_text(encoding="utf-8"))
    weights = load_file(str(src / "model.safetensors"))
    if EMBEDDINGS not in weights:
        raise SimpairError(f"{src}: no {EMBEDDINGS} to prune")
    weights[EMBEDDINGS] = np.ascontiguousarray(weights[EMBEDDINGS][keep])
    with atomic_dir(out) as tmp:
        for name in COPIED:
            if (src / name).is_dir():
                shutil.copytree(src / name, tmp / name)
            elif (src / name).is_file():
                shutil.copy2(src / name, tmp / name)
        config = json.loads((tmp / "config.json").read_text(encoding="utf-8"))
        config["vocab_size"] = len(keep)
        (tmp / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
        (tmp / "tokenizer.json").write_text(json.dumps(prune_tokenizer(tokenizer, keep), ensure_ascii=False),
                                            encoding="utf-8")
        save_file(weights, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        record = {"source": str(src), "pieces": len(keep), "of": len(tokenizer["model"]["vocab"]), "rule": why,
                  **record}
        (tmp / VOCAB_FILE).write_text(json.dumps(record, indent=2), encoding="utf-8")
    return Path(out)


def load_kept(path: str | Path) -> list[int]:
    """The kept ids stored by ``scripts/prune_vocab.py`` (a zlib-compressed bitmap over the full vocabulary)."""
    spec = json.loads(Path(path).read_text(encoding="utf-8"))
    bits = np.unpackbits(np.frombuffer(zlib.decompress(base64.b64decode(spec["bitmap"])), dtype=np.uint8))
    kept = np.flatnonzero(bits[:spec["pieces"]]).tolist()
    if len(kept) != spec["kept"]:
        raise SimpairError(f"{path}: holds {len(kept)} pieces, its header says {spec['kept']}; the file is damaged")
    return kept


def covered(tokenizer: Any, keep: Sequence[int] | set[int], texts: Sequence[str]) -> list[bool]:
    """Per text: whether the full ``tokenizer`` segments it with kept pieces only (then the pruned model
    gives exactly the full model's output)."""
    kept = keep if isinstance(keep, set) else set(keep)
    return [all(i in kept for i in enc.ids) for enc in tokenizer.encode_batch(list(texts), add_special_tokens=False)]
