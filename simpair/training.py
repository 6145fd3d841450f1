"""``simpair train`` for the cross-encoder and single-text classifiers, on the transformers Trainer.

What the Trainer gives us: dynamic padding (DataCollatorWithPadding), length-grouped batches,
warm-up and decay, bf16 autocast, evaluation and checkpoints every N steps, the best checkpoint
by dev accuracy (Spearman for scores), early stopping, ``--resume`` and TensorBoard logs. What we
add: strict data validation before anything starts, the training method (full, freezing, BitFit,
LoRA, prompt or prefix tuning: :mod:`simpair.peft_methods`), the dev threshold, per-file dev metrics
for several dev files, and an atomic save of a standard model directory (or a small adapter) plus
``simpair.json``.
"""
from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .config import TrainConfig
from .cross_encoder import last_trained_file
from .runtime import use_bf16
from .sampling import describe, mean_accuracy_threshold, mix
from .data import Columns, PairData, add_swapped, pair_stats, read_pairs
from .errors import ConfigError, InputError
from .metrics import (best_threshold, classification_metrics, multiclass_metrics, regression_metrics,
                      write_confusion_matrix)
from .models import META_FILE, resolve
from .models.load import TOKENIZER_FILES, label_kwargs, load_kwargs, remote_code_errors
from .peft_methods import PEFT_METHODS, apply_method
from .texts import TextData, is_int, read_texts, sort_labels
from .utils import atomic_dir, atomic_write_text, dir_size, file_sha256

LABELS = {0: "different", 1: "same"}


def _read(paths: str | list[str], cfg: TrainConfig, task: str) -> PairData:
    """Read one pair file or several (concatenated; all must share one task)."""
    datas = _read_files(paths, cfg, task)
    if len(datas) == 1:
        return datas[0]
    pairs = [p for d in datas for p in d.pairs]
    return PairData(", ".join(d.path for d in datas), pairs, datas[0].task, datas[0].fmt, pair_stats(pairs))


def _read_files(paths: str | list[str], cfg: TrainConfig, task: str) -> list[PairData]:
    """Each pair file read and validated on its own; all must hold the same task."""
    cols = Columns(cfg.text_a_column, cfg.text_b_column, cfg.label_column)
    lo, hi = cfg.score_range
    datas = [read_pairs(p, fmt=cfg.format, task=task, columns=cols, score_range=(lo, hi)) for p in _as_list(paths)]
    first = datas[0]
    for d in datas[1:]:
        if d.task != first.task:
            raise InputError(d.path, None, f"holds {d.task} labels but {first.path} holds {first.task} labels")
    return datas


def _as_list(paths: str | list[str] | None) -> list[str]:
    if paths is None:
        return []
    return [paths] if isinstance(paths, str) else list(paths)


def data_record(paths: str | list[str] | None, counts: list[int] | None = None) -> list[dict[str, Any]]:
    """Path, SHA-256 and size of each data file, for simpair.json."""
    files = _as_list(paths)
    return [{"path": str(p), "sha256": file_sha256(p), **({"rows": counts[i]} if counts else {})}
            for i, p in enumerate(files)]


def _dataset(texts_a: list[str], texts_b: list[str] | None, labels: list[Any], tokenizer: Any,
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


def _probs(logits: np.ndarray) -> np.ndarray:
    """Softmax over the class axis."""
    z = logits - logits.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


def _softmax_pos(logits: np.ndarray) -> np.ndarray:
    """Probability of class 1 ("same"); a single-logit model's output as it is."""
    if logits.ndim == 1 or logits.shape[-1] == 1:
        return logits.reshape(-1)
    return _probs(logits)[:, 1].astype(float)


def _checkpoint_dir(cfg: TrainConfig) -> Path:
    return Path(cfg.checkpoint_dir) if cfg.checkpoint_dir else Path(f"{cfg.out}.checkpoints")


def check_out_dir(out: str | Path) -> None:
    """Refuse to replace a directory that is not a previous simpair model (it would be deleted)."""
    out_dir = Path(out)
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
        label_smoothing_factor=cfg.label_smoothing,
        bf16=use_bf16(cfg.bf16),
        seed=cfg.seed,
        data_seed=cfg.seed,
        report_to=["tensorboard"],
        ddp_find_unused_parameters=False,  # every trainable parameter takes part in the forward pass
        deepspeed=cfg.deepspeed,  # checked by check_deepspeed before any data or model loads
    )


def check_deepspeed(path: str | None) -> str | None:
    """The DeepSpeed config path, once it is known to exist and DeepSpeed to be installed."""
    if not path:
        return None
    if not Path(path).is_file():
        raise ConfigError(f"deepspeed: {path}: no such file; expected a DeepSpeed JSON config "
                          "(see configs/deepspeed-zero2.json)")
    try:
        json.loads(Path(path).read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ConfigError(f"deepspeed: {path}: not valid JSON ({exc})") from None
    import importlib.util

    if importlib.util.find_spec("deepspeed") is None:
        raise ConfigError(f"deepspeed: {path} needs the deepspeed package (pip install deepspeed), which "
                          "targets GPUs; on CPUs use plain DDP (torchrun) without it")
    return path


def _mean_train_loss(trainer: Any, loss: float) -> float:
    """The mean training loss per example. Under DDP the Trainer scales each rank's loss by the number of
    processes (so that averaged gradients come out right) and reports that scaled sum; undo it."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and getattr(trainer.args, "average_tokens_across_devices", False):
        return float(loss) / world
    return float(loss)


def process_rank() -> int:
    """This process's rank under torchrun / accelerate launch (0 when not distributed)."""
    return int(os.environ.get("RANK", "0"))


def _last_checkpoint(ckpt: Path) -> str | None:
    """The newest complete checkpoint: the Trainer writes trainer_state.json last, so a checkpoint whose
    state file is missing or cut short (a kill during the save) is skipped for the one before it."""
    if not ckpt.is_dir():
        return None
    found = [(int(p.name.split("-")[1]), p) for p in ckpt.glob("checkpoint-*")
             if p.is_dir() and p.name.split("-")[1].isdigit()]
    for _, path in sorted(found, reverse=True):
        try:
            json.loads((path / "trainer_state.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        return str(path)
    return None


def _rdrop_trainer(base: type, alpha: float) -> type:
    """A Trainer whose training loss is R-Drop (Liang et al. 2021; PaddleNLP's question_matching).

    Each batch runs twice in one forward (the batch stacked on itself, so two dropout masks), and the
    loss is the mean cross-entropy of both passes plus ``alpha`` times their symmetric KL divergence.
    """
    import torch
    import torch.nn.functional as F

    class RDropTrainer(base):  # type: ignore[misc, valid-type]
        def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                         num_items_in_batch: Any = None) -> Any:
            if not model.training:
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            labels = inputs["labels"]
            doubled = {k: torch.cat([v, v]) for k, v in inputs.items() if k != "labels"}
            logits = model(**doubled).logits.float()
            p, q = logits.chunk(2)
            eps = self.args.label_smoothing_factor
            ce = (F.cross_entropy(p, labels, label_smoothing=eps) + F.cross_entropy(q, labels, label_smoothing=eps)) / 2
            lp, lq = F.log_softmax(p, -1), F.log_softmax(q, -1)
            kl = (F.kl_div(lp, lq, log_target=True, reduction="batchmean")
                  + F.kl_div(lq, lp, log_target=True, reduction="batchmean")) / 2
            loss = ce + alpha * kl
            return (loss, {"logits": p}) if return_outputs else loss

    return RDropTrainer


@dataclass
class _Examples:
    """Training and dev examples of either task, ready for tokenizing."""

    task: str  # classification | regression (pairs) | classify (single texts)
    names: list[str]  # class names in id order ([] for regression)
    train: tuple[list[str], list[str] | None, list[Any]]
    devs: list[tuple[str, list[str], list[str] | None, list[Any]]]  # (path, a, b, labels) per dev file
    scale: float
    records: dict[str, Any]


def _examples(cfg: TrainConfig) -> _Examples:
    """Read and validate every file before any model is loaded."""
    if cfg.task == "classify":
        return _text_examples(cfg)
    files = _read_files(cfg.train, cfg, cfg.task)
    task = files[0].task
    regression = task == "regression"
    if cfg.sample_temperature and len(files) < 2:
        raise ConfigError("sample_temperature: mixes several train files; only one was given")
    mixed, drawn = mix([d.pairs for d in files], cfg.sample_temperature, cfg.sample_size, cfg.seed)
    pairs = mixed[: cfg.train_limit] if cfg.train_limit else mixed
    if cfg.swap_augment:
        pairs = add_swapped(pairs)
    if not regression and len({p.label for p in pairs}) < 2:
        raise InputError(_as_list(cfg.train)[0], None, "all training labels are the same; expected both 0 and 1")
    scale = float(cfg.score_range[1]) if regression else 1.0

    def labels(ps: list) -> list[Any]:
        return [float(p.label) / scale if regression else int(p.label) for p in ps]

    devs = []
    for path in _as_list(cfg.dev):
        d = _read(path, cfg, task).pairs
        d = d[: cfg.dev_limit] if cfg.dev_limit else d
        devs.append((path, [p.text_a for p in d], [p.text_b for p in d], labels(d)))
    return _Examples(task, [] if regression else [LABELS[0], LABELS[1]],
                     ([p.text_a for p in pairs], [p.text_b for p in pairs], labels(pairs)), devs, scale,
                     {"train": data_record(cfg.train, [len(d) for d in files]),
                      "train_stats": {d.path: d.stats for d in files} if len(files) > 1 else files[0].stats,
                      "train_mix": describe([d.path for d in files], [len(d) for d in files], drawn)
                      if cfg.sample_temperature or cfg.sample_size else None,
                      "dev": data_record(cfg.dev)})


def _text_examples(cfg: TrainConfig) -> _Examples:
    """Single-text classification: class names from ``label_names`` or the training labels."""
    def read(path: str) -> TextData:
        return read_texts(path, fmt=cfg.format, text_column=cfg.text_column, label_column=cfg.label_column)

    train_files = [read(p) for p in _as_list(cfg.train)]
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
    for path in _as_list(cfg.dev):
        d = read(path)
        dy = d.encode(keys)
        n = cfg.dev_limit or len(dy)
        devs.append((path, d.texts[:n], None, dy[:n]))
    return _Examples("classify", names, (texts, None, ys), devs, 1.0,
                     {"train": data_record(cfg.train, [len(d) for d in train_files]),
                      "train_stats": {d.path: d.stats for d in train_files},
                      "dev": data_record(cfg.dev, [len(d[3]) for d in devs])})


def _metrics(ex: _Examples, logits: np.ndarray, golds: np.ndarray, threshold: float = 0.5) -> dict[str, Any]:
    if ex.task == "regression":
        return regression_metrics(logits.reshape(-1) * ex.scale, golds * ex.scale)
    if ex.task == "classify":
        return multiclass_metrics(_probs(logits), golds.astype(int), ex.names)
    return classification_metrics(_softmax_pos(logits), golds.astype(int), threshold)


def _init_model(init: str, ex: _Examples) -> tuple[Any, Any, str, str]:
    """(model, tokenizer, path, base name) of a trained pair model to continue from: its head and weights
    (an adapter merged into its base), so that training adapts it instead of starting over."""
    from .models.load import load_classifier

    model, tokenizer, meta, path = load_classifier(init, merge=True)
    if meta.get("adapter") and type(model).__name__.startswith("Peft"):
        raise ConfigError(f"init: {init} is a prompt/prefix adapter; continue from a full model or a LoRA/delta one")
    task = meta.get("task")
    if task and task != ex.task:
        raise ConfigError(f"init: {init} was trained for {task}, but the training data holds {ex.task} labels")
    want = 1 if ex.task == "regression" else len(ex.names)
    if int(model.config.num_labels) != want:
        raise ConfigError(f"init: {init} has {model.config.num_labels} outputs; this task needs {want}")
    model.train()
    return model, tokenizer, str(path), str(meta.get("base_model") or path)


def _dev_names(devs: list[tuple[str, Any, Any, Any]]) -> list[str]:
    """Short unique names for dev files in metric keys: ``bq_dev``, ``lcqmc_dev`` (a numbered prefix on clashes)."""
    import re

    names = [re.sub(r"[^0-9A-Za-z]+", "_", f"{Path(p).parent.name}_{Path(p).stem}").strip("_") for p, *_ in devs]
    if len(set(names)) < len(names):
        names = [f"{i}_{n}" for i, n in enumerate(names)]
    return names


def _mean_over_files_trainer(base: Any) -> Any:
    """A Trainer that, evaluating several dev files, adds ``eval_mean_<metric>``: each file's metric averaged."""

    class MeanOverFilesTrainer(base):  # type: ignore[misc, valid-type]
        def evaluate(self, eval_dataset: Any = None, ignore_keys: Any = None, metric_key_prefix: str = "eval"
                     ) -> dict[str, float]:
            metrics = super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)
            sets = eval_dataset if eval_dataset is not None else self.eval_dataset
            if isinstance(sets, dict):
                means = {}
                for key in ("accuracy", "f1", "roc_auc", "spearman", "pearson"):
                    vals = [metrics.get(f"{metric_key_prefix}_{n}_{key}") for n in sets]
                    if vals and all(v is not None for v in vals):
                        means[f"{metric_key_prefix}_mean_{key}"] = float(np.mean(vals))
                metrics.update(means)
                self.log(means)
            return metrics

    return MeanOverFilesTrainer


def train(cfg: TrainConfig, resume: bool = False, progress: bool = True, callbacks: list | None = None) -> dict[str, Any]:
    """Validate the data, fine-tune with ``cfg.method``, pick the threshold on dev and save ``cfg.out``."""
    import torch
    import transformers
    from transformers import (AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding,
                              EarlyStoppingCallback, Trainer, TrainingArguments)

    if not cfg.train:
        raise ConfigError("train: no training data; pass --train FILE or set 'train' in the config")
    if not cfg.out:
        raise ConfigError("train: no output directory; pass --out DIR or set 'out' in the config")
    check_out_dir(cfg.out)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    started = time.time()
    if not progress:
        from datasets.utils.logging import disable_progress_bar

        disable_progress_bar()
    check_deepspeed(cfg.deepspeed)
    ex = _examples(cfg)  # 1. data: everything validated before a model loads
    regression = ex.task == "regression"

    # 2. model and what trains
    transformers.set_seed(cfg.seed)
    if cfg.init:
        model, tokenizer, model_path, base_name = _init_model(cfg.init, ex)
    else:
        model_path, base_name = resolve(cfg.model), cfg.model
        kwargs = load_kwargs(model_path)
        with remote_code_errors(cfg.model):
            tokenizer = AutoTokenizer.from_pretrained(model_path, trust_remote_code=kwargs["trust_remote_code"])
            model = AutoModelForSequenceClassification.from_pretrained(
                model_path, **label_kwargs({"task": ex.task, "labels": ex.names}), **kwargs)
    model, params = apply_method(model, cfg)
    adapter = cfg.method in PEFT_METHODS

    train_ds = _dataset(*ex.train, tokenizer, cfg.max_length)
    dev_sets = [_dataset(a, b, y, tokenizer, cfg.max_length) for _, a, b, y in ex.devs]
    # several dev files are evaluated one by one (eval_<name>_accuracy) and the best checkpoint is
    # chosen by their mean, so that a large dev file does not outvote the others
    dev_ds: Any = None
    if dev_sets:
        dev_ds = dev_sets[0] if len(dev_sets) == 1 else dict(zip(_dev_names(ex.devs), dev_sets))
    bf16 = use_bf16(cfg.bf16)  # recorded in simpair.json; trainer_kwargs applies it
    ckpt = _checkpoint_dir(cfg)
    resume_from = _last_checkpoint(ckpt) if resume else None
    if resume and resume_from is None:
        raise ConfigError(f"--resume: no checkpoint in {ckpt}; start without --resume")
    if not resume and ckpt.is_dir() and process_rank() == 0:
        for old in ckpt.glob("checkpoint-*"):
            shutil.rmtree(old, ignore_errors=True)

    best_metric = "spearman" if regression else "accuracy"
    if len(dev_sets) > 1:
        best_metric = f"mean_{best_metric}"
    args = TrainingArguments(
        **trainer_kwargs(cfg, ckpt, dev_ds is not None, best_metric),
        use_cpu=not torch.cuda.is_available(),
        train_sampling_strategy="group_by_length" if cfg.group_by_length else "random",
        dataloader_num_workers=cfg.dataloader_workers,
        disable_tqdm=not progress,
        label_names=["labels"],  # a PeftModel's forward(**kwargs) hides them from the Trainer
    )

    def compute_metrics(pred: Any) -> dict[str, float]:
        logits = pred.predictions[0] if isinstance(pred.predictions, tuple) else pred.predictions
        m = _metrics(ex, np.asarray(logits, dtype=float), np.asarray(pred.label_ids, dtype=float))
        keep = ("accuracy", "f1", "macro_f1", "roc_auc", "best_accuracy", "pearson", "spearman", "mse")
        # an undefined correlation (constant predictions) counts as 0, never as a success
        return {k: float(m[k]) if m.get(k) is not None else 0.0 for k in keep if k in m}

    cbs = list(callbacks or [])
    if cfg.early_stopping_patience and dev_ds is not None:
        cbs.append(EarlyStoppingCallback(early_stopping_patience=cfg.early_stopping_patience))
    if cfg.rdrop_alpha and ex.task == "regression":
        raise ConfigError("rdrop_alpha: R-Drop applies to classification, not to regression scores")
    trainer_cls = _rdrop_trainer(Trainer, cfg.rdrop_alpha) if cfg.rdrop_alpha else Trainer
    if len(dev_sets) > 1:
        trainer_cls = _mean_over_files_trainer(trainer_cls)
    trainer = trainer_cls(
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

    # 3. dev: scores of the best checkpoint, per file and together; the threshold for pairs
    dev_metrics: dict[str, Any] = {}
    per_file: dict[str, Any] = {}
    threshold, threshold_f1 = 0.5, 0.5
    if dev_sets:
        outs = []
        with contextlib.redirect_stdout(sys.stderr):
            for ds in dev_sets:
                pred = trainer.predict(ds)
                lg = pred.predictions[0] if isinstance(pred.predictions, tuple) else pred.predictions
                # label_ids, not the file's order: with length grouping the Trainer also reorders eval batches
                outs.append((np.asarray(lg, dtype=float), np.asarray(pred.label_ids, dtype=float).reshape(-1)))
        logits = np.concatenate([o[0] for o in outs])
        golds = np.concatenate([o[1] for o in outs])
        if ex.task == "classification":
            scores = _softmax_pos(logits)
            threshold, _ = best_threshold(scores, golds.astype(int), "accuracy")
            threshold_f1, _ = best_threshold(scores, golds.astype(int), "f1")
            if len(outs) > 1:  # one cut for every domain: the best mean of the per-file accuracies
                threshold, _ = mean_accuracy_threshold([(_softmax_pos(lg), gd.astype(int)) for lg, gd in outs])
        dev_metrics = _metrics(ex, logits, golds, threshold)
        if ex.task == "classification":
            dev_metrics["accuracy_at_0.5"] = float(((_softmax_pos(logits) >= 0.5) == golds.astype(bool)).mean())
        if len(outs) > 1:
            per_file = {dev[0]: _metrics(ex, lg, gd, threshold) for dev, (lg, gd) in zip(ex.devs, outs)}

    # 4. save: a standard model directory (or a small peft adapter) + simpair.json, atomically
    history = [h for h in trainer.state.log_history if "loss" in h or any(k.startswith("eval_") for k in h)]
    meta = {
        "simpair_version": __version__,
        "kind": "classifier" if ex.task == "classify" else "cross-encoder",
        "task": ex.task,
        "labels": ex.names,
        "base_model": base_name,
        "base_model_path": str(model_path),
        "init": cfg.init,
        "method": cfg.method,
        "adapter": adapter,
        "max_length": cfg.max_length,
        "threshold": threshold,
        "threshold_f1": threshold_f1,
        "threshold_rule": ("argmax over classes" if ex.task == "classify" else
                           f"maximises the mean accuracy over {len(dev_sets)} dev files" if len(dev_sets) > 1 else
                           "maximises dev accuracy" if dev_sets else "default 0.5 (no dev data)"),
        "score_scale": ex.scale,
        "dev_metrics": dev_metrics,
        "dev_metrics_per_file": per_file,
        "best_checkpoint": trainer.state.best_model_checkpoint,
        "global_step": trainer.state.global_step,
        "train_pairs": len(ex.train[0]),
        "train_seconds": round(train_seconds, 2),
        "train_loss": _mean_train_loss(trainer, out.training_loss),
        "train_pairs_per_second": round(out.metrics.get("train_samples_per_second", 0.0), 2),
        "parameters": params,
        "bf16": bf16,
        "seed": cfg.seed,
        "data": ex.records,
        "versions": _versions(),
        "config": cfg.to_dict(),
        "log_history": history,
    }
    if not trainer.is_world_process_zero():  # distributed training: only rank 0 writes
        meta.update(rank=process_rank(), out=None)
        return meta
    with atomic_dir(cfg.out) as tmp:
        trainer.save_model(str(tmp))
        if adapter:
            _record_base(tmp, cfg.model)
            for name in TOKENIZER_FILES:  # the base's tokenizer, unchanged: loaded from the base
                (tmp / name).unlink(missing_ok=True)
        else:
            tokenizer.save_pretrained(str(tmp))
        (tmp / "README.md").write_text(model_card(meta), encoding="utf-8")
        (tmp / "training_args.bin").unlink(missing_ok=True)  # a pickle; simpair.json holds the config
        if ex.task == "classify" and dev_metrics:
            write_confusion_matrix(tmp / "dev_confusion_matrix.png", dev_metrics, "dev")
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2, ensure_ascii=False), encoding="utf-8")
    if ex.task != "classify":  # `match` falls back to the last pair model; classifiers are never its default
        atomic_write_text(last_trained_file(), str(Path(cfg.out).resolve()))
    meta["out"] = str(cfg.out)
    meta["saved_bytes"] = dir_size(Path(cfg.out))
    meta["wall_seconds"] = round(time.time() - started, 2)
    return meta


def model_card(meta: dict[str, Any]) -> str:
    """A short README.md: what the model is, its data, dev metrics and how it was trained."""
    dm = meta.get("dev_metrics") or {}
    keys = ("accuracy", "macro_f1", "f1", "roc_auc", "pearson", "spearman")
    metric_rows = "".join(f"| {k} | {dm[k]:.4f} |\n" for k in keys if isinstance(dm.get(k), float))
    for path, m in (meta.get("dev_metrics_per_file") or {}).items():
        metric_rows += "".join(f"| {k} ({path}) | {m[k]:.4f} |\n" for k in ("accuracy", "macro_f1")
                               if isinstance(m.get(k), float))
    data = "".join(f"- train: `{d['path']}` (sha256 {d['sha256'][:12]}…)\n" for d in meta["data"].get("train", []))
    data += "".join(f"- dev: `{d['path']}` (sha256 {d['sha256'][:12]}…)\n" for d in meta["data"].get("dev", []))
    params = meta.get("parameters", {})
    load = ("simpair loads it onto its base (`simpair sentiment --model DIR`, `CrossEncoder(DIR)`); "
            "`simpair export DIR --merge --out M` writes a plain transformers model."
            if meta.get("adapter") else "`AutoModelForSequenceClassification.from_pretrained(DIR)` loads it.")
    return (
        f"# simpair {meta['kind']} ({meta['task']})\n\n"
        f"Base model: `{meta['base_model']}`; method: {meta['method']}"
        f" ({params.get('trainable_parameters', 0):,} of {params.get('total_parameters', 0):,} parameters trained); "
        f"labels: {meta.get('labels') or 'score'}; max length {meta['max_length']}.\n"
        f"{load}\n\n## Data\n\n{data}\n"
        + (f"## Dev metrics\n\n| metric | value |\n| --- | --- |\n{metric_rows}\n" if metric_rows else "")
        + f"## Training\n\n{meta['global_step']} steps, {meta['train_pairs']} examples, "
        f"{meta['train_seconds']} s ({meta['train_pairs_per_second']} examples/s), seed {meta['seed']}, "
        f"simpair {meta['simpair_version']}. The full configuration is in `simpair.json`.\n"
    )


def _record_base(adapter_dir: Path, base: str) -> None:
    """Name the base in adapter_config.json as simpair resolves it (e5-small), not a cache path."""
    path = adapter_dir / "adapter_config.json"
    cfg = json.loads(path.read_text(encoding="utf-8"))
    cfg["base_model_name_or_path"] = base
    path.write_text(json.dumps(cfg, indent=2), encoding="utf-8")


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


