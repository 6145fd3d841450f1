"""How close a measured rate is to the machine: FLOPs per input of a BERT-style encoder at the inputs' real
(unpadded) token counts, the achieved GFLOP/s, and the CPU's nominal peak per precision.

Peak (``PEAK``) = 2 cores x ~2.97 GHz x operations per cycle per core. Per-cycle widths are those of AMD
Zen 4 (this machine: EPYC, family 25 model 17), whose AVX-512 runs on two 256-bit FMA pipes: fp32 FMA
2 x 8 lanes x 2 = 32 FLOP, bf16 ``vdpbf16ps`` 2 x 8 x 2 pairs x 2 = 64, int8 ``vpdpbusd`` 2 x 8 x 4 x 2 = 128.
/proc/cpuinfo states a 2.6 GHz base clock, but a large fp32 batch reaches 191 GFLOP/s here
(``profile_step.py``), so the cores run at ~3 GHz: the peaks use that, the higher and stricter figure.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

PEAK = {"fp32": 190.0, "bf16": 380.0, "int8": 760.0}  # GFLOP/s (GOP/s for int8), this machine


def flops_per_token(config: Any, length: float) -> float:
    """Multiply-adds x 2 of one token through the encoder: the dense layers (Q, K, V, output, two FFN
    matrices) and the attention products over a sequence of ``length`` tokens."""
    h, ff, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    dense = 4 * h * h + 2 * h * ff
    attention = 2 * length * h  # scores Q.K^T and the weighted sum of V
    return 2.0 * layers * (dense + attention)


def roofline(model_dir: str, texts: Sequence[tuple[str, str]] | Sequence[str], max_length: int,
             rates: dict[str, float]) -> dict[str, Any]:
    """FLOPs per input at the mean unpadded length of ``texts``, and for each named rate (inputs/s) the
    achieved GFLOP/s and its share of each precision's nominal peak."""
    from transformers import AutoConfig, AutoTokenizer

    config = AutoConfig.from_pretrained(model_dir)
    tok = AutoTokenizer.from_pretrained(model_dir)
    if texts and isinstance(texts[0], tuple):
        enc = tok([a for a, _ in texts], [b for _, b in texts], truncation=True, max_length=max_length)
    else:
        enc = tok(list(texts), truncation=True, max_length=max_length)
    lengths = [len(ids) for ids in enc["input_ids"]]
    per_input = sum(n * flops_per_token(config, n) for n in lengths) / len(lengths)
    achieved = {}
    for name, rate in rates.items():
        gflops = per_input * rate / 1e9
        achieved[name] = {"gflop_per_second": round(gflops, 1),
                          "share_of_peak": {p: round(gflops / peak, 3) for p, peak in PEAK.items()}}
    return {"mean_tokens": round(sum(lengths) / len(lengths), 2), "gflop_per_input": float(f"{per_input / 1e9:.4g}"),
            "peak_gflop_per_second": PEAK, "achieved": achieved}


def rows_of(summary: dict[str, Any] | None, results: dict[str, Any]) -> list[str]:
    """The rows the roofline reports: the two fastest of the summary, else every row."""
    if summary:
        return [summary["best_simpair"], summary["best_sentence_transformers"]]
    return list(results)
