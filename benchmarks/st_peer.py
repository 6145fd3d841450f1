"""One sentence-transformers configuration, timed: the peer rows of match_speed.py and encode_speed.py.

Runs in whichever Python has the backend installed: the project's venv for torch (fp32, bf16 autocast),
``.venv-peer-onnx`` for ONNX Runtime (sentence-transformers 5.x: its optimum-onnx requires transformers
< 4.58) and ``.venv-peer-openvino`` for OpenVINO (``make peers`` builds both from requirements/peer-*.txt).
It imports no simpair, so a peer is measured exactly as a user of sentence-transformers would run it:

- ``torch-fp32``, ``torch-bf16`` (``torch.autocast`` around ``predict``/``encode``);
- ``onnx-fp32`` (exported by optimum), ``onnx-O3`` (``export_optimized_onnx_model``, ORT's transformer
  fusions), ``onnx-int8`` (``export_dynamic_quantized_onnx_model``, the ``avx512_vnni`` config);
- ``openvino-fp32``, ``openvino-int8`` (``export_static_quantized_openvino_model``, calibrated on the first 300
  sentences of the input itself, written to a local dataset since the default calibration set is on the hub: the
  peer is calibrated on what it is scored on, so its accuracy here is if anything optimistic).

    python benchmarks/st_peer.py --kind cross --config onnx-int8 --model DIR --data in.json --out out.json

``--model`` must be a scratch copy: the exports are written into it. ``in.json`` holds ``{"pairs": [[a, b],
...]}`` (cross) or ``{"sentences": [...]}`` (bi); ``out.json`` gets the best seconds of ``--repeats`` timed
passes after a warm-up and the scores (probability of label 1, or normalised embeddings).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _peers import PEER_CONFIGS as CONFIGS  # the one list (_peers imports the standard library only)


def load(kind: str, config: str, model: str, max_length: int, calibration: list[str]):
    """The sentence-transformers model for ``config``, exporting what it needs into ``model`` first."""
    from sentence_transformers import CrossEncoder, SentenceTransformer

    def make(backend: str, file_name: str | None = None):
        kwargs = {"model_kwargs": {"file_name": file_name}} if file_name else {}
        if kind == "cross":
            return CrossEncoder(model, backend=backend, max_length=max_length, device="cpu", **kwargs)
        return SentenceTransformer(model, backend=backend, device="cpu", **kwargs)

    backend = config.split("-")[0]
    if config in ("torch-fp32", "torch-bf16", "onnx-fp32", "openvino-fp32"):
        return make(backend)
    if config == "onnx-O3":
        from sentence_transformers import export_optimized_onnx_model

        export_optimized_onnx_model(make("onnx"), "O3", model)
        return make("onnx", "onnx/model_O3.onnx")
    if config == "onnx-int8":
        from sentence_transformers import export_dynamic_quantized_onnx_model

        export_dynamic_quantized_onnx_model(make("onnx"), "avx512_vnni", model)
        return make("onnx", "onnx/model_qint8_avx512_vnni.onnx")
    if config == "openvino-int8":
        from sentence_transformers import export_static_quantized_openvino_model

        with tempfile.TemporaryDirectory() as calib:
            Path(calib, "train.jsonl").write_text(
                "".join(json.dumps({"sentence": s}, ensure_ascii=False) + "\n" for s in calibration), encoding="utf-8")
            export_static_quantized_openvino_model(make("openvino"), None, model, dataset_name=calib,
                                                   dataset_config_name="default", dataset_split="train",
                                                   column_name="sentence")
        return make("openvino", "openvino/openvino_model_qint8_quantized.xml")
    raise SystemExit(f"unknown config {config!r}; expected one of {', '.join(CONFIGS)}")


def main() -> int:
    import numpy as np
    import torch
    from _common import timed

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=("cross", "bi"), required=True)
    parser.add_argument("--config", choices=CONFIGS, required=True)
    parser.add_argument("--model", required=True, help="A scratch copy of the model directory.")
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    data = json.loads(Path(args.data).read_text(encoding="utf-8"))
    calibration = [s for p in data.get("pairs", [])[:150] for s in p] or data.get("sentences", [])[:300]
    model = load(args.kind, args.config, args.model, args.max_length, calibration)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if args.config == "torch-bf16" else contextlib.nullcontext()

    def run() -> np.ndarray:
        with autocast:
            if args.kind == "cross":
                out = model.predict(data["pairs"], batch_size=args.batch_size, show_progress_bar=False,
                                    apply_softmax=True)
                return np.asarray(out, dtype=np.float32)[:, 1]
            return np.asarray(model.encode(data["sentences"], batch_size=args.batch_size, normalize_embeddings=True,
                                           show_progress_bar=False), dtype=np.float32)

    scores, seconds = timed(run, args.repeats)
    import sentence_transformers

    Path(args.out).write_text(json.dumps({
        "seconds": seconds, "scores": scores.tolist(),
        "versions": {"sentence_transformers": sentence_transformers.__version__,
                     "transformers": __import__("transformers").__version__, "torch": torch.__version__},
    }), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
