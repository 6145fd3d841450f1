"""The commands that score pairs and texts: ``eval``, ``match``, ``calibrate``, ``sentiment``."""
from __future__ import annotations

import contextlib
import json
import sys
import time
from typing import Any

import click

from ..config import MODEL_KINDS
from ..errors import SimpairError
from ..readers.pairs import FORMATS, TASKS
from .app import emit, engine_options, main, print_table, runtime_options


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
@runtime_options
@engine_options
@click.option("--json", "as_json", is_flag=True)
def evaluate(model: str, data: tuple[str, ...], fmt: str, task: str, threshold: float | None, symmetric: bool,
             batch_size: int, report_dir: str | None, kind: str, backend: str, precision: str,
             threads: int | None, engine: str, ray_address: str | None, workers: int | None, as_json: bool) -> None:
    """Metrics of MODEL on the labelled pairs (or, for a classifier, labelled texts) in DATA; several DATA
    files (dev sets of several domains) are scored one by one, with their mean."""
    from ..engines import make_engine
    from ..evaluation import evaluate as run_eval

    run = {"backend": backend, "precision": precision, "threads": threads}
    on = {"engine": make_engine(engine, ray_address, workers, run)} if engine != "local" else {}
    result = run_eval(model, data[0] if len(data) == 1 else list(data), kind=kind, fmt=fmt, task=task,
                      threshold=threshold, symmetric=symmetric, batch_size=batch_size, report_dir=report_dir,
                      progress=True, **run, **on)

    def render(r: dict[str, Any]) -> None:
        for one in r.get("files", [r]):
            _render_eval(one)
        if "mean" in r:
            print_table(f"simpair eval {r['model']}: mean over {len(r['files'])} files",
                   [(k, v) for k, v in r["mean"].items() if not k.endswith("_files")])

    emit(result, as_json, render)


def _render_eval(r: dict[str, Any]) -> None:
    """One file's metrics: a pair model's, or a classifier's with per-class F1 and the confusion matrix."""
    m = r["metrics"]
    if r["kind"] == "classifier":
        rows = [(k, m[k]) for k in ("n", "accuracy", "macro_f1", "roc_auc") if m.get(k) is not None]
        rows += [(f"{name} f1", v["f1"]) for name, v in m["per_class"].items()]
        rows += [("confusion (rows gold)", str(m["confusion_matrix"])), ("texts/s", r["texts_per_second"])]
    else:
        rows = [(k, v) for k, v in m.items() if v is not None] + [("pairs/s", r["pairs_per_second"])]
    print_table(f"simpair eval {r['model']} on {r['data']}", rows)


# --------------------------------------------------------------------------- match


@main.command()
@click.argument("texts", nargs=-1)
@click.option("--model", default=None, help="Model directory or name (default: $SIMPAIR_MODEL, else the one "
              "chosen by simpair models --use, else the bundled matcher).")
@click.option("--file", "file_", type=str, default=None, help="Score every pair in this file (any supported format).")
@click.option("--symmetric", is_flag=True, help="Average the scores of (a, b) and (b, a).")
@click.option("--batch-size", type=int, default=64)
@click.option("--domain", default=None, help="Decide with the threshold calibrated under this name "
              "(simpair calibrate MODEL DEV --name NAME).")
@click.option("--out", "out", default=None, help="--file: write the rows to this file (JSON lines with --json, "
              "else TSV), atomically, instead of standard output.")
@runtime_options
@engine_options
@click.option("--json", "as_json", is_flag=True)
def match(texts: tuple[str, ...], model: str | None, file_: str | None, symmetric: bool, batch_size: int,
          domain: str | None, out: str | None, backend: str, precision: str, threads: int | None, engine: str,
          ray_address: str | None, workers: int | None, as_json: bool) -> None:
    """Are two questions the same? 'simpair match "q1" "q2"', or --file pairs.tsv."""
    from ..cross_encoder import CrossEncoder, default_model
    from ..engines import make_engine

    if file_ is None and len(texts) != 2:
        raise click.UsageError('give two texts: simpair match "question 1" "question 2" (or --file FILE)')
    if file_ is not None and texts:
        raise click.UsageError("give either two texts or --file, not both")
    if file_ is None and (engine != "local" or out is not None):
        raise click.UsageError("--engine and --out are for --file")
    name = model or default_model()
    if name is None:
        raise SimpairError("match: no model; train one (simpair train --config configs/quick.yaml), "
                           "pass --model DIR or set SIMPAIR_MODEL")
    run = {"backend": backend, "precision": precision, "threads": threads}
    if engine != "local":
        assert file_ is not None
        ray = make_engine(engine, ray_address, workers, run)
        _match_file(ray.cross_encoder(name, domain), file_, symmetric, batch_size, as_json, out)
        return
    ce = CrossEncoder(name, bulk=file_ is not None, domain=domain, **run)
    if not ce.trained:
        click.echo(f"warning: {name} has no simpair.json: its classification head may be untrained", err=True)
    if file_ is None:
        result = ce.match(texts[0], texts[1], symmetric=symmetric)

        def render(r: dict[str, Any]) -> None:
            if "probability" in r:
                click.echo(f"{r['label']}\tp={r['probability']:.4f}\t(threshold {r['threshold']:.4f}; "
                           f"model {r['model']})")
            else:
                click.echo(f"score={r['score']:.4f}\t(model {r['model']})")

        emit(result, as_json, render)
        return
    _match_file(ce, file_, symmetric, batch_size, as_json, out)


def _match_file(ce: Any, path: str, symmetric: bool, batch_size: int, as_json: bool, out: str | None) -> None:
    """Each scored row as it comes (a JSON line or a TSV line), to standard output or, atomically, to ``out``."""
    from ..utils import atomic_writer

    t0 = time.perf_counter()
    n = 0
    with atomic_writer(out) if out else contextlib.nullcontext(None) as fh:
        for row in ce.match_file(path, batch_size=batch_size, symmetric=symmetric):
            if as_json:
                line = json.dumps(row, ensure_ascii=False)
            else:
                label = ("same" if row["same"] else "different") if "same" in row else ""
                score = row.get("probability", row.get("score"))
                line = f"{row['line']}\t{score:.4f}\t{label}\t{row['text_a']}\t{row['text_b']}"
            if fh is None:
                click.echo(line)
            else:
                fh.write(line + "\n")
            n += 1
    seconds = time.perf_counter() - t0
    click.echo(f"scored {n} pairs with {ce.name} in {seconds:.2f}s ({n / max(seconds, 1e-9):.1f} pairs/s)", err=True)


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
@runtime_options
@click.option("--json", "as_json", is_flag=True)
def calibrate(model: str, data: str, name: str | None, metric: str, dry_run: bool, batch_size: int, backend: str,
              precision: str, threads: int | None, as_json: bool) -> None:
    """Re-tune MODEL's decision threshold on the labelled pairs in DATA, without retraining."""
    from ..calibration import calibrate as run_calibrate

    result = run_calibrate(model, data, name=name, metric=metric, batch_size=batch_size, backend=backend,
                           precision=precision, threads=threads, write=not dry_run, progress=True)

    def render(r: dict[str, Any]) -> None:
        rows = [("pairs", r["pairs"]), ("global threshold", r["global_threshold"]),
                ("accuracy at global", r["accuracy_at_global"]), ("calibrated threshold", r["threshold"]),
                ("accuracy at calibrated", r["accuracy_at_calibrated"])]
        rows += [(f"held-out accuracy, tuned on {c['pairs']}", f"{c['held_out_accuracy_mean']:.4f} ± "
                  f"{c['held_out_accuracy_std']:.4f}") for c in r["sample_curve"]]
        rows.append(("written", r["written"] or "nothing (--dry-run)"))
        print_table(f"simpair calibrate {r['model']}" + (f" --name {r['name']}" if r["name"] else ""), rows)

    emit(result, as_json, render)


# --------------------------------------------------------------------------- sentiment


@main.command()
@click.argument("texts", nargs=-1)
@click.option("--model", default=None,
              help="Classifier: a directory, a hub id, or the bundled 'sentiment' (default; $SIMPAIR_SENTIMENT_MODEL).")
@click.option("--file", "file_", type=str, default=None, help="Classify every line of this file ('-' for stdin).")
@click.option("--explain", is_flag=True, help="Show the pipeline's stages for one text: token ids, logits, softmax.")
@click.option("--all-scores", is_flag=True, help="Every class's probability, not only the best.")
@click.option("--batch-size", type=int, default=32)
@runtime_options
@click.option("--json", "as_json", is_flag=True)
def sentiment(texts: tuple[str, ...], model: str | None, file_: str | None, explain: bool, all_scores: bool,
              batch_size: int, backend: str, precision: str, threads: int | None, as_json: bool) -> None:
    """Sentiment of each TEXT with transformers' pipeline("sentiment-analysis")."""
    from ..sentiment import Sentiment

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

        emit(result, as_json, render_explain)
        return
    rows = clf(items, batch_size=batch_size, top_k=None if all_scores else 1)
    if as_json:
        emit(rows if file_ is not None or len(rows) > 1 else rows[0], True)
        return
    for r in rows:
        # the tutorial's demo prints [{'label': ..., 'score': ...}]
        extra = "\t" + json.dumps(r["scores"], ensure_ascii=False) if "scores" in r else ""
        click.echo(f"{r['label']}\t{r['score']:.4f}\t{r['text']}{extra}")


def _read_lines(path: str) -> list[str]:
    """Non-empty lines of a UTF-8 file (or stdin), with the file and line named on bad input."""
    from ..readers import read_text_lines

    return read_text_lines(path, sys.stdin.buffer.read() if path == "-" else None)
