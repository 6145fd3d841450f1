"""What ``simpair calibrate`` buys, per dev set: accuracy at the model's one global threshold against a threshold
calibrated on that set, and how many labelled pairs calibration needs (threshold tuned on n random pairs, accuracy
on the rest; mean and spread over 20 draws). Nothing is written to the model.

    python benchmarks/calibration.py [--model matcher] [--set BQ --set AFQMC ...]
                                     [--save benchmarks/results/calibration.json]

Needs ../shared (research data, never copied into the project).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
SHARED = ROOT.parent / "shared" / "data"
from multi_domain import DEV_SETS  # noqa: E402 (the same dev sets as the multi-domain table)

SETS = {name: path for name, path in DEV_SETS.items() if name != "STS-B-zh"}  # the 0/1 sets


def main() -> None:
    from _common import emit

    from simpair import calibrate

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="matcher")
    ap.add_argument("--set", action="append", choices=list(SETS), help="only these dev sets (repeat)")
    ap.add_argument("--save", default=None)
    args = ap.parse_args()
    if not SHARED.is_dir():
        sys.exit(f"{SHARED}: not found (the shared data sets sit beside the project)")
    rows = []
    for name in args.set or list(SETS):
        r = calibrate(args.model, str(SHARED / SETS[name]), write=False)
        curve = {c["pairs"]: round(c["held_out_accuracy_mean"], 4) for c in r["sample_curve"]}
        rows.append({"set": name, "pairs": r["pairs"], "global_threshold": round(r["global_threshold"], 4),
                     "accuracy_at_global": round(r["accuracy_at_global"], 4),
                     "calibrated_threshold": round(r["threshold"], 4),
                     "accuracy_at_calibrated": round(r["accuracy_at_calibrated"], 4),
                     "held_out_accuracy_by_sample_size": curve})
        print(rows[-1], file=sys.stderr)
    emit({"benchmark": "calibration", "model": args.model, "rows": rows,
          "note": "accuracy_at_calibrated is tuned and scored on the same set (a ceiling); the sample-size curve "
                  "tunes on n pairs and scores the rest"}, args.save)


if __name__ == "__main__":
    main()
