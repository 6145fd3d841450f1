"""simpair: sentence-pair similarity — cross-encoder matching, bi-encoder search, honest metrics."""
from __future__ import annotations

__version__ = "0.1.0"
