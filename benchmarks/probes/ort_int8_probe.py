"""ONNX Runtime int8 variants of one exported cross-encoder: pairs/s, accuracy and ROC-AUC on LCQMC dev pairs.

Why simpair's int8 path is OpenVINO's static int8 and not another ONNX Runtime setting (issue 16): each variant
re-quantises the fused fp32 graph of ``simpair export MODEL --onnx`` and runs it as simpair's ONNX backend does
(length-sorted batches of 32, max length 64, 2 threads, best of 2 passes after a warm-up).

- ``shipped``: simpair's own ``model_int8.onnx`` (per-channel, the feed-forward outputs kept fp32);
- ``per_tensor_all`` / ``per_channel_all``: every MatMul and the fused attention in int8;
- ``per_tensor_keep_ffn``: per-tensor, the feed-forward outputs kept fp32;
- ``matmul_only``: per-channel MatMuls only (attention and the embedding gather left fp32);
- ``nbits8_all``: weight-only 8-bit ``MatMulNBits`` (block 32, int8 compute), needs ``onnx_ir``.

    python benchmarks/probes/ort_int8_probe.py MERGED_MODEL_DIR [--pairs 1000] [--variants a,b] [--save FILE]
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
DEV = ROOT.parent / "shared" / "data" / "lcqmc" / "dev.tsv"


def variants(src: Path, work: Path) -> dict[str, Any]:
    """{name: a function writing that variant and returning its file}."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from simpair.backend.onnx import FFN_OUT_ONNX

    fp32 = src / "model.onnx"
    names = [n.name for n in onnx.load(str(fp32), load_external_data=False).graph.node if n.op_type == "MatMul"]
    ffn = [n for n in names if re.search(FFN_OUT_ONNX, n)]
    keep_float = {"DefaultTensorType": onnx.TensorProto.FLOAT}

    def dynamic(name: str, **kw: Any) -> Path:
        out = work / name / "model_int8.onnx"
        out.parent.mkdir(parents=True, exist_ok=True)
        quantize_dynamic(str(fp32), str(out), weight_type=QuantType.QInt8, extra_options=keep_float, **kw)
        return out

    def nbits(name: str) -> Path:
        from onnxruntime.quantization.matmul_nbits_quantizer import (
            DefaultWeightOnlyQuantConfig,
            MatMulNBitsQuantizer,
        )

        out = work / name / "model_int8.onnx"
        out.parent.mkdir(parents=True, exist_ok=True)
        cfg = DefaultWeightOnlyQuantConfig(block_size=32, is_symmetric=True, accuracy_level=4, bits=8)
        q = MatMulNBitsQuantizer(onnx.load(str(fp32)), bits=8, block_size=32, is_symmetric=True,
                                 accuracy_level=4, algo_config=cfg)
        q.process()
        onnx.save_model(q.model.model, str(out), save_as_external_data=True, location=out.name + ".data")
        return out

    return {"fp32": lambda: fp32, "shipped": lambda: src / "model_int8.onnx",
            "per_tensor_all": lambda: dynamic("pt_all", per_channel=False),
            "per_channel_all": lambda: dynamic("pc_all", per_channel=True),
            "per_tensor_keep_ffn": lambda: dynamic("pt_keep", per_channel=False, nodes_to_exclude=ffn),
            "matmul_only": lambda: dynamic("mm", per_channel=True, op_types_to_quantize=["MatMul"]),
            "nbits8_all": lambda: nbits("nb8")}


def measure(file: Path, src: Path, pairs: list[tuple[str, str]], labels: Any, threshold: float) -> dict[str, Any]:
    """pairs/s (best of 2 after a warm-up), accuracy and AUC of ``file`` run as simpair's ONNX backend runs."""
    import shutil

    import numpy as np
    from sklearn.metrics import roc_auc_score

    from simpair.backend.onnx import ONNX_META, OnnxModel
    from simpair.backend.runtime import length_sorted_batches

    for f in ("tokenizer.json", ONNX_META):
        if not (file.parent / f).exists():
            shutil.copy(src / f, file.parent / f)
    model = OnnxModel(file, max_length=64, threads=2)
    batches = length_sorted_batches([len(a) + len(b) for a, b in pairs], 32)

    def run() -> Any:
        p = np.empty(len(pairs))
        for idx in batches:
            logits = model.run([pairs[i][0] for i in idx], [pairs[i][1] for i in idx])[0]
            e = np.exp(logits - logits.max(1, keepdims=True))
            p[idx] = e[:, 1] / e.sum(1)
        return p

    run()
    best = float("inf")
    for _ in range(2):
        t = time.perf_counter()
        p = run()
        best = min(best, time.perf_counter() - t)
    return {"pairs_per_second": round(len(pairs) / best, 1),
            "accuracy": round(float(((p >= threshold) == labels).mean()), 4),
            "roc_auc": round(float(roc_auc_score(labels, p)), 4)}


def main() -> int:
    import numpy as np
    from _common import emit

    from simpair import read_pairs
    from simpair.backend.onnx import find_onnx
    from simpair.backend.onnx_export import export_onnx
    from simpair.models import read_meta

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="A full (merged) cross-encoder directory; exported to ONNX first if needed.")
    parser.add_argument("--pairs", type=int, default=1000)
    parser.add_argument("--variants", default=None, help="Comma-separated subset (default: all).")
    parser.add_argument("--save", default=None)
    args = parser.parse_args()
    if find_onnx(args.model, "int8") is None:
        export_onnx(args.model, int8=True)
    src = find_onnx(args.model).parent
    data = read_pairs(DEV).pairs[: args.pairs]
    pairs = [(p.text_a, p.text_b) for p in data]
    labels = np.array([int(p.label) for p in data])
    threshold = float(read_meta(args.model).get("threshold", 0.5))
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        todo = variants(src, Path(tmp))
        for name in (args.variants.split(",") if args.variants else todo):
            try:
                results[name] = measure(todo[name](), src, pairs, labels, threshold)
            except Exception as exc:  # noqa: BLE001 - one variant failing is a result, not the end of the probe
                results[name] = {"failed": repr(exc)[:200]}
            print(name, results[name], file=sys.stderr, flush=True)
    emit({"what": f"ONNX Runtime int8 variants, first {len(pairs)} LCQMC dev pairs, batch 32, max length 64",
          "model": args.model, "threshold": threshold, "results": results}, args.save)
    return 0


if __name__ == "__main__":
    sys.exit(main())
