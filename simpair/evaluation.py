"""``simpair eval``: score a labelled file with a model and report every metric."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from .cross_encoder import CrossEncoder
from .data import read_pairs
from .metrics import classification_metrics, regression_metrics, write_report


def evaluate_file(model: str | CrossEncoder, data: str, fmt: str = "auto", task: str = "auto",
                  threshold: float | None = None, symmetric: bool = False, batch_size: int = 64,
                  report_dir: str | None = None) -> dict[str, Any]:
    """Metrics at the stored (or given) threshold and at the best threshold on this data."""
    ce = model if isinstance(model, CrossEncoder) else CrossEncoder(model)
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
