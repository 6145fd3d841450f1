"""The ``simpair`` command line: a thin click layer over the Python API.

Every command can print JSON (``--json``). A :class:`SimpairError` (bad data, missing model, bad
config) prints one line and exits with code 2, without a traceback. ``main`` is the group (``app``); importing
the role modules registers their commands on it.
"""
from __future__ import annotations

from . import adaptation, manage, scoring, search, training  # noqa: F401  (each registers its commands on main)
from .app import main

__all__ = ["main"]
