"""Cross-encoder pairs/s on the same LCQMC dev pairs and the same model, every peer in one run.

Peers: sentence-transformers ``CrossEncoder.predict`` (max length 64, batch 32, its defaults otherwise),
plain transformers (the model in fp32, batches in file order padded to the longest), and simpair's
``CrossEncoder`` on torch in fp32, bf16 autocast and dynamic int8, and on ONNX Runtime in fp32 and int8
when ``simpair export MODEL --onnx --int8`` has been run (length-sorted batches, order restored). Each
reports pairs/s (best of ``--repeats`` timed passes after a warm-up) and its accuracy at the model's
stored threshold on the same pairs; ``--full-dev`` adds every simpair path's accuracy and AUC on all of
LCQMC dev, so a fast path that loses accuracy shows it (issue 6: at most 0.3 points).

    python benchmarks/match_speed.py --model runs/lcqmc-e5-small-stage3 [--pairs 2000] [--full-dev] [--save FILE]

Needs ../shared (LCQMC dev; research data, never copied into the project) and a full (not adapter) model
directory, which sentence-transformers can load.
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

    from simpair import CrossEncoder, read_pairs
    from simpair.backend.onnx import find_onnx

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="A full cross-encoder directory (not an adapter).")
    parser.add_argument("--pairs", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for every peer (default: all).")
    parser.add_argument("--full-dev", action="store_true", help="Also accuracy/AUC of each simpair path on all of dev.")
    parser.add_argument("--save", default=None)
    args = parser.parse_args()
    if not DEV.is_file():
        print(f"skip: {DEV} not found", file=sys.stderr)
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    data = read_pairs(DEV, warn=False)
    pairs = [(p.text_a, p.text_b) for p in data.pairs[: args.pairs]]
    labels = np.array([int(p.label) for p in data.pairs[: args.pairs]])
    threshold = CrossEncoder(args.model, backend="onnx" if find_onnx(args.model) else "torch").threshold

    def accuracy(probs: object) -> float:
        return float(((np.asarray(probs, dtype=float) >= threshold).astype(int) == labels).mean())

    results: dict[str, dict[str, float]] = {}

    from sentence_transformers import CrossEncoder as STCrossEncoder

    st = STCrossEncoder(args.model, max_length=args.max_length, device="cpu")
    probs, sec = timed(lambda: st.predict(pairs, batch_size=args.batch_size, show_progress_bar=False,
                                          apply_softmax=True)[:, 1], args.repeats)
    results["sentence-transformers CrossEncoder.predict (fp32)"] = {"pairs_per_second": len(pairs) / sec,
                                                                    "accuracy": accuracy(probs)}

    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(args.model)
    net = AutoModelForSequenceClassification.from_pretrained(args.model).eval()

    def plain() -> np.ndarray:
        out = []
        with torch.inference_mode():
            for i in range(0, len(pairs), args.batch_size):
                chunk = pairs[i : i + args.batch_size]
                enc = tok([a for a, _ in chunk], [b for _, b in chunk], truncation=True, max_length=args.max_length,
                          padding=True, return_tensors="pt")
                out.append(torch.softmax(net(**enc).logits, -1)[:, 1].numpy())
        return np.concatenate(out)

    probs, sec = timed(plain, args.repeats)
    results["plain transformers (fp32, file order)"] = {"pairs_per_second": len(pairs) / sec, "accuracy": accuracy(probs)}

    from sklearn.metrics import roc_auc_score

    full = [(p.text_a, p.text_b) for p in data.pairs]
    full_labels = np.array([int(p.label) for p in data.pairs])
    paths = [("torch", "fp32"), ("torch", "bf16"), ("torch", "int8")]
    paths += [("onnx", p) for p in ("fp32", "int8") if find_onnx(args.model, p) is not None]
    for backend, precision in paths:
        ce = CrossEncoder(args.model, max_length=args.max_length, backend=backend, precision=precision,
                          threads=args.threads)
        probs, sec = timed(lambda ce=ce: ce.predict(pairs, batch_size=args.batch_size), args.repeats)
        row = {"pairs_per_second": len(pairs) / sec, "accuracy": accuracy(probs)}
        if args.full_dev:
            p = ce.predict(full, batch_size=args.batch_size)
            row["full_dev_accuracy"] = round(float(((p >= threshold).astype(int) == full_labels).mean()), 4)
            row["full_dev_auc"] = round(float(roc_auc_score(full_labels, p)), 4)
        results[f"simpair {backend} {precision} (length-sorted)"] = row

    compare_to_peer(results, "sentence-transformers CrossEncoder.predict (fp32)", "pairs_per_second")
    emit({
        "what": f"cross-encoder inference on the first {len(pairs)} LCQMC dev pairs, max length {args.max_length}, "
                f"batch {args.batch_size}, best of {args.repeats} passes after a warm-up",
        "model": args.model,
        "threshold": threshold,
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, no GPU",
        "full_dev_pairs": len(data.pairs) if args.full_dev else None,
        "target": "simpair >= 4x sentence-transformers (issue 6)",
        "results": results,
    }, args.save)
    return 0


if __name__ == "__main__":
    sys.exit(main())
