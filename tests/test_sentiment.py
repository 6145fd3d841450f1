"""`simpair sentiment` and `train --task classify` end to end on a tiny model: pipeline output, --explain,
--file, errors, and the bundled model (when it is present and e5-small can be converted)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import DATA, write

from simpair.cli import main
from simpair.errors import SimpairError
from simpair.sentiment import Sentiment

SENT = DATA / "sentiment"


@pytest.fixture(scope="module")
def classifier(tiny_bert: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`simpair train --task classify --method lora`, as a user runs it."""
    out = tmp_path_factory.mktemp("sent") / "clf"
    res = CliRunner().invoke(main, [
        "train", "--task", "classify", "--method", "lora", "--model", str(tiny_bert),
        "--train", str(SENT / "train.tsv"), "--dev", str(SENT / "dev.tsv"), "--dev", str(SENT / "train.tsv"),
        "--label-names", "negative,positive", "--out", str(out), "--max-steps", "6", "--eval-steps", "3",
        "--batch-size", "8", "--learning-rate", "5e-3", "--bf16", "no", "--json"])
    assert res.exit_code == 0, res.output
    result = json.loads(res.stdout)
    assert result["task"] == "classify" and result["method"] == "lora" and result["labels"] == ["negative", "positive"]
    assert set(result["dev_metrics_per_file"]) == {str(SENT / "dev.tsv"), str(SENT / "train.tsv")}
    assert result["dev_metrics"]["n"] == 16 + 48 and len(result["dev_metrics"]["confusion_matrix"]) == 2
    assert (out / "dev_confusion_matrix.png").stat().st_size > 1000
    return out


def test_pipeline_output_format(classifier: Path) -> None:
    clf = Sentiment(str(classifier), bf16="no")
    texts = ["这家酒店的服务太差了，再也不来了", "AI changes the world!", "ok"]
    rows = clf(texts)
    assert [r["text"] for r in rows] == texts  # input order survives length-sorted batching
    assert all(r["label"] in ("negative", "positive") and 0.5 <= r["score"] <= 1.0 for r in rows)
    full = clf(texts, top_k=None)
    for r, f in zip(rows, full):
        assert set(f["scores"]) == {"negative", "positive"} and f["label"] == r["label"]
        assert sum(f["scores"].values()) == pytest.approx(1.0, abs=1e-4)


def test_explain_matches_the_pipeline(classifier: Path) -> None:
    clf = Sentiment(str(classifier), bf16="no")
    ex = clf.explain("服务很好，下次还来")
    assert ex["1_tokenizer"]["tokens"][0] == "[CLS]" and len(ex["1_tokenizer"]["input_ids"]) == 11
    probs = np.array(list(ex["3_postprocess"]["softmax"].values()))
    logits = np.array(ex["2_model"]["logits"])
    assert np.allclose(probs, np.exp(logits) / np.exp(logits).sum(), atol=1e-3)
    assert ex["label"] == clf("服务很好，下次还来")[0]["label"]


def test_cli_sentiment_json_file_and_explain(classifier: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(main, ["sentiment", "--model", str(classifier), "AI changes the world!", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["label"] in ("negative", "positive")
    texts = write(tmp_path / "t.txt", "很好\n\nterrible\n")
    res = runner.invoke(main, ["sentiment", "--model", str(classifier), "--file", str(texts), "--json"])
    assert res.exit_code == 0 and [r["text"] for r in json.loads(res.stdout)] == ["很好", "terrible"]
    res = runner.invoke(main, ["sentiment", "--model", str(classifier), "--explain", "很好"])
    assert res.exit_code == 0 and "input_ids" in res.stdout and "softmax" in res.stdout


def test_cli_sentiment_errors(classifier: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    bad = write(tmp_path / "bad.txt", b"fine\n\xff\xfe broken\n")
    res = runner.invoke(main, ["sentiment", "--model", str(classifier), "--file", str(bad)])
    assert res.exit_code == 2 and f"{bad}:2" in res.output and "UTF-8" in res.output
    res = runner.invoke(main, ["sentiment", "--model", str(tmp_path / "none"), "x"])
    assert res.exit_code == 2 and "no such model directory" in res.output
    res = runner.invoke(main, ["sentiment", "--model", str(classifier), "   "])
    assert res.exit_code == 2 and "empty" in res.output


def test_pair_model_is_refused_for_sentiment_and_classifier_for_match(classifier: Path, tiny_bert: Path,
                                                                       tmp_path: Path) -> None:
    from simpair.config import build_config
    from simpair.cross_encoder import CrossEncoder
    from simpair.training import train

    pair = tmp_path / "pair"
    train(build_config(dict(model=str(tiny_bert), train=str(DATA / "train.tsv"), out=str(pair), max_steps=2,
                            bf16="no")), progress=False)
    with pytest.raises(SimpairError, match="sentence-pair model"):
        Sentiment(str(pair))
    with pytest.raises(SimpairError, match="single-text classifier"):
        CrossEncoder(str(classifier))


def test_multiclass_training_with_string_labels(tiny_bert: Path, tmp_path: Path) -> None:
    from simpair.config import build_config
    from simpair.training import train

    rows = [("1", "awful"), ("2", "poor"), ("3", "fine"), ("4", "good"), ("5", "superb")] * 6
    data = write(tmp_path / "stars.jsonl", "".join(json.dumps({"text": f"{t} {i}", "stars": int(s)}) + "\n"
                                                  for i, (s, t) in enumerate(rows)))
    meta = train(build_config(dict(model=str(tiny_bert), train=str(data), dev=str(data), out=str(tmp_path / "m"),
                                   task="classify", max_steps=3, bf16="no", batch_size=8)), progress=False)
    assert meta["labels"] == ["1", "2", "3", "4", "5"] and meta["dev_metrics"]["n"] == 30
    assert np.asarray(meta["dev_metrics"]["confusion_matrix"]).shape == (5, 5)
    assert Sentiment(str(tmp_path / "m"), bf16="no")("superb")[0]["label"] in meta["labels"]


def test_cli_classify_bad_input_exits_2_and_writes_nothing(tiny_bert: Path, tmp_path: Path) -> None:
    bad = write(tmp_path / "bad.tsv", "label\ttext\n1\tgood\n0\tbad\textra\n1\t\n")
    out = tmp_path / "never"
    res = CliRunner().invoke(main, ["train", "--task", "classify", "--model", str(tiny_bert), "--train", str(bad),
                                    "--out", str(out)])
    assert res.exit_code == 2 and f"{bad}:3" in res.output and f"{bad}:4: empty text" in res.output
    assert "Traceback" not in res.output and not out.exists()
    dev = write(tmp_path / "dev.tsv", "label\ttext\n0\tfine\n7\tnope\n")
    res = CliRunner().invoke(main, ["train", "--task", "classify", "--model", str(tiny_bert),
                                    "--train", str(SENT / "train.tsv"), "--dev", str(dev), "--out", str(out)])
    assert res.exit_code == 2 and f"{dev}:3" in res.output and "training labels" in res.output and not out.exists()


def test_offline_hub_sentiment_model_fails_fast(tmp_path: Path) -> None:
    res = CliRunner().invoke(main, ["sentiment", "--model", "tabularisai/multilingual-sentiment-analysis", "I love it"])
    assert res.exit_code == 2 and "unreachable" in res.output


def test_a_classifier_never_becomes_the_default_matcher(classifier: Path) -> None:
    from simpair.cross_encoder import default_model

    assert default_model() != str(classifier.resolve())


def test_precision_and_threads_reach_the_pipeline(classifier: Path) -> None:
    fp32 = Sentiment(str(classifier), precision="fp32", threads=1)
    int8 = Sentiment(str(classifier), precision="int8")
    assert (fp32.precision, int8.precision) == ("fp32", "int8") and not int8.bf16
    assert "Int8Linear" in {type(m).__name__ for m in int8.model.modules()}
    texts = ["还不错", "terrible", "服务很好", "再也不来了"]
    a = [r["scores"]["positive"] for r in fp32(texts, top_k=None)]
    b = [r["scores"]["positive"] for r in int8(texts, top_k=None)]
    np.testing.assert_allclose(a, b, atol=0.05)
    with pytest.raises(SimpairError, match="runs on torch"):
        Sentiment(str(classifier), backend="onnx")


def test_serve_hands_the_run_options_to_the_sentiment_model(classifier: Path) -> None:
    from fastapi.testclient import TestClient

    from simpair.server import create_app

    with TestClient(create_app(model=None, sentiment_model=str(classifier), precision="int8")) as client:
        info = client.get("/info").json()
        assert info["sentiment"]["precision"] == "int8"
        assert client.post("/sentiment", json={"text": "还不错"}).status_code == 200
