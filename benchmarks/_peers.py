"""sentence-transformers at its best, for match_speed.py and encode_speed.py: each configuration of
``st_peer.py`` run in the Python that has its backend, on a scratch copy of the model, in this same run."""
from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# which interpreter runs which configuration; the peer venvs come from `make peers`
PYTHONS = {"torch": Path(sys.executable), "onnx": ROOT / ".venv-peer-onnx" / "bin" / "python",
           "openvino": ROOT / ".venv-peer-openvino" / "bin" / "python"}
PEER_CONFIGS = ("torch-fp32", "torch-bf16", "onnx-fp32", "onnx-O3", "onnx-int8", "openvino-fp32", "openvino-int8")


def run_peer(kind: str, config: str, model_dir: str | Path, payload: dict[str, Any], batch_size: int,
             max_length: int, repeats: int, timeout: int = 1800) -> dict[str, Any]:
    """``{"seconds", "scores", "versions"}`` of one peer configuration, or ``{"skipped": why}``."""
    python = PYTHONS[config.split("-")[0]]
    if not python.is_file():
        return {"skipped": f"{python.parent.parent.name} not installed (make peers)"}
    with tempfile.TemporaryDirectory(prefix="st-peer-") as tmp:
        model = Path(tmp) / "model"
        # a scratch copy without simpair's own exports: the peer writes its onnx/ and openvino/ there
        shutil.copytree(model_dir, model, ignore=shutil.ignore_patterns("onnx", "openvino", "simpair-onnx.json"))
        if config.startswith("onnx"):
            _for_sentence_transformers_5(model)
        data, out = Path(tmp) / "in.json", Path(tmp) / "out.json"
        data.write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")
        cmd = [str(python), str(ROOT / "benchmarks" / "st_peer.py"), "--kind", kind, "--config", config,
               "--model", str(model), "--data", str(data), "--out", str(out), "--batch-size", str(batch_size),
               "--max-length", str(max_length), "--repeats", str(repeats)]
        proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            tail = proc.stderr.strip().splitlines()[-1:] or ["no output"]
            print(f"peer {config} failed:\n{proc.stderr[-3000:]}", file=sys.stderr)
            return {"skipped": f"failed: {tail[0][:300]}"}
        return json.loads(out.read_text(encoding="utf-8"))


# where sentence-transformers 5 keeps a module that 6 moved (modules.json names it by its import path)
_ST5_MODULES = {"sentence_transformers.base.modules.normalize.Normalize":
                "sentence_transformers.sentence_transformer.modules.normalize.Normalize"}


def _for_sentence_transformers_5(model: Path) -> None:
    """The ONNX peer runs sentence-transformers 5 on transformers 4 (see the Makefile's peers): the files that
    transformers 5 / ST 6 wrote name a tokenizer class (``TokenizersBackend``) and a module path it lacks.
    ``PreTrainedTokenizerFast`` reads the same tokenizer.json, and Normalize is the same module, so the
    model computes alike."""
    cfg, modules = model / "tokenizer_config.json", model / "modules.json"
    if cfg.is_file():
        meta = json.loads(cfg.read_text(encoding="utf-8"))
        if meta.get("tokenizer_class") == "TokenizersBackend":
            meta["tokenizer_class"] = "PreTrainedTokenizerFast"
            cfg.write_text(json.dumps(meta, indent=2), encoding="utf-8")
    if modules.is_file():
        entries = json.loads(modules.read_text(encoding="utf-8"))
        for entry in entries:
            entry["type"] = _ST5_MODULES.get(entry["type"], entry["type"])
        modules.write_text(json.dumps(entries, indent=2), encoding="utf-8")


REFERENCE_ROW = "sentence-transformers torch-fp32"


def best_ratio(results: dict[str, dict[str, Any]], rate: str,
               tolerances: dict[str, float] | None = None) -> dict[str, Any]:
    """simpair's fastest row against the fastest sentence-transformers row: the issue-16 figure. With
    ``tolerances`` ({metric: largest |row - reference|}), also ``equal_quality``: the same among the rows whose
    metrics stay that close to ST's torch fp32 row (issue 16: accuracy within 0.3 points, AUC within 0.003)."""
    def fastest(prefix: str, keep: Any = lambda v: True) -> tuple[str, float] | None:
        rows = [(k, v[rate]) for k, v in results.items() if k.startswith(prefix) and rate in v and keep(v)]
        return max(rows, key=lambda kv: kv[1]) if rows else None

    ours, peer = fastest("simpair"), fastest("sentence-transformers")
    if ours is None or peer is None:
        return {"best_simpair": ours and ours[0], "best_sentence_transformers": peer and peer[0], "ratio": None,
                "target": 1.5}
    out: dict[str, Any] = {"best_simpair": ours[0], "best_sentence_transformers": peer[0],
                           "ratio": round(ours[1] / peer[1], 2), "target": 1.5}
    ref = results.get(REFERENCE_ROW, {})
    if tolerances and all(k in ref for k in tolerances):
        def close(v: dict[str, Any]) -> bool:
            return all(k in v and abs(v[k] - ref[k]) <= tol + 1e-9 for k, tol in tolerances.items())

        ours, peer = fastest("simpair", close), fastest("sentence-transformers", close)
        out["equal_quality"] = {"reference": REFERENCE_ROW, "tolerances": tolerances,
                                "best_simpair": ours and ours[0], "best_sentence_transformers": peer and peer[0],
                                "ratio": round(ours[1] / peer[1], 2) if ours and peer else None}
    return out


def contenders(summary: dict[str, Any], results: dict[str, dict[str, Any]], rate: str, side: str,
               share: float = 0.5) -> list[str]:
    """The rows of one side (``"simpair"`` or ``"sentence-transformers"``) worth timing again: every one at
    ``share`` or more of that side's fastest rate in the sweep (one noisy pass can put the row that is fastest on
    most runs well behind), and that side's best row at equal quality."""
    rows = {k: v[rate] for k, v in results.items() if k.startswith(side) and rate in v}
    fastest = max(rows.values(), default=0.0)
    names = [k for k, r in sorted(rows.items(), key=lambda kv: -kv[1]) if r >= share * fastest]
    key = "best_simpair" if side == "simpair" else "best_sentence_transformers"
    equal = (summary.get("equal_quality") or {}).get(key)
    return list(dict.fromkeys(names + ([equal] if equal else [])))


def _spread(values: list[float]) -> dict[str, Any]:
    return {"per_round": [round(x, 2) for x in values], "median": round(statistics.median(values), 2),
            "min": round(min(values), 2), "max": round(max(values), 2)}


def head_to_head(rounds: int, ours: dict[str, Callable[[], float]],
                 theirs: dict[str, Callable[[], float]], items: int) -> dict[str, Any]:
    """simpair's contending rows against the peer's, timed in alternating order for ``rounds`` rounds.

    On a host whose speed drifts by tens of percent within minutes, one pass per row in a long sweep gives a
    ratio that moves from run to run; timing the contenders back to back, again and again, pairs each pass of
    ours with peer passes measured under the same conditions. Each callable returns the seconds of one timed
    pass over ``items`` items. Reports every round's rates, ``best_against_best`` (per round, simpair's fastest
    row over the peer's fastest; its median is the issue-16 figure) and every pairing's per-round ratios."""
    names = [*ours, *theirs]
    calls = {**ours, **theirs}
    rates: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in (names if r % 2 == 0 else names[::-1]):  # who goes first alternates
            rates[name].append(round(items / calls[name](), 1))
    best = [max(rates[o][r] for o in ours) / max(rates[p][r] for p in theirs) for r in range(rounds)]
    return {"rounds": rounds, "order": "alternating", "rates": rates, "best_against_best": _spread(best),
            "ratios": {f"{o} / {p}": _spread([a / b for a, b in zip(rates[o], rates[p])])
                       for o in ours for p in theirs}}


def head_to_head_of(summary: dict[str, Any], results: dict[str, dict[str, Any]], rate: str, rounds: int, items: int,
                    ours: Callable[[str], Callable[[], float]], theirs: Callable[[str], float]) -> dict[str, Any]:
    """:func:`head_to_head` over both sides' :func:`contenders` of a sweep: ``ours(row name)`` loads simpair's path
    once and gives its one-pass timer; ``theirs(config)`` times one pass of that sentence-transformers peer."""
    def peer(name: str) -> Callable[[], float]:
        config = name.split()[-1]  # "sentence-transformers onnx-int8" -> "onnx-int8"
        return lambda: theirs(config)

    return head_to_head(rounds, {name: ours(name) for name in contenders(summary, results, rate, "simpair")},
                        {name: peer(name) for name in contenders(summary, results, rate, "sentence-transformers")},
                        items)
