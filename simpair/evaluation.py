"""``simpair eval`` and ``simpair eval-retrieval``: score labelled data with a model and report every metric.

:func:`evaluate` picks by what the model is (:func:`model_kind`): a cross-encoder scores pairs
(accuracy, F1, AUC at its stored threshold and at the best one; Pearson/Spearman for scores); a
bi-encoder scores pairs by cosine similarity — the metric of STS tables (C-MTEB, text2vec): cosine
Spearman/Pearson, ROC-AUC, and accuracy at its stored cosine threshold; a classifier scores labelled
texts. :func:`evaluate_index` measures retrieval (Recall@k, MRR, nDCG), with and without re-ranking.
"""
from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .bi_encoder import BiEncoder
from .cross_encoder import CrossEncoder
from .metrics import (classification_metrics, correlations, multiclass_metrics, regression_metrics,
                      write_confusion_matrix, write_report)
from .models import read_meta, resolve
from .readers import Pair, read_queries, read_texts, score_pair_file
from .search import RERANK_WEIGHT
from .utils import read_json



def model_kind(model: str) -> str:
    """``classifier``, ``cross-encoder`` or ``bi-encoder``: from simpair.json when the model has one; else a
    sequence-classification architecture is a cross-encoder and a sentence-transformers directory
    (``modules.json``; e5-small, minilm-en) a bi-encoder."""
    path = Path(resolve(model))
    meta = read_meta(path)
    if meta:
        return "classifier" if meta.get("task") == "classify" else str(meta.get("kind") or "cross-encoder")
    config = path / "config.json"
    archs = read_json(config, "a transformers config").get("architectures") or [] if config.is_file() else []
    if any(a.endswith("ForSequenceClassification") for a in archs):
        return "cross-encoder"
    return "bi-encoder" if (path / "modules.json").is_file() else "cross-encoder"


def evaluate(model: str, data: str | Sequence[str], kind: str = "auto", **options: Any) -> dict[str, Any]:
    """Metrics of ``model`` on the labelled ``data``, for whatever the model is (``kind`` overrides). Several
    files: the model is loaded once, each file scored on its own (``files``) and their ``mean`` given."""
    if not isinstance(data, (str, Path)):
        return evaluate_files(model, list(data), kind=kind, **options)
    kind = model_kind(model) if kind == "auto" else kind
    engine = _engine_for(kind, options)
    if engine is not None:
        return evaluate_file(engine.cross_encoder(model), data, **options)
    if kind == "classifier":
        keep = {k: options[k] for k in ("fmt", "batch_size", "report_dir", "progress") if k in options}
        return evaluate_texts(model, data, **keep)
    if kind == "bi-encoder":
        options.pop("symmetric", None)  # cosine similarity is symmetric already
        return evaluate_bi_encoder(model, data, **options)
    return evaluate_file(model, data, **options)


def _engine_for(kind: str, options: dict[str, Any]) -> Any:
    """The ``engine`` option taken out of ``options`` (a :mod:`simpair.engines` engine, or None): it scores
    cross-encoders only."""
    from .errors import SimpairError

    engine = options.pop("engine", None)
    if engine is not None and kind != "cross-encoder":
        raise SimpairError(f"--engine ray scores cross-encoders; this model is a {kind}: evaluate it without it")
    if engine is not None:
        for key in ("backend", "precision", "threads"):  # the engine's workers load the model with these
            options.pop(key, None)
    return engine


MEAN_KEYS = ("accuracy", "best_accuracy", "f1", "roc_auc", "spearman", "pearson")


def evaluate_files(model: str, files: Sequence[str], kind: str = "auto", **options: Any) -> dict[str, Any]:
    """One model on several labelled files (dev sets of several domains): per file as :func:`evaluate`, and the
    unweighted mean of each metric over the files that have it (a 10k-pair set does not outvote a 500-pair one).
    ``report_dir`` gets one sub-directory a file."""
    if not files:
        raise ValueError("evaluate: no data files")
    kind = model_kind(model) if kind == "auto" else kind
    engine = _engine_for(kind, options)
    run = {k: options.pop(k) for k in ("backend", "precision", "threads") if k in options}
    report_dir = options.pop("report_dir", None)
    if engine is not None:
        loaded: Any = engine.cross_encoder(model)
    elif kind == "classifier":
        from .sentiment import Sentiment

        loaded = Sentiment(model)
    else:
        loaded = (BiEncoder if kind == "bi-encoder" else CrossEncoder)(model, **run)
    results = []
    for i, data in enumerate(files):
        sub = str(Path(report_dir) / f"{i + 1}-{Path(data).stem}") if report_dir else None
        if kind == "classifier":
            keep = {k: options[k] for k in ("fmt", "batch_size", "progress") if k in options}
            results.append(evaluate_texts(loaded, data, report_dir=sub, **keep))
        elif kind == "bi-encoder":
            options.pop("symmetric", None)
            results.append(evaluate_bi_encoder(loaded, data, report_dir=sub, **options))
        else:
            results.append(evaluate_file(loaded, data, report_dir=sub, **options))
    mean = {}
    for key in MEAN_KEYS:
        values = [r["metrics"][key] for r in results if isinstance(r["metrics"].get(key), float)]
        if values:
            mean[key] = float(np.mean(values))
            mean[f"{key}_files"] = len(values)
    return {"model": model, "kind": kind, "data": [str(f) for f in files], "files": results, "mean": mean}


def _pair_result(name: str, kind: str, data: str, task: str, n: int, symmetric: bool, seconds: float,
                 metrics: dict[str, Any]) -> dict[str, Any]:
    return {"model": name, "kind": kind, "data": str(data), "task": task, "pairs": n, "symmetric": symmetric,
            "seconds": round(seconds, 3), "pairs_per_second": round(n / max(seconds, 1e-9), 1), "metrics": metrics}


def _report(result: dict[str, Any], report_dir: str | None, scores: np.ndarray, golds: np.ndarray) -> None:
    if report_dir:
        used = float(result["metrics"].get("threshold") or 0.5) if result["task"] != "regression" else 0.5
        files = write_report(report_dir, scores, golds, result, task=result["task"], threshold=used)
        result["report"] = [str(Path(f)) for f in files]


def evaluate_file(model: Any, data: str, fmt: str = "auto", task: str = "auto",
                  threshold: float | None = None, symmetric: bool = False, batch_size: int = 64,
                  report_dir: str | None = None, backend: str = "auto", precision: str = "auto",
                  threads: int | None = None, progress: bool = False) -> dict[str, Any]:
    """A cross-encoder (a name, a loaded :class:`CrossEncoder`, or an engine's stand-in for one): metrics at the
    stored (or given) threshold and at the best threshold on this data."""
    ce = model if not isinstance(model, (str, Path)) else CrossEncoder(str(model), backend=backend,
                                                                       precision=precision, threads=threads)
    # a regression model reads any numeric label as a score; a 0/1 model lets the file say what it holds, so a
    # score file (a ``score`` column, STS format) is scored by rank correlation instead of refused row by row
    task = "regression" if task == "auto" and ce.trained and ce.task == "regression" else task
    t0 = time.perf_counter()
    scores, golds, read_task = ce.score_file(data, fmt=fmt, task=task, batch_size=batch_size, symmetric=symmetric,
                                             progress=progress)
    seconds = time.perf_counter() - t0
    if read_task == "regression":
        metrics = regression_metrics(scores, golds)
    else:
        metrics = classification_metrics(scores, golds.astype(int), ce.threshold if threshold is None else threshold)
    result = _pair_result(ce.name, "cross-encoder", data, read_task, len(golds), symmetric, seconds, metrics)
    _report(result, report_dir, scores, golds)
    return result


def evaluate_bi_encoder(model: str | BiEncoder, data: str, fmt: str = "auto", task: str = "auto",
                        threshold: float | None = None, batch_size: int = 64, report_dir: str | None = None,
                        backend: str = "auto", precision: str = "auto", threads: int | None = None,
                        progress: bool = False) -> dict[str, Any]:
    """A bi-encoder: cosine similarity of the two texts' embeddings against the labels. For 0/1 labels,
    accuracy at the model's stored cosine threshold (``threshold`` overrides; a model without one, such as
    zero-shot e5-small, reports accuracy at the best threshold only), ROC-AUC and cosine Pearson/Spearman;
    for scores, cosine Pearson/Spearman."""
    enc = model if isinstance(model, BiEncoder) else BiEncoder(model, backend=backend, precision=precision,
                                                               threads=threads)
    encoded = 0

    def cosines(pairs: list[Pair]) -> np.ndarray:
        """Each pair's cosine, every distinct text of the chunk encoded once."""
        nonlocal encoded
        texts = sorted({t for p in pairs for t in (p.text_a, p.text_b)})
        vectors = enc.encode(texts, batch_size=batch_size, progress=progress)
        row = {t: i for i, t in enumerate(texts)}
        encoded += len(texts)
        return (vectors[[row[p.text_a] for p in pairs]] * vectors[[row[p.text_b] for p in pairs]]).sum(axis=1)

    t0 = time.perf_counter()
    cosine, golds, read_task = score_pair_file(data, cosines, fmt=fmt, task=task)
    seconds = time.perf_counter() - t0
    if read_task == "regression":
        metrics: dict[str, Any] = {"n": len(golds), **correlations(cosine, golds)}
    else:
        stored = threshold if threshold is not None else enc.threshold
        metrics = classification_metrics(cosine, golds.astype(int), stored if stored is not None else 0.5)
        if stored is None:  # no stored cut: accuracy at 0.5 cosine would mean nothing
            for key in ("threshold", "accuracy", "precision", "recall", "f1"):
                metrics[key] = None
        metrics["threshold_source"] = ("given" if threshold is not None else "stored" if stored is not None
                                       else "none (see best_accuracy)")
    result = _pair_result(enc.name, "bi-encoder", data, read_task, len(golds), False, seconds, metrics)
    result["texts_encoded"] = encoded
    _report(result, report_dir, cosine, golds)
    return result


def evaluate_texts(model: Any, data: str, fmt: str = "auto", batch_size: int = 32,
                   report_dir: str | None = None, progress: bool = False) -> dict[str, Any]:
    """A single-text classifier (a name, a directory or a loaded ``Sentiment``) on labelled texts: accuracy,
    macro-F1, per class, confusion matrix."""
    from .sentiment import Sentiment

    clf = model if isinstance(model, Sentiment) else Sentiment(model)
    texts = read_texts(data, fmt=fmt if fmt != "sts" else "auto")
    names = clf.labels
    # labels in the file are class names, or integer ids 0..K-1 in the model's order
    keys = names if all(x in names for x in set(texts.labels)) else [str(i) for i in range(len(names))]
    golds = texts.encode(keys)
    t0 = time.perf_counter()
    rows = clf(texts.texts, batch_size=batch_size, top_k=None)
    seconds = time.perf_counter() - t0
    probs = np.array([[r["scores"][n] for n in names] for r in rows])
    metrics = multiclass_metrics(probs, golds, names)
    result: dict[str, Any] = {"model": clf.name, "kind": "classifier", "data": str(data), "task": "classify",
                              "texts": len(texts), "seconds": round(seconds, 3),
                              "texts_per_second": round(len(texts) / max(seconds, 1e-9), 1), "metrics": metrics}
    if report_dir:
        out = Path(report_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
        result["report"] = [str(out / "metrics.json"), str(write_confusion_matrix(out / "confusion_matrix.png",
                                                                                  metrics, Path(data).name))]
    return result


def evaluate_index(index_dir: str, queries_file: str, reranker: str | None = None, candidates: int = 50,
                   limit: int | None = None, backend: str = "auto", precision: str = "auto",
                   threads: int | None = None, progress: bool = False,
                   rerank_weight: float = RERANK_WEIGHT) -> dict[str, Any]:
    """Retrieval on ``queries_file`` (``query<TAB>relevant_ids``): the bi-encoder alone, the ANN index against
    exact search (for non-flat indexes), and with ``reranker`` re-scoring the candidates (ordered as
    :func:`simpair.search.fused_scores` says with ``rerank_weight``)."""
    from .search import Searcher, ann_recall_vs_exact, evaluate_retrieval

    run = {"backend": backend, "precision": precision, "threads": threads}
    searcher = Searcher(index_dir, rerank_weight=rerank_weight, **run)
    report: dict[str, Any] = {"bi_encoder": evaluate_retrieval(searcher, queries_file, candidates=candidates,
                                                               limit=limit)}
    if searcher.index.kind != "flat":
        queries = [q for q, _, _ in read_queries(queries_file)[:limit]]
        report["ann_recall@10_vs_exact"] = ann_recall_vs_exact(searcher.index, searcher.encoder, queries)
    if reranker:
        searcher.reranker = CrossEncoder(reranker, **run)
        searcher.progress = progress
        report["reranked"] = evaluate_retrieval(searcher, queries_file, candidates=candidates, limit=limit)
    return report
