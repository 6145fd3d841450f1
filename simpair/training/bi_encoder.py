"""``simpair train --kind bi-encoder``: fine-tune the retrieval model with sentence-transformers.

Losses: ``mnrl`` (MultipleNegativesRankingLoss) on the positive pairs with in-batch negatives,
symmetric (a→b and b→a) because question matching is; ``cosent`` (CoSENTLoss) on labelled pairs or
scores. Same readers, validation, dev evaluation (cosine accuracy; Spearman for scores) and
best-checkpoint logic as the cross-encoder (:mod:`.common`). Saved as a standard sentence-transformers
directory plus ``simpair.json`` (prefix, cosine threshold chosen on dev, dev metrics).
"""
from __future__ import annotations

import contextlib
import json
import sys
import time
from typing import Any

import numpy as np

from .. import __version__
from ..bi_encoder import default_prefix
from ..config import TrainConfig
from ..errors import ConfigError, InputError
from ..metrics import best_threshold, classification_metrics, correlations
from ..models import META_FILE, resolve
from ..models.load import sentence_transformer
from ..readers import Pair
from ..utils import atomic_dir
from .common import check_run, data_record, process_rank, read_joined, resume_point, trainer_kwargs, versions
from .peft_methods import apply_method


def train_bi_encoder(cfg: TrainConfig, resume: bool = False, progress: bool = True) -> dict[str, Any]:
    """Validate the data, fine-tune the bi-encoder, pick the cosine threshold on dev, save ``cfg.out``."""
    import transformers
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.training_args import BatchSamplers

    if cfg.method not in ("full", "freeze", "bitfit"):
        raise ConfigError(f"method {cfg.method!r}: the bi-encoder trains with full, freeze or bitfit; "
                          "lora/prompt/prefix are for the cross-encoder and classifiers")
    if cfg.task == "classify":
        raise ConfigError("task classify: single-text classification trains a classifier, not a bi-encoder")
    check_run(cfg, progress)
    started = time.time()
    train_data = read_joined(cfg.train, cfg, cfg.task)
    task = train_data.task
    dev_data = read_joined(cfg.dev, cfg, task) if cfg.dev else None  # several dev files are scored together
    loss_name = cfg.bi_loss if cfg.bi_loss != "auto" else ("cosent" if task == "regression" else "mnrl")
    pairs = train_data.pairs[: cfg.train_limit] if cfg.train_limit else train_data.pairs
    dev_pairs = (dev_data.pairs[: cfg.dev_limit] if cfg.dev_limit else dev_data.pairs) if dev_data else []

    transformers.set_seed(cfg.seed)
    path = resolve(cfg.model)
    prefix = default_prefix(cfg.model, path) if cfg.prefix is None else cfg.prefix
    model = sentence_transformer(path)
    model.max_seq_length = cfg.max_length
    _, params = apply_method(model[0].auto_model, cfg)
    scale = float(cfg.score_range[1]) if task == "regression" else 1.0
    train_ds, loss = _dataset_and_loss(model, pairs, task, loss_name, prefix, scale, train_data.path)
    evaluator, metric = _evaluator(dev_pairs, task, prefix, scale)
    ckpt, resume_from = resume_point(cfg, resume)
    args = SentenceTransformerTrainingArguments(
        **trainer_kwargs(cfg, ckpt, evaluator is not None, metric),
        use_cpu=True,
        batch_sampler=BatchSamplers.NO_DUPLICATES if loss_name == "mnrl" else BatchSamplers.BATCH_SAMPLER,
        disable_tqdm=not progress,
    )
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=train_ds, loss=loss,
                                         evaluator=evaluator)
    t0 = time.time()
    with contextlib.redirect_stdout(sys.stderr):
        trainer.train(resume_from_checkpoint=resume_from)
    train_seconds = time.time() - t0
    threshold, dev_metrics = _dev_cosine(model, dev_pairs, task, prefix, cfg.eval_batch_size)
    meta = {
        "simpair_version": __version__, "kind": "bi-encoder", "task": task, "loss": loss_name,
        "base_model": cfg.model, "prefix": prefix, "max_length": cfg.max_length, "threshold": threshold,
        "threshold_rule": "cosine maximising dev accuracy" if threshold is not None else None,
        "dev_metrics": dev_metrics, "train_examples": len(train_ds), "train_seconds": round(train_seconds, 2),
        "parameters": params, "seed": cfg.seed, "versions": versions(), "config": cfg.to_dict(),
        "data": {"train": data_record(cfg.train), "dev": data_record(cfg.dev)},
    }
    if not trainer.is_world_process_zero():  # distributed training: only rank 0 writes
        return dict(meta, rank=process_rank(), out=None)
    with atomic_dir(cfg.out) as tmp:
        model.save(str(tmp))
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2, ensure_ascii=False), encoding="utf-8")
    meta["out"] = str(cfg.out)
    meta["wall_seconds"] = round(time.time() - started, 2)
    meta["global_step"] = trainer.state.global_step
    return meta


def _dataset_and_loss(model: Any, pairs: list[Pair], task: str, loss_name: str, prefix: str, scale: float,
                      path: str) -> tuple[Any, Any]:
    """MNRL on the positive pairs (in-batch negatives, both directions), or CoSENT on labels / scores."""
    from datasets import Dataset
    from sentence_transformers.sentence_transformer.losses import CoSENTLoss, MultipleNegativesRankingLoss

    if loss_name == "mnrl":
        positives = [p for p in pairs if p.label and p.label > 0.5] if task == "classification" else pairs
        if len(positives) < 2:
            raise InputError(path, None, "mnrl needs at least 2 positive pairs (label 1)")
        data = Dataset.from_dict({"anchor": [prefix + p.text_a for p in positives],
                                  "positive": [prefix + p.text_b for p in positives]})
        return data, MultipleNegativesRankingLoss(model, directions=("query_to_doc", "doc_to_query"))
    data = Dataset.from_dict({"sentence1": [prefix + p.text_a for p in pairs],
                              "sentence2": [prefix + p.text_b for p in pairs],
                              "score": [float(p.label) / scale for p in pairs]})
    return data, CoSENTLoss(model)


def _evaluator(dev_pairs: list[Pair], task: str, prefix: str, scale: float) -> tuple[Any, str | None]:
    """The dev evaluator and the metric that picks the best checkpoint (cosine accuracy, or Spearman)."""
    if not dev_pairs:
        return None, None
    from sentence_transformers.sentence_transformer.evaluation import (BinaryClassificationEvaluator,
                                                                       EmbeddingSimilarityEvaluator)

    a = [prefix + p.text_a for p in dev_pairs]
    b = [prefix + p.text_b for p in dev_pairs]
    if task == "regression":
        return (EmbeddingSimilarityEvaluator(a, b, [float(p.label) / scale for p in dev_pairs], name="dev"),
                "eval_dev_spearman_cosine")
    labels = [int(p.label) for p in dev_pairs]
    return BinaryClassificationEvaluator(a, b, labels, name="dev"), "eval_dev_cosine_accuracy"


def _dev_cosine(model: Any, dev_pairs: list[Pair], task: str, prefix: str, batch_size: int
                ) -> tuple[float | None, dict[str, Any]]:
    """(cosine threshold maximising dev accuracy, dev metrics) of the trained model."""
    if not dev_pairs:
        return None, {}
    ea = model.encode([prefix + p.text_a for p in dev_pairs], batch_size=batch_size, normalize_embeddings=True)
    eb = model.encode([prefix + p.text_b for p in dev_pairs], batch_size=batch_size, normalize_embeddings=True)
    cos = (ea * eb).sum(1)
    golds = np.array([p.label for p in dev_pairs], dtype=float)
    if task == "regression":
        return None, correlations(cos, golds)
    threshold, _ = best_threshold(cos, golds.astype(int))
    return threshold, classification_metrics(cos, golds.astype(int), threshold)
