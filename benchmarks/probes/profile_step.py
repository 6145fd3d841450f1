"""Where the time goes: torch profiler tables of one training step and one inference batch, and GFLOP/s.

The training step is simpair's (batch 16 of LCQMC sample pairs, dynamic padding, bf16 autocast, word
embeddings frozen, AdamW); the inference batch is 32 LCQMC dev pairs (length-sorted, as ``predict``
batches them) in fp32, bf16 and int8. FLOPs are counted analytically (2 per multiply-add of every
linear layer and both attention products; a training step is 3x the forward) and divided by the
measured time, against this CPU's peak (2 cores of AMD EPYC Zen 4: ~190 GFLOP/s fp32, ~380 bf16,
~760 int8). Tables go to ``benchmarks/results/profile_*.txt``.

    python benchmarks/probes/profile_step.py [--model runs/lcqmc-e5-small-stage3] [--save FILE]
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
SHARED = ROOT.parent / "shared" / "data" / "lcqmc"
RESULTS = ROOT / "benchmarks" / "results"

from _roofline import PEAK, flops_per_token  # this machine's peaks and the FLOP count, in one place


def forward_flops(config, mask) -> float:  # noqa: ANN001
    """FLOPs of one encoder forward over a padded batch (every position computes)."""
    batch, seq = mask.shape
    return float(batch * seq * flops_per_token(config, seq))


def profile(fn, name: str, steps: int = 3) -> tuple[float, str]:  # noqa: ANN001
    """Best seconds of ``steps`` runs after a warm-up, and the profiler table of one more run."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    fn()
    best = float("inf")
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    with torch_profile(activities=[ProfilerActivity.CPU], record_shapes=False) as prof:
        fn()
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25)
    (RESULTS / f"profile_{name}.txt").write_text(f"{name}: best of {steps} = {best * 1000:.1f} ms\n\n{table}\n",
                                                encoding="utf-8")
    return best, table


def main() -> int:
    import torch
    from _common import emit

    from simpair import CrossEncoder, read_pairs
    from simpair.backend.runtime import bf16_autocast, length_sorted_batches

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="runs/lcqmc-e5-small-stage3")
    parser.add_argument("--save", default=None)
    args = parser.parse_args()
    if not (SHARED / "dev.tsv").is_file():
        print(f"skip: {SHARED} not found", file=sys.stderr)
        return 0
    RESULTS.mkdir(parents=True, exist_ok=True)
    dev = read_pairs(SHARED / "dev.tsv", warn=False).pairs[:2000]
    train_pairs = read_pairs(SHARED / "sample" / "train.tsv", warn=False).pairs[:16]
    out: dict[str, dict[str, float]] = {}

    # one inference batch: the median-length batch of predict's length-sorted order
    lengths = [len(p.text_a) + len(p.text_b) for p in dev]
    batches = length_sorted_batches(lengths, 32)
    batch = [dev[i] for i in batches[len(batches) // 2]]
    for precision in ("fp32", "bf16", "int8"):
        ce = CrossEncoder(args.model, backend="torch", precision=precision, max_length=64)
        enc = ce.tokenizer([p.text_a for p in batch], [p.text_b for p in batch], truncation=True, max_length=64,
                           padding=True, return_tensors="pt")

        def infer(ce=ce, enc=enc) -> None:  # noqa: ANN001
            with torch.inference_mode(), bf16_autocast(ce.bf16):
                ce.model(**enc)

        sec, _ = profile(infer, f"inference_{precision}")
        flops = forward_flops(ce.model.config, enc["attention_mask"])
        out[f"inference batch ({precision})"] = {
            "batch": len(batch), "padded_length": int(enc["input_ids"].shape[1]), "ms": round(sec * 1000, 1),
            "gflop": round(flops / 1e9, 2), "gflop_per_s": round(flops / sec / 1e9, 1),
            "peak_gflop_per_s": PEAK[precision], "of_peak": round(flops / sec / 1e9 / PEAK[precision], 2)}

    # one training step, as simpair trains: bf16 autocast, frozen word embeddings, AdamW
    ce = CrossEncoder(args.model, backend="torch", precision="fp32", max_length=64)
    net = ce.model.train()
    for name, p in net.named_parameters():
        p.requires_grad = "word_embeddings" not in name
    opt = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=1e-5)
    enc = ce.tokenizer([p.text_a for p in train_pairs], [p.text_b for p in train_pairs], truncation=True,
                       max_length=64, padding=True, return_tensors="pt")
    labels = torch.tensor([int(p.label) for p in train_pairs])

    def step() -> None:
        with bf16_autocast(True):
            loss = torch.nn.functional.cross_entropy(net(**enc).logits.float(), labels)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    sec, _ = profile(step, "train_step_bf16")
    flops = 3 * forward_flops(net.config, enc["attention_mask"])
    out["training step (bf16 autocast, batch 16)"] = {
        "batch": len(train_pairs), "padded_length": int(enc["input_ids"].shape[1]), "ms": round(sec * 1000, 1),
        "gflop": round(flops / 1e9, 2), "gflop_per_s": round(flops / sec / 1e9, 1), "peak_gflop_per_s": PEAK["bf16"],
        "of_peak": round(flops / sec / 1e9 / PEAK["bf16"], 2)}
    emit({"what": "one inference batch and one training step of the e5-small cross-encoder, torch profiler",
          "model": args.model, "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, no GPU",
          "tables": "benchmarks/results/profile_*.txt", "results": out}, args.save)
    return 0


if __name__ == "__main__":
    sys.exit(main())
