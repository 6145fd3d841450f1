"""The pruned vocabulary (issue 40): does the bundled matcher on ``e5-small-zh-en`` (52k pieces) score the dev
pairs exactly as on the full ``e5-small`` (250k), and how much smaller is it?

For each dev file of ../shared (the first ``--pairs`` pairs): the share of pairs both of whose texts the pruned
vocabulary covers (segmented exactly as by the full one), the largest score difference on those pairs and on
all pairs, the decisions that change, and the accuracy of each. Both run on torch fp32, so the only difference
is the vocabulary. Then the size of each base directory on disk.

    python benchmarks/pruned_vocab.py [--model matcher] [--pairs 2000] [--save benchmarks/results/pruned_vocab.json]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
SHARED = ROOT.parent / "shared" / "data"
DEV_SETS = {"LCQMC": "lcqmc/dev.tsv", "BQ": "bq/dev.tsv", "AFQMC": "afqmc/dev.tsv", "PAWS-X": "pawsx/dev.tsv",
            "nCoV": "medical/ncov-dev.tsv", "KUAKE-QQR": "medical/kuake-qqr-dev.tsv"}


def full_vocab_copy(model: str, tmp: Path) -> Path:
    """The bundled adapter laid over the full e5-small instead of the pruned base."""
    from simpair.models import resolve

    src, out = Path(resolve(model)), tmp / f"{model}-full-vocab"
    shutil.copytree(src, out)
    meta = json.loads((out / "simpair.json").read_text(encoding="utf-8"))
    meta["base_model"] = "e5-small"
    (out / "simpair.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False), encoding="utf-8")
    return out


def compare(full: object, pruned: object, pairs: list, labels: np.ndarray, cover: np.ndarray,
            threshold: float) -> dict[str, float]:
    p_full = np.asarray(full.predict(pairs))
    p_pruned = np.asarray(pruned.predict(pairs))
    diff = np.abs(p_full - p_pruned)
    return {"pairs": len(pairs), "covered": round(float(cover.mean()), 4),
            "max_abs_diff_covered": float(diff[cover].max()) if cover.any() else 0.0,
            "max_abs_diff_all": float(diff.max()),
            "decisions_changed": int(((p_full >= threshold) != (p_pruned >= threshold)).sum()),
            "accuracy_full": round(float(((p_full >= threshold) == labels).mean()), 4),
            "accuracy_pruned": round(float(((p_pruned >= threshold) == labels).mean()), 4)}


def main() -> int:
    from _common import emit
    from tokenizers import Tokenizer

    from simpair import CrossEncoder, read_pairs
    from simpair.models import resolve
    from simpair.models.vocab import KEPT_FILE, covered, load_kept
    from simpair.utils import dir_size

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="matcher")
    parser.add_argument("--pairs", type=int, default=2000)
    parser.add_argument("--save", default=None)
    args = parser.parse_args()
    if not SHARED.is_dir():
        print(f"needs {SHARED}", file=sys.stderr)
        return 2
    full_base, pruned_base = Path(resolve("e5-small")), Path(resolve("e5-small-zh-en"))
    tok = Tokenizer.from_file(str(full_base / "tokenizer.json"))
    kept = set(load_kept(KEPT_FILE))
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        full = CrossEncoder(str(full_vocab_copy(args.model, Path(tmp))), backend="torch", precision="fp32")
        pruned = CrossEncoder(args.model, backend="torch", precision="fp32")
        for name, rel in DEV_SETS.items():
            data = read_pairs(SHARED / rel, warn=False)
            n = min(args.pairs, len(data))
            pairs = list(zip(data.texts_a[:n], data.texts_b[:n]))
            cover = np.array(covered(tok, kept, [a for a, _ in pairs])) & np.array(covered(tok, kept, [b for _, b in pairs]))
            rows[name] = compare(full, pruned, pairs, np.asarray(data.labels[:n]) == 1, cover, pruned.threshold)
            print(name, rows[name], flush=True)
    emit({"benchmark": "pruned_vocab", "model": args.model, "backend": "torch fp32",
          "pieces": {"full": tok.get_vocab_size(), "pruned": len(kept)},
          "base_bytes": {"full": dir_size(full_base), "pruned": dir_size(pruned_base)},
          "dev": rows,
          "target": "scores identical to 1e-5 on the dev files; model files and peak RSS at least halved"}, args.save)
    return 0


if __name__ == "__main__":
    sys.exit(main())
