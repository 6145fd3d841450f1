"""Bi-encoder sentences/s: sentence-transformers ``encode`` at its best vs simpair's ``BiEncoder``, same run.

The same sentences (the first ``--texts`` distinct questions of LCQMC dev, with the model's query prefix
for every peer) and the same model. Peers (``benchmarks/st_peer.py``, each in the environment that has its
backend; ``make peers``): ``SentenceTransformer.encode`` on torch fp32 and bf16 autocast, ONNX Runtime fp32,
O3 and int8 (``avx512_vnni``), OpenVINO fp32 and int8; simpair on torch (fp32, bf16 autocast, dynamic int8)
ONNX Runtime (fp32, int8) and OpenVINO (fp32, bf16, static int8; each exported first when missing). Quality beside speed: the mean cosine of each
path's embeddings to sentence-transformers' fp32 ones, and the ROC-AUC of cosine(a, b) against the labels of
the first 1,000 dev pairs (encoded in the same timed call, after the sentences). ``summary``: simpair's
fastest row against the fastest sentence-transformers row, and in ``equal_quality`` among rows whose pair AUC is
within 0.003 of ST's torch fp32 row (issue 16: >= 1.5x at equal quality). ``--head-to-head N`` then times simpair's
fastest rows against ST's in N alternating rounds (``head_to_head``; see match_speed.py).

    python benchmarks/encode_speed.py [--model encoder] [--texts 4000] [--quick] [--head-to-head 5] [--save FILE]
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
DEV = ROOT.parent / "shared" / "data" / "lcqmc" / "dev.tsv"


def simpair_rows(model: str, texts: list[str], args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """simpair's BiEncoder on every backend and precision: {row: {"seconds", "scores"}} (unprefixed input)."""
    from _common import simpair_paths, timed

    from simpair import BiEncoder

    rows = {}
    for backend, precision in simpair_paths(model):
        enc = BiEncoder(model, backend=backend, precision=precision)
        emb, seconds = timed(lambda enc=enc: enc.encode(texts, batch_size=args.batch_size), args.repeats)
        rows[f"simpair {backend} {precision}"] = {"seconds": seconds, "scores": emb}
    return rows


def head_to_head_block(summary: dict[str, Any], results: dict[str, dict[str, Any]], model: str,
                       texts: list[str], prefix: str, args: argparse.Namespace) -> dict[str, Any]:
    """simpair's contending rows against sentence-transformers', in alternating rounds (``_peers.head_to_head``)."""
    from _common import timed
    from _peers import head_to_head_of, run_peer

    from simpair import BiEncoder

    sentences = [prefix + t for t in texts]

    def ours(name: str) -> Callable[[], float]:
        backend, precision = name.split()[1:3]
        enc = BiEncoder(model, backend=backend, precision=precision)
        return lambda: timed(lambda: enc.encode(texts, batch_size=args.batch_size), 1)[1]

    def theirs(config: str) -> float:
        return run_peer("bi", config, model, {"sentences": sentences}, args.batch_size, 512, 1)["seconds"]

    return head_to_head_of(summary, results, "sentences_per_second", args.head_to_head, len(texts), ours, theirs)


def main() -> int:
    import numpy as np
    import torch
    from _common import compare_to_peer, emit
    from _peers import PEER_CONFIGS, best_ratio, run_peer
    from _roofline import roofline, rows_of
    from sklearn.metrics import roc_auc_score

    from simpair import BiEncoder, read_pairs
    from simpair.models import resolve

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="encoder")
    parser.add_argument("--texts", type=int, default=4000)
    parser.add_argument("--quick", action="store_true",
                        help="2,000 distinct questions (then the 2,000 pair sides), one timed pass.")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--no-peers", action="store_true", help="Only simpair and sentence-transformers torch.")
    parser.add_argument("--head-to-head", type=int, default=0, metavar="N",
                        help="Then N alternating rounds of both sides' fast rows (simpair's fastest over ST's).")
    parser.add_argument("--save", default=None)
    args = parser.parse_args()
    if args.quick:
        args.texts, args.repeats = min(args.texts, 2000), 1
    if not DEV.is_file():
        print(f"skip: {DEV} not found", file=sys.stderr)
        return 0
    pairs = read_pairs(DEV, warn=False).pairs[:1000]
    questions = list(dict.fromkeys(t for p in read_pairs(DEV, warn=False).pairs for t in (p.text_a, p.text_b)))
    # the timed sentences, then the quality pairs' two sides; rates count the timed call over all of them
    distinct = questions[: args.texts]
    texts = distinct + [p.text_a for p in pairs] + [p.text_b for p in pairs]
    labels = np.array([int(p.label) for p in pairs])
    model = resolve(args.model)
    prefix = BiEncoder(args.model, backend="torch", precision="fp32").prefix
    configs = ("torch-fp32",) if args.no_peers else PEER_CONFIGS
    rows = {f"sentence-transformers {c}": run_peer("bi", c, model, {"sentences": [prefix + t for t in texts]},
                                                   args.batch_size, 512, args.repeats) for c in configs}
    rows.update(simpair_rows(model, texts, args))
    ref = np.asarray(rows["sentence-transformers torch-fp32"]["scores"], dtype=np.float32)
    results, skipped = {}, {}
    for name, row in rows.items():
        if "skipped" in row:
            skipped[name] = row["skipped"]
            continue
        emb = np.asarray(row["scores"], dtype=np.float32)
        a, b = emb[len(distinct) : len(distinct) + len(pairs)], emb[len(distinct) + len(pairs) :]
        results[name] = {"sentences_per_second": len(texts) / row["seconds"],
                         "cosine_to_reference": round(float((emb * ref).sum(1).mean()), 5),
                         "pair_auc": round(float(roc_auc_score(labels, (a * b).sum(1))), 4)}
    compare_to_peer(results, "sentence-transformers torch-fp32", "sentences_per_second")
    summary = None if args.no_peers else best_ratio(results, "sentences_per_second", {"pair_auc": 0.003})
    emit({
        "what": f"bi-encoder encoding of {len(texts)} LCQMC dev questions ({len(distinct)} distinct, then both sides "
                f"of {len(pairs)} pairs), batch {args.batch_size}, best of {args.repeats} passes after a warm-up",
        "model": args.model, "model_dir": model,
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, no GPU",
        "summary": summary,
        "roofline": roofline(model, [prefix + t for t in texts], 512,
                             {k: results[k]["sentences_per_second"] for k in rows_of(summary, results)}),
        "head_to_head": head_to_head_block(summary, results, model, texts, prefix, args)
        if args.head_to_head and summary and summary.get("ratio") else None,
        "skipped": skipped, "results": results,
    }, args.save)
    return 0


if __name__ == "__main__":
    sys.exit(main())
