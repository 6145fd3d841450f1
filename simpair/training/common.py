"""What both trainers share: reading and recording the data files, the Trainer arguments, checkpoints and
``--resume``, DeepSpeed checks, distributed ranks, and what simpair.json records about the run."""
from __future__ import annotations

import json
import os
import platform
import shutil
from pathlib import Path
from typing import Any

from ..backend.runtime import use_bf16
from ..config import TrainConfig
from ..errors import ConfigError, InputError
from ..readers import Columns, PairData, pair_stats, read_pairs
from ..utils import check_out_dir, file_sha256, read_json


def check_run(cfg: TrainConfig, progress: bool) -> None:
    """Refuse a run that cannot succeed before any data or model loads: no data, no output, an output
    directory that is not a simpair model, a temperature with one train file, a DeepSpeed config that is missing."""
    if not cfg.train:
        raise ConfigError("train: no training data; pass --train FILE or set 'train' in the config")
    if cfg.sample_temperature and len(as_list(cfg.train)) < 2:
        raise ConfigError("sample_temperature: mixes several train files; only one was given")
    weights = cfg.sample_weights
    if weights is not None and (len(weights) != len(as_list(cfg.train)) or min(weights, default=0) <= 0):
        raise ConfigError(f"sample_weights: expected one weight > 0 per train file ({len(as_list(cfg.train))} "
                          f"files), got {weights}")
    if not cfg.out:
        raise ConfigError("train: no output directory; pass --out DIR or set 'out' in the config")
    check_out_dir(cfg.out)
    check_deepspeed(cfg.deepspeed)
    if cfg.threads:
        import torch

        torch.set_num_threads(cfg.threads)
    if not progress:
        from datasets.utils.logging import disable_progress_bar

        disable_progress_bar()


def resume_point(cfg: TrainConfig, resume: bool) -> tuple[Path, str | None]:
    """(checkpoint folder, checkpoint to resume from): with ``resume`` the newest complete one (an error if
    there is none); without, older checkpoints of a previous run are cleared."""
    ckpt = checkpoint_dir(cfg)
    resume_from = last_checkpoint(ckpt) if resume else None
    if resume and resume_from is None:
        raise ConfigError(f"--resume: no checkpoint in {ckpt}; start without --resume")
    if not resume and ckpt.is_dir() and process_rank() == 0:
        for old in ckpt.glob("checkpoint-*"):
            shutil.rmtree(old, ignore_errors=True)
    return ckpt, resume_from


def as_list(paths: str | list[str] | None) -> list[str]:
    if paths is None:
        return []
    return [paths] if isinstance(paths, str) else list(paths)


def data_record(paths: str | list[str] | None, counts: list[int] | None = None) -> list[dict[str, Any]]:
    """Path, SHA-256 and size of each data file, for simpair.json."""
    files = as_list(paths)
    return [{"path": str(p), "sha256": file_sha256(p), **({"rows": counts[i]} if counts else {})}
            for i, p in enumerate(files)]


def read_joined(paths: str | list[str], cfg: TrainConfig, task: str) -> PairData:
    """Read one pair file or several (concatenated; all must share one task)."""
    datas = read_files(paths, cfg, task)
    if len(datas) == 1:
        return datas[0]
    pairs = [p for d in datas for p in d.pairs]
    return PairData(", ".join(d.path for d in datas), pairs, datas[0].task, datas[0].fmt, pair_stats(pairs))


def read_files(paths: str | list[str], cfg: TrainConfig, task: str) -> list[PairData]:
    """Each pair file read and validated on its own; all must hold the same task."""
    cols = Columns(cfg.text_a_column, cfg.text_b_column, cfg.label_column)
    lo, hi = cfg.score_range
    datas = [read_pairs(p, fmt=cfg.format, task=task, columns=cols, score_range=(lo, hi)) for p in as_list(paths)]
    first = datas[0]
    for d in datas[1:]:
        if d.task != first.task:
            raise InputError(d.path, None, f"holds {d.task} labels but {first.path} holds {first.task} labels")
    return datas


def checkpoint_dir(cfg: TrainConfig) -> Path:
    return Path(cfg.checkpoint_dir) if cfg.checkpoint_dir else Path(f"{cfg.out}.checkpoints")


def trainer_kwargs(cfg: TrainConfig, ckpt: Path, evaluate: bool, metric: str | None) -> dict[str, Any]:
    """TrainingArguments shared by the cross-encoder and bi-encoder trainers."""
    strategy = "steps" if cfg.eval_steps else "epoch"
    return dict(
        output_dir=str(ckpt),
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.eval_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        learning_rate=cfg.learning_rate,
        weight_decay=cfg.weight_decay,
        warmup_steps=cfg.warmup_ratio,
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        lr_scheduler_type=cfg.lr_scheduler,
        eval_strategy=strategy if evaluate else "no",
        save_strategy=strategy,
        eval_steps=cfg.eval_steps,
        save_steps=cfg.eval_steps,
        save_total_limit=cfg.save_total_limit,
        load_best_model_at_end=evaluate,
        metric_for_best_model=metric if evaluate else None,
        greater_is_better=True,
        logging_steps=cfg.logging_steps,
        label_smoothing_factor=cfg.label_smoothing,
        bf16=use_bf16(cfg.bf16),
        seed=cfg.seed,
        data_seed=cfg.seed,
        report_to=["tensorboard"],
        ddp_find_unused_parameters=False,  # every trainable parameter takes part in the forward pass
        deepspeed=cfg.deepspeed,  # checked by check_deepspeed before any data or model loads
    )


def check_deepspeed(path: str | None) -> str | None:
    """The DeepSpeed config path, once it is known to exist and DeepSpeed to be installed."""
    if not path:
        return None
    if not Path(path).is_file():
        raise ConfigError(f"deepspeed: {path}: no such file; expected a DeepSpeed JSON config "
                          "(see configs/deepspeed-zero2.json)")
    try:
        json.loads(Path(path).read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ConfigError(f"deepspeed: {path}: not valid JSON ({exc})") from None
    import importlib.util

    if importlib.util.find_spec("deepspeed") is None:
        raise ConfigError(f"deepspeed: {path} needs the deepspeed package (pip install deepspeed), which "
                          "targets GPUs; on CPUs use plain DDP (torchrun) without it")
    return path


def mean_train_loss(trainer: Any, loss: float) -> float:
    """The mean training loss per example. Under DDP the Trainer scales each rank's loss by the number of
    processes (so that averaged gradients come out right) and reports that scaled sum; undo it."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and getattr(trainer.args, "average_tokens_across_devices", False):
        return float(loss) / world
    return float(loss)


def process_rank() -> int:
    """This process's rank under torchrun / accelerate launch (0 when not distributed)."""
    return int(os.environ.get("RANK", "0"))


def last_checkpoint(ckpt: Path) -> str | None:
    """The newest complete checkpoint: the Trainer writes trainer_state.json last, so a checkpoint whose
    state file is missing or cut short (a kill during the save) is skipped for the one before it."""
    if not ckpt.is_dir():
        return None
    found = [(int(p.name.split("-")[1]), p) for p in ckpt.glob("checkpoint-*")
             if p.is_dir() and p.name.split("-")[1].isdigit()]
    for _, path in sorted(found, reverse=True):
        try:
            json.loads((path / "trainer_state.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        return str(path)
    return None


def record_base(adapter_dir: Path, base: str) -> None:
    """Name the base in adapter_config.json as simpair resolves it (e5-small), not a cache path."""
    path = adapter_dir / "adapter_config.json"
    cfg = read_json(path, "a PEFT adapter config")
    cfg["base_model_name_or_path"] = base
    path.write_text(json.dumps(cfg, indent=2), encoding="utf-8")


def versions() -> dict[str, str]:
    import sklearn
    import tokenizers
    import torch
    import transformers

    out = {"python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__,
           "tokenizers": tokenizers.__version__, "scikit-learn": sklearn.__version__}
    try:
        import datasets

        out["datasets"] = datasets.__version__
    except ImportError:
        pass
    return out
