"""``simpair export --onnx [--int8]``: an ONNX graph that :class:`~simpair.backend.onnx.OnnxModel` runs with
ONNX Runtime alone, checked against torch before anything is written.

Phases: load the model as torch runs it (:func:`_source`), trace it to ONNX with eager attention,
fuse it with ONNX Runtime's transformer optimiser (attention, layer norm, GELU), move the weights to a
memory-mapped ``.data`` file, compare with torch (fp32 within 1e-3, or nothing is written) and, with
``int8``, add a dynamically quantised copy (per-channel int8 weights, feed-forward outputs kept fp32).
"""
from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import MAX_LENGTH_FALLBACK
from ..errors import SimpairError
from ..models import is_adapter, load_classifier, read_meta, resolve
from ..models.load import ADAPTER_CONFIG, sentence_transformer
from ..utils import atomic_dir, dir_size
from .onnx import FFN_OUT_ONNX, ONNX_FILES, ONNX_META, OnnxModel, onnx_dir, weights_stamp

SAMPLE_A = ["怎么开初婚未育证明", "How do I reset my password?", "谁有狂三这张高清的", "ok"]
SAMPLE_B = ["初婚未育证明怎么开", "How can I change my password if I forgot it?", "这张高清图，谁有", "fine"]


@dataclass
class _Source:
    """What is exported: the torch module, its tokenizer, and how its outputs are read."""

    core: Any
    tokenizer: Any
    kind: str  # classifier | encoder
    pairs: bool
    max_length: int
    pooling: str | None
    normalize: bool


def _model_kind(path: Path, meta: dict[str, Any]) -> str:
    """``classifier`` (a pair or text model with a head) or ``encoder`` (a bi-encoder or plain base)."""
    if meta.get("kind") == "bi-encoder":
        return "encoder"
    if meta or is_adapter(path):
        return "classifier"
    config = json.loads((path / "config.json").read_text(encoding="utf-8")) if (path / "config.json").is_file() else {}
    archs = config.get("architectures") or []
    return "classifier" if any(a.endswith("ForSequenceClassification") for a in archs) else "encoder"


def _source(model: str, path: Path) -> _Source:
    """Load ``path`` for export: a classifier with its head (an adapter merged), or an encoder's transformer."""
    meta = read_meta(path)
    if _model_kind(path, meta) == "classifier":
        net, tokenizer, meta, _ = load_classifier(str(path), merge=True)
        if meta.get("adapter") and json.loads((path / ADAPTER_CONFIG).read_text(encoding="utf-8")).get(
                "peft_type") != "LORA":
            raise SimpairError(f"{model}: a prompt/prefix adapter adds inputs a plain graph does not have; "
                               "only full models and LoRA adapters export to ONNX")
        src = _Source(net, tokenizer, "classifier", meta.get("task") != "classify",
                      int(meta.get("max_length") or MAX_LENGTH_FALLBACK["cross-encoder"]), None, False)
    else:
        st = sentence_transformer(path)
        modes = [m.get_pooling_mode_str() for m in st if hasattr(m, "get_pooling_mode_str")]
        pooling = modes[0] if modes else "mean"
        if pooling not in ("mean", "cls"):
            raise SimpairError(f"{model}: pooling {pooling!r}; the ONNX backend pools by mean or cls")
        limit = int(st.max_seq_length or MAX_LENGTH_FALLBACK["encoder"])
        src = _Source(st[0].auto_model, st[0].tokenizer, "encoder", False, limit, pooling,
                      any(type(m).__name__ == "Normalize" for m in st))
    src.core.set_attn_implementation("eager")  # the pattern ONNX Runtime's optimiser fuses into one Attention op
    src.core.eval()
    return src


def _graph(src: _Source, names: list[str]) -> Any:
    """A module whose positional inputs are the tokenizer's arrays and whose one output is logits or states."""
    import torch

    class Graph(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.core = src.core

        def forward(self, *inputs: Any) -> Any:
            out = self.core(**dict(zip(names, inputs)))
            return out.logits if src.kind == "classifier" else out.last_hidden_state

    return Graph()


@dataclass
class Traced:
    """A model ready to export: its source, input names, the sample batch and torch's output on it."""

    model: str
    path: Path
    src: _Source
    names: list[str]
    output: str
    enc: Any
    expected: np.ndarray
    sample_b: list[str] | None

    def write_raw(self, file: Path, opset: int = 17) -> None:
        """Trace the torch module to a plain ONNX graph (dynamic batch and sequence axes)."""
        import torch

        args = tuple(self.enc[n] for n in self.names)
        axes = {**{n: {0: "batch", 1: "sequence"} for n in self.names}, self.output: {0: "batch"}}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(_graph(self.src, self.names), args, str(file), dynamo=False, input_names=self.names,
                              output_names=[self.output], opset_version=opset, dynamic_axes=axes)

    def info(self) -> dict[str, Any]:
        """The facts every export records: what the graph is, how to tokenise and read it, its source."""
        tok = self.src.tokenizer
        return {"kind": self.src.kind, "pairs": self.src.pairs, "inputs": self.names, "output": self.output,
                "max_length": self.src.max_length, "pad_id": tok.pad_token_id, "pad_token": tok.pad_token,
                "pooling": self.src.pooling, "normalize": self.src.normalize, "source": str(self.path),
                "source_stamp": weights_stamp(self.path)}

    def tolerance(self) -> float:
        """How far an fp32 export may drift from torch on the sample batch."""
        return 1e-3 * max(1.0, float(np.abs(self.expected).max()))

    def diff(self, got: np.ndarray) -> float:
        """Largest |export - torch| on the sample batch (token states: real tokens only)."""
        if got.ndim == 3:  # token states: padding positions carry nothing
            return float(np.abs(got - self.expected)[self.enc["attention_mask"].numpy().astype(bool)].max())
        return float(np.abs(got - self.expected).max())

    def check_tokens(self, ours: dict[str, np.ndarray], where: Path) -> None:
        """The ``tokenizers``-only inputs the backends make must equal the transformers tokenizer's."""
        for n in self.names:
            if not np.array_equal(ours[n], self.enc[n].numpy()):
                raise SimpairError(f"{where}: tokenizer.json alone tokenises differently from the model's "
                                   f"tokenizer ({n}); not written")


def trace(model: str) -> Traced:
    """Load ``model`` for export and run torch on the sample batch: the reference every export is held to."""
    import torch

    path = Path(resolve(model))
    src = _source(model, path)
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in src.tokenizer.model_input_names]
    sample_b = SAMPLE_B if src.pairs else None
    enc = src.tokenizer(SAMPLE_A, sample_b, truncation=True, max_length=src.max_length, padding=True,
                        return_tensors="pt")
    with torch.no_grad():
        expected = _graph(src, names)(*(enc[n] for n in names)).float().numpy()
    output = "logits" if src.kind == "classifier" else "last_hidden_state"
    return Traced(model, path, src, names, output, enc, expected, sample_b)


def export_onnx(model: str, int8: bool = False, opset: int = 17) -> dict[str, Any]:
    """Export ``model`` to ONNX beside it (``onnx/``; bundled models: the cache), checked against torch.

    A classifier (cross-encoder, sentiment) exports its logits; an encoder (bi-encoder, base model) its
    token states, pooled and normalised at run time as its sentence-transformers modules say.
    """
    t = trace(model)
    target = onnx_dir(t.path)
    with atomic_dir(target) as tmp:
        raw = tmp / "raw.onnx"
        t.write_raw(raw, opset)
        fp32 = tmp / ONNX_FILES["fp32"]
        fused = _optimize_onnx(raw, fp32, t.src.core.config)
        raw.unlink()
        _external_weights(fp32)
        t.src.tokenizer.backend_tokenizer.save(str(tmp / "tokenizer.json"))
        info = {**t.info(), "opset": opset, "fused": fused}
        (tmp / ONNX_META).write_text(json.dumps(info, indent=2), encoding="utf-8")
        diffs = {"fp32": _check_onnx(fp32, t)}
        if diffs["fp32"] > t.tolerance():
            raise SimpairError(f"{model}: the ONNX graph differs from torch by {diffs['fp32']:.2g}; not written")
        if int8:
            info["int8_kept_fp32"] = quantize_onnx(fp32, tmp / ONNX_FILES["int8"])
            info["int8_recipe"] = INT8_RECIPE
            diffs["int8"] = _check_onnx(tmp / ONNX_FILES["int8"], t, tokens=False)
        info["max_abs_diff_vs_torch"] = {k: float(f"{v:.3g}") for k, v in diffs.items()}
        (tmp / ONNX_META).write_text(json.dumps(info, indent=2), encoding="utf-8")
    files = {p: str(target / f) for p, f in ONNX_FILES.items() if (target / f).is_file()}
    return {"model": model, "kind": t.src.kind, "out": str(target), "files": files, "fused": fused,
            "max_abs_diff_vs_torch": info["max_abs_diff_vs_torch"], "saved_bytes": dir_size(target)}


INT8_RECIPE = "dynamic int8, per-channel weights in 7 bits (reduce_range), feed-forward outputs fp32"


def quantize_onnx(fp32: Path, out: Path, weight_type: str = "QInt8", reduce_range: bool = True) -> int:
    """Per-channel dynamic int8 of every MatMul but the feed-forward outputs; returns how many were kept fp32.
    ``weight_type`` (``QInt8``: u8 x s8, ``QUInt8``: u8 x u8) and ``reduce_range`` let
    ``benchmarks/int8_recipes.py`` compare other recipes; the export uses the defaults.

    The weights use 7 of their 8 bits (``reduce_range``): without VNNI, ONNX Runtime's u8 x s8 kernel adds
    pairs of products in int16 (VPMADDUBSW), which saturates with full-range weights (0.10 of probability
    off fp32 on an AVX2-only CPU); with 7-bit weights it cannot, so the same file scores the same on every
    x86 CPU, at about 5% of int8's speed on a VNNI CPU and no accuracy lost on 2,000 LCQMC dev pairs
    (docs/performance.md)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    keep = [n.name for n in onnx.load(str(fp32), load_external_data=False).graph.node
            if n.op_type == "MatMul" and re.search(FFN_OUT_ONNX, n.name)]
    quantize_dynamic(str(fp32), str(out), weight_type=getattr(QuantType, weight_type), per_channel=True,
                     reduce_range=reduce_range,
                     nodes_to_exclude=keep, extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    _external_weights(out)
    return len(keep)


def _optimize_onnx(raw: Path, out: Path, config: Any) -> dict[str, int]:
    """Fuse attention / layer norm / GELU with ONNX Runtime's transformer optimiser (BERT-family graphs);
    an unknown graph is kept as exported. Returns the fused-operator counts."""
    import shutil

    try:
        from onnxruntime.transformers.optimizer import optimize_model

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            opt = optimize_model(str(raw), model_type="bert", num_heads=int(config.num_attention_heads),
                                 hidden_size=int(config.hidden_size))
        opt.save_model_to_file(str(out))
        return {k: int(v) for k, v in opt.get_fused_operator_statistics().items() if v}
    except Exception:  # noqa: BLE001 - fusion is an optimisation; the plain graph is still right
        shutil.copyfile(raw, out)
        return {}


def _external_weights(file: Path) -> None:
    """Move the weights out of the graph file into ``<file>.data``: ONNX Runtime then memory-maps them
    instead of parsing and copying them, so a session starts in ~0.1 s instead of ~0.7 s and only the
    pages it touches count (the 250k-row embedding table is mostly never read)."""
    import onnx

    model = onnx.load(str(file))
    data = file.with_name(file.name + ".data")
    onnx.save_model(model, str(file), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=data.name, size_threshold=1024)


def _check_onnx(file: Path, t: Traced, tokens: bool = True) -> float:
    """Largest |ONNX - torch| on the sample batch; with ``tokens``, also that the ``tokenizers``-only
    tokenisation the ONNX backend uses gives the transformers tokenizer's inputs exactly."""
    runner = OnnxModel(file, max_length=None)
    if tokens:
        t.check_tokens(runner.encode(SAMPLE_A, t.sample_b), file.parent)
    return t.diff(runner.session.run(None, {n: t.enc[n].numpy() for n in t.names})[0])
