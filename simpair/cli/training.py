"""The training commands: ``train`` (every model kind, from flags or a YAML config) and ``average``."""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import click

from ..config import CHOICES
from .app import emit, main, print_table

# --------------------------------------------------------------------------- train

_TRAIN_FLAGS = [
    ("--train", "train", str, "Training data (TSV, CSV, JSONL or STS file); repeat to concatenate files."),
    ("--dev", "dev", str, "Dev data: evaluation, best checkpoint and threshold; repeat for several files."),
    ("--out", "out", str, "Output model directory."),
    ("--model", "model", str, "Base model: e5-small (default), minilm-en, a directory or a hub id."),
    ("--init", "init", str, "Continue from this trained pair model (e.g. matcher), its head included."),
    ("--sample-temperature", "sample_temperature", float,
     "Several --train files: draw file i in proportion to rows_i^(1/T) (1: concatenate, 2: square root)."),
    ("--sample-size", "sample_size", int, "Pairs drawn from the --train files in all (default: their total)."),
    ("--sample-weights", "sample_weights", str,
     "Several --train files: one weight per file, comma-separated (1,3,1), multiplying its share."),
    ("--kind", "kind", click.Choice(CHOICES["kind"]), "What to train (default cross-encoder)."),
    ("--bi-loss", "bi_loss", click.Choice(CHOICES["bi_loss"]), "Bi-encoder loss."),
    ("--prefix", "prefix", str, 'Bi-encoder text prefix (default "query: " for E5).'),
    ("--task", "task", click.Choice(CHOICES["task"]),
     "Pairs with 0/1 labels or scores (auto), or 'classify': single-text classification (label and text)."),
    ("--format", "format", click.Choice(CHOICES["format"]), "Input format."),
    ("--text-a-column", "text_a_column", str, "Column (name or 0-based index) of the first text."),
    ("--text-b-column", "text_b_column", str, "Column of the second text."),
    ("--label-column", "label_column", str, "Column of the label or score."),
    ("--text-column", "text_column", str, "classify: column of the text."),
    ("--label-names", "label_names", str, "classify: class names in id order, comma-separated (negative,positive)."),
    ("--max-length", "max_length", int, "Maximum tokens per pair."),
    ("--batch-size", "batch_size", int, "Training batch size."),
    ("--learning-rate", "learning_rate", float, "Peak learning rate."),
    ("--epochs", "epochs", float, "Training epochs."),
    ("--max-steps", "max_steps", int, "Stop after this many optimizer steps."),
    ("--warmup-ratio", "warmup_ratio", float, "Fraction of steps for linear warm-up."),
    ("--eval-steps", "eval_steps", int, "Evaluate and checkpoint every N steps (default: every epoch)."),
    ("--early-stopping-patience", "early_stopping_patience", int, "Stop after N evaluations without gain."),
    ("--seed", "seed", int, "Random seed."),
    ("--method", "method", click.Choice(CHOICES["method"]),
     "What trains: everything, all but frozen parts, LoRA, biases + head, a soft prompt or prefix."),
    ("--lora-r", "lora_r", int, "LoRA rank (default 16)."),
    ("--lora-alpha", "lora_alpha", float, "LoRA alpha (default 32)."),
    ("--lora-dropout", "lora_dropout", float, "LoRA dropout (default 0.1)."),
    ("--lora-target-modules", "lora_target_modules", str,
     "LoRA targets, comma-separated (default: query,key,value,dense)."),
    ("--num-virtual-tokens", "num_virtual_tokens", int, "Prompt/prefix tuning: virtual tokens (default 20)."),
    ("--freeze-embeddings", "freeze_embeddings", click.Choice(CHOICES["freeze_embeddings"]), "Freeze word embeddings."),
    ("--freeze-layers", "freeze_layers", int, "Freeze the first N encoder layers."),
    ("--bf16", "bf16", click.Choice(CHOICES["bf16"]), "bf16 autocast (auto: when the CPU supports it)."),
    ("--debias", "debias", click.Choice(CHOICES["debias"]),
     "Cross-encoder, 0/1 labels: 'overlap' trains against the word-overlap shortcut (product of experts)."),
    ("--checkpoint-dir", "checkpoint_dir", str, "Where checkpoints and TensorBoard logs go (default OUT.checkpoints)."),
    ("--threads", "threads", int, "Torch CPU threads."),
    ("--train-limit", "train_limit", int, "Use only the first N training pairs."),
    ("--dev-limit", "dev_limit", int, "Use only the first N dev pairs."),
]


_MULTIPLE = ("train", "dev")


def _train_options(fn: Any) -> Any:
    for flag, dest, typ, help_ in reversed(_TRAIN_FLAGS):
        if dest in _MULTIPLE:
            fn = click.option(flag, dest, type=typ, multiple=True, help=help_)(fn)
        else:
            fn = click.option(flag, dest, type=typ, default=None, help=help_)(fn)
    return fn


@main.command()
@click.option("--config", "config_path", type=str, help="YAML config (configs/*.yaml); flags override it.")
@_train_options
@click.option("--swap-augment/--no-swap-augment", default=None, help="Also train on (b, a) for every pair.")
@click.option("--resume", is_flag=True, help="Continue from the last checkpoint of an interrupted run.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def train(config_path: str | None, resume: bool, as_json: bool, quiet: bool, **flags: Any) -> None:
    """Fine-tune a cross-encoder (pairs), a bi-encoder or a text classifier; save a model directory."""
    from ..config import build_config, load_config
    from ..training import train as run_train

    overrides = {k: (list(v) if k in _MULTIPLE else v) for k, v in flags.items() if v not in (None, ())}
    cfg = load_config(config_path, overrides) if config_path else build_config(overrides)
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        result = run_train(cfg, resume=resume, progress=not (quiet or as_json))
    if result.get("rank"):  # distributed training: rank 0 reports for all
        return
    result.pop("log_history", None)

    def render(r: dict[str, Any]) -> None:
        dm = r.get("dev_metrics", {})
        rows = [(label, r[key]) for label, key in (
            ("model directory", "out"), ("kind", "kind"), ("base model", "base_model"), ("task", "task"),
            ("train pairs", "train_pairs"), ("train examples", "train_examples"), ("steps", "global_step"),
            ("train pairs/s", "train_pairs_per_second"), ("wall seconds", "wall_seconds")) if key in r]
        rows += [(f"dev {k}", v) for k, v in dm.items() if isinstance(v, (int, float)) and k != "n"]
        for path, m in (r.get("dev_metrics_per_file") or {}).items():
            rows += [(f"dev {k} ({Path(path).parent.name}/{Path(path).name})", m[k]) for k in ("accuracy", "macro_f1")
                     if isinstance(m.get(k), float)]
        if "parameters" in r:
            p = r["parameters"]
            rows.append(("trainable parameters", f"{p['trainable_parameters']:,} of {p['total_parameters']:,} "
                                                 f"({r.get('method', 'full')})"))
        if "saved_bytes" in r:
            from ..utils import human_size

            rows.append(("saved size", human_size(r["saved_bytes"])))
        if r.get("task") != "classify":
            rows.append(("threshold", r["threshold"]))
        print_table("simpair train", rows)

    emit(result, as_json, render)


@main.command()
@click.argument("models", nargs=-1, required=True)
@click.option("--out", required=True, help="Directory to write (atomically).")
@click.option("--weights", default=None, help="One weight per model, comma-separated (default: equal).")
@click.option("--dev", multiple=True, help="Dev file to pick the threshold on (repeat: the mean of their accuracies).")
@click.option("--dev-limit", type=int, default=1000, show_default=True, help="The first N pairs of each dev file.")
@click.option("--json", "as_json", is_flag=True)
def average(models: tuple[str, ...], out: str, weights: str | None, dev: tuple[str, ...], dev_limit: int,
            as_json: bool) -> None:
    """Average the weights of MODELS (one architecture, e.g. two training passes) into a new model."""
    from ..training.soup import average_models

    try:
        share = [float(w) for w in weights.split(",")] if weights else None
    except ValueError:
        raise click.BadParameter(f"expected numbers separated by commas, got {weights!r}", param_hint="--weights")
    result = average_models(list(models), out, share, list(dev) or None, dev_limit)

    def render(r: dict[str, Any]) -> None:
        rows = [(f"weight of {m['model']}", f"{m['weight']:.3f}") for m in r["averaged_from"]]
        rows += [("threshold", r["threshold"])] + [(f"dev accuracy ({Path(p).parent.name}/{Path(p).name})", a)
                                                   for p, a in (r["dev_accuracy_per_file"] or {}).items()]
        print_table(f"simpair average -> {r['out']}", rows)

    emit(result, as_json, render)
