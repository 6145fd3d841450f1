"""Which parameters train: full fine-tuning, freezing, BitFit, and the peft library's LoRA,
prompt tuning and prefix tuning — for every task simpair trains.

``apply_method`` returns the model to hand to the Trainer (a ``PeftModel`` for peft methods) and
the parameter counts. peft methods save as small adapters (adapter_config.json +
adapter_model.safetensors, the classification head included) that record their base model;
``load_classifier`` in :mod:`simpair.models.load` puts them back on the base resolved offline.
"""
from __future__ import annotations

import warnings
from typing import Any

from ..config import TrainConfig
from ..errors import ConfigError
from ..models.load import prefix_compatible

METHODS = ("full", "freeze", "lora", "bitfit", "prompt", "prefix")
PEFT_METHODS = ("lora", "prompt", "prefix")
# the classification head: BERT/ERNIE put a pooler (dense + tanh) before the classifier; e5 ships no
# trained pooler, so it is part of the head that every method trains
HEAD_MODULES = ("classifier", "pooler", "score")
LORA_AUTO_TARGETS = ("query", "key", "value", "dense")


def head_modules(model: Any) -> list[str]:
    """Names of the head modules present in ``model`` (for peft's ``modules_to_save``)."""
    names = {n.split(".")[-1] for n, _ in model.named_modules()}
    base = getattr(model, model.base_model_prefix, None)
    out = [m for m in HEAD_MODULES if m in names]
    if "pooler" in out and (base is None or getattr(base, "pooler", None) is None):
        out.remove("pooler")
    return out


def _is_head(name: str) -> bool:
    parts = name.split(".")
    return any(p in HEAD_MODULES for p in parts)


def _encoder_layers(base: Any) -> list[Any]:
    enc = getattr(base, "encoder", None)
    layers = getattr(enc, "layer", None) or getattr(enc, "layers", None)
    if layers is None:
        raise ConfigError("freeze_layers: this architecture has no encoder.layer list")
    return list(layers)


def freeze_embeddings_wanted(model: Any, cfg: TrainConfig) -> bool:
    """``freeze_embeddings`` resolved: auto freezes vocabularies of 100k+ (e5's 250k rows are 60% of it)."""
    vocab = model.get_input_embeddings().weight.shape[0]
    return cfg.freeze_embeddings == "yes" or (cfg.freeze_embeddings == "auto" and vocab >= 100_000) \
        or cfg.method == "freeze"


def count_parameters(model: Any) -> dict[str, int]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"total_parameters": total, "trainable_parameters": trainable}


def apply_method(model: Any, cfg: TrainConfig) -> tuple[Any, dict[str, Any]]:
    """Set what trains for ``cfg.method``; return (model for the Trainer, parameter counts)."""
    if cfg.method not in METHODS:
        raise ConfigError(f"method {cfg.method!r}: expected one of {', '.join(METHODS)}")
    info: dict[str, Any] = {"method": cfg.method}
    if cfg.method in PEFT_METHODS:
        model = _peft(model, cfg)
        info.update(count_parameters(model))
        return model, info
    base = getattr(model, model.base_model_prefix, model)
    if cfg.method == "bitfit":
        for name, p in model.named_parameters():
            p.requires_grad_(name.endswith(".bias") or _is_head(name))
    frozen_emb = freeze_embeddings_wanted(model, cfg)
    if frozen_emb:
        model.get_input_embeddings().weight.requires_grad_(False)
    if cfg.freeze_layers:
        layers = _encoder_layers(base)
        if cfg.freeze_layers > len(layers):
            raise ConfigError(f"freeze_layers={cfg.freeze_layers} but the model has {len(layers)} layers")
        for layer in layers[: cfg.freeze_layers]:
            for p in layer.parameters():
                p.requires_grad_(False)
    info.update(count_parameters(model), frozen_word_embeddings=frozen_emb)
    return model, info


def _peft(model: Any, cfg: TrainConfig) -> Any:
    from peft import (LoraConfig, PrefixTuningConfig, PromptTuningConfig, PromptTuningInit, TaskType,
                      get_peft_model)

    heads = head_modules(model)
    if cfg.method == "lora":
        targets = cfg.lora_target_modules or list(LORA_AUTO_TARGETS)
        present = {n.split(".")[-1] for n, _ in model.named_modules()}
        missing = [t for t in targets if t not in present]
        if missing:
            raise ConfigError(f"lora_target_modules: {missing} not in this model; it has linear layers such as "
                              f"{sorted(n for n in present if n in ('query', 'key', 'value', 'dense', 'q_proj', 'v_proj'))}")
        # the pooler's dense is head (trained in full), not a LoRA target
        pattern = rf"^(?!.*\b(?:{'|'.join(heads)})\b).*\.({'|'.join(targets)})$"
        peft_cfg = LoraConfig(task_type=TaskType.SEQ_CLS, r=cfg.lora_r, lora_alpha=cfg.lora_alpha,
                              lora_dropout=cfg.lora_dropout, target_modules=pattern, modules_to_save=heads)
    elif cfg.method == "prompt":
        peft_cfg = PromptTuningConfig(task_type=TaskType.SEQ_CLS, num_virtual_tokens=cfg.num_virtual_tokens,
                                      prompt_tuning_init=PromptTuningInit.RANDOM, modules_to_save=heads)
    else:
        peft_cfg = PrefixTuningConfig(task_type=TaskType.SEQ_CLS, num_virtual_tokens=cfg.num_virtual_tokens,
                                      modules_to_save=heads)
    if cfg.method == "prefix":
        prefix_compatible(model)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # peft's use of deprecated transformers names
            return get_peft_model(model, peft_cfg)
    except (ValueError, TypeError, AttributeError, NotImplementedError) as exc:
        raise ConfigError(f"method {cfg.method!r}: peft does not support {type(model).__name__} ({exc})") from exc

