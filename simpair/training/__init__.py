"""Training: :func:`train` runs whatever a :class:`~simpair.config.TrainConfig` asks for.

- :mod:`.classifier`: cross-encoders (pairs with 0/1 labels or scores) and single-text classifiers, on
  the transformers Trainer;
- :mod:`.bi_encoder`: bi-encoders (retrieval), on the sentence-transformers trainer;
- :mod:`.common`, :mod:`.examples`, :mod:`.trainers`: what they share (data records, Trainer arguments,
  checkpoints, examples and their metrics, R-Drop, the mean over dev files);
- :mod:`.sampling`: several train files mixed by temperature and per-file weights; :mod:`.peft_methods`: what
  trains; :mod:`.soup`: weight averaging of trained models (``simpair average``).
"""
from __future__ import annotations

from typing import Any

from ..config import TrainConfig


def train(cfg: TrainConfig, resume: bool = False, progress: bool = True,
          callbacks: list | None = None) -> dict[str, Any]:
    """Train ``cfg.kind`` (``cross-encoder``, which also covers ``task: classify``, or ``bi-encoder``) and save it
    to ``cfg.out``; returns what was written to its simpair.json (plus ``out`` and timings)."""
    if cfg.kind == "bi-encoder":
        from .bi_encoder import train_bi_encoder

        if callbacks:
            raise ValueError("callbacks: the bi-encoder trainer takes none")
        return train_bi_encoder(cfg, resume=resume, progress=progress)
    from .classifier import train_classifier

    return train_classifier(cfg, resume=resume, progress=progress, callbacks=callbacks)


__all__ = ["train"]
