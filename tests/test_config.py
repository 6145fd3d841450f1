"""Config files: defaults, overrides, and strict errors for unknown keys and wrong types."""
from __future__ import annotations

from pathlib import Path

import pytest
from conftest import ROOT, write

from simpair.config import build_config, load_config
from simpair.errors import ConfigError


def test_shipped_configs_load() -> None:
    for path in sorted((ROOT / "configs").glob("*.yaml")):
        cfg = load_config(path)
        assert cfg.train and cfg.out and cfg.model


def test_flags_override_config() -> None:
    cfg = load_config(ROOT / "configs/quick.yaml", {"epochs": 1.0, "out": "elsewhere", "seed": None})
    assert cfg.epochs == 1.0 and cfg.out == "elsewhere" and cfg.seed == 42


def test_unknown_key_names_file_and_key(tmp_path: Path) -> None:
    path = write(tmp_path / "c.yaml", "train: a.tsv\nlearing_rate: 0.1\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: unknown key 'learing_rate'; did you mean 'learning_rate'"):
        load_config(path)


@pytest.mark.parametrize(("line", "message"), [
    ("batch_size: many", "'batch_size' must be an integer"),
    ("learning_rate: fast", "'learning_rate' must be a number"),
    ("swap_augment: 3", "'swap_augment' must be true or false"),
    ("bf16: sometimes", "'bf16' must be one of auto, yes, no"),
])
def test_wrong_types(tmp_path: Path, line: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path / "c.yaml", line + "\n"))


def test_int_is_accepted_for_float() -> None:
    assert build_config({"learning_rate": 1}).learning_rate == 1.0


def test_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path / "c.yaml", "train: [unclosed\n"))


def test_train_files_and_label_names_accept_strings_and_lists(tmp_path: Path) -> None:
    cfg = build_config({"train": "a.tsv", "dev": ["d1.tsv", "d2.tsv"], "label_names": "negative, positive",
                        "method": "lora", "lora_target_modules": "query,value"})
    assert cfg.train == ["a.tsv"] and cfg.dev == ["d1.tsv", "d2.tsv"]
    assert cfg.label_names == ["negative", "positive"] and cfg.lora_target_modules == ["query", "value"]
    with pytest.raises(ConfigError, match="method"):
        build_config({"method": "adapter"})
    with pytest.raises(ConfigError, match="lora_r"):
        build_config({"lora_r": "eight"})


def test_deepspeed_config_is_checked_before_anything_runs(tmp_path: Path) -> None:
    import importlib.util
    import json

    from simpair.errors import ConfigError
    from simpair.training.common import check_deepspeed

    assert check_deepspeed(None) is None
    with pytest.raises(ConfigError, match="no such file"):
        check_deepspeed(str(tmp_path / "missing.json"))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        check_deepspeed(str(bad))
    shipped = ROOT / "configs" / "deepspeed-zero2.json"
    assert json.loads(shipped.read_text())["zero_optimization"]["stage"] == 2
    if importlib.util.find_spec("deepspeed") is None:
        with pytest.raises(ConfigError, match="pip install deepspeed"):
            check_deepspeed(str(shipped))
    else:
        assert check_deepspeed(str(shipped)) == str(shipped)


def test_sample_weights_from_flags_and_yaml_and_checked_against_the_files(tmp_path: Path) -> None:
    from simpair.training.common import check_run

    assert build_config({"sample_weights": "1, 2.5"}).sample_weights == [1.0, 2.5]  # --sample-weights 1,2.5
    assert load_config(write(tmp_path / "c.yaml", "sample_weights: [1, 3]\n")).sample_weights == [1.0, 3.0]
    with pytest.raises(ConfigError, match="'sample_weights' must be a list of numbers, got 'x'"):
        build_config({"sample_weights": "1,x"})
    for weights in ([1.0], [1.0, 0.0]):
        cfg = build_config({"train": ["a.tsv", "b.tsv"], "out": str(tmp_path / "m"), "sample_weights": weights})
        with pytest.raises(ConfigError, match=r"sample_weights: expected one weight > 0 per train file \(2 files\)"):
            check_run(cfg, progress=False)
