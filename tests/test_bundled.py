"""The bundled models (sentiment, question matcher) as a new user meets them: no --model, offline, on the
converted e5-small."""
from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from simpair.cli import main
from simpair.models import bundled_dir, list_models
from conftest import DATA

from simpair.backend.onnx import find_onnx

BUNDLED = Path(__file__).resolve().parents[1] / "simpair" / "bundled" / "sentiment"
MATCHER = BUNDLED.parent / "matcher"
LCQMC_MATCHER = BUNDLED.parent / "matcher-lcqmc"
ENCODER = BUNDLED.parent / "encoder"
needs_sentiment = pytest.mark.skipif(not (BUNDLED / "adapter_config.json").is_file(), reason="no bundled sentiment")
needs_matcher = pytest.mark.skipif(not (MATCHER / "adapter_config.json").is_file(), reason="no bundled matcher")
needs_lcqmc_matcher = pytest.mark.skipif(not (LCQMC_MATCHER / "adapter_config.json").is_file(),
                                         reason="no bundled LCQMC matcher")
needs_encoder = pytest.mark.skipif(not (ENCODER / "adapter_config.json").is_file(), reason="no bundled encoder")


@needs_sentiment
def test_bundled_adapter_is_small_and_documented() -> None:
    size = sum(p.stat().st_size for p in BUNDLED.iterdir())
    assert size < 12 * 2**20, f"bundled adapter is {size / 2**20:.1f} MiB"
    meta = json.loads((BUNDLED / "simpair.json").read_text())
    assert meta["base_model"] == "e5-small-zh-en" and meta["labels"] == ["negative", "positive"] and meta["adapter"]
    card = (BUNDLED / "README.md").read_text()
    for needed in ("ChnSentiCorp", "SST-2", "configs/recipes/sentiment-e5-lora.yaml", "dev"):
        assert needed in card
    assert bundled_dir("sentiment") == BUNDLED


@needs_sentiment
def test_acceptance_examples(e5_dir: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(main, ["sentiment", "这家酒店的服务太差了，再也不来了", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["label"] == "negative"
    res = runner.invoke(main, ["sentiment", "AI changes the world!"])
    assert res.exit_code == 0, res.output
    assert res.stdout.startswith("positive")


@needs_sentiment
def test_bundled_model_on_our_sample(e5_dir: Path) -> None:
    from simpair.sentiment import Sentiment
    from simpair.readers import read_texts

    dev = read_texts(Path(__file__).resolve().parents[1] / "data" / "sentiment" / "dev.tsv")
    rows = Sentiment()(dev.texts)
    correct = sum(r["label"] == ("positive" if y == "1" else "negative") for r, y in zip(rows, dev.labels))
    assert correct >= 14, f"{correct} of {len(rows)} of our own sample reviews"
    assert any(m.name == "sentiment" for m in list_models())


# ---------------------------------------------------------------- the question matcher


@pytest.mark.parametrize(("name", "needles"), [
    ("matcher", ("LCQMC", "BQ", "AFQMC", "PAWS-X", "research use", "make general-matcher")),
    ("matcher-lcqmc", ("LCQMC", "research use", "make matcher", "0.894")),
])
def test_matchers_are_small_documented_deltas(name: str, needles: tuple[str, ...]) -> None:
    path = BUNDLED.parent / name
    if not (path / "adapter_config.json").is_file():
        pytest.skip(f"no bundled {name}")
    size = sum(p.stat().st_size for p in path.iterdir())
    assert size < 24 * 2**20, f"bundled {name} is {size / 2**20:.1f} MiB"
    meta = json.loads((path / "simpair.json").read_text())
    assert meta["base_model"] == "e5-small-zh-en" and meta["adapter"] and meta["kind"] == "cross-encoder"
    assert meta["delta"]["rank"] >= 1 and 0.05 < meta["threshold"] < 0.95
    card = (path / "README.md").read_text()
    for needed in needles + (f"{meta['threshold']:.4f}",):
        assert needed in card, needed
    assert bundled_dir(name) == path


def _fresh_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> object:
    resolve = importlib.import_module("simpair.models.resolve")  # the module, not the function of that name
    monkeypatch.delenv("SIMPAIR_MODEL", raising=False)
    monkeypatch.setattr(resolve, "default_file", lambda: tmp_path / "no-default-model")  # a fresh install
    return resolve


def _match(*args: str) -> dict:
    res = CliRunner().invoke(main, ["match", *args, "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


@needs_matcher
def test_general_matcher_is_the_default_and_gets_paraphrases_of_several_domains(
        e5_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Our own pairs (not from any data set): bank, payment, medical, English paraphrases with few shared words
    are 'same', look-alike questions that ask something else are 'different'."""
    assert _fresh_install(tmp_path, monkeypatch).default_model() == "matcher"
    out = _match("信用卡怎么提额", "如何提高信用卡额度")
    assert out["same"] is True and out["model"] == "matcher"
    # the first use exported the matcher to ONNX in the cache: every start from now on skips torch
    assert find_onnx(MATCHER) is not None and out["backend"] == "onnx" and out["precision"] == "fp32"
    for a, b, same in SAME_OR_NOT:
        assert _match(a, b)["same"] is same, (a, b)
    torch_out = _match("信用卡怎么提额", "如何提高信用卡额度", "--backend", "torch", "--precision", "fp32")
    assert torch_out["backend"] == "torch" and abs(torch_out["probability"] - out["probability"]) < 1e-5


SAME_OR_NOT = [  # regression checks of the shipped model, not a quality claim (README: the probe, misses included)
    ("How do I reset my password?", "How can I change my password if I forgot it?", True),
    ("发烧了吃什么药好", "发烧应该吃什么药", True),
    ("How do I reset my password?", "How do I reset my router?", False),
    ("手机怎么截屏", "手机怎么关机", False),
]


@needs_lcqmc_matcher
def test_lcqmc_matcher_by_name(e5_dir: Path) -> None:
    assert _match("--model", "matcher-lcqmc", "喜欢打篮球的男生喜欢什么样的女生", "爱打篮球的男生喜欢什么样的女生")["same"] is True
    assert _match("--model", "matcher-lcqmc", "谁有狂三这张高清的", "这张高清图，谁有")["same"] is False


@needs_encoder
def test_index_build_defaults_to_the_bundled_encoder(e5_dir: Path, tmp_path: Path) -> None:
    """The bundled bi-encoder becomes a sentence-transformers directory on first use and indexes by default;
    its index says which model it holds, and a paraphrase is the top hit."""
    corpus = tmp_path / "faq.txt"
    corpus.write_text("如何提高信用卡额度\n怎么注销银行卡\n快递几天能到\n", encoding="utf-8")
    res = CliRunner().invoke(main, ["index", "build", str(corpus), "--out", str(tmp_path / "idx"), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["model"] == "encoder"
    res = CliRunner().invoke(main, ["search", str(tmp_path / "idx"), "信用卡怎么提额", "-k", "1", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["hits"][0]["text"] == "如何提高信用卡额度"
    from sentence_transformers import SentenceTransformer

    from simpair.models import resolve

    assert SentenceTransformer(resolve("encoder"), device="cpu").encode(["query: 你好"]).shape == (1, 384)


@needs_matcher
def test_server_answers_match_with_the_bundled_matcher(e5_dir: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from fastapi.testclient import TestClient

    from simpair.server import create_app

    _fresh_install(tmp_path, monkeypatch)
    with TestClient(create_app(load_sentiment=False)) as client:
        res = client.post("/match", json={"text_a": "信用卡怎么提额", "text_b": "如何提高信用卡额度"})
        assert res.status_code == 200 and res.json()["same"] is True, res.text


@needs_matcher
def test_bundled_models_run_on_the_pruned_vocabulary_with_the_full_ones_scores(e5_dir: Path, tmp_path: Path) -> None:
    """The bundled models sit on e5-small-zh-en (issue 40): a third of e5-small's size on disk, and the matcher
    scores every pair of our sample that the kept pieces cover exactly as over the full e5-small."""
    import shutil

    import numpy as np
    from tokenizers import Tokenizer

    from simpair import CrossEncoder, read_pairs
    from simpair.models import resolve
    from simpair.models.vocab import KEPT_FILE, covered, load_kept
    from simpair.utils import dir_size

    pruned = Path(resolve("e5-small-zh-en"))
    assert dir_size(pruned) < 0.4 * dir_size(e5_dir)
    for name in ("matcher", "matcher-lcqmc", "sentiment", "encoder"):
        meta = json.loads((bundled_dir(name) / "simpair.json").read_text(encoding="utf-8"))
        assert meta["base_model"] == "e5-small-zh-en", name
    full = tmp_path / "matcher-full"
    shutil.copytree(bundled_dir("matcher"), full)
    meta = json.loads((full / "simpair.json").read_text(encoding="utf-8"))
    (full / "simpair.json").write_text(json.dumps({**meta, "base_model": "e5-small"}), encoding="utf-8")
    data = read_pairs(DATA / "dev.tsv")
    pairs = list(zip(data.texts_a, data.texts_b))[:60]
    kept = load_kept(KEPT_FILE)
    tok = Tokenizer.from_file(str(e5_dir / "tokenizer.json"))
    ok = np.array(covered(tok, kept, [a for a, _ in pairs])) & np.array(covered(tok, kept, [b for _, b in pairs]))
    assert ok.mean() > 0.9
    scores = [np.asarray(CrossEncoder(m, backend="torch", precision="fp32").predict(pairs)) for m in ("matcher", str(full))]
    assert np.abs(scores[0] - scores[1])[ok].max() < 1e-5
