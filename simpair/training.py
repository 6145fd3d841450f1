"""``simpair train`` for the cross-encoder, on the transformers Trainer.

What the Trainer gives us: dynamic padding (DataCollatorWithPadding), length-grouped batches,
warm-up and decay, bf16 autocast, evaluation and checkpoints every N steps, the best checkpoint
by dev accuracy (Spearman for scores), early stopping, ``--resume`` and TensorBoard logs. What we
add: strict data validation before anything starts, freezing, the dev threshold, and an atomic
save of a standard model directory plus ``simpair.json``.
"""
from __future__ import annotations

import contextlib
import json
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .config import TrainConfig
from .cross_encoder import META_FILE, last_trained_file, use_bf16
from .data import Columns, PairData, add_swapped, read_pairs
from .errors import ConfigError, InputError
from .metrics import best_threshold, classification_metrics, regression_metrics
from .models import resolve
from .utils import atomic_dir, atomic_write_text, file_sha256

LABELS = {0: "different", 1: "same"}


def _read(path: str, cfg: TrainConfig, task: str) -> PairData:
    cols = Columns(cfg.text_a_column, cfg.text_b_column, cfg.label_column)
    lo, hi = cfg.score_range
    return read_pairs(path, fmt=cfg.format, task=task, columns=cols, score_range=(lo, hi))


def freeze(model: Any, cfg: TrainConfig) -> dict[str, int]:
    """Apply ``freeze_embeddings`` / ``freeze_layers`` / ``method``; return parameter counts."""
    base = getattr(model, model.base_model_prefix, model)
    emb = base.get_input_embeddings()
    vocab = emb.weight.shape[0]
    freeze_emb = cfg.freeze_embeddings == "yes" or (cfg.freeze_embeddings == "auto" and vocab >= 100_000)
    if freeze_emb or cfg.method == "freeze":
        emb.weight.requires_grad_(False)
    n_layers = cfg.freeze_layers
    if n_layers:
        layers = _encoder_layers(base)
        if n_layers > len(layers):
            raise ConfigError(f"freeze_layers={n_layers} but the model has {len(layers)} layers")
        for layer in layers[:n_layers]:
            for p in layer.parameters():
                p.requires_grad_(False)
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"total_parameters": total, "trainable_parameters": trainable, "frozen_word_embeddings": bool(freeze_emb)}


def _encoder_layers(base: Any) -> list[Any]:
    enc = getattr(base, "encoder", None)
    layers = getattr(enc, "layer", None) or getattr(enc, "layers", None)
    if layers is None:
        raise ConfigError("freeze_layers: this architecture has no encoder.layer list")
    return list(layers)


def _dataset(data: list, tokenizer: Any, max_length: int, scale: float, regression: bool) -> Any:
    from datasets import Dataset

    labels = [float(p.label) / scale if regression else int(p.label) for p in data]
    ds = Dataset.from_dict({"text_a": [p.text_a for p in data], "text_b": [p.text_b for p in data], "label": labels})

    def tok(batch: dict[str, list]) -> dict[str, Any]:
        enc = tokenizer(batch["text_a"], batch["text_b"], truncation=True, max_length=max_length)
        enc["length"] = [len(ids) for ids in enc["input_ids"]]
        return enc

    return ds.map(tok, batched=True, remove_columns=["text_a", "text_b"], desc="tokenizing")


def _softmax_pos(logits: np.ndarray) -> np.ndarray:
    if logits.ndim == 1 or logits.shape[-1] == 1:
        return logits.reshape(-1)
    z = logits - logits.max(-1, keepdims=True)
    e = np.exp(z)
    return (e[:, 1] / e.sum(-1)).astype(float)


def _checkpoint_dir(cfg: TrainConfig) -> Path:
    return Path(cfg.checkpoint_dir) if cfg.checkpoint_dir else Path(f"{cfg.out}.checkpoints")


def check_out_dir(cfg: TrainConfig) -> None:
    """Refuse to replace a directory that is not a previous simpair model (it would be deleted)."""
    out_dir = Path(cfg.out)
    if out_dir.exists() and (not out_dir.is_dir() or (any(out_dir.iterdir()) and not (out_dir / META_FILE).is_file())):
        raise ConfigError(f"{out_dir}: exists and is not a simpair model; refusing to replace it (choose another --out)")


def trainer_kwargs(cfg: TrainConfig, ckpt: Path, evaluate: bool, metric: str | None) -> dict[str, Any]:
    """TrainingArguments shared by the cross-encoder and bi-encoder trainers."""
    strategy = "steps" if cfg.eval_steps else "epoch"
    return dict(
        output_dir=str(ckpt),
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.eval_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        learning_rate=cfg.learning_rate,
        weight_decay=cfg.weight_decay,
        warmup_steps=cfg.warmup_ratio,
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        lr_scheduler_type=cfg.lr_scheduler,
        eval_strategy=strategy if evaluate else "no",
        save_strategy=strategy,
        eval_steps=cfg.eval_steps,
        save_steps=cfg.eval_steps,
        save_total_limit=cfg.save_total_limit,
        load_best_model_at_end=evaluate,
        metric_for_best_model=metric if evaluate else None,
        greater_is_better=True,
        logging_steps=cfg.logging_steps,
        bf16=use_bf16(cfg.bf16),
        seed=cfg.seed,
        data_seed=cfg.seed,
        report_to=["tensorboard"],
    )


def _last_checkpoint(ckpt: Path) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(str(ckpt)) if ckpt.is_dir() else None


def train(cfg: TrainConfig, resume: bool = False, progress: bool = True, callbacks: list | None = None) -> dict[str, Any]:
    """Validate the data, fine-tune, pick the threshold on dev and save ``cfg.out``; return a summary."""
    import torch
    import transformers
    from transformers import (AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding,
                              EarlyStoppingCallback, Trainer, TrainingArguments)

    if not cfg.train:
        raise ConfigError("train: no training data; pass --train FILE or set 'train' in the config")
    if not cfg.out:
        raise ConfigError("train: no output directory; pass --out DIR or set 'out' in the config")
    check_out_dir(cfg)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    started = time.time()
    # 1. data: validate everything before any model is loaded
    train_data = _read(cfg.train, cfg, cfg.task)
    task = train_data.task
    dev_data = _read(cfg.dev, cfg, task) if cfg.dev else None
    regression = task == "regression"
    train_pairs = train_data.pairs[: cfg.train_limit] if cfg.train_limit else train_data.pairs
    if cfg.swap_augment:
        train_pairs = add_swapped(train_pairs)
    dev_pairs = (dev_data.pairs[: cfg.dev_limit] if cfg.dev_limit else dev_data.pairs) if dev_data else []
    if not regression and len({p.label for p in train_pairs}) < 2:
        raise InputError(cfg.train, None, "all training labels are the same; expected both 0 and 1")
    scale = float(cfg.score_range[1]) if regression else 1.0

    # 2. model
    transformers.set_seed(cfg.seed)
    model_path = resolve(cfg.model)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    kwargs: dict[str, Any] = {"num_labels": 1, "problem_type": "regression"} if regression else {
        "num_labels": 2, "id2label": LABELS, "label2id": {v: k for k, v in LABELS.items()}}
    model = AutoModelForSequenceClassification.from_pretrained(model_path, **kwargs)
    params = freeze(model, cfg)

    train_ds = _dataset(train_pairs, tokenizer, cfg.max_length, scale, regression)
    dev_ds = _dataset(dev_pairs, tokenizer, cfg.max_length, scale, regression) if dev_pairs else None
    bf16 = use_bf16(cfg.bf16)  # recorded in simpair.json; trainer_kwargs applies it
    ckpt = _checkpoint_dir(cfg)
    resume_from = _last_checkpoint(ckpt) if resume else None
    if resume and resume_from is None:
        raise ConfigError(f"--resume: no checkpoint in {ckpt}; start without --resume")
    if not resume and ckpt.is_dir():
        for old in ckpt.glob("checkpoint-*"):
            shutil.rmtree(old, ignore_errors=True)

    best_metric = "spearman" if regression else "accuracy"
    args = TrainingArguments(
        **trainer_kwargs(cfg, ckpt, dev_ds is not None, best_metric),
        use_cpu=not torch.cuda.is_available(),
        train_sampling_strategy="group_by_length" if cfg.group_by_length else "random",
        dataloader_num_workers=cfg.dataloader_workers,
        disable_tqdm=not progress,
    )

    def compute_metrics(pred: Any) -> dict[str, float]:
        logits = pred.predictions[0] if isinstance(pred.predictions, tuple) else pred.predictions
        if regression:
            m = regression_metrics(np.asarray(logits).reshape(-1), pred.label_ids)
        else:
            m = classification_metrics(_softmax_pos(np.asarray(logits)), pred.label_ids.astype(int), 0.5)
        keep = ("accuracy", "f1", "roc_auc", "best_accuracy", "pearson", "spearman", "mse")
        # an undefined correlation (constant predictions) counts as 0, never as a success
        return {k: float(m[k]) if m.get(k) is not None else 0.0 for k in keep if k in m}

    cbs = list(callbacks or [])
    if cfg.early_stopping_patience and dev_ds is not None:
        cbs.append(EarlyStoppingCallback(early_stopping_patience=cfg.early_stopping_patience))
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train_ds,
        eval_dataset=dev_ds,
        data_collator=DataCollatorWithPadding(tokenizer),
        processing_class=tokenizer,
        compute_metrics=compute_metrics if dev_ds is not None else None,
        callbacks=cbs,
    )
    t_train = time.time()
    # the Trainer prints its log lines to stdout; a library call keeps stdout for its caller
    with contextlib.redirect_stdout(sys.stderr):
        out = trainer.train(resume_from_checkpoint=resume_from)
    train_seconds = time.time() - t_train

    # 3. dev: scores of the best checkpoint, thresholds, metrics
    dev_metrics: dict[str, Any] = {}
    threshold, threshold_f1 = 0.5, 0.5
    if dev_ds is not None:
        with contextlib.redirect_stdout(sys.stderr):
            pred = trainer.predict(dev_ds)
        logits = pred.predictions[0] if isinstance(pred.predictions, tuple) else pred.predictions
        # label_ids, not the file's order: with length grouping the Trainer also reorders eval batches
        golds = np.asarray(pred.label_ids, dtype=float).reshape(-1) * scale
        if regression:
            dev_metrics = regression_metrics(np.asarray(logits).reshape(-1) * scale, golds)
        else:
            scores = _softmax_pos(np.asarray(logits))
            threshold, _ = best_threshold(scores, golds.astype(int), "accuracy")
            threshold_f1, _ = best_threshold(scores, golds.astype(int), "f1")
            dev_metrics = classification_metrics(scores, golds.astype(int), threshold)
            dev_metrics["accuracy_at_0.5"] = float(((scores >= 0.5) == golds.astype(bool)).mean())

    # 4. save: a standard model directory + simpair.json, atomically
    history = [h for h in trainer.state.log_history if "eval_loss" in h or "loss" in h]
    meta = {
        "simpair_version": __version__,
        "kind": "cross-encoder",
        "task": task,
        "base_model": cfg.model,
        "base_model_path": str(model_path),
        "max_length": cfg.max_length,
        "threshold": threshold,
        "threshold_f1": threshold_f1,
        "threshold_rule": "maximises dev accuracy" if dev_ds is not None else "default 0.5 (no dev data)",
        "score_scale": scale,
        "dev_metrics": dev_metrics,
        "best_checkpoint": trainer.state.best_model_checkpoint,
        "global_step": trainer.state.global_step,
        "train_pairs": len(train_pairs),
        "train_seconds": round(train_seconds, 2),
        "train_pairs_per_second": round(out.metrics.get("train_samples_per_second", 0.0), 2),
        "parameters": params,
        "bf16": bf16,
        "seed": cfg.seed,
        "data": {
            "train": {"path": str(cfg.train), "sha256": file_sha256(cfg.train), "pairs": len(train_data),
                      "stats": train_data.stats},
            **({"dev": {"path": str(cfg.dev), "sha256": file_sha256(cfg.dev), "pairs": len(dev_data),
                        "stats": dev_data.stats}} if dev_data else {}),
        },
        "versions": _versions(),
        "config": cfg.to_dict(),
        "log_history": history,
    }
    with atomic_dir(cfg.out) as tmp:
        trainer.save_model(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2, ensure_ascii=False), encoding="utf-8")
    atomic_write_text(last_trained_file(), str(Path(cfg.out).resolve()))
    meta["out"] = str(cfg.out)
    meta["wall_seconds"] = round(time.time() - started, 2)
    return meta


def _versions() -> dict[str, str]:
    import sklearn
    import tokenizers
    import torch
    import transformers

    out = {"python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__,
           "tokenizers": tokenizers.__version__, "scikit-learn": sklearn.__version__}
    try:
        import datasets

        out["datasets"] = datasets.__version__
    except ImportError:
        pass
    return out


