"""Average the weights of several checkpoints of one training run (uniform checkpoint averaging).

The result is the model directory MODEL (config, tokenizer, simpair.json) with its weights replaced by
the mean of the given checkpoints' weights; its dev metrics in simpair.json are those of MODEL, so
score it again (benchmarks/lcqmc.py) before trusting it.

    python scripts/average_checkpoints.py runs/m runs/m.checkpoints/checkpoint-4000 \
        runs/m.checkpoints/checkpoint-6000 runs/m --out runs/m-avg
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path


def main() -> int:
    import torch
    from safetensors.torch import load_file, save_file

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="The trained model directory whose config, tokenizer and simpair.json are kept.")
    parser.add_argument("checkpoints", nargs="+", help="Directories holding model.safetensors to average.")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    out = Path(args.out)
    if out.exists():
        sys.exit(f"{out}: exists; choose another --out")
    total: dict[str, torch.Tensor] = {}
    for ck in args.checkpoints:
        sd = load_file(str(Path(ck) / "model.safetensors"))
        if total and set(sd) != set(total):
            sys.exit(f"{ck}: holds other tensors than {args.checkpoints[0]}")
        for k, v in sd.items():
            total[k] = total[k] + v.double() if k in total else v.double()
    n = len(args.checkpoints)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(args.model, tmp, ignore=shutil.ignore_patterns("model.safetensors", "*.bin"))
    save_file({k: (v / n).float().contiguous() for k, v in total.items()}, str(tmp / "model.safetensors"))
    meta_path = tmp / "simpair.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta["averaged_checkpoints"] = [str(c) for c in args.checkpoints]
    meta["dev_metrics_note"] = "dev_metrics are those of the model before averaging; score it again"
    meta_path.write_text(json.dumps(meta, indent=2, ensure_ascii=False), encoding="utf-8")
    tmp.rename(out)
    print(f"averaged {n} checkpoints into {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
