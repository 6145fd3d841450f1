"""``simpair serve``: the app (FastAPI) and its runner (uvicorn).

Models load once, when the app is created; every scoring endpoint has a micro-batcher
(:mod:`.batching`); :mod:`.guard` checks host, key, body size and read time before anything is parsed;
refusals share one error shape (``detail``, ``error``, ``error_type``) and never echo the input back.
"""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from .batching import MicroBatcher, Overloaded, TimedOut
from .compat import compat_routes
from .guard import Guard
from .metrics import Metrics
from .routes import info_routes, label_routes, scoring_routes
from .schemas import Limits, error_body

LOG = logging.getLogger("simpair.server")
LOOPBACK = ("127.0.0.1", "localhost", "::1")
DEFAULT_MAX_BATCH = 64
# /match on OpenVINO takes at most this many pairs a model call: small batches pad little and keep the queue
# short. 50 clients (benchmarks/serve_load.py, the bundled matcher): max batch 4 / 8 / 16 / 64 gave
# 262 / 323 / 307 / 220 requests/s, p99 248 / 214 / 359 / 1,032 ms; on torch 8 loses to 64, so torch keeps 64.
OPENVINO_MATCH_BATCH = 8


@dataclass
class Models:
    """What a server answers with: a matcher, a searcher over an index, an encoder, a sentiment classifier
    (any may be off)."""

    matcher: Any = None
    searcher: Any = None
    classifier: Any = None
    encoder: Any = None
    index: str | None = None


@dataclass
class Context:
    """Everything the routes share."""

    models: Models
    limits: Limits
    batchers: dict[str, MicroBatcher]
    metrics: Metrics
    batching: dict[str, Any]
    keys: Sequence[str] = ()
    session: Any = None
    errors_seen: dict[str, float] = field(default_factory=dict)


def load_models(model: str | None, index: str | None, sentiment_model: str | None, load_sentiment: bool,
                run: dict[str, Any], domain: str | None = None, encoder: str | None = None) -> Models:
    """Every model the server needs, loaded once with the same backend/precision/threads settings (the
    sentiment pipeline runs on torch: an explicit ``--backend onnx`` / ``openvino`` is refused for it at start).
    The embeddings routes use ``encoder``, else the index's encoder."""
    from ..cross_encoder import CrossEncoder, default_model

    name = model or default_model()
    models = Models(matcher=CrossEncoder(name, domain=domain, **run) if name else None, index=index)
    if index:
        from ..search import Searcher

        models.searcher = Searcher(index, reranker=models.matcher, **run)
        models.encoder = models.searcher.encoder
    if encoder:
        from ..bi_encoder import BiEncoder

        models.encoder = BiEncoder(encoder, **run)
    if load_sentiment or sentiment_model:
        from ..sentiment import Sentiment

        models.classifier = Sentiment(sentiment_model, **run)
    return models


def batch_sizes(models: Any, max_batch: int | None = None) -> dict[str, int]:
    """The most items one model call takes, per endpoint: ``max_batch`` when given, else
    :data:`DEFAULT_MAX_BATCH`, except /match on OpenVINO (:data:`OPENVINO_MATCH_BATCH`)."""
    sizes = dict.fromkeys(("match", "search", "sentiment", "embed"), max_batch or DEFAULT_MAX_BATCH)
    if max_batch is None and getattr(models.matcher, "backend", None) == "openvino":
        sizes["match"] = OPENVINO_MATCH_BATCH
    return sizes


def make_batchers(models: Models, window_ms: float, sizes: dict[str, int], batching: bool, lim: Limits,
                  metrics: Metrics) -> dict[str, MicroBatcher]:
    """One micro-batcher per endpoint that scores: concurrent requests share one model call."""

    def score_pairs(pairs: list[tuple[str, str]]) -> list[float]:
        return models.matcher.predict(pairs, batch_size=sizes["match"]).tolist()

    def run_searches(reqs: list[tuple[str, int, int, bool]]) -> list[list[dict[str, Any]]]:
        out: list[list[dict[str, Any]]] = [[] for _ in reqs]
        for rerank, cands in sorted({(r[3], r[2]) for r in reqs}):  # one search_batch per setting
            idx = [i for i, r in enumerate(reqs) if (r[3], r[2]) == (rerank, cands)]
            k = max(reqs[i][1] for i in idx)
            hits = models.searcher.search_batch([reqs[i][0] for i in idx], k=k, candidates=cands, rerank=rerank)
            for i, h in zip(idx, hits):
                out[i] = h[: reqs[i][1]]
        return out

    def classify(texts: list[str]) -> list[dict[str, Any]]:
        return models.classifier(texts, batch_size=sizes["sentiment"])

    def embed(texts: list[str]) -> list[Any]:
        return list(models.encoder.encode(texts, batch_size=sizes["embed"]))

    fns = {"match": score_pairs, "search": run_searches, "sentiment": classify, "embed": embed}
    batchers = {name: MicroBatcher(fn, window_ms, sizes[name], batching, max_queue=lim.max_queue,
                                   timeout_s=lim.timeout_s, observe=metrics.observer(name)) for name, fn in fns.items()}
    for name, b in batchers.items():
        metrics.watch_queue(name, lambda b=b: b.waiting)
    return batchers


def api_keys(keys: Sequence[str] = (), key_file: str | None = None) -> list[str]:
    """The accepted keys: ``keys``, ``$SIMPAIR_API_KEY`` (comma-separated) and ``key_file`` (one a line, ``#``
    comments), each stripped, empty ones dropped."""
    from ..errors import InputError

    found = list(keys) + os.environ.get("SIMPAIR_API_KEY", "").split(",")
    if key_file:
        path = Path(key_file)
        if not path.is_file():
            raise InputError(key_file, None, "no such API key file; expected one key a line")
        found += [line.split("#", 1)[0] for line in path.read_text(encoding="utf-8").splitlines()]
    return sorted({k.strip() for k in found if k.strip()})


def create_app(model: str | None = None, index: str | None = None, sentiment_model: str | None = None,
               limits: Limits | None = None, batching: bool = True, window_ms: float = 5.0,
               max_batch: int | None = None, load_sentiment: bool = True, bf16: str | bool | None = None,
               backend: str = "auto", precision: str = "auto", threads: int | None = None,
               domain: str | None = None, label: str | None = None, label_out: str | None = None,
               encoder: str | None = None, keys: Sequence[str] = (), allowed_hosts: Sequence[str] | None = None
               ) -> Any:
    """The app with every model loaded; endpoints for the models that were given. ``domain``: the matcher
    decides with the threshold calibrated under that name; ``max_batch`` None: per endpoint, as
    :func:`batch_sizes` says; ``label``: a pairs file to label in the page (answers to ``label_out``, default
    as ``simpair label``); ``keys``: API keys (none: open); ``allowed_hosts``: the Host names accepted
    (None: any)."""
    lim = limits or Limits()
    session = None
    if label is not None:  # checked before any model loads: a bad file fails at once
        from ..adaptation.labels import LabelSession

        session = LabelSession(label, label_out)
    models = load_models(model, index, sentiment_model, load_sentiment,
                         {"bf16": bf16, "backend": backend, "precision": precision, "threads": threads}, domain,
                         encoder)
    sizes = batch_sizes(models, max_batch)
    metrics = Metrics()
    batchers = make_batchers(models, window_ms, sizes, batching, lim, metrics)
    ctx = Context(models, lim, batchers, metrics, {"enabled": batching, "window_ms": window_ms, "max_batch": sizes},
                  list(keys), session)
    app = FastAPI(title="simpair", version=__version__,
                  description="Sentence-pair matching, question search, reranking, embeddings and sentiment. "
                              "With API keys on, send `Authorization: Bearer <key>`.")
    app.state.batchers, app.state.ctx = batchers, ctx
    info_routes(app, ctx)
    scoring_routes(app, ctx)
    compat_routes(app, ctx)
    label_routes(app, ctx)
    error_handlers(app, ctx)
    routes = [r.path for r in app.routes]
    app.add_middleware(Guard, metrics=metrics, limits=lim, keys=list(keys), allowed_hosts=allowed_hosts, routes=routes)
    return app


def error_handlers(app: Any, ctx: Context) -> None:
    """One error shape for every refusal; validation errors without the input (a 10 MB field is not echoed);
    an unexpected error logged in full once per kind, then one line at most once a second."""
    from ..errors import SimpairError

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Any, exc: RequestValidationError) -> Any:
        errors = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", ""))[:300], "type": e.get("type")}
                  for e in exc.errors()[:20]]
        summary = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
        return JSONResponse({**error_body(summary, "Validation"), "detail": errors}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Any, exc: StarletteHTTPException) -> Any:
        kind = {400: "BadRequest", 404: "NotFound", 405: "MethodNotAllowed", 413: "PayloadTooLarge", 422: "Validation"}
        return JSONResponse(error_body(str(exc.detail), kind.get(exc.status_code, "HTTPError")),
                            status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(Overloaded)
    async def overloaded(_: Any, exc: Overloaded) -> Any:
        return JSONResponse(error_body(str(exc), "Overloaded"), status_code=429, headers={"Retry-After": "1"})

    @app.exception_handler(TimedOut)
    async def timed_out(_: Any, exc: TimedOut) -> Any:
        return JSONResponse(error_body(str(exc), "Timeout"), status_code=503, headers={"Retry-After": "1"})

    @app.exception_handler(SimpairError)
    async def simpair_error(_: Any, exc: SimpairError) -> Any:
        return JSONResponse(error_body(str(exc), "Validation"), status_code=422)

    @app.exception_handler(Exception)
    async def internal(_: Any, exc: Exception) -> Any:
        kind, now = type(exc).__name__, time.monotonic()
        last = ctx.errors_seen.get(kind)
        if last is None:
            LOG.error("internal error (%s); the first of its kind, in full:", kind, exc_info=exc)
        elif now - last >= 1.0:
            LOG.error("internal error (%s): %s", kind, str(exc)[:200])
        ctx.errors_seen[kind] = now if last is None or now - last >= 1.0 else last
        return JSONResponse(error_body(f"internal error ({kind}); the server log has the details", "Internal"),
                            status_code=500)


def check_exposure(host: str, keys: Sequence[str], insecure: bool) -> None:
    """Refuse to bind beyond loopback without a key, unless the user says ``--insecure``."""
    from ..errors import InputError

    if host not in LOOPBACK and not keys and not insecure:
        raise InputError("--host", None, f"binding to {host} exposes the API with no key; give --api-key / "
                                         "--api-key-file / $SIMPAIR_API_KEY, or --insecure if a proxy guards it")


def serve(host: str = "127.0.0.1", port: int = 8000, insecure: bool = False,
          allowed_hosts: Sequence[str] = (), **kwargs: Any) -> None:
    """Load the models and run uvicorn until interrupted. On loopback only loopback Host names are accepted
    (plus ``allowed_hosts``)."""
    import uvicorn

    check_exposure(host, kwargs.get("keys", ()), insecure)
    hosts = [*LOOPBACK, *allowed_hosts] if host in LOOPBACK else (list(allowed_hosts) or None)
    app = create_app(allowed_hosts=hosts, **kwargs)
    # idle keep-alive connections close after 5 s; a request's headers may not exceed 16 kB
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_keep_alive=5,
                h11_max_incomplete_event_size=16384)
