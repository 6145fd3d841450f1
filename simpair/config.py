"""Training configuration: YAML files (``configs/*.yaml``) and flags, validated strictly.

An unknown key or a value of the wrong type is an error that names the file and the key: a typo
such as ``learing_rate`` must not silently train with the default.
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError


# Token limits, each stated once. Training cuts pairs and texts at TRAIN_MAX_LENGTH unless a config says
# otherwise (LCQMC-style questions are ~25 tokens a pair); a trained model records its own limit in
# simpair.json, and a model that records none is run with the fallback of its kind.
TRAIN_MAX_LENGTH = 64
MAX_LENGTH_FALLBACK = {"cross-encoder": 128, "classifier": 256, "encoder": 512}


@dataclass
class TrainConfig:
    """Everything ``simpair train`` needs; every field can come from YAML or a flag."""

    train: list[str] | None = None  # one file or several (concatenated, or mixed by sample_temperature)
    sample_temperature: float | None = None  # several train files: draw file i ~ rows_i ** (1/T); None: concatenate
    sample_size: int | None = None  # pairs drawn from the train files in all (default: their total rows)
    sample_weights: list[float] | None = None  # one per train file: multiplies its temperature share
    init: str | None = None  # start from this trained pair model (e.g. matcher), head included, not from `model`
    dev: list[str] | None = None  # dev files are scored one by one and together
    out: str | None = None
    model: str = "e5-small"
    kind: str = "cross-encoder"  # cross-encoder | bi-encoder
    # bi-encoder: auto (one 0/1 file: mnrl; scores: cosent; several files: both) | mnrl | cosent | mnrl+cosent
    bi_loss: str = "auto"
    prefix: str | None = None  # bi-encoder text prefix (default: "query: " for E5 models)
    task: str = "auto"  # pairs: auto | classification (0/1) | regression (scores); classify: single texts
    format: str = "auto"  # auto | tsv | csv | jsonl | sts
    text_a_column: str | None = None
    text_b_column: str | None = None
    label_column: str | None = None
    text_column: str | None = None  # classify: the text column (name or 0-based index)
    label_names: list[str] | None = None  # classify: class names in id order (labels 0..K-1 get these names)
    score_range: list[float] = field(default_factory=lambda: [0.0, 5.0])
    max_length: int = TRAIN_MAX_LENGTH
    batch_size: int = 16  # 16 / 1e-4: best of the sweep on the LCQMC sample (README, "Recipe")
    eval_batch_size: int = 128
    learning_rate: float = 1e-4
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    epochs: float = 1.0
    max_steps: int = -1
    gradient_accumulation_steps: int = 1
    lr_scheduler: str = "linear"
    seed: int = 42
    eval_steps: int | None = None  # None: evaluate once per epoch
    logging_steps: int = 20
    save_total_limit: int = 2
    early_stopping_patience: int | None = None
    method: str = "full"  # full | freeze | lora | bitfit | prompt | prefix
    lora_r: int = 16
    lora_alpha: float = 32.0
    lora_dropout: float = 0.1
    lora_target_modules: list[str] | None = None  # None: query, key, value and every dense layer
    num_virtual_tokens: int = 20  # prompt / prefix tuning
    freeze_embeddings: str = "auto"  # auto | yes | no  (auto: yes for vocabularies >= 100k)
    freeze_layers: int = 0
    bf16: str = "auto"  # auto | yes | no
    swap_augment: bool = False
    label_smoothing: float = 0.0  # classification: cross-entropy label smoothing (the Trainer's factor)
    rdrop_alpha: float = 0.0  # classification: R-Drop weight (two dropout passes + symmetric KL); 0 = off
    # cross-encoder, 0/1 labels: "overlap" trains against the word-overlap shortcut (product of experts with a
    # bias-only model of each train file; training.debias); "none" = plain cross-entropy
    debias: str = "none"
    group_by_length: bool = True
    checkpoint_dir: str | None = None
    deepspeed: str | None = None  # a DeepSpeed JSON config (e.g. configs/deepspeed-zero2.json); multi-GPU runs
    threads: int | None = None
    dataloader_workers: int = 0
    train_limit: int | None = None
    dev_limit: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# what a model is, for commands that take any model (simpair eval --kind)
MODEL_KINDS = ("auto", "cross-encoder", "bi-encoder", "classifier")

# the allowed values of every choice field; the CLI builds its options from these
CHOICES = {
    "kind": ("cross-encoder", "bi-encoder"),
    "bi_loss": ("auto", "mnrl", "cosent", "mnrl+cosent"),
    "task": ("auto", "classification", "regression", "classify"),
    "format": ("auto", "tsv", "csv", "jsonl", "sts"),
    "method": ("full", "freeze", "lora", "bitfit", "prompt", "prefix"),
    "freeze_embeddings": ("auto", "yes", "no"),
    "bf16": ("auto", "yes", "no"),
    "debias": ("none", "overlap"),
    "lr_scheduler": ("linear", "cosine", "constant", "constant_with_warmup"),
}


def _check_type(name: str, value: Any, hint: Any, where: str) -> Any:
    """Coerce ints to floats where a float is wanted; reject anything else of the wrong type."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if value is None:
        if type(None) in args:
            return None
        raise ConfigError(f"{where}: '{name}' must not be empty")
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        inner = [a for a in args if a is not type(None)]
        return _check_type(name, value, inner[0], where)
    if origin is list:
        if isinstance(value, str) and name in ("train", "dev"):
            value = [value]  # one file
        elif isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]  # "negative,positive"
        if not isinstance(value, list):
            raise ConfigError(f"{where}: '{name}' must be a list, got {type(value).__name__} {value!r}")
        if args[0] is float:  # "1,3,1" from a flag
            value = [_number(name, v, where) if isinstance(v, str) else v for v in value]
        return [_check_type(f"{name}[]", v, args[0], where) for v in value]
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: '{name}' must be a number, got {type(value).__name__} {value!r}")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: '{name}' must be an integer, got {type(value).__name__} {value!r}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: '{name}' must be true or false, got {value!r}")
        return value
    if hint is str:
        if isinstance(value, bool):
            value = "yes" if value else "no"
        if not isinstance(value, (str, int, float)):
            raise ConfigError(f"{where}: '{name}' must be a string, got {type(value).__name__} {value!r}")
        value = str(value)
        if name in CHOICES and value not in CHOICES[name]:
            raise ConfigError(f"{where}: '{name}' must be one of {', '.join(CHOICES[name])}, got {value!r}")
        return value
    return value


def _number(name: str, text: str, where: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"{where}: '{name}' must be a list of numbers, got {text!r}") from None


def build_config(values: dict[str, Any], where: str = "flags", base: TrainConfig | None = None) -> TrainConfig:
    """Apply ``values`` over ``base`` (or defaults), validating every key and type."""
    cfg = dataclasses.replace(base) if base else TrainConfig()
    hints = typing.get_type_hints(TrainConfig)
    for key, value in values.items():
        name = key.replace("-", "_")
        if name not in hints:
            close = [k for k in hints if k.startswith(name[:4])]
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"{where}: unknown key {key!r}{hint}")
        setattr(cfg, name, _check_type(name, value, hints[name], where))
    return cfg


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Read a YAML config and apply flag ``overrides`` (None values are ignored)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: no such config file")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{p}{line}: not valid YAML ({getattr(exc, 'problem', exc)})") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping of keys to values at the top level")
    cfg = build_config(data, where=str(p))
    # relative data paths in a config are taken relative to the current directory, like flags
    return build_config({k: v for k, v in (overrides or {}).items() if v is not None}, base=cfg)
