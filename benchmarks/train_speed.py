"""Cross-encoder training speed and accuracy: tutorial 02's Trainer recipe vs sentence-transformers vs simpair.

On the same 4,000 LCQMC sample pairs and the same e5-small base, one epoch each:

(a) the recipe of ../shared/reference/02 (transformers Trainer, ``padding="max_length"`` — the model's
    512 tokens — fp32, TrainingArguments defaults: batch 8, lr 5e-5). Its speed is measured on the first
    ``--recipe-steps`` steps (a full epoch at 512 tokens takes ~45 min here; ``--recipe-full-epoch`` runs
    it). Its accuracy comes from the same recipe with dynamic padding for one full epoch: padding to 512
    only adds masked positions, so the model it trains is the same up to float rounding (``--recipe-full-epoch``
    measures it directly instead).
(b) sentence-transformers' ``CrossEncoderTrainer`` (one logit, ``BinaryCrossEntropyLoss``, its defaults:
    batch 8, lr 5e-5, fp32, dynamic padding).
(c) ``simpair train`` with its defaults (batch 16, lr 1e-4, bf16 autocast, frozen word embeddings,
    length-grouped batches, dynamic padding, max length 64).
(d) ``simpair train`` with ``swap_augment: true`` as in configs/quick.yaml: every pair also as (b, a),
    so one epoch is 8,000 examples (pairs/s counts examples; compare ``train_seconds``).

pairs/s is the Trainer's ``train_samples_per_second`` (the training loop; the same clock for all three).
Dev: the 1,000-pair sample dev, scored once after the epoch: accuracy at 0.5, AUC, and accuracy at the
best threshold.

    python benchmarks/train_speed.py [--recipe-steps 40] [--recipe-full-epoch] [--save FILE]

Needs ../shared (research data, never copied into the project).
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
SAMPLE = ROOT.parent / "shared" / "data" / "lcqmc" / "sample"


def dev_metrics(probs, labels) -> dict[str, float]:  # noqa: ANN001
    import numpy as np
    from sklearn.metrics import roc_auc_score

    from simpair.metrics import best_threshold

    probs, labels = np.asarray(probs, dtype=float), np.asarray(labels, dtype=int)
    t, acc = best_threshold(probs, labels)
    return {"accuracy_at_0.5": round(float(((probs >= 0.5) == labels).mean()), 4),
            "auc": round(float(roc_auc_score(labels, probs)), 4), "best_threshold_accuracy": round(float(acc), 4)}


def recipe(base: str, train, dev, steps: int | None, max_length_padding: bool) -> dict[str, float]:  # noqa: ANN001
    """Tutorial 02: tokenise with padding="max_length", Trainer with default TrainingArguments, fp32."""
    import numpy as np
    import torch
    from datasets import Dataset
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
    )

    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=2)

    def tokenize_function(examples):  # noqa: ANN001, ANN202 - the tutorial's function, for pairs
        if max_length_padding:
            return tokenizer(examples["text_a"], examples["text_b"], padding="max_length", truncation=True)
        return tokenizer(examples["text_a"], examples["text_b"], truncation=True)

    ds = Dataset.from_dict({"text_a": [p.text_a for p in train], "text_b": [p.text_b for p in train],
                            "label": [int(p.label) for p in train]}).map(tokenize_function, batched=True)
    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArguments(output_dir=tmp, num_train_epochs=1, max_steps=steps or -1, save_strategy="no",
                                 report_to=[], use_cpu=True, disable_tqdm=True, logging_strategy="no")
        collator = None if max_length_padding else DataCollatorWithPadding(tokenizer)
        out = Trainer(model=model, args=args, train_dataset=ds, data_collator=collator).train()
    row = {"pairs_per_second": round(out.metrics["train_samples_per_second"], 2),
           "pairs_trained": min(len(train), (steps or 10**9) * 8),
           "train_seconds": round(out.metrics["train_runtime"], 1)}
    if steps is None:
        model.eval()
        probs = []
        with torch.inference_mode():
            for i in range(0, len(dev), 64):
                chunk = dev[i : i + 64]
                enc = tokenizer([p.text_a for p in chunk], [p.text_b for p in chunk], truncation=True, padding=True,
                                return_tensors="pt")
                probs.append(torch.softmax(model(**enc).logits, -1)[:, 1].numpy())
        row.update(dev_metrics(np.concatenate(probs), [int(p.label) for p in dev]))
    return row


def st_trainer(base: str, train, dev) -> dict[str, float]:  # noqa: ANN001
    """sentence-transformers CrossEncoderTrainer, its defaults, one epoch."""
    from datasets import Dataset
    from sentence_transformers.cross_encoder import CrossEncoder, CrossEncoderTrainer, CrossEncoderTrainingArguments
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss

    model = CrossEncoder(base, num_labels=1, device="cpu")
    ds = Dataset.from_dict({"text_a": [p.text_a for p in train], "text_b": [p.text_b for p in train],
                            "label": [float(p.label) for p in train]})
    with tempfile.TemporaryDirectory() as tmp:
        args = CrossEncoderTrainingArguments(output_dir=tmp, num_train_epochs=1, save_strategy="no", report_to=[],
                                             use_cpu=True, disable_tqdm=True, logging_strategy="no")
        out = CrossEncoderTrainer(model=model, args=args, train_dataset=ds,
                                  loss=BinaryCrossEntropyLoss(model)).train()
    probs = model.predict([(p.text_a, p.text_b) for p in dev], batch_size=64, show_progress_bar=False)
    return {"pairs_per_second": round(out.metrics["train_samples_per_second"], 2), "pairs_trained": len(train),
            "train_seconds": round(out.metrics["train_runtime"], 1), **dev_metrics(probs, [int(p.label) for p in dev])}


def simpair_train(base: str, train_file: Path, dev, **options) -> dict[str, float]:  # noqa: ANN001, ANN003
    from simpair import CrossEncoder, build_config, train

    with tempfile.TemporaryDirectory() as tmp:
        meta = train(build_config({"model": base, "train": str(train_file), "out": f"{tmp}/model", **options}),
                     progress=False)
        ce = CrossEncoder(f"{tmp}/model", backend="torch")
        probs = ce.predict([(p.text_a, p.text_b) for p in dev])
    return {"pairs_per_second": meta["train_pairs_per_second"], "pairs_trained": meta["train_pairs"],
            "train_seconds": meta["train_seconds"], **dev_metrics(probs, [int(p.label) for p in dev])}


def main() -> int:
    import torch
    from _common import emit

    from simpair import read_pairs
    from simpair.models import resolve

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="e5-small")
    parser.add_argument("--recipe-steps", type=int, default=40, help="Steps of (a) at padding=max_length timed.")
    parser.add_argument("--recipe-full-epoch", action="store_true", help="Run (a) as written for a whole epoch.")
    parser.add_argument("--save", default=None)
    args = parser.parse_args()
    if not (SAMPLE / "train.tsv").is_file():
        print(f"skip: {SAMPLE} not found", file=sys.stderr)
        return 0
    base = resolve(args.model)
    train = read_pairs(SAMPLE / "train.tsv", warn=False).pairs
    dev = read_pairs(SAMPLE / "dev.tsv", warn=False).pairs
    results: dict[str, dict[str, float]] = {}
    t0 = time.time()
    if args.recipe_full_epoch:
        results["(a) tutorial 02 Trainer recipe (padding=max_length, fp32)"] = recipe(base, train, dev, None, True)
    else:
        speed = recipe(base, train, dev, args.recipe_steps, True)
        acc = recipe(base, train, dev, None, False)
        results["(a) tutorial 02 Trainer recipe (padding=max_length, fp32)"] = {
            **speed, **{k: v for k, v in acc.items() if k not in ("pairs_per_second", "pairs_trained")},
            "accuracy_from": "the same recipe, one full epoch with dynamic padding (same model up to rounding)"}
    print(f"(a) done in {time.time() - t0:.0f}s", file=sys.stderr)
    results["(b) sentence-transformers CrossEncoderTrainer (defaults, fp32)"] = st_trainer(base, train, dev)
    print(f"(b) done in {time.time() - t0:.0f}s", file=sys.stderr)
    results["(c) simpair train (defaults)"] = simpair_train(base, SAMPLE / "train.tsv", dev)
    results["(d) simpair train (swap_augment: true)"] = simpair_train(base, SAMPLE / "train.tsv", dev,
                                                                      swap_augment=True)
    ours = results["(c) simpair train (defaults)"]["pairs_per_second"]
    ratios = {f"simpair vs {k.split(')')[0]})": round(ours / v["pairs_per_second"], 2)
              for k, v in results.items() if k[:3] in ("(a)", "(b)")}
    emit({
        "what": f"one epoch on the {len(train)} LCQMC sample pairs, base {args.model}; "
                f"dev = {len(dev)} sample dev pairs",
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, no GPU",
        "target": "simpair >= 8x (a) and >= 1.5x (b), dev accuracy at least equal (issue 6)",
        "results": results,
        "speed_ratios": ratios,
        "wall_seconds": round(time.time() - t0, 1),
    }, args.save)
    return 0


if __name__ == "__main__":
    sys.exit(main())
