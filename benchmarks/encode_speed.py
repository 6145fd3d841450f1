"""Bi-encoder sentences/s: sentence-transformers ``encode`` vs simpair's ``BiEncoder`` paths, same run.

The same sentences (the first ``--texts`` distinct questions of LCQMC dev, with E5's ``"query: "``
prefix for every peer) and the same model. Peers: ``SentenceTransformer.encode`` (fp32, batch 32, its
own length sorting, normalised), and simpair on torch (fp32, bf16 autocast, dynamic int8) and on ONNX
Runtime (fp32, int8; when ``simpair export MODEL --onnx --int8`` has been run). Quality beside speed:
the mean cosine of each path's embeddings to sentence-transformers' fp32 ones, and the AUC of
cosine(a, b) against the labels of the first 2,000 dev pairs.

    python benchmarks/encode_speed.py [--model e5-small] [--texts 4000] [--save FILE]
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
DEV = ROOT.parent / "shared" / "data" / "lcqmc" / "dev.tsv"


def main() -> int:
    import numpy as np
    import torch
    from _common import compare_to_peer, emit, timed
    from sklearn.metrics import roc_auc_score

    from simpair import BiEncoder, read_pairs
    from simpair.backend.onnx import find_onnx
    from simpair.models import resolve
    from simpair.models.load import sentence_transformer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="e5-small")
    parser.add_argument("--texts", type=int, default=4000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--save", default=None)
    args = parser.parse_args()
    if not DEV.is_file():
        print(f"skip: {DEV} not found", file=sys.stderr)
        return 0
    pairs = read_pairs(DEV, warn=False).pairs
    texts = list(dict.fromkeys(t for p in pairs for t in (p.text_a, p.text_b)))[: args.texts]
    eval_pairs = pairs[:2000]
    labels = np.array([int(p.label) for p in eval_pairs])
    path = resolve(args.model)
    prefix = BiEncoder(args.model, backend="torch", precision="fp32").prefix

    st = sentence_transformer(path)
    ref, sec = timed(lambda: st.encode([prefix + t for t in texts], batch_size=args.batch_size,
                                       normalize_embeddings=True, show_progress_bar=False), args.repeats)

    def quality(encode) -> dict[str, float]:  # noqa: ANN001
        a = encode([p.text_a for p in eval_pairs])
        b = encode([p.text_b for p in eval_pairs])
        return {"pair_auc": round(float(roc_auc_score(labels, (a * b).sum(1))), 4)}

    results = {"sentence-transformers encode (fp32)": {
        "sentences_per_second": len(texts) / sec, "cosine_to_reference": 1.0,
        **quality(lambda xs: st.encode([prefix + x for x in xs], batch_size=64, normalize_embeddings=True,
                                       show_progress_bar=False))}}
    paths = [("torch", "fp32"), ("torch", "bf16"), ("torch", "int8")]
    paths += [("onnx", p) for p in ("fp32", "int8") if find_onnx(path, p) is not None]
    for backend, precision in paths:
        enc = BiEncoder(args.model, backend=backend, precision=precision)
        emb, sec = timed(lambda enc=enc: enc.encode(texts, batch_size=args.batch_size), args.repeats)
        results[f"simpair {backend} {precision}"] = {
            "sentences_per_second": len(texts) / sec,
            "cosine_to_reference": round(float((np.asarray(emb) * ref).sum(1).mean()), 5),
            **quality(lambda xs, enc=enc: enc.encode(xs, batch_size=64))}
    compare_to_peer(results, "sentence-transformers encode (fp32)", "sentences_per_second")
    emit({
        "what": f"bi-encoder encoding of {len(texts)} distinct LCQMC dev questions, batch {args.batch_size}, "
                f"best of {args.repeats} passes after a warm-up",
        "model": args.model,
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, no GPU",
        "target": "simpair >= 3x sentence-transformers encode (issue 6)",
        "results": results,
    }, args.save)
    return 0


if __name__ == "__main__":
    sys.exit(main())
