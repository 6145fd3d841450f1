"""Training against the word-overlap shortcut: a product of experts with a bias-only model (issue 17).

Question-pair corpora reward a shortcut: pairs that share most words are usually labelled the same, pairs that
share few usually different (word overlap alone ranks LCQMC with ROC-AUC 0.88). A matcher that learns it misses
paraphrases worded apart and calls near-identical questions that differ in one word the same — its misses on
domains it never saw. ``debias: overlap`` trains the model in a product of experts with a bias-only model
(Clark et al. 2019, "Don't Take the Easy Way Out"; He et al. 2019): the training loss is the cross-entropy of
``log_softmax(model) + log p_bias``, so where overlap alone already explains a label the model gets little
gradient, and where overlap is wrong it gets most. At inference the model runs alone.

The bias model: per training file, a logistic regression on three overlap features of a pair (Jaccard and
containment of its tokens, the length ratio), fitted on that file's own labels — the shortcut differs by domain
(strong in LCQMC, weak in AFQMC).
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

BIAS_COLUMN = "bias"


def tokens(text: str) -> set[str]:
    """What overlap is counted on: each CJK character and each lower-cased latin word or number."""
    return set(re.findall(r"[\u4e00-\u9fff]|[a-z0-9]+", text.lower()))


def overlap(a: str, b: str) -> float:
    """Jaccard overlap of the two sides' tokens (0 when neither has one)."""
    return overlap_features(a, b)[0]


def overlap_features(a: str, b: str) -> list[float]:
    """Jaccard, containment (shared tokens over the smaller side's) and the length ratio of a pair."""
    ta, tb = tokens(a), tokens(b)
    shared = len(ta & tb)
    jaccard = shared / len(ta | tb) if ta | tb else 0.0
    contained = shared / min(len(ta), len(tb)) if ta and tb else 0.0
    lengths = sorted((len(a), len(b)))
    return [jaccard, contained, lengths[0] / lengths[1] if lengths[1] else 1.0]


def fit_bias(pairs: Sequence[tuple[str, str, int]]) -> tuple[dict[frozenset[str], list[float]], float]:
    """The bias-only model of one file: ``{frozenset((a, b)): [log p(different), log p(same)]}`` for its pairs,
    and the model's ROC-AUC on them (how strong the shortcut is in this file). A file with one label only (e.g.
    derived negatives) says nothing about overlap: its pairs get a uniform bias, i.e. plain cross-entropy (its
    base rate as the bias would leave them no gradient at all)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    x = np.array([overlap_features(a, b) for a, b, _ in pairs], dtype=float)
    y = np.array([label for _, _, label in pairs], dtype=int)
    if len(set(y.tolist())) < 2:
        logp = np.full((len(pairs), 2), np.log(0.5))
        auc = 0.5
    else:
        model = LogisticRegression(max_iter=1000).fit(x, y)
        logp = np.clip(model.predict_log_proba(x), np.log(1e-4), 0.0)
        auc = float(roc_auc_score(y, logp[:, 1]))
    return {frozenset((a, b)): row.tolist() for (a, b, _), row in zip(pairs, logp)}, auc


def bias_column(files: Sequence[Sequence[Any]], train: Sequence[Any]) -> tuple[list[list[float]], dict[int, float]]:
    """``[log p(different), log p(same)]`` of the bias model for every training pair (``.text_a``, ``.text_b``,
    ``.label``), each fitted on the file the pair came from; and each file's bias ROC-AUC by index."""
    table: dict[frozenset[str], list[float]] = {}
    strength = {}
    for i, pairs in enumerate(files):
        rows, strength[i] = fit_bias([(p.text_a, p.text_b, int(p.label)) for p in pairs])
        table.update(rows)
    return [table[frozenset((p.text_a, p.text_b))] for p in train], strength


def poe_trainer(base: type) -> type:
    """A Trainer whose training loss is the product of experts with the ``bias`` column of each batch; evaluation
    and prediction run the model alone. The columns the model does not take (``bias``, ``length``) are dropped
    here, as the Trainer no longer drops them (``remove_unused_columns=False`` keeps ``bias`` in the batch)."""
    import torch.nn.functional as F

    class ProductOfExpertsTrainer(base):  # type: ignore[misc, valid-type]
        def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                         num_items_in_batch: Any = None) -> Any:
            bias = inputs.pop(BIAS_COLUMN, None)
            inputs.pop("length", None)
            if not model.training or bias is None:
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            labels = inputs.pop("labels")
            logits = model(**inputs).logits.float()
            combined = F.log_softmax(logits, -1) + bias.to(logits.device, logits.dtype)
            loss = F.cross_entropy(combined, labels, label_smoothing=self.args.label_smoothing_factor)
            return (loss, {"logits": logits}) if return_outputs else loss

    return ProductOfExpertsTrainer
