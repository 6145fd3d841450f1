"""A bundled bi-encoder: a small low-rank delta in the package, a standard sentence-transformers directory on
the user's machine.

The package holds what a fine-tuned e5-small bi-encoder changed (a peft LoRA adapter over the bare encoder,
written by :func:`simpair.export.lowrank_delta`) and its sentence-transformers configuration (modules,
pooling, normalisation). On first use the delta is merged into the converted base and the result written,
atomically, to ``$SIMPAIR_HOME/models/NAME``: from then on it is a plain directory that
``SentenceTransformer`` (and faiss indexes, ONNX export, everything else) loads as it is. A stamp of the
adapter's SHA-256 makes a newer bundle (a package upgrade) materialise again.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from ..utils import atomic_dir, dir_lock, file_sha256, read_json

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
STAMP = "bundle.json"
# what sentence-transformers keeps beside the transformer weights (module sub-directories come from modules.json)
ST_FILES = ("modules.json", "sentence_bert_config.json", "config_sentence_transformers.json")


def copy_sentence_transformers_config(src: Path, dst: Path) -> None:
    """Copy a sentence-transformers directory's module list and module configurations (pooling,
    normalisation; never weights of the transformer) from ``src`` into ``dst``."""
    for name in ST_FILES:
        if (src / name).is_file():
            shutil.copy2(src / name, dst / name)
    modules = json.loads((src / "modules.json").read_text(encoding="utf-8")) if (src / "modules.json").is_file() else []
    for module in modules:
        sub = module.get("path") or ""
        if sub and (src / sub).is_dir():
            shutil.copytree(src / sub, dst / sub, dirs_exist_ok=True)


def is_encoder_delta(path: Path) -> bool:
    """True for a bi-encoder delta directory (an adapter beside sentence-transformers modules), as
    ``simpair export --delta-rank`` writes for a bi-encoder and as the bundled ``encoder`` is."""
    return (path / "adapter_config.json").is_file() and (path / "modules.json").is_file()


def delta_base(path: Path) -> str:
    """The base model a bi-encoder delta was cut over, as simpair names it (``e5-small``)."""
    meta = path / "simpair.json"
    base = read_json(meta, "a simpair model description").get("base_model") if meta.is_file() else None
    return base or read_json(path / "adapter_config.json", "a PEFT adapter config")["base_model_name_or_path"]


def cache_name(path: Path) -> str:
    """A cache directory name for a delta directory: its adapter's SHA-256 (the same delta, one merge)."""
    return "delta-" + file_sha256(path / "adapter_model.safetensors")[:16]


def materialize(bundle: Path, base: Path, target: Path) -> Path:
    """``target``: the bundled delta ``bundle`` merged into ``base`` as a sentence-transformers directory,
    made once (and again when the bundle or its base changes)."""
    sha = file_sha256(bundle / "adapter_model.safetensors")
    if _stamp(target) == (sha, str(base)):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with dir_lock(target):  # two first uses at once: one merges, the other then finds it
        if _stamp(target) != (sha, str(base)):
            if target.exists():
                shutil.rmtree(target)
            _merge(bundle, base, target, sha)
    return target


def _stamp(target: Path) -> tuple[str, str] | None:
    path = target / STAMP
    if not path.is_file():
        return None
    stamp = read_json(path, "a bundle stamp")
    return stamp.get("adapter_sha256"), stamp.get("base")


def _merge(bundle: Path, base: Path, target: Path, sha: str) -> None:
    import warnings

    from peft import PeftModel
    from transformers import AutoModel, AutoTokenizer

    net = AutoModel.from_pretrained(base, use_safetensors=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # peft's notes on deprecated transformers names
        merged = PeftModel.from_pretrained(net, str(bundle)).merge_and_unload()
    with atomic_dir(target) as tmp:
        merged.save_pretrained(str(tmp))
        AutoTokenizer.from_pretrained(base).save_pretrained(str(tmp))
        for item in bundle.iterdir():
            if item.is_file() and item.name not in ADAPTER_FILES:
                shutil.copy2(item, tmp / item.name)
        copy_sentence_transformers_config(bundle, tmp)
        (tmp / STAMP).write_text(json.dumps({"bundle": str(bundle), "adapter_sha256": sha, "base": str(base)},
                                            indent=2), encoding="utf-8")
