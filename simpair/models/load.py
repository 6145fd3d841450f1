"""Load a trained sequence classifier — a full model directory or a small peft adapter.

An adapter directory (adapter_config.json + adapter_model.safetensors + simpair.json) holds only
what training changed: LoRA matrices, prompt/prefix embeddings and the classification head. Its
base is named in simpair.json (``e5-small``, a directory or a hub id) and resolved offline like
any other model; LoRA is merged into the base weights on load, so inference costs nothing extra.
"""
from __future__ import annotations

import contextlib
import inspect
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import ConfigError, ModelNotFoundError, SimpairError
from ..utils import read_json, simpair_home
from .resolve import META_FILE, resolve

ADAPTER_CONFIG = "adapter_config.json"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt",
                   "sentencepiece.bpe.model")


PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
_YES = ("1", "true", "yes")


def allow_pickle() -> bool:
    """Whether pickle weights may load: only when the user said so (--allow-pickle, $SIMPAIR_ALLOW_PICKLE)."""
    return os.environ.get("SIMPAIR_ALLOW_PICKLE", "").lower() in _YES


def trust_remote_code() -> bool:
    """Whether a model's own Python code may run: only when the user said so (--trust-remote-code)."""
    return os.environ.get("SIMPAIR_TRUST_REMOTE_CODE", "").lower() in _YES


def check_weights(model_dir: str | Path) -> None:
    """Refuse a local model whose weights exist only as pickles: unpickling can run arbitrary code."""
    path = Path(model_dir)
    if not path.is_dir() or allow_pickle() or any(path.glob("*.safetensors")):
        return
    pickles = sorted(p.name for p in path.iterdir() if p.suffix in PICKLE_SUFFIXES and p.name != "training_args.bin")
    if pickles:
        raise SimpairError(f"{path}: its weights are pickles ({', '.join(pickles)}), which can run code when "
                           "loaded; refusing them. Convert them to safetensors, or pass --allow-pickle "
                           "(SIMPAIR_ALLOW_PICKLE=1) if you trust where they came from")


def load_kwargs(model_dir: str | Path) -> dict[str, Any]:
    """``from_pretrained`` safety settings: safetensors only and no model code, unless the user allowed them."""
    check_weights(model_dir)
    return {"use_safetensors": None if allow_pickle() else True, "trust_remote_code": trust_remote_code()}


@contextlib.contextmanager
def remote_code_errors(name: str | Path) -> Iterator[None]:
    """Turn transformers' refusal to run a model's own code into one clear line."""
    try:
        yield
    except ValueError as exc:
        if "trust_remote_code" not in str(exc):
            raise
        raise SimpairError(f"{name}: this model needs its own Python code to load; simpair runs none unless "
                           "you pass --trust-remote-code (SIMPAIR_TRUST_REMOTE_CODE=1), after reading that "
                           "code") from None


def sentence_transformer(path: str | Path) -> Any:
    """A sentence-transformers model on the CPU, under the same pickle and remote-code rules."""
    from sentence_transformers import SentenceTransformer

    kwargs = load_kwargs(path)
    with remote_code_errors(path):
        return SentenceTransformer(str(path), device="cpu", trust_remote_code=kwargs["trust_remote_code"],
                                   model_kwargs={"use_safetensors": kwargs["use_safetensors"]})


def thresholds_file(model_dir: str | Path, name: str | None = None) -> Path:
    """Where calibrated thresholds of ``model_dir`` are written: its simpair.json, or — for a model inside the
    installed package, which is read-only there — ``$SIMPAIR_HOME/thresholds/NAME.json``."""
    path = Path(model_dir).resolve()
    if Path(__file__).resolve().parent.parent in path.parents:
        return simpair_home() / "thresholds" / f"{name or path.name}.json"
    return path / META_FILE


def read_meta(model_dir: str | Path) -> dict[str, Any]:
    """The ``simpair.json`` of a trained model, or {} for a plain transformers directory; for a bundled model,
    with the thresholds calibrated on this machine laid over it."""
    path = Path(model_dir) / META_FILE
    meta = read_json(path, "a simpair model description") if path.is_file() else {}
    overlay = thresholds_file(model_dir)
    if overlay != path.resolve() and overlay.is_file():
        meta.update(read_json(overlay, "calibrated thresholds"))
    return meta


def default_prefix(model_name: str, model_path: str | Path) -> str:
    """The text prefix a bi-encoder expects: ``"query: "`` for E5 models (by name or by the simpair
    conversion marker), else what its simpair.json records, else none."""
    if "e5" in model_name.lower() or Path(model_path, "simpair-source.json").is_file():
        return "query: "
    meta = Path(model_path, META_FILE)
    if meta.is_file():
        return read_json(meta, "a simpair model description").get("prefix", "")
    return ""


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
    kwargs = load_kwargs(path)
    remote = {"trust_remote_code": kwargs["trust_remote_code"]}
    if not is_adapter(path):
        with remote_code_errors(model):
            tokenizer = AutoTokenizer.from_pretrained(path, **remote)
            net = AutoModelForSequenceClassification.from_pretrained(path, **kwargs)
        return net.eval(), tokenizer, meta, path
    from peft import PeftModel

    adapter_cfg = read_json(path / ADAPTER_CONFIG, "a PEFT adapter config")
    base_name = meta.get("base_model") or adapter_cfg.get("base_model_name_or_path")
    if not base_name:
        raise ModelNotFoundError(f"{path}: adapter names no base model (simpair.json 'base_model')")
    base_path = resolve(base_name)
    with _quiet(), remote_code_errors(base_name):
        base = AutoModelForSequenceClassification.from_pretrained(base_path, **label_kwargs(meta),
                                                                  **load_kwargs(base_path))
    if adapter_cfg.get("peft_type") == "PREFIX_TUNING":
        prefix_compatible(base)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # peft's use of deprecated transformers names
        warnings.simplefilter("ignore", DeprecationWarning)
        net = PeftModel.from_pretrained(base, str(path))
        if merge and adapter_cfg.get("peft_type") == "LORA":
            net = net.merge_and_unload()
    has_tok = any((path / f).is_file() for f in TOKENIZER_FILES)
    with remote_code_errors(model):
        tokenizer = AutoTokenizer.from_pretrained(path if has_tok else base_path, **remote)
    return net.eval(), tokenizer, meta, path


def prefix_compatible(model: Any) -> None:
    """Let peft's prefix tuning find the encoder's key/value cache argument, or refuse at once.

    transformers 5.24 renamed the encoder's ``past_key_values`` argument to ``cache`` (the old name is
    still accepted until 5.40); peft (0.21) looks for the old name in the backbone's signature and, not
    finding it, fails at the first training step. The backbone of this one model gets a ``forward`` that
    names the argument again and passes it on as ``cache``; the weights and the saved adapter are
    unchanged. A backbone that takes no cache at all cannot hold a prefix: that is a ConfigError now,
    naming the transformers version, not a traceback mid-training.
    """
    backbone = getattr(model, getattr(model, "base_model_prefix", ""), None)
    if backbone is None:
        raise ConfigError(f"method 'prefix': {type(model).__name__} has no backbone module to prefix")
    params = inspect.signature(backbone.forward).parameters
    if "past_key_values" in params:
        return
    if "cache" not in params:
        import transformers

        raise ConfigError(f"method 'prefix': {type(backbone).__name__}.forward in transformers "
                          f"{transformers.__version__} takes no key/value cache, which prefix tuning needs; "
                          "use --method prompt or lora")
    original = backbone.forward

    def forward(*args: Any, past_key_values: Any = None, **kwargs: Any) -> Any:
        if past_key_values is not None:
            kwargs["cache"] = past_key_values
        return original(*args, **kwargs)

    backbone.forward = forward
