"""Training methods side by side: full, freeze, LoRA, BitFit and prompt tuning on the same tasks.

(Not named peft.py: a script of that name in benchmarks/ would shadow the peft library for every script here.)

For each (task, method) one `simpair train` run in its own process (so that peak memory is that
run's alone), then one JSON table: dev accuracy, trainable parameters, seconds per optimizer step,
training examples/s, peak RSS and the saved size, so a user can choose.

Tasks (../shared; research data, never copied into the project):
- lcqmc-sample: sentence pairs, LCQMC 4k sample train, 1k sample dev, 1 epoch;
- chnsenticorp: single-text sentiment, the first 2,000 ChnSentiCorp train reviews (max length 128),
  the full 1,200-review dev, 1 epoch.

    python benchmarks/peft_compare.py --save benchmarks/results/peft.json [--tasks lcqmc-sample,chnsenticorp]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
SHARED = ROOT.parent / "shared" / "data"

TASKS = {
    "lcqmc-sample": dict(train=str(SHARED / "lcqmc/sample/train.tsv"), dev=str(SHARED / "lcqmc/sample/dev.tsv"),
                         max_length=64, batch_size=16),
    "chnsenticorp": dict(train=str(SHARED / "sentiment/chnsenticorp/train.tsv"),
                         dev=str(SHARED / "sentiment/chnsenticorp/dev.tsv"), task="classify", train_limit=2000,
                         max_length=128, batch_size=16, label_names=["negative", "positive"]),
}
# learning rates: the sample sweep's 1e-4 for full weights; 3e-4 for LoRA and BitFit (1e-3 collapsed on
# ChnSentiCorp: benchmarks/results/sentiment_lr_probe.json); prompt tuning needs larger steps still
METHODS = {
    "full": dict(method="full", learning_rate=1e-4),
    "freeze": dict(method="freeze", freeze_layers=6, learning_rate=1e-4),
    "lora": dict(method="lora", lora_r=16, lora_alpha=32, learning_rate=3e-4),
    "bitfit": dict(method="bitfit", learning_rate=3e-4),
    "prompt": dict(method="prompt", num_virtual_tokens=20, learning_rate=3e-3),
}


def run_one(task: str, method: str, out: Path) -> dict:
    """Train one (task, method) in this process; return the row (peak RSS added by the parent)."""
    from simpair import build_config, train

    cfg = build_config(dict(model="e5-small", out=str(out), epochs=1.0, warmup_ratio=0.1, seed=42,
                            **TASKS[task], **METHODS[method]))
    meta = train(cfg, progress=False)
    dm = meta["dev_metrics"]
    steps = max(meta["global_step"], 1)
    return {
        "task": task, "method": method, "learning_rate": cfg.learning_rate,
        "dev_accuracy": dm["accuracy"] if task == "chnsenticorp" else dm["accuracy_at_0.5"],
        "dev_accuracy_tuned_threshold": dm.get("best_accuracy"),
        "dev_macro_f1": dm.get("macro_f1"), "dev_roc_auc": dm.get("roc_auc"),
        "trainable_parameters": meta["parameters"]["trainable_parameters"],
        "total_parameters": meta["parameters"]["total_parameters"],
        "trainable_percent": round(100 * meta["parameters"]["trainable_parameters"]
                                   / meta["parameters"]["total_parameters"], 3),
        "steps": meta["global_step"], "seconds_per_step": round(meta["train_seconds"] / steps, 3),
        "train_examples_per_second": meta["train_pairs_per_second"], "train_seconds": meta["train_seconds"],
        "saved_bytes": meta["saved_bytes"], "adapter": meta["adapter"],
        # this process ran only this training: its peak RSS is the run's (Linux reports KiB)
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main() -> int:
    from _common import emit

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--runs", default="runs/bench-peft", help="Where the trained models go (outside git).")
    parser.add_argument("--save", default=None)
    parser.add_argument("--one", nargs=2, metavar=("TASK", "METHOD"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        row = run_one(args.one[0], args.one[1], Path(args.runs) / f"{args.one[0]}-{args.one[1]}")
        print("ROW " + json.dumps(row))
        return 0
    if not SHARED.is_dir():
        print(json.dumps({"skipped": "../shared is not present"}))
        return 0
    rows = []
    started = time.time()
    for task in args.tasks.split(","):
        for method in args.methods.split(","):
            proc = subprocess.run([sys.executable, __file__, "--runs", args.runs, "--one", task, method],
                                  capture_output=True, text=True, check=False)
            line = next((x for x in proc.stdout.splitlines() if x.startswith("ROW ")), None)
            if proc.returncode or line is None:
                rows.append({"task": task, "method": method, "error": proc.stderr.strip().splitlines()[-1:]})
                continue
            row = json.loads(line[4:])
            rows.append(row)
            print(f"{task:13s} {method:7s} acc {row['dev_accuracy']:.4f}  trainable {row['trainable_percent']:7.3f}%  "
                  f"{row['seconds_per_step']:.3f} s/step  saved {row['saved_bytes'] / 2**20:.1f} MiB", file=sys.stderr)
    import torch

    emit({"benchmark": "peft", "base_model": "e5-small", "epochs": 1, "tasks": TASKS,
          "methods": METHODS, "rows": rows, "wall_seconds": round(time.time() - started, 1),
          "threads": torch.get_num_threads(), "cpu_count": os.cpu_count()}, args.save)
    return 0


if __name__ == "__main__":
    sys.exit(main())
