"""``simpair export``: turn a trained model into what other tools load without simpair.

``merge_adapter`` folds a LoRA adapter into its base and writes a plain transformers directory
(config, fp32 safetensors, tokenizer, simpair.json) that ``AutoModelForSequenceClassification``
loads with no peft and no base model at hand.

``lowrank_delta`` goes the other way: it writes a fully fine-tuned model as a small peft LoRA adapter
over its base — each encoder weight's change truncated to its top singular directions (SVD), the
biases, layer norms, position embeddings, pooler and head kept whole, stored in fp16. A full model is
~470 MB; its delta at rank 64 is ~12 MB and loads like any simpair adapter (merged on load).

The ONNX export (``simpair export --onnx``) lives with the backend that runs it:
:func:`simpair.backend.onnx_export.export_onnx`.
"""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

from .errors import SimpairError
from .models import META_FILE, is_adapter, load_classifier, read_meta, resolve
from .models.bundled_encoder import STAMP, copy_sentence_transformers_config, is_encoder_delta
from .models.card import model_card
from .models.load import ADAPTER_CONFIG, label_kwargs, load_kwargs
from .models.resolve import BUNDLED_ENCODERS
from .utils import atomic_dir, check_out_dir, dir_size


def merge_adapter(model: str, out: str | Path) -> dict[str, Any]:
    """Write ``model`` (a LoRA adapter directory or bundled name) merged into its base as ``out``."""
    if model in BUNDLED_ENCODERS or is_encoder_delta(Path(model)):
        return _copy_merged_encoder(model, Path(out))
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


def _copy_merged_encoder(model: str, target: Path) -> dict[str, Any]:
    """A bi-encoder delta merged: the plain sentence-transformers directory resolve() makes, copied to ``target``."""
    check_out_dir(target)
    plain = Path(resolve(model))
    with atomic_dir(target) as tmp:
        shutil.copytree(plain, tmp, dirs_exist_ok=True, ignore=shutil.ignore_patterns(STAMP))
        meta = json.loads((tmp / META_FILE).read_text(encoding="utf-8")) if (tmp / META_FILE).is_file() else {}
        meta.update(adapter=False, merged_from=model)
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2, ensure_ascii=False), encoding="utf-8")
    return {"model": model, "out": str(target), "merged": True, "saved_bytes": dir_size(target)}


# modules a low-rank delta keeps whole (small, and not matrices a rank cut applies to)
_WHOLE = ["classifier", "pooler", "LayerNorm", "position_embeddings", "token_type_embeddings",
          "task_type_embeddings"]
_LINEAR = r"^(?!.*\b(?:classifier|pooler)\b).*\.(query|key|value|dense)$"


def lowrank_delta(model: str, base: str, rank: int, out: str | Path) -> dict[str, Any]:
    """Write fine-tuned ``model`` as a LoRA adapter over ``base`` with every weight delta cut to ``rank``.

    The word embeddings must be those of the base (simpair freezes them for large vocabularies); the
    result names ``base`` in simpair.json, so it loads wherever that name resolves (``e5-small``). A
    cross-encoder's delta is over the base's sequence classifier (head kept whole); a bi-encoder's (a
    sentence-transformers directory) is over the bare encoder, and its pooling/normalisation configuration
    travels beside the adapter (:mod:`simpair.models.bundled_encoder` rebuilds the directory from both).
    """
    from safetensors.torch import load_file, save_file

    if rank < 1:
        raise SimpairError(f"--delta-rank: must be at least 1, got {rank}")
    target = Path(out)
    check_out_dir(target)
    path = Path(resolve(model))
    meta = read_meta(path)
    if meta.get("adapter"):
        raise SimpairError(f"{model}: already an adapter; a low-rank delta is made from a fully fine-tuned model")
    bi = meta.get("kind") == "bi-encoder"
    ft_sd, net = _encoder_pair(path, base) if bi else _classifier_pair(model, base, meta)
    _check_delta(model, base, ft_sd, net.state_dict())
    peft_model, kept = _lowrank_adapter(ft_sd, net, rank, None if bi else "SEQ_CLS")
    meta = dict(meta, adapter=True, base_model=base, method=f"full fine-tuning, stored as a rank-{rank} delta",
                delta={"rank": rank, "from": str(model), "energy_kept": round(kept, 4)})
    meta.pop("base_model_path", None)
    with atomic_dir(target) as tmp:
        peft_model.save_pretrained(str(tmp))
        weights = tmp / "adapter_model.safetensors"
        save_file({k: v.half().contiguous() for k, v in load_file(str(weights)).items()}, str(weights))
        cfg = json.loads((tmp / ADAPTER_CONFIG).read_text(encoding="utf-8"))
        cfg["base_model_name_or_path"] = base
        (tmp / ADAPTER_CONFIG).write_text(json.dumps(cfg, indent=2), encoding="utf-8")
        if bi:
            copy_sentence_transformers_config(path, tmp)
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2, ensure_ascii=False), encoding="utf-8")
        if "kind" in meta and "data" in meta:  # a simpair-trained model: its card, not peft's template
            (tmp / "README.md").write_text(model_card(meta), encoding="utf-8")
    return {"model": model, "out": str(target), "base": base, "rank": rank,
            "energy_kept": meta["delta"]["energy_kept"], "saved_bytes": dir_size(target)}


def _classifier_pair(model: str, base: str, meta: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """(fine-tuned state dict, the base loaded as the same kind of sequence classifier)."""
    from transformers import AutoModelForSequenceClassification

    ft, _, _, _ = load_classifier(model)
    base_path = resolve(base)
    net = AutoModelForSequenceClassification.from_pretrained(base_path, **label_kwargs(meta), **load_kwargs(base_path))
    return ft.state_dict(), net


def _encoder_pair(path: Path, base: str) -> tuple[dict[str, Any], Any]:
    """(fine-tuned encoder state dict of a sentence-transformers directory, the bare base encoder)."""
    from transformers import AutoModel

    base_path = resolve(base)
    ft = AutoModel.from_pretrained(path, **load_kwargs(path))
    return ft.state_dict(), AutoModel.from_pretrained(base_path, **load_kwargs(base_path))


def _check_delta(model: str, base: str, ft_sd: dict[str, Any], base_sd: dict[str, Any]) -> None:
    """Refuse a model whose changes a delta cannot carry: new word embeddings, other changed tensors."""
    import torch

    word = next(k for k in ft_sd if k.endswith("word_embeddings.weight"))
    if not torch.equal(ft_sd[word], base_sd[word]):
        raise SimpairError(f"{model}: its word embeddings differ from {base}'s; a delta over {base} would lose "
                           "them (train with freeze_embeddings: auto or yes)")
    lost = [k for k, v in ft_sd.items() if k in base_sd and not torch.equal(v, base_sd[k])
            and not (k.endswith(".bias") or re.match(_LINEAR, k.rsplit(".", 1)[0]) or any(w in k for w in _WHOLE))]
    if lost:
        raise SimpairError(f"{model}: fine-tuning changed tensors a low-rank delta does not carry: "
                           f"{', '.join(lost[:5])}")


def _lowrank_adapter(ft_sd: dict[str, Any], net: Any, rank: int, task_type: str | None) -> tuple[Any, float]:
    """``net`` wrapped in a LoRA adapter holding each linear weight's change truncated to ``rank`` (SVD) and
    the whole modules copied; returns it and the mean share of the changes' energy kept."""
    import torch
    from peft import LoraConfig, get_peft_model

    whole = [w for w in _WHOLE if any(w in k for k in net.state_dict())]
    config = LoraConfig(r=rank, lora_alpha=rank, lora_dropout=0.0, target_modules=_LINEAR,
                        modules_to_save=whole, bias="all", task_type=task_type)
    peft_model = get_peft_model(net, config)
    kept, n_linear = 0.0, 0
    with torch.no_grad():
        for name, module in peft_model.named_modules():
            key = name.split("base_model.model.", 1)[-1]
            if hasattr(module, "lora_A") and "default" in getattr(module, "lora_A", {}):
                w_ft = ft_sd[f"{key}.weight"].double()
                delta = w_ft - module.base_layer.weight.double()
                u, s, vh = torch.linalg.svd(delta, full_matrices=False)
                kept += float((s[:rank] ** 2).sum() / (s**2).sum().clamp_min(1e-30))
                n_linear += 1
                module.lora_B["default"].weight.copy_((u[:, :rank] * s[:rank]).float())
                module.lora_A["default"].weight.copy_(vh[:rank].float())
                module.base_layer.bias.copy_(ft_sd[f"{key}.bias"])
            elif type(module).__name__ == "ModulesToSaveWrapper":
                module.modules_to_save["default"].load_state_dict(
                    {k[len(key) + 1:]: v for k, v in ft_sd.items() if k.startswith(key + ".")})
    return peft_model, kept / max(n_linear, 1)
