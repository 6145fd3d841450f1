"""Training on tiny random BERT and ERNIE models: train, save, reload, predict, freeze, resume."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import write

from simpair.config import build_config
from simpair.cross_encoder import CrossEncoder, default_model
from simpair.errors import ConfigError, InputError
from simpair.training.sampling import temperature_counts
from simpair.training import train


def _cfg(model: Path, out: Path, train_file: Path, dev_file: Path, **kw: object):
    base = dict(model=str(model), train=str(train_file), dev=str(dev_file), out=str(out), max_steps=8,
                eval_steps=4, batch_size=16, learning_rate=1e-3, max_length=48, bf16="no", logging_steps=2)
    base.update(kw)
    return build_config(base)


@pytest.mark.parametrize("kind", ["bert", "ernie"])
def test_train_save_reload_predict(kind: str, tiny_bert: Path, tiny_ernie: Path, tmp_path: Path,
                                   train_file: Path, dev_file: Path) -> None:
    from transformers import AutoModelForSequenceClassification

    model = tiny_bert if kind == "bert" else tiny_ernie
    out = tmp_path / "out"
    meta = train(_cfg(model, out, train_file, dev_file), progress=False)
    assert meta["global_step"] == 8 and meta["task"] == "classification"
    assert 0.0 <= meta["dev_metrics"]["accuracy"] <= 1.0 and meta["dev_metrics"]["n"] == 108
    # a plain transformers directory, loaded through the Auto classes
    loaded = AutoModelForSequenceClassification.from_pretrained(str(out))
    expected = "ErnieForSequenceClassification" if kind == "ernie" else "BertForSequenceClassification"
    assert type(loaded).__name__ == expected
    assert loaded.config.id2label == {0: "different", 1: "same"}
    saved = json.loads((out / "simpair.json").read_text())
    assert saved["threshold"] == meta["threshold"] and saved["data"]["train"][0]["sha256"]
    assert saved["versions"]["transformers"] and saved["seed"] == 42
    assert not list(tmp_path.glob(".out.tmp-*"))  # nothing half-written left behind
    # reloaded predictions are deterministic and equal the metrics stored at training time
    ce = CrossEncoder(str(out), bf16=False)  # trained with bf16="no": score the same way
    pairs = [(line.split("\t")[0], line.split("\t")[1]) for line in dev_file.read_text().splitlines()[1:]]
    p1, p2 = ce.predict(pairs), CrossEncoder(str(out), bf16=False).predict(pairs)
    np.testing.assert_allclose(p1, p2, rtol=1e-6)
    golds = np.array([int(line.split("\t")[2]) for line in dev_file.read_text().splitlines()[1:]])
    acc = ((p1 >= ce.threshold) == golds).mean()
    assert acc == pytest.approx(meta["dev_metrics"]["accuracy"], abs=1e-9)


def test_training_learns_the_sample(tiny_bert: Path, tmp_path: Path, train_file: Path) -> None:
    """Loss must fall on the training data: the model really trains."""
    cfg = _cfg(tiny_bert, tmp_path / "o", train_file, train_file, max_steps=120, eval_steps=120, learning_rate=3e-3,
               train_limit=32, dev_limit=32, batch_size=8, warmup_ratio=0.0)
    meta = train(cfg, progress=False)
    losses = [h["loss"] for h in meta["log_history"] if "loss" in h]
    assert losses[-1] < losses[0] * 0.8
    assert meta["dev_metrics"]["accuracy"] > 0.7


def test_freezing(tiny_bert: Path, tmp_path: Path, train_file: Path, dev_file: Path) -> None:
    from safetensors.torch import load_file

    out = tmp_path / "frozen"
    meta = train(_cfg(tiny_bert, out, train_file, dev_file, freeze_embeddings="yes", freeze_layers=1), progress=False)
    assert meta["parameters"]["frozen_word_embeddings"] is True
    before = load_file(str(tiny_bert / "model.safetensors"))
    after = load_file(str(out / "model.safetensors"))
    key = "embeddings.word_embeddings.weight"
    assert np.array_equal(before[key].numpy(), after["bert." + key].numpy())
    l0 = "encoder.layer.0.attention.self.query.weight"
    l1 = "encoder.layer.1.attention.self.query.weight"
    assert np.array_equal(before[l0].numpy(), after["bert." + l0].numpy())
    assert not np.array_equal(before[l1].numpy(), after["bert." + l1].numpy())


def test_freeze_too_many_layers(tiny_bert: Path, tmp_path: Path, train_file: Path, dev_file: Path) -> None:
    with pytest.raises(ConfigError, match="freeze_layers=5"):
        train(_cfg(tiny_bert, tmp_path / "x", train_file, dev_file, freeze_layers=5), progress=False)


def test_regression_task(tiny_bert: Path, tmp_path: Path) -> None:
    rows = [{"sentence1": f"问题{i}", "sentence2": f"问题{i % 7}", "score": float(i % 6)} for i in range(60)]
    path = write(tmp_path / "sts.jsonl", "\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n")
    meta = train(_cfg(tiny_bert, tmp_path / "reg", path, path), progress=False)
    assert meta["task"] == "regression" and "spearman" in meta["dev_metrics"]
    ce = CrossEncoder(str(tmp_path / "reg"))
    assert ce.task == "regression" and "score" in ce.match("问题1", "问题1")


def test_bad_data_fails_before_training(tiny_bert: Path, tmp_path: Path, dev_file: Path) -> None:
    bad = write(tmp_path / "bad.tsv", "a\tb\t1\nc\td\tyes\n")
    out = tmp_path / "never"
    with pytest.raises(InputError, match="bad.tsv:2"):
        train(_cfg(tiny_bert, out, bad, dev_file), progress=False)
    assert not out.exists()


class _Interrupt(Exception):
    pass


def test_resume_after_interruption(tiny_bert: Path, tmp_path: Path, train_file: Path, dev_file: Path) -> None:
    from transformers import TrainerCallback

    class StopAt(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001, ANN003
            if state.global_step == 6:
                raise _Interrupt

    out = tmp_path / "run"
    cfg = _cfg(tiny_bert, out, train_file, dev_file, max_steps=10, eval_steps=4)
    with pytest.raises(_Interrupt):
        train(cfg, progress=False, callbacks=[StopAt()])
    assert not out.exists()
    assert (Path(f"{out}.checkpoints") / "checkpoint-4").is_dir()
    class Record(TrainerCallback):
        steps: list[int] = []

        def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001, ANN003
            self.steps.append(state.global_step)

    resumed = train(cfg, resume=True, progress=False, callbacks=[Record()])
    assert resumed["global_step"] == 10
    assert Record.steps == [5, 6, 7, 8, 9, 10]  # continued after checkpoint-4, did not restart
    straight = train(build_config({**cfg.to_dict(), "out": str(tmp_path / "straight"),
                                   "checkpoint_dir": str(tmp_path / "straight.ckpt")}), progress=False)
    assert resumed["dev_metrics"]["roc_auc"] == pytest.approx(straight["dev_metrics"]["roc_auc"], abs=0.02)


def test_resume_without_checkpoint(tiny_bert: Path, tmp_path: Path, train_file: Path, dev_file: Path) -> None:
    with pytest.raises(ConfigError, match="no checkpoint"):
        train(_cfg(tiny_bert, tmp_path / "none", train_file, dev_file), resume=True, progress=False)


def test_training_never_moves_the_default_matcher(tiny_bert: Path, tmp_path: Path, train_file: Path,
                                                  dev_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SIMPAIR_MODEL", raising=False)
    before = default_model()
    out = tmp_path / "latest"
    train(_cfg(tiny_bert, out, train_file, dev_file, max_steps=2), progress=False)
    assert default_model() == before != str(out.resolve())
    monkeypatch.setenv("SIMPAIR_MODEL", "elsewhere")
    assert default_model() == "elsewhere"


def test_refuses_to_replace_a_foreign_directory(tiny_bert: Path, tmp_path: Path, train_file: Path,
                                                dev_file: Path) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="refusing to replace"):
        train(_cfg(tiny_bert, precious, train_file, dev_file), progress=False)
    assert (precious / "notes.txt").read_text() == "keep me"


def test_tensorboard_logs_and_early_stopping(tiny_bert: Path, tmp_path: Path, train_file: Path,
                                             dev_file: Path) -> None:
    out = tmp_path / "es"
    # learning rate 0: dev accuracy cannot improve, so patience 2 stops after 1 + 2 evaluations
    meta = train(_cfg(tiny_bert, out, train_file, dev_file, max_steps=40, eval_steps=2, learning_rate=0.0,
                      early_stopping_patience=2), progress=False)
    assert meta["global_step"] == 6
    events = list(Path(f"{out}.checkpoints").glob("runs/**/events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0


@pytest.mark.slow
def test_kill_9_then_resume_matches_an_uninterrupted_run(tiny_bert: Path, tmp_path: Path, train_file: Path,
                                                          dev_file: Path) -> None:
    """A real SIGKILL of `simpair train` after its second checkpoint; --resume ends where a straight run ends."""
    import signal
    import subprocess
    import sys
    import time

    def command(out: Path) -> list[str]:
        return [sys.executable, "-m", "simpair", "train", "--model", str(tiny_bert), "--train", str(train_file),
                "--dev", str(dev_file), "--out", str(out), "--max-steps", "60", "--eval-steps", "10",
                "--batch-size", "8", "--bf16", "no", "--seed", "7", "--json", "--quiet"]

    out = tmp_path / "killed"
    proc = subprocess.Popen(command(out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = Path(f"{out}.checkpoints") / "checkpoint-20" / "trainer_state.json"
    deadline = time.monotonic() + 240
    while not state.is_file() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "training ended before it could be killed"
    assert not out.exists()  # the model directory is written only at the very end
    resumed = subprocess.run(command(out) + ["--resume"], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    straight = subprocess.run(command(tmp_path / "straight"), capture_output=True, text=True, timeout=300)
    assert straight.returncode == 0, straight.stderr
    a, b = json.loads(resumed.stdout), json.loads(straight.stdout)
    assert a["global_step"] == b["global_step"] == 60
    # same seed, same data order, restored optimizer and RNG state: the same model up to float rounding
    for key in ("accuracy", "roc_auc", "f1"):
        assert a["dev_metrics"][key] == pytest.approx(b["dev_metrics"][key], abs=1e-6), key
    assert a["threshold"] == pytest.approx(b["threshold"], abs=1e-4)


@pytest.mark.slow
def test_ddp_two_gloo_processes_match_one(tiny_bert: Path, tmp_path: Path, train_file: Path, dev_file: Path) -> None:
    """torchrun with 2 CPU processes (gloo): training runs, only rank 0 writes and reports, and the result
    matches one process with the same global batch (2 x 8 = 16)."""
    import os
    import socket
    import subprocess
    import sys

    def command(out: Path, batch: int) -> list[str]:
        return ["-m", "simpair", "train", "--model", str(tiny_bert), "--train", str(train_file), "--dev",
                str(dev_file), "--out", str(out), "--max-steps", "20", "--eval-steps", "10", "--batch-size",
                str(batch), "--bf16", "no", "--seed", "3", "--json", "--quiet"]

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                          "--master_port", str(port), *command(tmp_path / "ddp" / "model", 8)],
                         capture_output=True, text=True, timeout=400, env=env)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    one = subprocess.run([sys.executable, *command(tmp_path / "one" / "model", 16)], capture_output=True, text=True,
                         timeout=400, env=env)
    assert one.returncode == 0, one.stderr[-3000:]
    a = json.loads(ddp.stdout)  # one JSON object: rank 1 printed nothing
    b = json.loads(one.stdout)
    assert sorted(p.name for p in (tmp_path / "ddp").iterdir()) == ["model", "model.checkpoints"]
    assert (tmp_path / "ddp" / "model" / "model.safetensors").is_file()
    assert a["global_step"] == b["global_step"] == 20 and a["train_pairs"] == b["train_pairs"]
    # the same number of examples per step, gradients averaged over the ranks; the batches differ (the
    # distributed sampler splits the shuffled order), so the losses agree only closely (seen 1e-4 and 0.012)
    assert a["train_loss"] == pytest.approx(b["train_loss"], abs=0.03)
    assert a["dev_metrics"]["roc_auc"] == pytest.approx(b["dev_metrics"]["roc_auc"], abs=0.03)


def test_rdrop_and_label_smoothing_train_and_refuse_regression(tiny_bert: Path, tmp_path: Path, train_file: Path,
                                                                dev_file: Path) -> None:
    from simpair.training.trainers import rdrop_trainer

    meta = train(_cfg(tiny_bert, tmp_path / "rdrop", train_file, dev_file, max_steps=4, rdrop_alpha=1.0,
                      label_smoothing=0.1), progress=False)
    assert meta["global_step"] == 4 and meta["config"]["rdrop_alpha"] == 1.0 and np.isfinite(meta["train_loss"])
    # the R-Drop loss: mean cross-entropy of two passes plus alpha times their symmetric KL
    import torch
    from transformers import AutoModelForSequenceClassification, Trainer, TrainingArguments

    model = AutoModelForSequenceClassification.from_pretrained(str(tiny_bert), num_labels=2).train()
    trainer = rdrop_trainer(Trainer, 0.0)(model=model, args=TrainingArguments(str(tmp_path / "t"), use_cpu=True,
                                                                                report_to=[]))
    batch = {"input_ids": torch.tensor([[2, 5, 6, 3], [2, 7, 8, 3]]), "attention_mask": torch.ones(2, 4, dtype=torch.long),
             "labels": torch.tensor([0, 1])}
    torch.manual_seed(0)
    with_zero = trainer.compute_loss(model, dict(batch))
    assert torch.isfinite(with_zero) and with_zero > 0
    trainer_kl = rdrop_trainer(Trainer, 10.0)(model=model, args=TrainingArguments(str(tmp_path / "t2"), use_cpu=True,
                                                                                    report_to=[]))
    torch.manual_seed(0)
    assert trainer_kl.compute_loss(model, dict(batch)) > with_zero  # same dropout masks, plus a positive KL term
    with pytest.raises(ConfigError, match="R-Drop"):
        train(build_config({**_cfg(tiny_bert, tmp_path / "reg", train_file, dev_file).to_dict(), "task": "regression",
                            "rdrop_alpha": 1.0}), progress=False)


def test_several_domains_mixed_evaluated_per_file_and_continued(tiny_bert: Path, tmp_path: Path,
                                                                train_file: Path, dev_file: Path) -> None:
    """Two train files mixed by temperature, two dev files scored one by one (best checkpoint by their mean,
    one threshold for both), then --init continues from that model."""
    lines = train_file.read_text(encoding="utf-8").splitlines()
    small = write(tmp_path / "small" / "train.tsv", "\n".join(lines[:41]) + "\n")  # 40 pairs
    dev_lines = dev_file.read_text(encoding="utf-8").splitlines()
    dev2 = write(tmp_path / "other" / "dev.tsv", "\n".join(dev_lines[:31]) + "\n")
    cfg = _cfg(tiny_bert, tmp_path / "multi", train_file, dev_file, train=[str(train_file), str(small)],
               dev=[str(dev_file), str(dev2)], sample_temperature=2.0, sample_size=400)
    meta = train(cfg, progress=False)
    mix_rows = meta["data"]["train_mix"]
    assert [m["rows"] for m in mix_rows] == [522, 40]
    assert [m["drawn"] for m in mix_rows] == temperature_counts([522, 40], 2.0, 400)  # 313 and 87
    assert meta["train_pairs"] == 400 and mix_rows[1]["drawn"] > 40  # the small file repeats
    per_file = meta["dev_metrics_per_file"]
    assert set(per_file) == {str(dev_file), str(dev2)}
    by_step: dict[int, dict] = {}
    for h in meta["log_history"]:
        by_step.setdefault(h["step"], {}).update(h)
    evals = [h for h in by_step.values() if "eval_mean_accuracy" in h]
    assert len(evals) == 2 and all(h["eval_mean_accuracy"] == pytest.approx(
        (h["eval_data_dev_accuracy"] + h["eval_other_dev_accuracy"]) / 2) for h in evals)
    assert "mean accuracy over 2 dev files" in meta["threshold_rule"]
    assert all(per_file[str(p)]["threshold"] == meta["threshold"] for p in (dev_file, dev2))

    probe = [("问题一", "问题二"), ("a", "b")]
    before = CrossEncoder(str(tmp_path / "multi"), bf16=False).predict(probe)
    same = train(_cfg(tiny_bert, tmp_path / "same", small, dev2, init=str(tmp_path / "multi"), max_steps=2,
                      eval_steps=2, learning_rate=1e-9), progress=False)
    assert same["init"] == str(tmp_path / "multi") and same["base_model"] == str(tiny_bert)
    # with a vanishing learning rate the continued model scores as the one it started from ...
    np.testing.assert_allclose(CrossEncoder(str(tmp_path / "same"), bf16=False).predict(probe), before, atol=1e-4)
    # ... and with a real one it trains: every parameter but the frozen word embeddings
    moved = train(_cfg(tiny_bert, tmp_path / "moved", small, dev2, init=str(tmp_path / "multi"), max_steps=4,
                       eval_steps=4, learning_rate=1e-2, freeze_embeddings="no"), progress=False)
    counts = moved["parameters"]
    assert counts["trainable_parameters"] == counts["total_parameters"]
    assert np.abs(CrossEncoder(str(tmp_path / "moved"), bf16=False).predict(probe) - before).max() > 1e-3


def test_init_refuses_a_model_of_another_task(tiny_bert: Path, tmp_path: Path, train_file: Path,
                                              dev_file: Path) -> None:
    sts = write(tmp_path / "sts.tsv", "sentence1\tsentence2\tscore\n一\t二\t3\n三\t四\t1\n五\t六\t4\n")
    reg = train(_cfg(tiny_bert, tmp_path / "reg", sts, sts, max_steps=1, eval_steps=1), progress=False)
    assert reg["task"] == "regression"
    with pytest.raises(ConfigError, match="init: .* trained for regression"):
        train(_cfg(tiny_bert, tmp_path / "x", train_file, dev_file, init=str(tmp_path / "reg")), progress=False)
    assert not (tmp_path / "x").exists()
