"""``simpair eval``: score a labelled file with a model and report every metric (pairs or single texts)."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from .cross_encoder import CrossEncoder
from .data import read_pairs
from .metrics import (classification_metrics, multiclass_metrics, regression_metrics, write_confusion_matrix,
                      write_report)


def evaluate_file(model: str | CrossEncoder, data: str, fmt: str = "auto", task: str = "auto",
                  threshold: float | None = None, symmetric: bool = False, batch_size: int = 64,
                  report_dir: str | None = None, backend: str = "auto", precision: str = "auto",
                  threads: int | None = None) -> dict[str, Any]:
    """Metrics at the stored (or given) threshold and at the best threshold on this data."""
    ce = model if isinstance(model, CrossEncoder) else CrossEncoder(model, backend=backend, precision=precision,
                                                                      threads=threads)
    task = ce.task if task == "auto" and ce.trained else task
    pairs = read_pairs(data, fmt=fmt, task=task, warn=False)
    t0 = time.perf_counter()
    scores = ce.predict([(p.text_a, p.text_b) for p in pairs.pairs], batch_size=batch_size, symmetric=symmetric)
    seconds = time.perf_counter() - t0
    golds = np.array(pairs.labels, dtype=float)
    if pairs.task == "regression":
        metrics = regression_metrics(scores, golds)
    else:
        metrics = classification_metrics(scores, golds.astype(int), ce.threshold if threshold is None else threshold)
    result: dict[str, Any] = {
        "model": ce.name,
        "data": str(data),
        "task": pairs.task,
        "pairs": len(pairs),
        "symmetric": symmetric,
        "seconds": round(seconds, 3),
        "pairs_per_second": round(len(pairs) / max(seconds, 1e-9), 1),
        "metrics": metrics,
    }
    if report_dir:
        used = float(metrics.get("threshold", 0.5)) if pairs.task != "regression" else 0.5
        files = write_report(report_dir, scores, golds, result, task=pairs.task, threshold=used)
        result["report"] = [str(Path(f)) for f in files]
    return result


def evaluate_texts(model: str, data: str, fmt: str = "auto", batch_size: int = 32,
                   report_dir: str | None = None) -> dict[str, Any]:
    """A single-text classifier on labelled texts: accuracy, macro-F1, per class, confusion matrix."""
    from .sentiment import Sentiment
    from .texts import read_texts

    clf = Sentiment(model)
    texts = read_texts(data, fmt=fmt)
    names = clf.labels
    # labels in the file are class names, or integer ids 0..K-1 in the model's order
    keys = names if all(x in names for x in set(texts.labels)) else [str(i) for i in range(len(names))]
    golds = texts.encode(keys)
    t0 = time.perf_counter()
    rows = clf(texts.texts, batch_size=batch_size, top_k=None)
    seconds = time.perf_counter() - t0
    probs = np.array([[r["scores"][n] for n in names] for r in rows])
    metrics = multiclass_metrics(probs, golds, names)
    result: dict[str, Any] = {"model": clf.name, "data": str(data), "task": "classify", "texts": len(texts),
                              "seconds": round(seconds, 3), "texts_per_second": round(len(texts) / max(seconds, 1e-9), 1),
                              "metrics": metrics}
    if report_dir:
        out = Path(report_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
        result["report"] = [str(out / "metrics.json"), str(write_confusion_matrix(out / "confusion_matrix.png",
                                                                                  metrics, Path(data).name))]
    return result
