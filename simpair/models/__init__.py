"""Model resolving and loading: built-in names, local directories, Hugging Face ids."""
from __future__ import annotations

from .load import META_FILE, default_prefix, is_adapter, load_classifier, read_meta
from .resolve import (ALIASES, BUNDLED, LocalModel, bundled_dir, default_encoder, default_file, default_model,
                      default_model_source, default_reranker, e5_small_dir, hub_reachable, list_models, minilm_dir,
                      resolve, use_model)

__all__ = ["ALIASES", "BUNDLED", "META_FILE", "LocalModel", "bundled_dir", "default_encoder", "default_file",
           "default_model", "default_model_source", "default_prefix", "default_reranker", "e5_small_dir",
           "hub_reachable", "is_adapter", "list_models", "load_classifier", "minilm_dir", "read_meta", "resolve",
           "use_model"]
