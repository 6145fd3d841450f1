"""The README.md written beside every trained model: what it is, its data, dev metrics and how it was trained."""
from __future__ import annotations

from typing import Any


def model_card(meta: dict[str, Any]) -> str:
    """A short README.md: what the model is, its data, dev metrics and how it was trained."""
    dm = meta.get("dev_metrics") or {}
    keys = ("accuracy", "macro_f1", "f1", "roc_auc", "pearson", "spearman")
    metric_rows = "".join(f"| {k} | {dm[k]:.4f} |\n" for k in keys if isinstance(dm.get(k), float))
    for path, m in (meta.get("dev_metrics_per_file") or {}).items():
        metric_rows += "".join(f"| {k} ({path}) | {m[k]:.4f} |\n" for k in ("accuracy", "macro_f1", "spearman")
                               if isinstance(m.get(k), float))
    data = "".join(f"- train: `{d['path']}` (sha256 {d['sha256'][:12]}…)\n" for d in meta["data"].get("train", []))
    data += "".join(f"- dev: `{d['path']}` (sha256 {d['sha256'][:12]}…)\n" for d in meta["data"].get("dev", []))
    params = meta.get("parameters", {})
    if meta.get("kind") == "bi-encoder":
        load = ("A low-rank delta over its base: simpair merges it into a sentence-transformers directory on first "
                "use." if meta.get("adapter") else "`SentenceTransformer(DIR)` loads it; `simpair index build "
                "CORPUS --model DIR` indexes with it.")
    elif meta.get("adapter"):
        load = ("simpair loads it onto its base (`simpair sentiment --model DIR`, `CrossEncoder(DIR)`); "
                "`simpair export DIR --merge --out M` writes a plain transformers model.")
    else:
        load = "`AutoModelForSequenceClassification.from_pretrained(DIR)` loads it."
    examples = meta.get("train_pairs", meta.get("train_examples"))
    if isinstance(examples, dict):
        examples = sum(examples.values())
    speed = f" ({meta['train_pairs_per_second']} examples/s)" if "train_pairs_per_second" in meta else ""
    return (
        f"# simpair {meta['kind']} ({meta['task']})\n\n"
        f"Base model: `{meta['base_model']}`; method: {meta['method']}"
        f" ({params.get('trainable_parameters', 0):,} of {params.get('total_parameters', 0):,} parameters trained); "
        f"labels: {meta.get('labels') or meta.get('loss') or 'score'}; max length {meta['max_length']}.\n"
        f"{load}\n\n## Data\n\n{data}\n"
        + (f"## Dev metrics\n\n| metric | value |\n| --- | --- |\n{metric_rows}\n" if metric_rows else "")
        + f"## Training\n\n{meta.get('global_step', '?')} steps, {examples} examples, "
        f"{meta['train_seconds']} s{speed}, seed {meta['seed']}, "
        f"simpair {meta['simpair_version']}. The full configuration is in `simpair.json`.\n"
    )
