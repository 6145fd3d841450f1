"""``simpair train --kind bi-encoder``: fine-tune the retrieval model with sentence-transformers.

Losses: ``mnrl`` (MultipleNegativesRankingLoss) on the positive pairs with in-batch negatives,
symmetric (a→b and b→a) because question matching is, and with a hard negative where the data names
one (a labelled negative of the same question, the contradicted hypothesis of an NLI premise);
``cosent`` (CoSENTLoss) on labelled pairs or scores; ``mnrl+cosent`` both. Several train files (of
different domains, tasks and sizes) are mixed by temperature (:mod:`.sampling`) and each file is its
own dataset, so that a batch holds one domain and its in-batch negatives are hard ones.
Saved as a standard sentence-transformers directory plus ``simpair.json`` (prefix, cosine threshold
chosen on dev, dev metrics per dev file).
"""
from __future__ import annotations

import contextlib
import json
import sys
import time
from typing import Any

import numpy as np

from .. import __version__
from ..config import TrainConfig
from ..errors import ConfigError, InputError
from ..metrics import best_threshold, classification_metrics, correlations
from ..models import META_FILE, default_prefix, resolve
from ..models.load import sentence_transformer
from ..readers import Columns, Pair, PairData, read_pairs
from ..readers.pairs import NLI_LABELS
from ..utils import atomic_dir
from .common import as_list, check_run, data_record, process_rank, resume_point, trainer_kwargs, versions
from .peft_methods import apply_method
from .sampling import describe, mean_accuracy_threshold, mix_per_file
from .trainers import dev_names


def train_bi_encoder(cfg: TrainConfig, resume: bool = False, progress: bool = True) -> dict[str, Any]:
    """Validate the data, fine-tune the bi-encoder, pick the cosine threshold on dev, save ``cfg.out``."""
    import transformers

    _check(cfg)
    check_run(cfg, progress)
    started = time.time()
    files = read_bi_files(cfg.train, cfg)
    devs = [d for d in read_bi_files(cfg.dev, cfg) if d.task != "nli"]
    loss_name = choose_loss(cfg.bi_loss, files)
    units = [sampling_units(f) for f in files]
    rows, drawn = mix_per_file(units, cfg.sample_temperature, cfg.sample_size, cfg.seed, cfg.sample_weights)
    if cfg.train_limit:
        rows = first_rows(rows, cfg.train_limit)
    transformers.set_seed(cfg.seed)
    path = resolve(cfg.model)
    prefix = default_prefix(cfg.model, path) if cfg.prefix is None else cfg.prefix
    model = sentence_transformer(path)
    model.max_seq_length = cfg.max_length
    _, params = apply_method(model[0].auto_model, cfg)
    scale = float(cfg.score_range[1])
    datasets = build_datasets(files, rows, loss_name, prefix, scale)
    dev_sets = [_dev_pairs(d, cfg.dev_limit) for d in devs]
    trainer, resume_from = _trainer(cfg, model, datasets, dev_sets, prefix, scale, resume, progress)
    t0 = time.time()
    with contextlib.redirect_stdout(sys.stderr):
        trainer.train(resume_from_checkpoint=resume_from)
    train_seconds = time.time() - t0
    threshold, dev_metrics = dev_cosine(model, dev_sets, prefix, cfg.eval_batch_size, scale)
    meta = {
        "simpair_version": __version__, "kind": "bi-encoder", "task": files[0].task if len(files) == 1 else "mixed",
        "loss": loss_name, "base_model": cfg.model, "prefix": prefix, "max_length": cfg.max_length,
        "threshold": threshold,
        "threshold_rule": ("cosine maximising the mean dev accuracy over the 0/1 dev files"
                           if threshold is not None else None),
        "dev_metrics": dev_metrics.pop("all", {}), "dev_metrics_per_file": dev_metrics,
        "train_examples": {name: len(ds) for name, (ds, _) in datasets.items()},
        "train_seconds": round(train_seconds, 2), "global_step": trainer.state.global_step,
        "parameters": params, "seed": cfg.seed, "method": cfg.method,
        "versions": versions(), "config": cfg.to_dict(),
        "data": {"train": data_record(cfg.train, [len(f) for f in files]), "dev": data_record(cfg.dev),
                 "train_mix": describe([f.path for f in files], [len(u) for u in units], drawn, cfg.sample_weights)
                 if cfg.sample_temperature or cfg.sample_size or cfg.sample_weights else None},
    }
    if not trainer.is_world_process_zero():  # distributed training: only rank 0 writes
        return dict(meta, rank=process_rank(), out=None)
    with atomic_dir(cfg.out) as tmp:
        model.save(str(tmp))
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2, ensure_ascii=False), encoding="utf-8")
    meta.update(out=str(cfg.out), wall_seconds=round(time.time() - started, 2))
    return meta


def first_rows(rows: list[list[Any]], limit: int) -> list[list[Any]]:
    """The first ``limit`` training rows in all, taken file by file (``train_limit``)."""
    out = []
    for r in rows:
        out.append(r[:limit])
        limit -= len(out[-1])
    return out


def _check(cfg: TrainConfig) -> None:
    if cfg.method not in ("full", "freeze", "bitfit"):
        raise ConfigError(f"method {cfg.method!r}: the bi-encoder trains with full, freeze or bitfit; "
                          "lora/prompt/prefix are for the cross-encoder and classifiers")
    if cfg.task == "classify":
        raise ConfigError("task classify: single-text classification trains a classifier, not a bi-encoder")
    if cfg.debias != "none":
        raise ConfigError(f"debias: {cfg.debias!r} is for the cross-encoder; the bi-encoder trains without it")


def read_bi_files(paths: str | list[str] | None, cfg: TrainConfig) -> list[PairData]:
    """Each file read on its own task: 0/1 labels, scores or NLI classes may sit side by side."""
    cols = Columns(cfg.text_a_column, cfg.text_b_column, cfg.label_column)
    lo, hi = cfg.score_range
    return [read_pairs(p, fmt=cfg.format, task=cfg.task, columns=cols, score_range=(lo, hi), allow_nli=True)
            for p in as_list(paths)]


def choose_loss(wanted: str, files: list[PairData]) -> str:
    """``auto``: MNRL for one 0/1 file, CoSENT for scores only, both for a mix of files."""
    if wanted != "auto":
        return wanted
    tasks = {f.task for f in files}
    if tasks == {"regression"}:
        return "cosent"
    if len(files) == 1:
        return "mnrl"
    return "mnrl+cosent"


def sampling_units(data: PairData) -> list[Any]:
    """What temperature sampling draws from a file: its pairs, or for an NLI file its (premise, entailed,
    contradicted) triplets — built from the whole file first, so that sampling does not split them."""
    return nli_triplets(data.pairs) if data.task == "nli" else list(data.pairs)


def build_datasets(files: list[PairData], rows: list[list[Any]], loss_name: str, prefix: str,
                   scale: float) -> dict[str, tuple[Any, str]]:
    """``name: (Dataset, loss kind)`` for every file: MNRL triplets (hard negatives) and pairs, CoSENT rows.
    A file that gives no row for a loss gets no dataset for it."""
    from datasets import Dataset

    out: dict[str, tuple[Any, str]] = {}
    for name, data, drawn in zip(dev_names([(f.path,) for f in files]), files, rows):
        parts: dict[str, tuple[dict[str, list], str]] = {}
        if data.task == "nli":
            parts["nli"] = ({col: [prefix + t[i] for t in drawn] for i, col in enumerate(TRIPLET)}, "mnrl")
        else:
            if "mnrl" in loss_name and data.task == "classification":
                triplets, pairs = mnrl_rows(drawn, prefix, labelled_negatives(data.pairs))
                parts["hard"], parts["mnrl"] = (triplets, "mnrl"), (pairs, "mnrl")
            if "cosent" in loss_name or data.task == "regression":
                s = scale if data.task == "regression" else 1.0
                parts["cosent"] = ({"sentence1": [prefix + p.text_a for p in drawn],
                                    "sentence2": [prefix + p.text_b for p in drawn],
                                    "score": [float(p.label) / s for p in drawn]}, "cosent")
        for part, (cols, kind) in parts.items():
            if len(next(iter(cols.values()))) >= 2:
                out[f"{name}-{part}"] = (Dataset.from_dict(cols), kind)
    if not out:
        raise InputError(files[0].path, None, "no training rows for the bi-encoder: mnrl needs at least 2 positive "
                         "pairs (label 1) or NLI triplets, cosent labelled pairs or scores")
    return out


TRIPLET = ("anchor", "positive", "negative")


def labelled_negatives(pairs: list[Pair]) -> dict[str, list[str]]:
    """For every text, the texts a pair labelled 0 sets against it (either side), from the whole file."""
    negatives: dict[str, list[str]] = {}
    for p in pairs:
        if p.label is not None and p.label < 0.5:
            negatives.setdefault(p.text_a, []).append(p.text_b)
            negatives.setdefault(p.text_b, []).append(p.text_a)
    return negatives


def mnrl_rows(pairs: list[Pair], prefix: str, negatives: dict[str, list[str]]
              ) -> tuple[dict[str, list], dict[str, list]]:
    """The positive pairs as (anchor, positive, hard negative) where the file labels a negative of the
    anchor (or of the positive, then swapped), else as (anchor, positive)."""
    triplets: dict[str, list] = {col: [] for col in TRIPLET}
    plain: dict[str, list] = {"anchor": [], "positive": []}
    for i, p in enumerate(pairs):
        if p.label is None or p.label < 0.5:
            continue
        a, b = (p.text_a, p.text_b) if p.text_a in negatives or p.text_b not in negatives else (p.text_b, p.text_a)
        negs = [n for n in negatives.get(a, []) if n != b]
        if negs:
            for col, text in zip(TRIPLET, (a, b, negs[i % len(negs)])):
                triplets[col].append(prefix + text)
        else:
            plain["anchor"].append(prefix + a)
            plain["positive"].append(prefix + b)
    return triplets, plain


def nli_triplets(pairs: list[Pair]) -> list[tuple[str, str, str]]:
    """(premise, entailed hypothesis, contradicted hypothesis) for every entailment whose premise also has a
    contradiction (the supervised SimCSE recipe); neutral rows are left out."""
    contra: dict[str, list[str]] = {}
    for p in pairs:
        if p.label == NLI_LABELS["contradiction"]:
            contra.setdefault(p.text_a, []).append(p.text_b)
    return [(p.text_a, p.text_b, contra[p.text_a][i % len(contra[p.text_a])]) for i, p in enumerate(pairs)
            if p.label == NLI_LABELS["entailment"] and p.text_a in contra]


def make_loss(model: Any, kind: str) -> Any:
    from sentence_transformers.sentence_transformer.losses import CoSENTLoss, MultipleNegativesRankingLoss

    if kind == "mnrl":
        return MultipleNegativesRankingLoss(model, directions=("query_to_doc", "doc_to_query"))
    return CoSENTLoss(model)


def _dev_pairs(data: PairData, limit: int | None) -> tuple[str, str, list[Pair]]:
    return data.path, data.task, data.pairs[:limit] if limit else data.pairs


def dev_evaluator(dev_sets: list[tuple[str, str, list[Pair]]], prefix: str, scale: float) -> Any:
    """Cosine Spearman on every dev file (the STS tables' metric); with several, their mean picks the best
    checkpoint."""
    from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator, SequentialEvaluator

    evaluators = []
    for name, (path, task, pairs) in zip(dev_names(dev_sets), dev_sets):
        s = scale if task == "regression" else 1.0
        evaluators.append(EmbeddingSimilarityEvaluator([prefix + p.text_a for p in pairs],
                                                       [prefix + p.text_b for p in pairs],
                                                       [float(p.label) / s for p in pairs], name=name))
    if len(evaluators) == 1:
        return evaluators[0], f"eval_{evaluators[0].name}_spearman_cosine"
    return SequentialEvaluator(evaluators, main_score_function=lambda xs: float(np.mean(xs))), \
        "eval_sequential_score"


def _trainer(cfg: TrainConfig, model: Any, datasets: dict[str, tuple[Any, str]],
             dev_sets: list[tuple[str, str, list[Pair]]], prefix: str, scale: float, resume: bool,
             progress: bool) -> tuple[Any, str | None]:
    """The sentence-transformers trainer (one dataset and loss, or one per file and part) and the checkpoint
    it resumes from."""
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.training_args import BatchSamplers

    evaluator, metric = dev_evaluator(dev_sets, prefix, scale) if dev_sets else (None, None)
    ckpt, resume_from = resume_point(cfg, resume)
    any_mnrl = any(kind == "mnrl" for _, kind in datasets.values())
    args = SentenceTransformerTrainingArguments(
        **trainer_kwargs(cfg, ckpt, evaluator is not None, metric),
        use_cpu=True,
        batch_sampler=BatchSamplers.NO_DUPLICATES if any_mnrl else BatchSamplers.BATCH_SAMPLER,
        disable_tqdm=not progress,
    )
    losses = {name: make_loss(model, kind) for name, (_, kind) in datasets.items()}
    train = {name: ds for name, (ds, _) in datasets.items()}
    if len(train) == 1:
        (name, ds), = train.items()
        trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=ds, loss=losses[name],
                                             evaluator=evaluator)
    else:
        trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=train, loss=losses,
                                             evaluator=evaluator)
    return trainer, resume_from


def dev_cosine(model: Any, dev_sets: list[tuple[str, str, list[Pair]]], prefix: str, batch_size: int,
               scale: float) -> tuple[float | None, dict[str, Any]]:
    """(one cosine threshold maximising the mean dev accuracy over the 0/1 files, metrics per dev file and
    ``all`` for the files together)."""
    if not dev_sets:
        return None, {}
    scored = []
    for path, task, pairs in dev_sets:
        ea = model.encode([prefix + p.text_a for p in pairs], batch_size=batch_size, normalize_embeddings=True)
        eb = model.encode([prefix + p.text_b for p in pairs], batch_size=batch_size, normalize_embeddings=True)
        scored.append((path, task, (ea * eb).sum(1), np.array([p.label for p in pairs], dtype=float)))
    binary = [(cos, golds.astype(int)) for _, task, cos, golds in scored if task == "classification"]
    threshold = None
    if len(binary) == 1:
        threshold, _ = best_threshold(*binary[0])
    elif binary:
        threshold, _ = mean_accuracy_threshold(binary)
    out: dict[str, Any] = {}
    for path, task, cos, golds in scored:
        if task == "regression":
            out[path] = correlations(cos, golds / scale)
        else:
            out[path] = {**classification_metrics(cos, golds.astype(int), threshold), **correlations(cos, golds)}
    if len(scored) == 1:
        out["all"] = out[scored[0][0]]
    else:
        rhos = [m["spearman"] for m in out.values() if m.get("spearman") is not None]
        out["all"] = {"mean_spearman": float(np.mean(rhos)) if rhos else None}
    return threshold, out
