"""``simpair serve``: match, search and sentiment over HTTP (FastAPI + uvicorn), with a web page.

Models load once, when the app is created. Requests that arrive together are scored together: each
model has a :class:`MicroBatcher` that waits a few milliseconds for company, runs one batch in a
worker thread (never on the event loop) and hands every caller its own rows. With batching off each
request is scored alone, one at a time — the baseline of ``benchmarks/serve_load.py``.

No endpoint takes a file path; every text list, text length and ``k`` is bounded (413 for too much,
422 for malformed input). The server binds to 127.0.0.1 unless told otherwise.
"""
from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field, model_validator

from . import __version__

PAGE = Path(__file__).resolve().parent / "web" / "index.html"


@dataclass
class Limits:
    """Per-request bounds: enough for real use, small enough that one client cannot stall the rest."""

    max_texts: int = 64  # pairs per /match, texts per /sentiment
    max_chars: int = 1000  # characters per text
    max_k: int = 100
    max_candidates: int = 200


class MatchRequest(BaseModel):
    """One pair (text_a, text_b) or a batch (pairs)."""

    text_a: str | None = None
    text_b: str | None = None
    pairs: list[tuple[str, str]] | None = Field(default=None, description="a batch of [text_a, text_b]")

    @model_validator(mode="after")
    def one_form(self) -> MatchRequest:
        if (self.pairs is None) == (self.text_a is None or self.text_b is None):
            raise ValueError("give either text_a and text_b, or pairs")
        return self


class SearchRequest(BaseModel):
    """One query; ``rerank`` re-scores ``candidates`` hits with the matcher."""

    query: str
    k: int = Field(10, ge=1)
    rerank: bool = False
    candidates: int = Field(50, ge=1)


class SentimentRequest(BaseModel):
    """One text or a batch (texts)."""

    text: str | None = None
    texts: list[str] | None = None

    @model_validator(mode="after")
    def one_form(self) -> SentimentRequest:
        if (self.text is None) == (self.texts is None):
            raise ValueError("give either text or texts")
        return self


class LabelAnswer(BaseModel):
    """One answer of the labelling panel: pair ``index`` is ``same``, ``different`` or ``skip``."""

    index: int = Field(ge=0)
    answer: str = Field(pattern="^(same|different|skip)$")


class MicroBatcher:
    """Collect concurrent requests for ``window_ms`` (or until ``max_batch`` items) and score them in one
    call of ``fn(items) -> results`` in a worker thread; with ``enabled=False`` score each request alone."""

    def __init__(self, fn: Callable[[list[Any]], list[Any]], window_ms: float = 5.0, max_batch: int = 64,
                 enabled: bool = True) -> None:
        self.fn = fn
        self.window = window_ms / 1000.0
        self.max_batch = max_batch
        self.enabled = enabled
        self.lock = threading.Lock()  # one model call at a time: torch already uses every core
        self.queue: asyncio.Queue | None = None
        self.worker: asyncio.Task | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.batches = 0
        self.items = 0

    def _run(self, items: list[Any]) -> list[Any]:
        with self.lock:
            self.batches += 1
            self.items += len(items)
            return self.fn(items)

    async def submit(self, items: Sequence[Any]) -> list[Any]:
        """Score ``items`` (one request's rows); returns their results in order."""
        loop = asyncio.get_running_loop()
        if not self.enabled:
            return await loop.run_in_executor(None, self._run, list(items))
        if self.loop is not loop or self.worker is None or self.worker.done():
            # the collecting task lives in the event loop that serves the requests (a new loop: a new task)
            self.loop, self.queue = loop, asyncio.Queue()
            self.worker = loop.create_task(self._loop(self.queue))
        future: asyncio.Future = loop.create_future()
        await self.queue.put((list(items), future))
        return await future

    async def _loop(self, queue: asyncio.Queue) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await queue.get()]
            size = len(batch[0][0])
            deadline = loop.time() + self.window
            while size < self.max_batch:
                timeout = deadline - loop.time()
                if timeout <= 0:
                    break
                try:
                    req = await asyncio.wait_for(queue.get(), timeout)
                except asyncio.TimeoutError:
                    break
                batch.append(req)
                size += len(req[0])
            flat = [item for items, _ in batch for item in items]
            try:
                results = await loop.run_in_executor(None, self._run, flat)
            except Exception as exc:  # noqa: BLE001 - every waiting request gets the error
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            at = 0
            for items, fut in batch:
                if not fut.done():
                    fut.set_result(results[at : at + len(items)])
                at += len(items)


@dataclass
class _Models:
    """What a server answers with: a matcher, a searcher over an index, a sentiment classifier (any may be off)."""

    matcher: Any = None
    searcher: Any = None
    classifier: Any = None
    index: str | None = None


def _load_models(model: str | None, index: str | None, sentiment_model: str | None, load_sentiment: bool,
                 run: dict[str, Any], domain: str | None = None) -> _Models:
    """Every model the server needs, loaded once with the same backend/precision/threads settings (the
    sentiment pipeline runs on torch: an explicit ``--backend onnx`` / ``openvino`` is refused for it at start)."""
    from .cross_encoder import CrossEncoder, default_model

    name = model or default_model()
    models = _Models(matcher=CrossEncoder(name, domain=domain, **run) if name else None, index=index)
    if index:
        from .search import Searcher

        models.searcher = Searcher(index, reranker=models.matcher, **run)
    if load_sentiment or sentiment_model:
        from .sentiment import Sentiment

        models.classifier = Sentiment(sentiment_model, **run)
    return models


DEFAULT_MAX_BATCH = 64
# /match on OpenVINO takes at most this many pairs a model call: small batches pad little and keep the queue
# short. 50 clients (benchmarks/serve_load.py, the bundled matcher; benchmarks/results/serve_max_batch_sweep.json):
# max batch 4 / 8 / 16 / 64 gave 262 / 323 / 307 / 220 requests/s, p99 248 / 214 / 359 / 1,032 ms; on torch 8
# loses to 64 (106 against 156 requests/s), so torch keeps 64.
OPENVINO_MATCH_BATCH = 8


def batch_sizes(models: _Models, max_batch: int | None = None) -> dict[str, int]:
    """The most items one model call takes, per endpoint: ``max_batch`` when given, else
    :data:`DEFAULT_MAX_BATCH`, except /match on OpenVINO (:data:`OPENVINO_MATCH_BATCH`)."""
    sizes = dict.fromkeys(("match", "search", "sentiment"), max_batch or DEFAULT_MAX_BATCH)
    if max_batch is None and getattr(models.matcher, "backend", None) == "openvino":
        sizes["match"] = OPENVINO_MATCH_BATCH
    return sizes


def _batchers(models: _Models, window_ms: float, sizes: dict[str, int], batching: bool) -> dict[str, MicroBatcher]:
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

    return {"match": MicroBatcher(score_pairs, window_ms, sizes["match"], batching),
            "search": MicroBatcher(run_searches, window_ms, sizes["search"], batching),
            "sentiment": MicroBatcher(classify, window_ms, sizes["sentiment"], batching)}


def _check_text(text: str, what: str, lim: Limits) -> str:
    if not text.strip():
        raise HTTPException(422, f"{what}: empty text; expected a non-empty text")
    if len(text) > lim.max_chars:
        raise HTTPException(413, f"{what}: {len(text)} characters; at most {lim.max_chars} per text")
    return text


def _check_count(n: int, what: str, lim: Limits) -> None:
    if n == 0:
        raise HTTPException(422, f"{what}: empty list; expected at least one item")
    if n > lim.max_texts:
        raise HTTPException(413, f"{what}: {n} items; at most {lim.max_texts} per request")


def _need(obj: Any, what: str) -> Any:
    if obj is None:
        raise HTTPException(404, f"{what} is not enabled on this server (start it with {_FLAG[what]})")
    return obj


def create_app(model: str | None = None, index: str | None = None, sentiment_model: str | None = None,
               limits: Limits | None = None, batching: bool = True, window_ms: float = 5.0,
               max_batch: int | None = None, load_sentiment: bool = True, bf16: str | bool | None = None,
               backend: str = "auto", precision: str = "auto", threads: int | None = None,
               domain: str | None = None, label: str | None = None, label_out: str | None = None) -> Any:
    """The FastAPI app with every model loaded; endpoints for the models that were given. ``domain``: the
    matcher decides with the threshold calibrated under that name; ``max_batch`` None: per endpoint, as
    :func:`batch_sizes` says; ``label``: a pairs file to label in the page (answers to ``label_out``, default
    as ``simpair label``)."""
    from .errors import SimpairError

    lim = limits or Limits()
    session = None
    if label is not None:  # checked before any model loads: a bad file fails at once
        from .adaptation.labels import LabelSession

        session = LabelSession(label, label_out)
    models = _load_models(model, index, sentiment_model, load_sentiment,
                          {"bf16": bf16, "backend": backend, "precision": precision, "threads": threads}, domain)
    sizes = batch_sizes(models, max_batch)
    batchers = _batchers(models, window_ms, sizes, batching)
    app = FastAPI(title="simpair", version=__version__,
                  description="Sentence-pair matching, question search and sentiment.")
    app.state.batchers = batchers
    _info_routes(app, models, batchers, lim, {"enabled": batching, "window_ms": window_ms, "max_batch": sizes},
                 session)
    _scoring_routes(app, models, batchers, lim)
    _label_routes(app, session)

    @app.exception_handler(SimpairError)
    async def simpair_error(_: Any, exc: SimpairError) -> Any:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    return app


def _info_routes(app: Any, models: _Models, batchers: dict[str, MicroBatcher], lim: Limits,
                 batching: dict[str, Any], session: Any = None) -> None:
    """``/`` (the web page), ``/healthz`` and ``/info`` (models, limits, batching counters)."""
    started = time.time()

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> str:
        return PAGE.read_text(encoding="utf-8")

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"status": "ok"}

    @app.get("/info")
    def info() -> dict[str, Any]:
        m, s, c = models.matcher, models.searcher, models.classifier
        return {
            "version": __version__, "uptime_seconds": round(time.time() - started, 1),
            "match": None if m is None else {"model": m.name, "threshold": m.threshold, "task": m.task,
                                             "max_length": m.max_length, "backend": m.backend,
                                             "precision": m.precision},
            "search": None if s is None else {"index": str(models.index), "size": len(s.index), "type": s.index.kind,
                                              "encoder": s.index.manifest["model"], "rerank_available": m is not None,
                                              "rerank_weight": s.rerank_weight},
            "sentiment": None if c is None else {"model": c.name, "labels": c.labels, "precision": c.precision},
            "label": None if session is None else {"pairs": str(session.source), "out": str(session.out)},
            "limits": lim.__dict__, "batching": {**batching, **{k: {"batches": b.batches, "items": b.items}
                                                               for k, b in batchers.items()}},
        }


def _scoring_routes(app: Any, models: _Models, batchers: dict[str, MicroBatcher], lim: Limits) -> None:
    """``/match``, ``/search`` and ``/sentiment``: bounded input, scored through the micro-batchers."""
    from .cross_encoder import decide

    @app.post("/match")
    async def match(req: MatchRequest) -> dict[str, Any]:
        ce = _need(models.matcher, "match")
        pairs = req.pairs if req.pairs is not None else [(req.text_a, req.text_b)]
        _check_count(len(pairs), "pairs", lim)
        for i, (a, b) in enumerate(pairs):
            _check_text(a, f"pair {i + 1} text_a", lim)
            _check_text(b, f"pair {i + 1} text_b", lim)
        scores = await batchers["match"].submit([(a, b) for a, b in pairs])
        rows = []
        for (a, b), s in zip(pairs, scores):
            row: dict[str, Any] = {"text_a": a, "text_b": b, "model": ce.name}
            if ce.task == "regression":
                row["score"] = s
            else:
                row.update(probability=s, same=decide(s, ce.threshold), threshold=ce.threshold)
            rows.append(row)
        return rows[0] if req.pairs is None else {"results": rows}

    @app.post("/search")
    async def search(req: SearchRequest) -> dict[str, Any]:
        _need(models.searcher, "search")
        _check_text(req.query, "query", lim)
        if req.k > lim.max_k:
            raise HTTPException(422, f"k={req.k}; at most {lim.max_k}")
        if req.candidates > lim.max_candidates:
            raise HTTPException(422, f"candidates={req.candidates}; at most {lim.max_candidates}")
        if req.rerank and models.matcher is None:
            raise HTTPException(422, "rerank: no matcher on this server (start it with --model)")
        hits = (await batchers["search"].submit([(req.query, req.k, max(req.candidates, req.k), req.rerank)]))[0]
        return {"query": req.query, "k": req.k, "rerank": req.rerank, "hits": hits}

    @app.post("/sentiment")
    async def sentiment(req: SentimentRequest) -> dict[str, Any]:
        _need(models.classifier, "sentiment")
        texts = req.texts if req.texts is not None else [req.text]
        _check_count(len(texts), "texts", lim)
        for i, t in enumerate(texts):
            _check_text(t, f"text {i + 1}", lim)
        rows = await batchers["sentiment"].submit(texts)
        return rows[0] if req.texts is None else {"results": rows}


_FLAG = {"match": "--model", "search": "--index", "sentiment": "--sentiment-model", "label": "--label FILE"}


def _label_routes(app: Any, session: Any) -> None:
    """``GET /label`` (the next pair and the progress), ``POST /label`` (an answer), ``POST /label/undo``: the
    page's labelling panel over a :class:`~simpair.adaptation.labels.LabelSession` (``serve --label FILE``)."""

    def need() -> Any:
        return _need(session, "label")

    @app.get("/label")
    def label_state() -> dict[str, Any]:
        return need().state()

    @app.post("/label")
    def label_answer(req: LabelAnswer) -> dict[str, Any]:
        s = need()
        if req.index >= len(s.pairs):
            raise HTTPException(422, f"index {req.index}: the file has {len(s.pairs)} pairs")
        return s.answer(req.index, req.answer)

    @app.post("/label/undo")
    def label_undo() -> dict[str, Any]:
        return need().undo()


def serve(host: str = "127.0.0.1", port: int = 8000, **kwargs: Any) -> None:
    """Load the models and run uvicorn until interrupted."""
    import uvicorn

    app = create_app(**kwargs)
    uvicorn.run(app, host=host, port=port, log_level="warning")
