"""The examples a trainer sees: training and dev rows of either task read and validated before any
model loads, mixed by :mod:`.sampling` when there are several train files, tokenized into datasets,
and scored the same way during training and after it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..config import TrainConfig
from ..errors import ConfigError, InputError
from ..metrics import classification_metrics, multiclass_metrics, regression_metrics
from ..readers import TextData, add_swapped, read_texts
from ..readers.texts import is_int, sort_labels
from .common import as_list, data_record, read_files, read_joined
from .debias import bias_column
from .sampling import describe, mix

LABELS = {0: "different", 1: "same"}


def tokenized(texts_a: list[str], texts_b: list[str] | None, labels: list[Any], tokenizer: Any,
             max_length: int) -> Any:
    """A tokenized datasets.Dataset with a ``length`` column for length-grouped batches."""
    from datasets import Dataset

    cols: dict[str, list[Any]] = {"text_a": texts_a, "label": labels}
    if texts_b is not None:
        cols["text_b"] = texts_b
    ds = Dataset.from_dict(cols)

    def tok(batch: dict[str, list]) -> dict[str, Any]:
        enc = tokenizer(batch["text_a"], batch.get("text_b"), truncation=True, max_length=max_length)
        enc["length"] = [len(ids) for ids in enc["input_ids"]]
        return enc

    return ds.map(tok, batched=True, remove_columns=[c for c in ("text_a", "text_b") if c in cols], desc="tokenizing")


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the class axis."""
    z = logits - logits.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


def positive_probability(logits: np.ndarray) -> np.ndarray:
    """Probability of class 1 ("same"); a single-logit model's output as it is."""
    if logits.ndim == 1 or logits.shape[-1] == 1:
        return logits.reshape(-1)
    return softmax(logits)[:, 1].astype(float)


@dataclass
class Examples:
    """Training and dev examples of either task, ready for tokenizing."""

    task: str  # classification | regression (pairs) | classify (single texts)
    names: list[str]  # class names in id order ([] for regression)
    train: tuple[list[str], list[str] | None, list[Any]]
    devs: list[tuple[str, list[str], list[str] | None, list[Any]]]  # (path, a, b, labels) per dev file
    scale: float
    records: dict[str, Any]
    bias: list[list[float]] | None = None  # debias: the bias-only model's log-probabilities per training pair


def read_examples(cfg: TrainConfig) -> Examples:
    """Read and validate every file before any model is loaded."""
    if cfg.task == "classify":
        return _text_examples(cfg)
    files = read_files(cfg.train, cfg, cfg.task)
    task = files[0].task
    if cfg.debias != "none" and task != "classification":  # the bi-encoder refuses it in its own check
        raise ConfigError(f"debias: {cfg.debias!r} needs 0/1 labels; the training data holds {task} labels")
    regression = task == "regression"
    mixed, drawn = mix([d.pairs for d in files], cfg.sample_temperature, cfg.sample_size, cfg.seed,
                        cfg.sample_weights)
    pairs = mixed[: cfg.train_limit] if cfg.train_limit else mixed
    if cfg.swap_augment:
        pairs = add_swapped(pairs)
    if not regression and len({p.label for p in pairs}) < 2:
        raise InputError(as_list(cfg.train)[0], None, "all training labels are the same; expected both 0 and 1")
    scale = float(cfg.score_range[1]) if regression else 1.0
    bias, strength = bias_column([d.pairs for d in files], pairs) if cfg.debias == "overlap" else (None, {})

    def labels(ps: list) -> list[Any]:
        return [float(p.label) / scale if regression else int(p.label) for p in ps]

    devs = []
    for path in as_list(cfg.dev):
        d = read_joined(path, cfg, task).pairs
        d = d[: cfg.dev_limit] if cfg.dev_limit else d
        devs.append((path, [p.text_a for p in d], [p.text_b for p in d], labels(d)))
    return Examples(task, [] if regression else [LABELS[0], LABELS[1]],
                    ([p.text_a for p in pairs], [p.text_b for p in pairs], labels(pairs)), devs, scale,
                    {"train": data_record(cfg.train, [len(d) for d in files]),
                     "debias": {"method": cfg.debias, "bias_roc_auc": {files[i].path: round(auc, 4)
                                                                       for i, auc in strength.items()}}
                     if bias is not None else None,
                     "train_stats": {d.path: d.stats for d in files} if len(files) > 1 else files[0].stats,
                     "train_mix": describe([d.path for d in files], [len(d) for d in files], drawn,
                                           cfg.sample_weights)
                     if cfg.sample_temperature or cfg.sample_size or cfg.sample_weights else None,
                     "dev": data_record(cfg.dev)}, bias)


def _text_examples(cfg: TrainConfig) -> Examples:
    """Single-text classification: class names from ``label_names`` or the training labels."""
    def read(path: str) -> TextData:
        return read_texts(path, fmt=cfg.format, text_column=cfg.text_column, label_column=cfg.label_column)

    train_files = [read(p) for p in as_list(cfg.train)]
    found = sort_labels(x for d in train_files for x in d.labels)
    if len(found) < 2:
        raise InputError(train_files[0].path, None, f"only one label ({found}); expected at least two classes")
    names, keys = found, found
    if cfg.label_names:
        names = [str(n) for n in cfg.label_names]
        ints = all(is_int(x) for x in found)
        keys = [str(i) for i in range(len(names))] if ints else names
        unknown = [x for x in found if x not in keys]
        if unknown:
            raise ConfigError(f"label_names {names}: the training labels {unknown} are not among "
                              f"{'0..' + str(len(names) - 1) if ints else names}")
    texts: list[str] = []
    ys: list[int] = []
    for d in train_files:
        texts += d.texts
        ys += d.encode(keys)
    if cfg.train_limit:
        texts, ys = texts[: cfg.train_limit], ys[: cfg.train_limit]
    devs = []
    for path in as_list(cfg.dev):
        d = read(path)
        dy = d.encode(keys)
        n = cfg.dev_limit or len(dy)
        devs.append((path, d.texts[:n], None, dy[:n]))
    return Examples("classify", names, (texts, None, ys), devs, 1.0,
                    {"train": data_record(cfg.train, [len(d) for d in train_files]),
                     "train_stats": {d.path: d.stats for d in train_files},
                     "dev": data_record(cfg.dev, [len(d[3]) for d in devs])})


def dev_metrics(ex: Examples, logits: np.ndarray, golds: np.ndarray, threshold: float = 0.5) -> dict[str, Any]:
    if ex.task == "regression":
        return regression_metrics(logits.reshape(-1) * ex.scale, golds * ex.scale)
    if ex.task == "classify":
        return multiclass_metrics(softmax(logits), golds.astype(int), ex.names)
    return classification_metrics(positive_probability(logits), golds.astype(int), threshold)
