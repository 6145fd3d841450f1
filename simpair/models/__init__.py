"""Model resolving and loading: built-in names, local directories, Hugging Face ids."""
from __future__ import annotations

from .resolve import ALIASES, LocalModel, e5_small_dir, hub_reachable, list_models, minilm_dir, resolve

__all__ = ["ALIASES", "LocalModel", "e5_small_dir", "hub_reachable", "list_models", "minilm_dir", "resolve"]
