"""Weight averaging ("model soup", Wortsman et al. 2022): the element-wise weighted mean of fine-tuned models
of one architecture that share a start, such as two passes of the general matcher.

Why: a later pass aimed at some domains drifts on others (the third matcher pass gained bank and payment
pairs and lost LCQMC); the mean of the two models keeps much of each, at no inference cost. The decision
threshold of the result is picked again on dev files by the rule training uses (the mean of the per-file
accuracies), since neither parent's threshold belongs to it. The output is a standard model directory,
written atomically.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..models import META_FILE, read_meta, resolve
from ..utils import atomic_dir
from .sampling import mean_accuracy_threshold

WEIGHTS_FILE = "model.safetensors"
# what the first model's simpair.json says of that model alone, not of the average
STALE = ("threshold_f1", "dev_metrics", "dev_metrics_per_file", "thresholds", "log_history")


def average_models(models: list[str], out: str | Path, weights: list[float] | None = None,
                   dev: list[str] | None = None, dev_limit: int | None = 1000) -> dict[str, Any]:
    """Average ``models`` (full model directories or names, one architecture) with ``weights`` (default: equal)
    into ``out``; with ``dev`` files (0/1 pairs; pair models only), re-pick the threshold on their first
    ``dev_limit`` pairs each."""
    from safetensors.torch import load_file, save_file

    paths = [Path(resolve(m)) for m in models]
    share = _shares(weights, len(paths))
    states = [load_file(str(_weights_file(p))) for p in paths]
    _check_same(paths, states)
    mean = {k: _mean([s[k] for s in states], share) for k in states[0]}
    meta = {k: v for k, v in read_meta(paths[0]).items() if k not in STALE}
    if dev and meta.get("kind") == "bi-encoder":
        raise ConfigError("average --dev: picks a pair model's threshold; a bi-encoder averages without --dev")
    meta["averaged_from"] = [{"model": m, "weight": w} for m, w in zip(models, share)]
    meta["threshold_rule"] = "the first model's, not picked again (no dev files given)"
    with atomic_dir(out) as tmp:
        for f in paths[0].iterdir():
            if f.is_file() and f.name not in (WEIGHTS_FILE, META_FILE):
                shutil.copy2(f, tmp / f.name)
        save_file(mean, str(tmp / WEIGHTS_FILE), metadata={"format": "pt"})
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2, ensure_ascii=False), encoding="utf-8")
        if dev:
            meta.update(_dev_threshold(tmp, dev, dev_limit))
            (tmp / META_FILE).write_text(json.dumps(meta, indent=2, ensure_ascii=False), encoding="utf-8")
    return {"out": str(out), "averaged_from": meta["averaged_from"], "threshold": meta.get("threshold"),
            "dev_accuracy_per_file": meta.get("soup_dev_accuracy")}


def _mean(tensors: list[Any], share: list[float]) -> Any:
    """The weighted mean of one tensor; one that every model holds unchanged (frozen word embeddings, integer
    buffers) is copied as it is, bit for bit, so that a delta over the common base can still leave it out."""
    first = tensors[0]
    if not first.is_floating_point() or all(t.equal(first) for t in tensors[1:]):
        return first
    return sum(t.float() * w for t, w in zip(tensors, share)).to(first.dtype).contiguous()


def _shares(weights: list[float] | None, n: int) -> list[float]:
    if n < 2:
        raise ConfigError("average: give two models or more")
    w = [1.0] * n if weights is None else [float(x) for x in weights]
    if len(w) != n or min(w) < 0 or sum(w) <= 0:
        raise ConfigError(f"average: expected {n} weights >= 0 (not all 0), one per model; got {weights}")
    return [x / sum(w) for x in w]


def _weights_file(path: Path) -> Path:
    file = path / WEIGHTS_FILE
    if not file.is_file():
        raise ConfigError(f"{path}: no {WEIGHTS_FILE}; averaging takes full model directories (a delta or an "
                          "adapter: write it out first with 'simpair export MODEL --merge --out DIR')")
    return file


def _check_same(paths: list[Path], states: list[dict[str, Any]]) -> None:
    """Every model has the first one's tensors, names and shapes (one architecture)."""
    first = {k: tuple(v.shape) for k, v in states[0].items()}
    for path, state in zip(paths[1:], states[1:]):
        shapes = {k: tuple(v.shape) for k, v in state.items()}
        if shapes != first:
            odd = sorted(set(shapes.items()) ^ set(first.items()))[:3]
            raise ConfigError(f"{path}: not the architecture of {paths[0]} (differs in {odd}); "
                              "only models of one architecture average")


def _dev_threshold(model_dir: Path, dev: list[str], limit: int | None) -> dict[str, Any]:
    """The threshold maximising the mean accuracy over ``dev`` files, and each file's accuracy at it."""
    from ..cross_encoder import CrossEncoder
    from ..readers import read_pairs

    model = CrossEncoder(str(model_dir))
    parts = []
    for path in dev:
        pairs = read_pairs(path, task="classification", warn=False).pairs  # 0/1 labels, or its file:line error
        pairs = pairs[:limit] if limit else pairs
        scores = model.predict([(p.text_a, p.text_b) for p in pairs])
        parts.append((np.asarray(scores, dtype=float), np.array([int(p.label) for p in pairs])))
    threshold, _ = mean_accuracy_threshold(parts)
    accuracy = {path: float(((s >= threshold) == (y == 1)).mean()) for path, (s, y) in zip(dev, parts)}
    return {"threshold": threshold, "threshold_rule": f"maximises the mean accuracy over {len(dev)} dev files "
            f"(first {limit} pairs each), picked after averaging", "soup_dev_accuracy": accuracy}
