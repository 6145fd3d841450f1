"""``simpair calibrate``: re-tune a pair model's decision threshold on a user's own labelled sample, with no
retraining, and store it in the model's simpair.json — as its one threshold, or as a named one for a
domain (``match/search/serve --domain NAME`` picks it).

A model shipped inside the package (the bundled ``matcher``) is read-only there: its thresholds go to
``$SIMPAIR_HOME/thresholds/NAME.json``, which :func:`simpair.models.load.read_meta` lays over it.

Besides the new threshold, calibration reports what it buys — accuracy at the model's global threshold
against the calibrated one — and how many labelled pairs it needs: for each sample size, thresholds
tuned on random subsamples and scored on the pairs left out.
"""
from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import numpy as np

from .cross_encoder import CrossEncoder
from .errors import ConfigError, InputError
from .metrics import best_threshold
from .models.load import read_meta, thresholds_file
from .utils import atomic_write_text, file_sha256, read_json

SAMPLE_SIZES = (25, 50, 100, 200, 500, 1000, 2000)


def _accuracy(scores: np.ndarray, labels: np.ndarray, threshold: float) -> float:
    return float(((scores >= threshold) == labels.astype(bool)).mean())


def sample_curve(scores: np.ndarray, labels: np.ndarray, sizes: tuple[int, ...] = SAMPLE_SIZES, repeats: int = 20,
                 metric: str = "accuracy", seed: int = 0) -> list[dict[str, Any]]:
    """Held-out accuracy of a threshold tuned on ``n`` random labelled pairs, for each ``n`` that leaves at
    least a quarter of the data out: mean and spread over ``repeats`` draws (seeded)."""
    rng = np.random.default_rng(seed)
    rows = []
    for n in sizes:
        if n > 0.75 * len(scores):
            break
        accs = []
        for _ in range(repeats):
            pick = rng.permutation(len(scores))
            tune, rest = pick[:n], pick[n:]
            t, _ = best_threshold(scores[tune], labels[tune], metric)
            accs.append(_accuracy(scores[rest], labels[rest], t))
        rows.append({"pairs": n, "held_out_accuracy_mean": float(np.mean(accs)),
                     "held_out_accuracy_std": float(np.std(accs)), "repeats": repeats})
    return rows


def calibrate(model: str, data: str, name: str | None = None, metric: str = "accuracy", batch_size: int = 64,
              backend: str = "auto", precision: str = "auto", threads: int | None = None, write: bool = True,
              progress: bool = False) -> dict[str, Any]:
    """Tune the threshold of pair model ``model`` on labelled pairs ``data`` (0/1) and store it: named ``name``
    when given, else as the model's threshold (the old one is kept as ``threshold_before_calibration``)."""
    if metric not in ("accuracy", "f1"):
        raise ConfigError(f"calibrate: metric {metric!r}; expected accuracy or f1")
    if name is not None and (not name.strip() or any(c in name for c in "/\\\n")):
        raise ConfigError(f"calibrate: --name {name!r}; expected a short domain name such as 'bank'")
    ce = CrossEncoder(model, backend=backend, precision=precision, threads=threads)
    if ce.task != "classification":
        raise ConfigError(f"calibrate: {model} scores {ce.task}; calibration tunes the decision threshold of a "
                          "pair model with 0/1 labels")
    scores, golds, _ = ce.score_file(data, task="classification", batch_size=batch_size, progress=progress)
    labels = golds.astype(int)
    if len(set(labels.tolist())) < 2:
        raise InputError(str(data), None, "calibration needs both labels (0 and 1) in the sample")
    global_threshold = float(ce.meta.get("threshold", 0.5))
    threshold, value = best_threshold(scores, labels, metric)
    entry = {"threshold": threshold, "metric": metric, "value_on_sample": value, "pairs": len(labels),
             "positive_rate": float(labels.mean()), "data": str(data), "sha256": file_sha256(data),
             "calibrated": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    result = {"model": ce.name, "name": name, "data": str(data), "pairs": len(labels),
              "global_threshold": global_threshold, "accuracy_at_global": _accuracy(scores, labels, global_threshold),
              "threshold": threshold, "accuracy_at_calibrated": _accuracy(scores, labels, threshold),
              "sample_curve": sample_curve(scores, labels, metric=metric), "written": None}
    if write:
        result["written"] = str(store_threshold(ce.path, name, entry))
    return result


def store_threshold(model_path: str | Path, name: str | None, entry: dict[str, Any]) -> Path:
    """Write ``entry`` into the model's thresholds (simpair.json, or the cache file of a bundled model)."""
    target = thresholds_file(model_path)
    meta = read_json(target, "calibrated thresholds") if target.is_file() else {}
    if name is None:
        meta.setdefault("threshold_before_calibration", read_meta(model_path).get("threshold"))
        meta["threshold"] = entry["threshold"]
        meta["threshold_rule"] = f"calibrated on {entry['data']} ({entry['pairs']} pairs, best {entry['metric']})"
        meta["calibration"] = entry
    else:
        meta.setdefault("thresholds", {})[name] = entry
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(target, json.dumps(meta, indent=2, ensure_ascii=False))
    return target
