"""Where batch work runs: in this process (the default), or on Ray (:mod:`.ray_engine`, ``pip install
'simpair[ray]'``): ``match --file``, ``eval``, ``index build`` and ``index add`` take ``--engine ray``."""
from __future__ import annotations

from typing import Any

ENGINES = ("local", "ray")


def make_engine(engine: str, address: str | None = None, workers: int | None = None,
                run: dict[str, Any] | None = None) -> Any:
    """None for ``local`` (the callers' own one-process path), else a :class:`~.ray_engine.RayEngine`."""
    if engine == "local":
        return None
    if engine != "ray":
        from ..errors import SimpairError

        raise SimpairError(f"engine {engine!r}: expected one of {', '.join(ENGINES)}")
    from .ray_engine import RayEngine

    return RayEngine(address=address, workers=workers, run=run)


__all__ = ["ENGINES", "make_engine"]
