"""Trainer variants: R-Drop's loss, and evaluation over several dev files with their mean as the
metric that picks the best checkpoint."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np


def rdrop_trainer(base: type, alpha: float) -> type:
    """A Trainer whose training loss is R-Drop (Liang et al. 2021; PaddleNLP's question_matching).

    Each batch runs twice in one forward (the batch stacked on itself, so two dropout masks), and the
    loss is the mean cross-entropy of both passes plus ``alpha`` times their symmetric KL divergence.
    """
    import torch
    import torch.nn.functional as F

    class RDropTrainer(base):  # type: ignore[misc, valid-type]
        def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                         num_items_in_batch: Any = None) -> Any:
            if not model.training:
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            labels = inputs["labels"]
            doubled = {k: torch.cat([v, v]) for k, v in inputs.items() if k != "labels"}
            logits = model(**doubled).logits.float()
            p, q = logits.chunk(2)
            eps = self.args.label_smoothing_factor
            ce = (F.cross_entropy(p, labels, label_smoothing=eps) + F.cross_entropy(q, labels, label_smoothing=eps)) / 2
            lp, lq = F.log_softmax(p, -1), F.log_softmax(q, -1)
            kl = (F.kl_div(lp, lq, log_target=True, reduction="batchmean")
                  + F.kl_div(lq, lp, log_target=True, reduction="batchmean")) / 2
            loss = ce + alpha * kl
            return (loss, {"logits": p}) if return_outputs else loss

    return RDropTrainer


def dev_names(devs: list[tuple[str, Any, Any, Any]]) -> list[str]:
    """Short unique names for dev files in metric keys: ``bq_dev``, ``lcqmc_dev`` (a numbered prefix on clashes)."""
    names = [re.sub(r"[^0-9A-Za-z]+", "_", f"{Path(p).parent.name}_{Path(p).stem}").strip("_") for p, *_ in devs]
    if len(set(names)) < len(names):
        names = [f"{i}_{n}" for i, n in enumerate(names)]
    return names


def mean_over_files_trainer(base: Any) -> Any:
    """A Trainer that, evaluating several dev files, adds ``eval_mean_<metric>``: each file's metric averaged."""

    class MeanOverFilesTrainer(base):  # type: ignore[misc, valid-type]
        def evaluate(self, eval_dataset: Any = None, ignore_keys: Any = None, metric_key_prefix: str = "eval"
                     ) -> dict[str, float]:
            metrics = super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)
            sets = eval_dataset if eval_dataset is not None else self.eval_dataset
            if isinstance(sets, dict):
                means = {}
                for key in ("accuracy", "f1", "roc_auc", "spearman", "pearson"):
                    vals = [metrics.get(f"{metric_key_prefix}_{n}_{key}") for n in sets]
                    if vals and all(v is not None for v in vals):
                        means[f"{metric_key_prefix}_mean_{key}"] = float(np.mean(vals))
                metrics.update(means)
                self.log(means)
            return metrics

    return MeanOverFilesTrainer
