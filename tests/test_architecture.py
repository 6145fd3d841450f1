"""The package's shape: imports flow one way (no cycle, even through imports inside functions), no private
name crosses a module, no function is longer than a screen or two, and ``import simpair`` gives the public
API without importing torch."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "simpair"
MAX_FUNCTION_LINES = 80


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(imported simpair module, names taken from it) for every import in the file, at any depth."""
    me = _module_name(path)
    package = me if path.name == "__init__.py" else me.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("simpair"):
                names = [a.name for a in node.names]
                # "from . import x" may name a submodule
                subs = [f"{target}.{n}" for n in names if (PKG.parent / f"{target}.{n}".replace(".", "/")).exists()
                        or (PKG.parent / (f"{target}.{n}".replace(".", "/") + ".py")).exists()]
                out += [(s, []) for s in subs] or [(target, names)]
        elif isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names if a.name.startswith("simpair")]
    return out


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PKG.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps = set()
        for target, _ in _imports(path):
            while target not in modules and "." in target:
                target = target.rsplit(".", 1)[0]
            # a module's own package __init__ is where names are re-exported: importing it is not a cycle
            if target in modules and target != name and not name.startswith(target + ".") and target != "simpair":
                deps.add(target)
        graph[name] = deps
    return graph


def test_no_import_cycle() -> None:
    graph = _graph()
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                cycle = trail[trail.index(dep):] + [dep] if dep in trail else [node, dep]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if dep not in state:
                visit(dep, trail + [dep])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])


def test_no_private_name_crosses_modules() -> None:
    bad = [f"{p.relative_to(PKG.parent)}: {n} from {t}" for p in PKG.rglob("*.py") for t, names in _imports(p)
           for n in names if n.startswith("_") and n != "__version__"]
    assert not bad, bad


def test_no_function_longer_than_a_screen_or_two() -> None:
    long = []
    for path in PKG.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(PKG.parent)}:{node.lineno} {node.name} ({lines} lines)")
    assert not long, long


def test_import_simpair_gives_the_api_without_torch() -> None:
    names = ["CrossEncoder", "BiEncoder", "Sentiment", "Index", "Searcher", "TrainConfig", "build_config",
             "load_config", "train", "evaluate", "calibrate", "read_pairs", "read_texts", "read_corpus",
             "create_app", "SimpairError", "InputError", "ConfigError", "ModelNotFoundError", "decide"]
    code = ("import sys, simpair; assert 'torch' not in sys.modules, 'torch at import';"
            f"missing = [n for n in {names!r} if n not in dir(simpair)]; assert not missing, missing;"
            "assert simpair.decide(0.7, 0.7) and not simpair.decide(0.69, 0.7);"
            "from simpair.training import train; assert simpair.train is train;"
            "assert 'torch' not in sys.modules, 'torch from a config or reader'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
