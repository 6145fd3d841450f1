"""``simpair train`` for the cross-encoder and single-text classifiers, on the transformers Trainer.

What the Trainer gives us: dynamic padding (DataCollatorWithPadding), length-grouped batches,
warm-up and decay, bf16 autocast, evaluation and checkpoints every N steps, the best checkpoint
by dev accuracy (Spearman for scores), early stopping, ``--resume`` and TensorBoard logs. What we
add: strict data validation before anything starts, several train files mixed by temperature
(:mod:`.sampling`), the training method (full, freezing, BitFit, LoRA, prompt or prefix tuning:
:mod:`.peft_methods`), continuing from a trained model (``init``), per-file dev metrics with the best
checkpoint and one threshold chosen by their mean, and an atomic save of a standard model directory
(or a small adapter) plus ``simpair.json``.

Phases of :func:`train_classifier`: examples → model → trainer → train → dev scores → save.
"""
from __future__ import annotations

import contextlib
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..config import TrainConfig
from ..errors import ConfigError
from ..metrics import best_threshold, write_confusion_matrix
from ..models import META_FILE, load_classifier, resolve
from ..models.card import model_card
from ..models.load import TOKENIZER_FILES, label_kwargs, load_kwargs, remote_code_errors
from ..utils import atomic_dir, dir_size
from .common import check_run, mean_train_loss, process_rank, record_base, resume_point, trainer_kwargs, versions
from .debias import BIAS_COLUMN, poe_trainer
from .examples import Examples, dev_metrics, positive_probability, read_examples, tokenized
from .peft_methods import PEFT_METHODS, apply_method
from .sampling import mean_accuracy_threshold
from .trainers import dev_names, mean_over_files_trainer, rdrop_trainer

KEPT_METRICS = ("accuracy", "f1", "macro_f1", "roc_auc", "best_accuracy", "pearson", "spearman", "mse")


@dataclass
class _Model:
    """The network to train, its tokenizer, and where it came from (for simpair.json)."""

    net: Any
    tokenizer: Any
    path: str
    base: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class _DevResult:
    metrics: dict[str, Any]
    per_file: dict[str, Any]
    threshold: float = 0.5
    threshold_f1: float = 0.5


def train_classifier(cfg: TrainConfig, resume: bool = False, progress: bool = True,
                     callbacks: list | None = None) -> dict[str, Any]:
    """Validate the data, fine-tune with ``cfg.method``, pick the threshold on dev and save ``cfg.out``."""
    import transformers

    check_run(cfg, progress)
    started = time.time()
    ex = read_examples(cfg)  # everything validated before a model loads
    transformers.set_seed(cfg.seed)
    model = _load_model(cfg, ex)
    dev_sets = [tokenized(a, b, y, model.tokenizer, cfg.max_length) for _, a, b, y in ex.devs]
    ckpt, resume_from = resume_point(cfg, resume)
    trainer = _trainer(cfg, ex, model, dev_sets, ckpt, progress, callbacks)
    t_train = time.time()
    # the Trainer prints its log lines to stdout; a library call keeps stdout for its caller
    with contextlib.redirect_stdout(sys.stderr):
        out = trainer.train(resume_from_checkpoint=resume_from)
    train_seconds = time.time() - t_train
    dev = _score_dev(trainer, ex, dev_sets)
    meta = _meta(cfg, ex, model, dev, trainer, out, train_seconds, len(dev_sets))
    if not trainer.is_world_process_zero():  # distributed training: only rank 0 writes
        meta.update(rank=process_rank(), out=None)
        return meta
    _save(cfg, ex, model, trainer, meta)
    meta["out"] = str(cfg.out)
    meta["saved_bytes"] = dir_size(Path(cfg.out))
    meta["wall_seconds"] = round(time.time() - started, 2)
    return meta


def _load_model(cfg: TrainConfig, ex: Examples) -> _Model:
    """The base model with a fresh head for ``ex``'s labels, or the trained model named by ``init``; then
    what trains (``cfg.method``)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    if cfg.init:
        model = _init_model(cfg.init, ex)
    else:
        path = resolve(cfg.model)
        kwargs = load_kwargs(path)
        with remote_code_errors(cfg.model):
            tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=kwargs["trust_remote_code"])
            net = AutoModelForSequenceClassification.from_pretrained(
                path, **label_kwargs({"task": ex.task, "labels": ex.names}), **kwargs)
        model = _Model(net, tokenizer, str(path), cfg.model)
    model.net, model.params = apply_method(model.net, cfg)
    return model


def _init_model(init: str, ex: Examples) -> _Model:
    """A trained pair model to continue from: its head and weights (an adapter merged into its base), so
    that training adapts it instead of starting over."""
    net, tokenizer, meta, path = load_classifier(init, merge=True)
    if meta.get("adapter") and type(net).__name__.startswith("Peft"):
        raise ConfigError(f"init: {init} is a prompt/prefix adapter; continue from a full model or a LoRA/delta one")
    task = meta.get("task")
    if task and task != ex.task:
        raise ConfigError(f"init: {init} was trained for {task}, but the training data holds {ex.task} labels")
    want = 1 if ex.task == "regression" else len(ex.names)
    if int(net.config.num_labels) != want:
        raise ConfigError(f"init: {init} has {net.config.num_labels} outputs; this task needs {want}")
    for param in net.parameters():  # loaded for inference (an adapter merged frozen); cfg.method decides
        param.requires_grad_(True)
    net.train()
    return _Model(net, tokenizer, str(path), str(meta.get("base_model") or path))


def _trainer(cfg: TrainConfig, ex: Examples, model: _Model, dev_sets: list[Any], ckpt: Path, progress: bool,
             callbacks: list | None) -> Any:
    """The Trainer: several dev files are evaluated one by one (``eval_<name>_accuracy``) and the best
    checkpoint is chosen by their mean, so that a large dev file does not outvote the others."""
    import torch
    from transformers import DataCollatorWithPadding, EarlyStoppingCallback, Trainer, TrainingArguments

    if cfg.rdrop_alpha and ex.task == "regression":
        raise ConfigError("rdrop_alpha: R-Drop applies to classification, not to regression scores")
    if cfg.rdrop_alpha and ex.bias is not None:
        raise ConfigError("rdrop_alpha and debias: choose one training loss")
    dev_ds: Any = None
    if dev_sets:
        dev_ds = dev_sets[0] if len(dev_sets) == 1 else dict(zip(dev_names(ex.devs), dev_sets))
    best_metric = "spearman" if ex.task == "regression" else "accuracy"
    if len(dev_sets) > 1:
        best_metric = f"mean_{best_metric}"
    args = TrainingArguments(
        **trainer_kwargs(cfg, ckpt, dev_ds is not None, best_metric),
        use_cpu=not torch.cuda.is_available(),
        train_sampling_strategy="group_by_length" if cfg.group_by_length else "random",
        dataloader_num_workers=cfg.dataloader_workers,
        disable_tqdm=not progress,
        label_names=["labels"],  # a PeftModel's forward(**kwargs) hides them from the Trainer
        remove_unused_columns=ex.bias is None,  # the bias column must reach compute_loss
    )

    def compute_metrics(pred: Any) -> dict[str, float]:
        logits = pred.predictions[0] if isinstance(pred.predictions, tuple) else pred.predictions
        m = dev_metrics(ex, np.asarray(logits, dtype=float), np.asarray(pred.label_ids, dtype=float))
        # an undefined correlation (constant predictions) counts as 0, never as a success
        return {k: float(m[k]) if m.get(k) is not None else 0.0 for k in KEPT_METRICS if k in m}

    cbs = list(callbacks or [])
    if cfg.early_stopping_patience and dev_ds is not None:
        cbs.append(EarlyStoppingCallback(early_stopping_patience=cfg.early_stopping_patience))
    trainer_cls = rdrop_trainer(Trainer, cfg.rdrop_alpha) if cfg.rdrop_alpha else Trainer
    train_ds = tokenized(*ex.train, model.tokenizer, cfg.max_length)
    if ex.bias is not None:
        trainer_cls = poe_trainer(trainer_cls)
        train_ds = train_ds.add_column(BIAS_COLUMN, ex.bias)
    if len(dev_sets) > 1:
        trainer_cls = mean_over_files_trainer(trainer_cls)
    return trainer_cls(model=model.net, args=args, train_dataset=train_ds, eval_dataset=dev_ds,
                       data_collator=DataCollatorWithPadding(model.tokenizer), processing_class=model.tokenizer,
                       compute_metrics=compute_metrics if dev_ds is not None else None, callbacks=cbs)


def _score_dev(trainer: Any, ex: Examples, dev_sets: list[Any]) -> _DevResult:
    """Scores of the best checkpoint on each dev file and together; for pairs, the threshold (one cut for
    every file: the best mean of the per-file accuracies)."""
    if not dev_sets:
        return _DevResult({}, {})
    outs = []
    with contextlib.redirect_stdout(sys.stderr):
        for ds in dev_sets:
            pred = trainer.predict(ds)
            lg = pred.predictions[0] if isinstance(pred.predictions, tuple) else pred.predictions
            # label_ids, not the file's order: with length grouping the Trainer also reorders eval batches
            outs.append((np.asarray(lg, dtype=float), np.asarray(pred.label_ids, dtype=float).reshape(-1)))
    logits = np.concatenate([o[0] for o in outs])
    golds = np.concatenate([o[1] for o in outs])
    result = _DevResult({}, {})
    if ex.task == "classification":
        scores = positive_probability(logits)
        result.threshold, _ = best_threshold(scores, golds.astype(int), "accuracy")
        result.threshold_f1, _ = best_threshold(scores, golds.astype(int), "f1")
        if len(outs) > 1:
            result.threshold, _ = mean_accuracy_threshold([(positive_probability(lg), gd.astype(int))
                                                           for lg, gd in outs])
    result.metrics = dev_metrics(ex, logits, golds, result.threshold)
    if ex.task == "classification":
        result.metrics["accuracy_at_0.5"] = float(((positive_probability(logits) >= 0.5) == golds.astype(bool)).mean())
    if len(outs) > 1:
        result.per_file = {dev[0]: dev_metrics(ex, lg, gd, result.threshold) for dev, (lg, gd) in zip(ex.devs, outs)}
        if ex.task == "classification":
            result.metrics["mean_accuracy"] = float(np.mean([m["accuracy"] for m in result.per_file.values()]))
    return result


def _threshold_rule(task: str, n_dev: int) -> str:
    if task == "classify":
        return "argmax over classes"
    if n_dev > 1:
        return f"maximises the mean accuracy over {n_dev} dev files"
    return "maximises dev accuracy" if n_dev else "default 0.5 (no dev data)"


def _meta(cfg: TrainConfig, ex: Examples, model: _Model, dev: _DevResult, trainer: Any, out: Any,
          train_seconds: float, n_dev: int) -> dict[str, Any]:
    """simpair.json: what the model is, its threshold and dev metrics, and how it was trained."""
    from ..backend.runtime import use_bf16

    history = [h for h in trainer.state.log_history if "loss" in h or any(k.startswith("eval_") for k in h)]
    return {
        "simpair_version": __version__,
        "kind": "classifier" if ex.task == "classify" else "cross-encoder",
        "task": ex.task, "labels": ex.names,
        "base_model": model.base, "base_model_path": model.path, "init": cfg.init,
        "method": cfg.method, "adapter": cfg.method in PEFT_METHODS, "max_length": cfg.max_length,
        "threshold": dev.threshold, "threshold_f1": dev.threshold_f1,
        "threshold_rule": _threshold_rule(ex.task, n_dev),
        "score_scale": ex.scale,
        "dev_metrics": dev.metrics, "dev_metrics_per_file": dev.per_file,
        "best_checkpoint": trainer.state.best_model_checkpoint,
        "global_step": trainer.state.global_step,
        "train_pairs": len(ex.train[0]),
        "train_seconds": round(train_seconds, 2),
        "train_loss": mean_train_loss(trainer, out.training_loss),
        "train_pairs_per_second": round(out.metrics.get("train_samples_per_second", 0.0), 2),
        "parameters": model.params,
        "bf16": use_bf16(cfg.bf16),
        "seed": cfg.seed, "data": ex.records, "versions": versions(), "config": cfg.to_dict(),
        "log_history": history,
    }


def _save(cfg: TrainConfig, ex: Examples, model: _Model, trainer: Any, meta: dict[str, Any]) -> None:
    """A standard model directory (or a small peft adapter) + simpair.json + README.md, atomically. It does not
    become anyone's default: ``match --model OUT`` or ``simpair models --use OUT`` says so explicitly."""
    with atomic_dir(cfg.out) as tmp:
        trainer.save_model(str(tmp))
        if meta["adapter"]:
            record_base(tmp, model.base)
            for name in TOKENIZER_FILES:  # the base's tokenizer, unchanged: loaded from the base
                (tmp / name).unlink(missing_ok=True)
        else:
            model.tokenizer.save_pretrained(str(tmp))
        (tmp / "README.md").write_text(model_card(meta), encoding="utf-8")
        (tmp / "training_args.bin").unlink(missing_ok=True)  # a pickle; simpair.json holds the config
        if ex.task == "classify" and meta["dev_metrics"]:
            write_confusion_matrix(tmp / "dev_confusion_matrix.png", meta["dev_metrics"], "dev")
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2, ensure_ascii=False), encoding="utf-8")
