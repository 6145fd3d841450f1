"""Cross-encoder pairs/s on the same LCQMC dev pairs and the same model, every peer in one run.

Peers, all on the same pairs: sentence-transformers ``CrossEncoder.predict`` at its best — torch fp32,
torch bf16 autocast, ONNX Runtime fp32, ONNX O3 (ORT's transformer fusions), ONNX int8 (dynamic,
``avx512_vnni``), OpenVINO fp32 and int8 (static, calibrated) — each in the environment that has its
backend (``benchmarks/st_peer.py``; ``make peers`` installs them), plain transformers (fp32, file order),
and simpair's ``CrossEncoder`` on torch (fp32, bf16 autocast, dynamic int8), ONNX Runtime (fp32, int8) and
OpenVINO (fp32, bf16, static int8; each exported first when missing). Each row: pairs/s (best of ``--repeats`` timed passes after a warm-up),
accuracy at the model's stored threshold and ROC-AUC on the same pairs; ``--full-dev`` adds every simpair
path's accuracy and AUC on all of LCQMC dev. ``summary`` is simpair's fastest row against the fastest
sentence-transformers row, and in ``equal_quality`` the same among rows within 0.3 points of accuracy and 0.003 of
AUC of ST's torch fp32 row (issue 16: >= 1.5x at equal quality). ``--head-to-head N`` then times the fast rows of
both sides (each side's rows at half its fastest sweep rate or more, and its best at equal quality) in N alternating
rounds, one pass each, and reports the median over rounds of simpair's fastest against ST's fastest
(``head_to_head.best_against_best``): on a host that drifts, the sweep's single passes are not a stable ratio.

    python benchmarks/match_speed.py [--model matcher] [--pairs 2000] [--quick] [--full-dev] [--head-to-head 5]
                                     [--save FILE]

An adapter or bundled model is merged into a full directory first (cached in $SIMPAIR_HOME/bench), so
every peer loads the same weights. Needs ../shared (LCQMC dev; research data, never copied into the project).
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


def full_model(name: str) -> str:
    """A plain transformers directory for ``name``: an adapter (the bundled models are low-rank deltas)
    is merged once into $SIMPAIR_HOME/bench/NAME-STAMP (a new adapter, a new directory)."""
    import hashlib

    from simpair.backend.onnx import weights_stamp
    from simpair.export import merge_adapter
    from simpair.models import resolve
    from simpair.utils import simpair_home

    path = Path(resolve(name))
    if (path / "adapter_config.json").is_file():
        stamp = hashlib.sha256(weights_stamp(path).encode()).hexdigest()[:10]
        merged = simpair_home() / "bench" / f"{path.name}-{stamp}"
        if not (merged / "config.json").is_file():
            merge_adapter(str(path), merged)
        path = merged
    return str(path)


def st_rows(model: str, pairs: list[tuple[str, str]], args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """The sentence-transformers peers: {row name: {"seconds", "scores"} or {"skipped"}}."""
    from _peers import PEER_CONFIGS, run_peer

    return {f"sentence-transformers {c}": run_peer("cross", c, model, {"pairs": pairs}, args.batch_size,
                                                   args.max_length, args.repeats) for c in PEER_CONFIGS}


def plain_row(model: str, pairs: list[tuple[str, str]], args: argparse.Namespace) -> dict[str, Any]:
    """Plain transformers, fp32, batches in file order padded to the longest: what a hand-written loop does."""
    import numpy as np
    import torch
    from _common import timed
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model)
    net = AutoModelForSequenceClassification.from_pretrained(model).eval()

    def plain() -> np.ndarray:
        out = []
        with torch.inference_mode():
            for i in range(0, len(pairs), args.batch_size):
                chunk = pairs[i : i + args.batch_size]
                enc = tok([a for a, _ in chunk], [b for _, b in chunk], truncation=True, max_length=args.max_length,
                          padding=True, return_tensors="pt")
                out.append(torch.softmax(net(**enc).logits, -1)[:, 1].numpy())
        return np.concatenate(out)

    scores, seconds = timed(plain, args.repeats)
    return {"seconds": seconds, "scores": scores}


def simpair_rows(model: str, pairs: list[tuple[str, str]], args: argparse.Namespace,
                 full: tuple[list[tuple[str, str]], Any] | None) -> dict[str, dict[str, Any]]:
    """simpair's CrossEncoder on every backend and precision this model has."""
    from _common import simpair_paths, timed
    from sklearn.metrics import roc_auc_score

    from simpair import CrossEncoder

    rows = {}
    for backend, precision in simpair_paths(model):
        ce = CrossEncoder(model, max_length=args.max_length, backend=backend, precision=precision,
                          threads=args.threads)
        scores, seconds = timed(lambda ce=ce: ce.predict(pairs, batch_size=args.batch_size), args.repeats)
        row = {"seconds": seconds, "scores": scores}
        if full is not None:
            p = ce.predict(full[0], batch_size=args.batch_size)
            row["full_dev_accuracy"] = round(float(((p >= ce.threshold).astype(int) == full[1]).mean()), 4)
            row["full_dev_auc"] = round(float(roc_auc_score(full[1], p)), 4)
        rows[f"simpair {backend} {precision} (length-sorted)"] = row
    return rows


def head_to_head_block(summary: dict[str, Any], results: dict[str, dict[str, Any]], model: str,
                       pairs: list[tuple[str, str]], args: argparse.Namespace) -> dict[str, Any]:
    """simpair's contending rows against sentence-transformers', in alternating rounds (``_peers.head_to_head``)."""
    from _common import timed
    from _peers import head_to_head_of, run_peer

    from simpair import CrossEncoder

    def ours(name: str) -> Callable[[], float]:
        backend, precision = name.split()[1:3]
        ce = CrossEncoder(model, max_length=args.max_length, backend=backend, precision=precision,
                          threads=args.threads)
        return lambda: timed(lambda: ce.predict(pairs, batch_size=args.batch_size), 1)[1]

    def theirs(config: str) -> float:
        return run_peer("cross", config, model, {"pairs": pairs}, args.batch_size, args.max_length, 1)["seconds"]

    return head_to_head_of(summary, results, "pairs_per_second", args.head_to_head, len(pairs), ours, theirs)


def main() -> int:
    import numpy as np
    import torch
    from _common import compare_to_peer, emit
    from _peers import best_ratio
    from _roofline import roofline, rows_of
    from sklearn.metrics import roc_auc_score

    from simpair import CrossEncoder, read_pairs

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="matcher", help="A model directory or name (adapters are merged first).")
    parser.add_argument("--pairs", type=int, default=2000)
    parser.add_argument("--quick", action="store_true", help="1,000 pairs, one timed pass, no --full-dev.")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for simpair (default: all).")
    parser.add_argument("--no-peers", action="store_true", help="Only simpair and plain transformers.")
    parser.add_argument("--full-dev", action="store_true", help="Also accuracy/AUC of each simpair path on all of dev.")
    parser.add_argument("--head-to-head", type=int, default=0, metavar="N",
                        help="Then N alternating rounds of both sides' fast rows (simpair's fastest over ST's).")
    parser.add_argument("--save", default=None)
    args = parser.parse_args()
    if args.quick:
        args.pairs, args.repeats, args.full_dev = min(args.pairs, 1000), 1, False
    if not DEV.is_file():
        print(f"skip: {DEV} not found", file=sys.stderr)
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    data = read_pairs(DEV, warn=False)
    pairs = [(p.text_a, p.text_b) for p in data.pairs[: args.pairs]]
    labels = np.array([int(p.label) for p in data.pairs[: args.pairs]])
    model = full_model(args.model)
    threshold = CrossEncoder(model, backend="torch").threshold
    full = ([(p.text_a, p.text_b) for p in data.pairs], np.array([int(p.label) for p in data.pairs]))

    rows = {} if args.no_peers else st_rows(model, pairs, args)
    rows["plain transformers (fp32, file order)"] = plain_row(model, pairs, args)
    rows.update(simpair_rows(model, pairs, args, full if args.full_dev else None))
    results, skipped = {}, {}
    for name, row in rows.items():
        if "skipped" in row:
            skipped[name] = row["skipped"]
            continue
        scores = np.asarray(row.pop("scores"), dtype=float)
        results[name] = {"pairs_per_second": len(pairs) / row.pop("seconds"),
                         "accuracy": round(float(((scores >= threshold).astype(int) == labels).mean()), 4),
                         "roc_auc": round(float(roc_auc_score(labels, scores)), 4), **row}
    peer = "sentence-transformers torch-fp32" if not args.no_peers else "plain transformers (fp32, file order)"
    compare_to_peer(results, peer, "pairs_per_second")
    quality = {"accuracy": 0.003, "roc_auc": 0.003}
    summary = None if args.no_peers else best_ratio(results, "pairs_per_second", quality)
    emit({
        "what": f"cross-encoder inference on the first {len(pairs)} LCQMC dev pairs, max length {args.max_length}, "
                f"batch {args.batch_size}, best of {args.repeats} passes after a warm-up",
        "model": args.model, "model_dir": model, "threshold": threshold,
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, no GPU",
        "full_dev_pairs": len(data.pairs) if args.full_dev else None,
        "summary": summary,
        "roofline": roofline(model, pairs, args.max_length,
                             {k: results[k]["pairs_per_second"] for k in rows_of(summary, results)}),
        "head_to_head": head_to_head_block(summary, results, model, pairs, args)
        if args.head_to_head and summary and summary.get("ratio") else None,
        "skipped": skipped, "results": results,
    }, args.save)
    return 0


if __name__ == "__main__":
    sys.exit(main())
