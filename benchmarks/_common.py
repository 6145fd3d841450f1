"""Shared by the benchmark scripts: print the JSON result and optionally save it."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def emit(result: dict[str, Any], save: str | None) -> None:
    """Print ``result`` as JSON on stdout (numpy scalars as numbers) and write it to ``save``."""
    text = json.dumps(result, indent=2, default=lambda o: o.item() if hasattr(o, "item") else str(o))
    print(text)
    if save:
        Path(save).parent.mkdir(parents=True, exist_ok=True)
        Path(save).write_text(text + "\n", encoding="utf-8")
