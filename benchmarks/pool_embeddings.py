"""Encode the 248,619-question pool once and cache the embeddings outside git (resumable).

    python benchmarks/pool_embeddings.py [--model e5-small] [--limit N]

Writes $SIMPAIR_HOME/bench/pool-<model fingerprint>/chunk-*.npy (8,192 rows each) and, when all
chunks exist, embeddings.npy plus texts.txt. Other benchmarks load these instead of re-encoding.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
POOL = ROOT.parent / "shared" / "data" / "retrieval" / "lcqmc-train-dev-questions.txt"
CHUNK = 8192


def cache_dir(fingerprint: str) -> Path:
    from simpair.utils import simpair_home

    return simpair_home() / "bench" / f"pool-{fingerprint}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="e5-small")
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args()
    if not POOL.is_file():
        print(json.dumps({"skipped": f"{POOL} not found"}))
        return 0
    import numpy as np

    from simpair import BiEncoder

    texts = [t for t in POOL.read_text(encoding="utf-8").splitlines() if t.strip()][: args.limit]
    enc = BiEncoder(args.model)
    out = cache_dir(enc.fingerprint)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    done = 0
    for start in range(0, len(texts), CHUNK):
        path = out / f"chunk-{start // CHUNK:04d}.npy"
        if path.is_file():
            continue
        emb = enc.encode(texts[start : start + CHUNK], batch_size=128)
        np.save(out / f".tmp-{path.name}", emb)
        os.replace(out / f".tmp-{path.name}", path)
        done += len(emb)
        rate = done / (time.perf_counter() - t0)
        print(f"{start + len(emb)}/{len(texts)} encoded, {rate:.0f} sentences/s", file=sys.stderr, flush=True)
    chunks = sorted(out.glob("chunk-*.npy"))
    full = np.concatenate([np.load(c) for c in chunks])
    np.save(out / "embeddings.npy", full)
    (out / "texts.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    seconds = time.perf_counter() - t0
    print(json.dumps({"rows": int(full.shape[0]), "dim": int(full.shape[1]), "dir": str(out),
                      "encoded_now": done, "seconds": round(seconds, 1),
                      "sentences_per_second": round(done / seconds, 1) if done else None,
                      "model": enc.name, "prefix": enc.prefix}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
