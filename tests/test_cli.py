"""The CLI through click's CliRunner: JSON output, errors with exit code 2 and no traceback."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import write

from simpair.cli import main


@pytest.fixture(scope="module")
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture(scope="module")
def trained(tiny_bert: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = Path(__file__).resolve().parents[1]
    out = tmp_path_factory.mktemp("cli") / "model"
    res = CliRunner().invoke(main, ["train", "--config", str(root / "configs/quick.yaml"), "--model", str(tiny_bert),
                                   "--out", str(out), "--max-steps", "6", "--eval-steps", "3",
                                   "--train", str(root / "data/train.tsv"), "--dev", str(root / "data/dev.tsv"),
                                   "--bf16", "no", "--json"])
    assert res.exit_code == 0, res.output
    result = json.loads(res.stdout)
    assert result["global_step"] == 6 and result["out"] == str(out)
    return out


def test_train_json_is_clean(trained: Path) -> None:
    assert (trained / "simpair.json").is_file() and (trained / "config.json").is_file()


def test_match_json(runner: CliRunner, trained: Path) -> None:
    res = runner.invoke(main, ["match", "--model", str(trained), "怎么开初婚未育证明", "初婚未育证明怎么开", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert 0 <= out["probability"] <= 1 and out["label"] in ("same", "different")
    assert out["same"] == (out["probability"] >= out["threshold"])


def test_match_text_output(runner: CliRunner, trained: Path) -> None:
    res = runner.invoke(main, ["match", "--model", str(trained), "你好", "您好"])
    assert res.exit_code == 0 and ("same" in res.stdout or "different" in res.stdout)


def test_match_default_model_is_chosen_explicitly(runner: CliRunner, trained: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Training leaves the default alone; `models --use DIR` moves it, `--use bundled` brings it back, and the
    answer names the model that gave it."""
    from simpair.models import default_model_source

    monkeypatch.delenv("SIMPAIR_MODEL", raising=False)
    assert default_model_source()[0] != str(trained.resolve())  # `trained` was just trained in this home
    res = runner.invoke(main, ["models", "--use", str(trained), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["default_matcher"]["model"] == str(trained.resolve())
    res = runner.invoke(main, ["match", "你好", "您好", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["model"] == str(trained.resolve())
    text = runner.invoke(main, ["match", "你好", "您好"])
    assert f"model {trained.resolve()}" in text.stdout
    res = runner.invoke(main, ["models", "--use", "bundled", "--json"])
    assert json.loads(res.stdout)["default_matcher"]["model"] in ("matcher", None)
    bad = runner.invoke(main, ["models", "--use", str(trained / "nope")])
    assert bad.exit_code == 2 and "no such model directory" in bad.output


def test_match_file_streams_every_row(runner: CliRunner, trained: Path, tmp_path: Path) -> None:
    path = write(tmp_path / "p.jsonl", '{"text_a": "你好", "text_b": "您好"}\n{"text_a": "早", "text_b": "晚", "label": 0}\n')
    res = runner.invoke(main, ["match", "--model", str(trained), "--file", str(path), "--json"])
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in res.stdout.splitlines()]
    assert [r["line"] for r in rows] == [1, 2] and rows[1]["gold"] == 0.0
    assert "pairs/s" in res.stderr


def test_match_usage_errors(runner: CliRunner, trained: Path) -> None:
    res = runner.invoke(main, ["match", "--model", str(trained), "only one"])
    assert res.exit_code == 2 and "give two texts" in res.output


def test_eval_json_and_report(runner: CliRunner, trained: Path, dev_file: Path, tmp_path: Path) -> None:
    report = tmp_path / "report"
    res = runner.invoke(main, ["eval", str(trained), str(dev_file), "--json", "--report", str(report)])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    m = out["metrics"]
    for key in ("accuracy", "precision", "recall", "f1", "roc_auc", "average_precision", "pearson", "spearman",
                "best_accuracy", "best_accuracy_threshold", "best_f1"):
        assert key in m
    assert m["best_accuracy"] >= m["accuracy"]
    assert {p.name for p in report.iterdir()} >= {"metrics.json", "pr_curve.png", "score_histogram.png",
                                                   "threshold_curve.png"}


def test_eval_table(runner: CliRunner, trained: Path, dev_file: Path) -> None:
    res = runner.invoke(main, ["eval", str(trained), str(dev_file)])
    assert res.exit_code == 0 and "accuracy" in res.stdout


@pytest.mark.parametrize(("content", "line", "expected"), [
    ("a\tb\t1\nc\td\n", 2, "expected 3 tab-separated columns"),
    ("a\tb\t1\nc\td\tyes\n", 2, "expected 0 or 1"),
    ("a\tb\t1\nc\t\t0\n", 2, "empty text_b"),
    (b"a\tb\t1\nc\xff\td\t0\n", 2, "invalid UTF-8"),
])
def test_malformed_training_file(runner: CliRunner, tiny_bert: Path, tmp_path: Path, dev_file: Path,
                                 content: str | bytes, line: int, expected: str) -> None:
    bad = write(tmp_path / "bad.tsv", content)
    out = tmp_path / "out"
    res = runner.invoke(main, ["train", "--train", str(bad), "--dev", str(dev_file), "--out", str(out),
                               "--model", str(tiny_bert)])
    assert res.exit_code == 2
    assert f"{bad}:{line}:" in res.stderr and expected in res.stderr
    assert "Traceback" not in res.output
    assert not out.exists()


def test_missing_model_is_one_line(runner: CliRunner, tmp_path: Path, train_file: Path) -> None:
    res = runner.invoke(main, ["train", "--train", str(train_file), "--out", str(tmp_path / "o"),
                               "--model", "nghuyong/ernie-gram-zh"])
    assert res.exit_code == 2
    assert res.stderr.count("\n") == 1 and "nghuyong/ernie-gram-zh" in res.stderr


def test_bad_config_key(runner: CliRunner, tmp_path: Path) -> None:
    cfg = write(tmp_path / "c.yaml", "train: x.tsv\nepochz: 3\n")
    res = runner.invoke(main, ["train", "--config", str(cfg)])
    assert res.exit_code == 2 and "unknown key 'epochz'" in res.stderr


def test_models_json(runner: CliRunner) -> None:
    res = runner.invoke(main, ["models", "--json"])
    assert res.exit_code == 0
    names = [m["name"] for m in json.loads(res.stdout)["models"]]
    assert "e5-small" in names and "minilm-en" in names
