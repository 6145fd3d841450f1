"""``simpair export``: turn a trained model into what other tools load without simpair.

``merge_adapter`` folds a LoRA adapter into its base and writes a plain transformers directory
(config, fp32 safetensors, tokenizer, simpair.json) that ``AutoModelForSequenceClassification``
loads with no peft and no base model at hand.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .errors import SimpairError
from .models import META_FILE, is_adapter, load_classifier, resolve
from .training import check_out_dir
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
