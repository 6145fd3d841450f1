"""The ``simpair`` command group and what its commands share: error handling, JSON or table output, the
runtime options. The commands live in the sibling modules, by role; ``simpair.cli`` registers them all.
"""
from __future__ import annotations

import json
import logging
import os
import sys
import warnings
from typing import Any

import click

from ..backend.runtime import BACKENDS, PRECISIONS
from ..errors import SimpairError


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


def emit(obj: Any, as_json: bool, render: Any = None) -> None:
    if as_json or render is None:
        click.echo(json.dumps(obj, indent=2, ensure_ascii=False, default=str))
    else:
        render(obj)


def given(**options: Any) -> dict[str, Any]:
    """The options the user gave (not None), so that the API's own defaults apply to the rest."""
    return {k: v for k, v in options.items() if v is not None}


def print_table(title: str, rows: list[tuple[str, Any]]) -> None:
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


def engine_options(fn: Any) -> Any:
    """--engine / --ray-address / --workers: where batch work runs (simpair.engines)."""
    fn = click.option("--workers", type=click.IntRange(min=1), default=None,
                      help="--engine ray: model replicas (default: one per --threads CPUs of the cluster).")(fn)
    fn = click.option("--ray-address", default=None, help="--engine ray: the cluster to join ('auto', "
                      "ray://HOST:10001); default: a local Ray on this machine.")(fn)
    return click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
                        help="local: this process; ray: Ray workers, one model each, results in input order "
                        "(pip install 'simpair[ray]').")(fn)


def runtime_options(fn: Any) -> Any:
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
