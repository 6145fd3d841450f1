"""``simpair serve``: the HTTP server (FastAPI + uvicorn): simpair's own routes, the rerank and embeddings APIs
clients already speak, keys, limits, back-pressure and metrics."""
from __future__ import annotations

from .app import DEFAULT_MAX_BATCH, OPENVINO_MATCH_BATCH, api_keys, batch_sizes, check_exposure, create_app, serve
from .batching import MicroBatcher, Overloaded, TimedOut
from .schemas import Limits

__all__ = ["DEFAULT_MAX_BATCH", "OPENVINO_MATCH_BATCH", "Limits", "MicroBatcher", "Overloaded", "TimedOut", "api_keys",
           "batch_sizes", "check_exposure", "create_app", "serve"]
