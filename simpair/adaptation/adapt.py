"""``simpair adapt``: a matcher for the user's own domain, from their labelled pairs, in one command.

1. The labels are split into a training part and a held-out slice, which training never sees: the pairs
   ``simpair mine`` drew at random as checks (``why`` = ``check``) when at least 20 of them are labelled (a
   sample of the user's own candidates, where the rest of mine's picks are not), else a stratified, seeded
   20 % (20 to 500 pairs).
2. Training continues the current matcher (head included, :func:`simpair.train` with ``init``) on the
   training part plus a replay slice of general pairs (as many as the labels, by default simpair's own
   general sample), so that what it knew about other domains is not overwritten (continuing on 1k pairs of a
   new domain alone cost another domain 16 points in our measurements).
3. The adapted model's threshold is calibrated on the held-out slice (where a logistic fit on the scores
   crosses 0.5: steadier on a few hundred pairs than the best cut) and stored in its simpair.json.
4. Before → after on the held-out slice: accuracy cross-fitted (each half scored at the threshold tuned on
   the other half, for both models: no optimism from tuning on the pairs scored) and ROC-AUC, each with a
   paired bootstrap interval; and forgetting: both models on general check pairs. A gain whose interval
   includes zero is reported as not clear of chance, never as an improvement.

The model is written atomically to ``out``: a standard directory that ``match``, ``search --rerank`` and
``serve`` take by path, with ``adaptation.json`` (this report) beside its simpair.json.
"""
from __future__ import annotations

import json
import random
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..readers.pairs import Pair, read_column

HERE = Path(__file__).resolve().parent
GENERAL_REPLAY = HERE / "general-train.tsv"  # our own general sample (data/build_sample.py)
GENERAL_CHECK = HERE / "general-check.tsv"
MIN_LABELS = 40
MIN_HELD = 20


@dataclass
class AdaptOptions:
    """How ``adapt`` trains and reports; the defaults are what ``benchmarks/adaptation.py`` measures."""

    init: str | None = None  # the model to continue (default: the default matcher)
    replay: Sequence[str] | None = None  # general pair files to replay (default: GENERAL_REPLAY)
    replay_ratio: float = 1.0  # replayed pairs per training label
    held_out: float = 0.2
    epochs: float | None = None  # None: 4 under 500 training labels, 3 under 2,000, else 2
    learning_rate: float = 3e-5
    batch_size: int = 32
    seed: int = 0
    check: Sequence[str] | None = None  # general pair files for forgetting (default: GENERAL_CHECK)
    resamples: int = 2000


def split_labels(pairs: Sequence[Pair], fraction: float, seed: int) -> tuple[list[Pair], list[Pair]]:
    """(train, held-out): ``fraction`` of each label held out (20 to 500 pairs in all), seeded."""
    rng = random.Random(seed)
    want = int(min(max(round(fraction * len(pairs)), MIN_HELD), 500))
    by_label: dict[float, list[Pair]] = {}
    for p in pairs:
        by_label.setdefault(float(p.label or 0), []).append(p)
    held: list[Pair] = []
    for label, rows in sorted(by_label.items()):
        rng.shuffle(rows)
        held += rows[: round(want * len(rows) / len(pairs))]
    keys = {id(p) for p in held}
    return [p for p in pairs if id(p) not in keys], held


def replay_rows(files: Sequence[str | Path], count: int, seed: int, avoid: set[tuple[str, str]]) -> list[Pair]:
    """``count`` labelled pairs drawn from ``files`` (repeated when they hold fewer), none in ``avoid``."""
    from ..readers import read_pairs
    from ..training.sampling import mix

    if count <= 0:
        return []
    data = [[p for p in read_pairs(f, task="classification", warn=False).pairs if (p.text_a, p.text_b) not in avoid]
            for f in files]
    rows, _ = mix(data, 1.0, count, seed)
    return rows


def split_by_why(pairs: Sequence[Pair], why: dict[int, str] | None, fraction: float, seed: int
                 ) -> tuple[list[Pair], list[Pair], str]:
    """(train, held-out, how): mine's random check pairs held out when at least MIN_HELD are labelled and both
    labels are among them, else :func:`split_labels`."""
    checks = [p for p in pairs if why is not None and why.get(p.line) == "check"]
    if len(checks) >= MIN_HELD and len({int(p.label or 0) for p in checks}) == 2:
        keys = {id(p) for p in checks}
        return [p for p in pairs if id(p) not in keys], checks, "mine's random check pairs"
    train_part, held = split_labels(pairs, fraction, seed)
    return train_part, held, f"a stratified random {fraction:.0%} of the labels"


def _epochs(opts: AdaptOptions, n_train: int) -> float:
    if opts.epochs is not None:
        return opts.epochs
    return 4.0 if n_train < 500 else 3.0 if n_train < 2000 else 2.0


def read_labels(path: str | Path) -> list[Pair]:
    """The labelled pairs of ``path`` (0/1), checked: enough of them, and both labels."""
    from ..readers import read_pairs

    pairs = read_pairs(path, task="classification").pairs
    if len(pairs) < MIN_LABELS:
        raise InputError(str(path), None, f"adapt needs at least {MIN_LABELS} labelled pairs (20 are held out to "
                                          f"check the result), found {len(pairs)}")
    counts = {int(p.label or 0) for p in pairs}
    if counts != {0, 1}:
        raise InputError(str(path), None, "adapt needs both labels (0 and 1) among the labelled pairs")
    return pairs


def adapt(labelled: str | Path | Sequence[str | Path], out: str | Path, options: AdaptOptions | None = None,
          progress: bool = False, **run: Any) -> dict[str, Any]:
    """Continue the matcher on the pairs of ``labelled`` (a file, or several read as one) and write the adapted,
    calibrated model to ``out``; returns the report (also written to ``out/adaptation.json``). ``run``:
    backend/precision/threads of scoring."""
    if isinstance(labelled, (str, Path)):
        return _adapt(Path(labelled), str(labelled), out, options or AdaptOptions(), progress, run)
    with tempfile.TemporaryDirectory(prefix=".adapt-labels-") as tmp:
        merged = merge_labelled(labelled, Path(tmp) / "labelled.tsv")
        return _adapt(merged, " + ".join(str(p) for p in labelled), out, options or AdaptOptions(), progress, run)


def _adapt(labelled: Path, shown: str, out: str | Path, opts: AdaptOptions, progress: bool,
           run: dict[str, Any]) -> dict[str, Any]:
    """:func:`adapt` on one labelled file; ``shown`` is how the report and the stored threshold name the labels."""
    from ..models import default_model

    started = time.time()
    labels = read_labels(labelled)
    train_part, held, held_how = split_by_why(labels, read_column(labelled, "why"), opts.held_out, opts.seed)
    init = opts.init or default_model() or "matcher"
    checks = _read_checks(opts.check if opts.check is not None else [GENERAL_CHECK])
    before = _score_all(init, held, checks, progress, run)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{out.name}.adapt-", dir=out.parent) as work:
        model_dir, training = _train(Path(work), init, train_part, held, opts, progress)
        after = _score_all(str(model_dir), held, checks, progress, run)
        report = _report(shown, init, train_part, held, before, after, opts, training)
        report["held_out_from"] = held_how
        _store_threshold(model_dir, shown, held, after["held"], report)
        report["out"] = str(out)
        report["seconds"] = round(time.time() - started, 1)
        (model_dir / "adaptation.json").write_text(json.dumps(report, indent=2, ensure_ascii=False), "utf-8")
        _move_into(model_dir, out)
    return report


def merge_labelled(paths: Sequence[str | Path], into: Path) -> Path:
    """Several labelled files as one (their ``why`` column kept, so mine's checks stay held out), each file
    validated as it is read."""
    from ..readers import read_pairs
    from ..readers.pairs import write_pairs

    pairs: list[Pair] = []
    why: list[str] = []
    for path in paths:
        rows = read_pairs(path, task="classification").pairs
        reasons = read_column(path, "why") or {}
        pairs += rows
        why += [reasons.get(p.line, "") for p in rows]
    return write_pairs(into, pairs, why)


def _read_checks(paths: Sequence[str | Path]) -> dict[str, list[Pair]]:
    """The general check files, read once for both models."""
    from ..readers import read_pairs

    return {str(p): read_pairs(p, task="classification", warn=False).pairs for p in paths}


def _score_all(model: str, held: Sequence[Pair], checks: dict[str, list[Pair]], progress: bool,
               run: dict[str, Any]) -> dict[str, Any]:
    """The model's scores on the held-out slice and on each check file, and its threshold."""
    from ..cross_encoder import CrossEncoder

    ce = CrossEncoder(model, bulk=True, **run)
    result: dict[str, Any] = {"threshold": ce.threshold, "held": ce.predict([(p.text_a, p.text_b) for p in held],
                                                                          progress=progress), "checks": {}}
    for path, pairs in checks.items():
        result["checks"][path] = (ce.predict([(p.text_a, p.text_b) for p in pairs]),
                                  np.array([int(p.label or 0) for p in pairs]))
    return result


def _train(work: Path, init: str, train_part: Sequence[Pair], held: Sequence[Pair], opts: AdaptOptions,
           progress: bool) -> tuple[Path, dict[str, Any]]:
    """Train on the labels plus the replay slice; the model directory and what training did."""
    from ..config import build_config
    from ..readers.pairs import write_pairs
    from ..training import train

    avoid = {(p.text_a, p.text_b) for p in held} | {(p.text_b, p.text_a) for p in held}
    replay_files = list(opts.replay) if opts.replay is not None else [GENERAL_REPLAY]
    replayed = replay_rows(replay_files, round(opts.replay_ratio * len(train_part)), opts.seed, avoid)
    rows = list(train_part) + replayed
    random.Random(opts.seed).shuffle(rows)
    cfg = build_config({"train": [str(write_pairs(work / "train.tsv", rows))], "init": init,
                        "out": str(work / "model"), "checkpoint_dir": str(work / "checkpoints"),
                        "epochs": _epochs(opts, len(train_part)), "learning_rate": opts.learning_rate,
                        "batch_size": opts.batch_size, "seed": opts.seed, "save_total_limit": 1, "logging_steps": 10})
    meta = train(cfg, progress=progress)
    return work / "model", {"labels": len(train_part), "replayed": len(replayed),
                            "replay_files": [str(f) for f in replay_files], "epochs": cfg.epochs,
                            "learning_rate": cfg.learning_rate, "steps": meta["global_step"],
                            "seconds": meta["train_seconds"]}


def _report(labelled: str | Path, init: str, train_part: Sequence[Pair], held: Sequence[Pair],
            before: dict[str, Any], after: dict[str, Any], opts: AdaptOptions, training: dict[str, Any]
            ) -> dict[str, Any]:
    """Before → after on the held-out slice with bootstrap intervals, forgetting on the checks, a verdict."""
    from ..metrics import cross_fitted_correct, paired_bootstrap, platt_threshold

    y = np.array([int(p.label or 0) for p in held])
    right_b = cross_fitted_correct(before["held"], y, seed=opts.seed)
    right_a = cross_fitted_correct(after["held"], y, seed=opts.seed)
    acc = paired_bootstrap(right_b, right_a, resamples=opts.resamples, seed=opts.seed)
    auc = paired_bootstrap(before["held"], after["held"], y, resamples=opts.resamples, seed=opts.seed)
    threshold = platt_threshold(after["held"], y)
    verdict = ("better" if acc["low"] > 0 else "worse" if acc["high"] < 0 else
               "not clear of chance: the interval of the accuracy gain includes 0; label more pairs")
    return {
        "labelled": str(labelled), "init": init, "training": training, "held_out_pairs": len(held),
        "held_out": {
            "accuracy_before": float(right_b.mean()), "accuracy_after": float(right_a.mean()),
            "accuracy_gain": acc, "roc_auc_gain": auc,
            "accuracy_before_at_its_threshold": float(((before["held"] >= before["threshold"]) == y).mean()),
            "accuracy_rule": "cross-fitted: each half at the threshold tuned on the other half, both models"},
        "verdict": verdict, "threshold": threshold,
        "forgetting": {path: _check_delta(before["checks"][path], after["checks"][path], before["threshold"],
                                          threshold) for path in before["checks"]},
    }


def _check_delta(before: tuple[np.ndarray, np.ndarray], after: tuple[np.ndarray, np.ndarray], t_before: float,
                 t_after: float) -> dict[str, float]:
    """Accuracy on a general check file at each model's own threshold, before and after."""
    (sb, y), (sa, _) = before, after
    acc_b, acc_a = float(((sb >= t_before) == y).mean()), float(((sa >= t_after) == y).mean())
    return {"pairs": int(len(y)), "accuracy_before": acc_b, "accuracy_after": acc_a, "change": acc_a - acc_b}


def _store_threshold(model_dir: Path, labelled: str | Path, held: Sequence[Pair], scores: np.ndarray,
                     report: dict[str, Any]) -> None:
    from ..calibration import store_threshold

    y = np.array([int(p.label or 0) for p in held])
    t = report["threshold"]
    store_threshold(model_dir, None, {"threshold": t, "metric": "accuracy", "pairs": len(held),
                                      "value_on_sample": float(((scores >= t) == y).mean()),
                                      "positive_rate": float(y.mean()), "data": f"{labelled} (held-out slice)"})


def _move_into(model_dir: Path, out: Path) -> None:
    """The finished model directory onto ``out`` in one rename (the old ``out``, if any, replaced)."""
    from ..utils import atomic_dir

    with atomic_dir(out) as tmp:
        for item in model_dir.iterdir():
            shutil.move(str(item), tmp / item.name)
