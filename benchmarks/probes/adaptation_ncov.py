"""Domain adaptation: a learning curve on a medical pair set, continuing from a trained matcher (``--init``)
against training from the bare e5-small, on the same pairs.

The dev file is split in two halves: the first is what training sees (best checkpoint, threshold), the second
is only scored, so no figure here was tuned on the pairs it reports. For each starting model: zero-shot (its
stored threshold; and its threshold calibrated on the first half, which is adaptation without training),
then training on the first N pairs of the train file (N = 500, 1k, 2k, 4k) with minutes and held-out
accuracy / ROC-AUC.

    python benchmarks/probes/adaptation_ncov.py [--init matcher --init matcher-lcqmc --init e5-small] [--sizes 500 1000 2000 4000]
                                    [--train ../shared/data/medical/ncov-train.tsv] [--dev .../ncov-dev.tsv]
                                    [--save benchmarks/results/adaptation_ncov.json]

Needs ../shared (research data, never copied into the project).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
SHARED = ROOT.parent / "shared" / "data"


def head(path: Path, rows: int, out: Path, skip: int = 0) -> Path:
    """Rows ``skip .. skip+rows`` of a headed TSV file, header kept, written to ``out``."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    out.write_text(lines[0] + "".join(lines[1 + skip: 1 + skip + rows]), encoding="utf-8")
    return out


def held_out(model: str, path: Path, tune: Path | None = None) -> dict[str, float]:
    """Accuracy at the model's stored threshold (or one tuned on ``tune``) and ROC-AUC on ``path``."""
    import numpy as np

    from simpair import CrossEncoder
    from simpair.metrics import best_threshold, classification_metrics
    from simpair.readers import read_pairs

    ce = CrossEncoder(model, bulk=True)
    test = read_pairs(path, warn=False)
    scores = ce.predict([(p.text_a, p.text_b) for p in test.pairs])
    threshold = ce.threshold
    if tune is not None:
        dev = read_pairs(tune, warn=False)
        threshold, _ = best_threshold(ce.predict([(p.text_a, p.text_b) for p in dev.pairs]),
                                      np.array([int(p.label) for p in dev.pairs]))
    m = classification_metrics(scores, np.array([int(p.label) for p in test.pairs]), threshold)
    return {"accuracy": round(m["accuracy"], 4), "roc_auc": round(m["roc_auc"], 4), "threshold": round(threshold, 4)}


def run(init: str, sizes: list[int], train: Path, tune: Path, test: Path, tmp: Path, epochs: float) -> list[dict]:
    from simpair import build_config, train as run_train

    rows = []
    if init != "e5-small":
        rows.append({"init": init, "pairs": 0, "minutes": 0.0, **held_out(init, test),
                     "calibrated_on_first_half": held_out(init, tune=tune, path=test)})
    for n in sizes:
        out = tmp / f"{init.replace('/', '_')}-{n}"
        cfg = {"train": str(head(train, n, tmp / f"train-{n}.tsv")), "dev": str(tune), "out": str(out),
               "epochs": epochs, "batch_size": 32, "learning_rate": 3e-5 if init != "e5-small" else 1e-4,
               "max_length": 128, "seed": 7, "save_total_limit": 1}
        cfg.update({"init": init} if init != "e5-small" else {"model": "e5-small"})
        t0 = time.time()
        run_train(build_config(cfg), progress=False)
        minutes = (time.time() - t0) / 60
        rows.append({"init": init, "pairs": n, "minutes": round(minutes, 2), **held_out(str(out), test)})
        print(rows[-1], file=sys.stderr)
    return rows


def main() -> None:
    from _common import emit

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--init", action="append", help="starting models (repeat); e5-small means from scratch")
    ap.add_argument("--sizes", type=int, nargs="+", default=[500, 1000, 2000, 4000])
    ap.add_argument("--train", type=Path, default=SHARED / "medical" / "ncov-train.tsv")
    ap.add_argument("--dev", type=Path, default=SHARED / "medical" / "ncov-dev.tsv")
    ap.add_argument("--epochs", type=float, default=2.0)
    ap.add_argument("--save", default=None)
    args = ap.parse_args()
    if not args.train.is_file():
        sys.exit(f"{args.train}: not found (the shared data sets sit beside the project)")
    inits = args.init or ["matcher", "matcher-lcqmc", "e5-small"]
    n_dev = len(args.dev.read_text(encoding="utf-8").splitlines()) - 1
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        tune = head(args.dev, n_dev // 2, tmp / "tune.tsv")
        test = head(args.dev, n_dev - n_dev // 2, tmp / "test.tsv", skip=n_dev // 2)
        rows = [r for init in inits for r in run(init, args.sizes, args.train, tune, test, tmp, args.epochs)]
    emit({"benchmark": "adaptation", "train": str(args.train.relative_to(SHARED.parent.parent))
          if SHARED.parent.parent in args.train.resolve().parents else str(args.train),
          "dev_split": f"first {n_dev // 2} dev pairs: checkpoint and threshold; last {n_dev - n_dev // 2}: scored",
          "epochs": args.epochs, "cpus": os.cpu_count(), "rows": rows}, args.save)


if __name__ == "__main__":
    main()
