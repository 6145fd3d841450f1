"""``simpair export``: turn a trained model into what other tools load without simpair.

``merge_adapter`` folds a LoRA adapter into its base and writes a plain transformers directory
(config, fp32 safetensors, tokenizer, simpair.json) that ``AutoModelForSequenceClassification``
loads with no peft and no base model at hand.

``lowrank_delta`` goes the other way: it writes a fully fine-tuned model as a small peft LoRA adapter
over its base — each encoder weight's change truncated to its top singular directions (SVD), the
biases, layer norms, position embeddings, pooler and head kept whole, stored in fp16. A full model is
~470 MB; its delta at rank 64 is ~12 MB and loads like any simpair adapter (merged on load).

``export_onnx`` writes an ONNX graph (fp32, fused; optionally int8) that :mod:`simpair.runtime` runs
with ONNX Runtime alone, checked against torch before anything is written.
"""
from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .errors import SimpairError
from .models import META_FILE, is_adapter, load_classifier, read_meta, resolve
from .models.load import ADAPTER_CONFIG, label_kwargs, load_kwargs
from .training import check_out_dir, model_card
from .utils import atomic_dir, dir_size


def merge_adapter(model: str, out: str | Path) -> dict[str, Any]:
    """Write ``model`` (a LoRA adapter directory or bundled name) merged into its base as ``out``."""
    path = Path(resolve(model))
    if not is_adapter(path):
        raise SimpairError(f"{model}: not an adapter directory (no adapter_config.json); it is already a plain model")
    peft_type = json.loads((path / "adapter_config.json").read_text(encoding="utf-8")).get("peft_type")
    if peft_type != "LORA":
        raise SimpairError(f"{model}: a {peft_type} adapter cannot be merged into the base weights; only LoRA can "
                           "(prompt and prefix tuning add inputs, not weight deltas)")
    target = Path(out)
    check_out_dir(target)
    net, tokenizer, meta, _ = load_classifier(str(path), merge=True)
    meta = dict(meta, adapter=False, merged_from=str(path), method=f"{meta.get('method', 'lora')} (merged)")
    with atomic_dir(target) as tmp:
        net.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2, ensure_ascii=False), encoding="utf-8")
    return {"model": model, "out": str(target), "merged": True, "saved_bytes": dir_size(target)}


# modules a low-rank delta keeps whole (small, and not matrices a rank cut applies to)
_WHOLE = ["classifier", "pooler", "LayerNorm", "position_embeddings", "token_type_embeddings",
          "task_type_embeddings"]
_LINEAR = r"^(?!.*\b(?:classifier|pooler)\b).*\.(query|key|value|dense)$"


def lowrank_delta(model: str, base: str, rank: int, out: str | Path) -> dict[str, Any]:
    """Write fine-tuned ``model`` as a LoRA adapter over ``base`` with every weight delta cut to ``rank``.

    The word embeddings must be those of the base (simpair freezes them for large vocabularies); the
    result names ``base`` in simpair.json, so it loads wherever that name resolves (``e5-small``).
    """
    import torch
    from peft import LoraConfig, get_peft_model
    from safetensors.torch import load_file, save_file
    from transformers import AutoModelForSequenceClassification

    if rank < 1:
        raise SimpairError(f"--delta-rank: must be at least 1, got {rank}")
    target = Path(out)
    check_out_dir(target)
    ft, _, meta, _ = load_classifier(model)
    if meta.get("adapter"):
        raise SimpairError(f"{model}: already an adapter; a low-rank delta is made from a fully fine-tuned model")
    base_path = resolve(base)
    net = AutoModelForSequenceClassification.from_pretrained(base_path, **label_kwargs(meta), **load_kwargs(base_path))
    ft_sd = ft.state_dict()
    word = next(k for k in ft_sd if k.endswith("word_embeddings.weight"))
    if not torch.equal(ft_sd[word], net.state_dict()[word]):
        raise SimpairError(f"{model}: its word embeddings differ from {base}'s; a delta over {base} would lose "
                           "them (train with freeze_embeddings: auto or yes)")
    base_sd = net.state_dict()
    lost = [k for k, v in ft_sd.items() if k in base_sd and not torch.equal(v, base_sd[k])
            and not (k.endswith(".bias") or re.match(_LINEAR, k.rsplit(".", 1)[0]) or any(w in k for w in _WHOLE))]
    if lost:
        raise SimpairError(f"{model}: fine-tuning changed tensors a low-rank delta does not carry: {', '.join(lost[:5])}")
    config = LoraConfig(r=rank, lora_alpha=rank, lora_dropout=0.0, target_modules=_LINEAR,
                        modules_to_save=list(_WHOLE), bias="all", task_type="SEQ_CLS")
    peft_model = get_peft_model(net, config)
    kept, n_linear = 0.0, 0
    with torch.no_grad():
        for name, module in peft_model.named_modules():
            if hasattr(module, "lora_A") and "default" in getattr(module, "lora_A", {}):
                key = name.split("base_model.model.", 1)[1]
                w_ft = ft_sd[f"{key}.weight"].double()
                delta = w_ft - module.base_layer.weight.double()
                u, s, vh = torch.linalg.svd(delta, full_matrices=False)
                kept += float((s[:rank] ** 2).sum() / (s**2).sum().clamp_min(1e-30))
                n_linear += 1
                module.lora_B["default"].weight.copy_((u[:, :rank] * s[:rank]).float())
                module.lora_A["default"].weight.copy_(vh[:rank].float())
                module.base_layer.bias.copy_(ft_sd[f"{key}.bias"])
            elif type(module).__name__ == "ModulesToSaveWrapper":
                key = name.split("base_model.model.", 1)[1]
                module.modules_to_save["default"].load_state_dict(
                    {k[len(key) + 1:]: v for k, v in ft_sd.items() if k.startswith(key + ".")})
    meta = dict(meta, adapter=True, base_model=base, method=f"full fine-tuning, stored as a rank-{rank} delta",
                delta={"rank": rank, "from": str(model), "energy_kept": round(kept / max(n_linear, 1), 4)})
    meta.pop("base_model_path", None)
    with atomic_dir(target) as tmp:
        peft_model.save_pretrained(str(tmp))
        weights = tmp / "adapter_model.safetensors"
        save_file({k: v.half().contiguous() for k, v in load_file(str(weights)).items()}, str(weights))
        cfg = json.loads((tmp / ADAPTER_CONFIG).read_text(encoding="utf-8"))
        cfg["base_model_name_or_path"] = base
        (tmp / ADAPTER_CONFIG).write_text(json.dumps(cfg, indent=2), encoding="utf-8")
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2, ensure_ascii=False), encoding="utf-8")
        if "kind" in meta and "data" in meta:  # a simpair-trained model: its card, not peft's template
            (tmp / "README.md").write_text(model_card(meta), encoding="utf-8")
    return {"model": model, "out": str(target), "base": base, "rank": rank,
            "energy_kept": meta["delta"]["energy_kept"], "saved_bytes": dir_size(target)}


def _model_kind(path: Path, meta: dict[str, Any]) -> str:
    """``classifier`` (a pair or text model with a head) or ``encoder`` (a bi-encoder or plain base)."""
    if meta.get("kind") == "bi-encoder":
        return "encoder"
    if meta or is_adapter(path):
        return "classifier"
    config = json.loads((path / "config.json").read_text(encoding="utf-8")) if (path / "config.json").is_file() else {}
    archs = config.get("architectures") or []
    return "classifier" if any(a.endswith("ForSequenceClassification") for a in archs) else "encoder"


def export_onnx(model: str, int8: bool = False, opset: int = 17) -> dict[str, Any]:
    """Export ``model`` to ONNX beside it (``onnx/``; bundled models: the cache), checked against torch.

    A classifier (cross-encoder, sentiment) exports its logits; an encoder (bi-encoder, base model) its
    token states, pooled and normalised at run time as its sentence-transformers modules say. The fp32
    graph is fused by ONNX Runtime's transformer optimiser (attention, layer norm, GELU); ``int8`` adds a
    dynamically quantised copy (per-channel int8 weights). Both are compared with torch on sample inputs:
    fp32 must agree within 1e-3, or nothing is written.
    """
    import torch

    from .models.load import sentence_transformer
    from .runtime import FFN_OUT_ONNX, ONNX_FILES, ONNX_META, onnx_dir, weights_stamp

    path = Path(resolve(model))
    meta = read_meta(path)
    kind = _model_kind(path, meta)
    if kind == "classifier":
        net, tokenizer, meta, _ = load_classifier(str(path), merge=True)
        if meta.get("adapter") and json.loads((path / ADAPTER_CONFIG).read_text(encoding="utf-8")).get(
                "peft_type") != "LORA":
            raise SimpairError(f"{model}: a prompt/prefix adapter adds inputs a plain graph does not have; "
                               "only full models and LoRA adapters export to ONNX")
        max_length = int(meta.get("max_length") or 128)
        pooling, normalize = None, False
        core = net
    else:
        st = sentence_transformer(path)
        core, tokenizer = st[0].auto_model, st[0].tokenizer
        modes = [m.get_pooling_mode_str() for m in st if hasattr(m, "get_pooling_mode_str")]
        pooling = modes[0] if modes else "mean"
        if pooling not in ("mean", "cls"):
            raise SimpairError(f"{model}: pooling {pooling!r}; the ONNX backend pools by mean or cls")
        normalize = any(type(m).__name__ == "Normalize" for m in st)
        max_length = int(st.max_seq_length or 512)
    core.set_attn_implementation("eager")  # the pattern ONNX Runtime's optimiser fuses into one Attention op
    core.eval()
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in tokenizer.model_input_names]
    output = "logits" if kind == "classifier" else "last_hidden_state"

    class Graph(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.core = core

        def forward(self, *inputs: Any) -> Any:
            out = self.core(**dict(zip(names, inputs)))
            return out.logits if kind == "classifier" else out.last_hidden_state

    sample_a = ["怎么开初婚未育证明", "How do I reset my password?", "谁有狂三这张高清的", "ok"]
    sample_b = ["初婚未育证明怎么开", "How can I change my password if I forgot it?", "这张高清图，谁有", "fine"]
    pairs = kind == "classifier" and meta.get("task") != "classify"
    enc = tokenizer(sample_a, sample_b if pairs else None, truncation=True, max_length=max_length, padding=True,
                    return_tensors="pt")
    args = tuple(enc[n] for n in names)
    with torch.no_grad():
        expected = Graph()(*args).float().numpy()
    target = onnx_dir(path)
    with atomic_dir(target) as tmp:
        raw = tmp / "raw.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(Graph(), args, str(raw), dynamo=False, input_names=names, output_names=[output],
                              opset_version=opset, dynamic_axes={**{n: {0: "batch", 1: "sequence"} for n in names},
                                                                 output: {0: "batch"}})
        fp32 = tmp / ONNX_FILES["fp32"]
        fused = _optimize_onnx(raw, fp32, core.config)
        raw.unlink()
        _external_weights(fp32)
        tokenizer.backend_tokenizer.save(str(tmp / "tokenizer.json"))
        info = {"kind": kind, "pairs": pairs, "inputs": names, "output": output, "max_length": max_length,
                "pad_id": tokenizer.pad_token_id, "pad_token": tokenizer.pad_token, "pooling": pooling,
                "normalize": normalize, "source": str(path), "source_stamp": weights_stamp(path), "opset": opset,
                "fused": fused}
        (tmp / ONNX_META).write_text(json.dumps(info, indent=2), encoding="utf-8")
        diffs = {"fp32": _check_onnx(fp32, enc, names, expected, sample_a, sample_b if pairs else None)}
        if diffs["fp32"] > 1e-3 * max(1.0, float(np.abs(expected).max())):
            raise SimpairError(f"{model}: the ONNX graph differs from torch by {diffs['fp32']:.2g}; not written")
        if int8:
            import onnx
            from onnxruntime.quantization import QuantType, quantize_dynamic

            keep = [n.name for n in onnx.load(str(fp32), load_external_data=False).graph.node
                    if n.op_type == "MatMul" and re.search(FFN_OUT_ONNX, n.name)]
            int8_file = tmp / ONNX_FILES["int8"]
            quantize_dynamic(str(fp32), str(int8_file), weight_type=QuantType.QInt8, per_channel=True,
                             nodes_to_exclude=keep, extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
            _external_weights(int8_file)
            info["int8_kept_fp32"] = len(keep)
            diffs["int8"] = _check_onnx(int8_file, enc, names, expected, sample_a, sample_b if pairs else None,
                                        tokens=False)
        info["max_abs_diff_vs_torch"] = {k: float(f"{v:.3g}") for k, v in diffs.items()}
        (tmp / ONNX_META).write_text(json.dumps(info, indent=2), encoding="utf-8")
    files = {p: str(target / f) for p, f in ONNX_FILES.items() if (target / f).is_file()}
    return {"model": model, "kind": kind, "out": str(target), "files": files, "fused": fused,
            "max_abs_diff_vs_torch": info["max_abs_diff_vs_torch"], "saved_bytes": dir_size(target)}


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


def _check_onnx(file: Path, enc: Any, names: list[str], expected: Any, texts_a: list[str],
                texts_b: list[str] | None, tokens: bool = True) -> float:
    """Largest |ONNX - torch| on the sample batch; with ``tokens``, also that the ``tokenizers``-only
    tokenisation the ONNX backend uses gives the transformers tokenizer's inputs exactly."""
    from .runtime import OnnxModel

    runner = OnnxModel(file, max_length=None)
    if tokens:
        ours = runner.encode(texts_a, texts_b)
        for n in names:
            if not np.array_equal(ours[n], enc[n].numpy()):
                raise SimpairError(f"{file.parent}: tokenizer.json alone tokenises differently from the model's "
                                   f"tokenizer ({n}); not written")
    got = runner.session.run(None, {n: enc[n].numpy() for n in names})[0]
    mask = enc["attention_mask"].numpy().astype(bool)
    if got.ndim == 3:  # token states: padding positions carry nothing
        return float(np.abs(got - expected)[mask].max())
    return float(np.abs(got - expected).max())
