"""simpair's own routes: the page, ``/healthz``, ``/info``, ``/metrics``, ``/match``, ``/search``,
``/sentiment`` and the labelling panel's ``/label``."""
from __future__ import annotations

import time
from typing import Any

from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from .. import __version__
from .batching import MicroBatcher
from .schemas import LabelAnswer, Limits, MatchRequest, SearchRequest, SentimentRequest, check_count, check_text

PAGE_FILE = "index.html"
FLAGS = {"match": "--model", "search": "--index", "sentiment": "--sentiment-model", "label": "--label FILE",
         "embeddings": "--encoder (or --index)"}


def need(obj: Any, what: str) -> Any:
    """``obj``, or 404 saying which flag enables ``what``."""
    if obj is None:
        raise HTTPException(404, f"{what} is not enabled on this server (start it with {FLAGS[what]})")
    return obj


def timing(request: Request) -> dict[str, float]:
    """Where the micro-batcher puts this request's queue and inference time (the guard sends them as headers)."""
    request.state.timing = {}
    return request.state.timing


def info_routes(app: Any, ctx: Any) -> None:
    """``/`` (the web page), ``/health`` and ``/healthz``, ``/info`` and ``/metrics``."""
    from pathlib import Path

    page_path = Path(__file__).resolve().parents[1] / "web" / PAGE_FILE
    started = time.time()

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> str:
        return page_path.read_text(encoding="utf-8")

    @app.get("/healthz")
    @app.get("/health", include_in_schema=False)
    def healthz() -> dict[str, Any]:
        return {"status": "ok"}

    @app.get("/info")
    def info() -> dict[str, Any]:
        """The models, their thresholds, backend and precision, the limits, batching and whether keys are on."""
        m, s, c, e = ctx.models.matcher, ctx.models.searcher, ctx.models.classifier, ctx.models.encoder
        return {
            "version": __version__, "uptime_seconds": round(time.time() - started, 1), "auth": bool(ctx.keys),
            "match": None if m is None else {"model": m.name, "threshold": m.threshold, "task": m.task,
                                             "max_length": m.max_length, "backend": m.backend,
                                             "precision": m.precision},
            "search": None if s is None else {"index": str(ctx.models.index), "size": len(s.index),
                                              "type": s.index.kind, "encoder": s.index.manifest["model"],
                                              "rerank_available": m is not None, "rerank_weight": s.rerank_weight},
            "embeddings": None if e is None else {"model": e.name, "dimensions": int(e.dim)},
            "sentiment": None if c is None else {"model": c.name, "labels": c.labels, "precision": c.precision},
            "label": None if ctx.session is None else {"pairs": str(ctx.session.source), "out": str(ctx.session.out)},
            "limits": ctx.limits.__dict__,
            "batching": {**ctx.batching, **{k: {"batches": b.batches, "items": b.items, "waiting": b.waiting}
                                            for k, b in ctx.batchers.items()}},
        }

    @app.get("/metrics", include_in_schema=True, response_class=Response)
    def metrics() -> Response:
        """Prometheus text format: requests by route and code, latency, batch sizes, queue depth."""
        return Response(ctx.metrics.render(), media_type=ctx.metrics.content_type)


def scoring_routes(app: Any, ctx: Any) -> None:
    """``/match``, ``/search`` and ``/sentiment``: bounded input, scored through the micro-batchers."""
    from ..cross_encoder import decide

    lim: Limits = ctx.limits
    batchers: dict[str, MicroBatcher] = ctx.batchers

    @app.post("/match")
    async def match(req: MatchRequest, request: Request) -> dict[str, Any]:
        """Is each pair the same question? Probability, decision and threshold per pair."""
        ce = need(ctx.models.matcher, "match")
        pairs = req.pairs if req.pairs is not None else [(req.text_a, req.text_b)]
        check_count(len(pairs), "pairs", lim.max_texts)
        for i, (a, b) in enumerate(pairs):
            check_text(a, f"pairs[{i}].text_a" if req.pairs is not None else "text_a", lim)
            check_text(b, f"pairs[{i}].text_b" if req.pairs is not None else "text_b", lim)
        scores = await batchers["match"].submit([(a, b) for a, b in pairs], timing(request))
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
    async def search(req: SearchRequest, request: Request) -> dict[str, Any]:
        """The index's nearest questions to ``query``; ``rerank`` re-scores the candidates with the matcher."""
        need(ctx.models.searcher, "search")
        check_text(req.query, "query", lim)
        if req.k > lim.max_k:
            raise HTTPException(422, f"k={req.k}; at most {lim.max_k}")
        if req.candidates > lim.max_candidates:
            raise HTTPException(422, f"candidates={req.candidates}; at most {lim.max_candidates}")
        if req.rerank and ctx.models.matcher is None:
            raise HTTPException(422, "rerank: no matcher on this server (start it with --model)")
        item = (req.query, req.k, max(req.candidates, req.k), req.rerank)
        hits = (await batchers["search"].submit([item], timing(request)))[0]
        return {"query": req.query, "k": req.k, "rerank": req.rerank, "hits": hits}

    @app.post("/sentiment")
    async def sentiment(req: SentimentRequest, request: Request) -> dict[str, Any]:
        """Positive or negative, with the classifier's score."""
        need(ctx.models.classifier, "sentiment")
        texts = req.texts if req.texts is not None else [req.text]
        check_count(len(texts), "texts", lim.max_texts)
        for i, t in enumerate(texts):
            check_text(t, f"texts[{i}]" if req.texts is not None else "text", lim)
        rows = await batchers["sentiment"].submit(texts, timing(request))
        return rows[0] if req.texts is None else {"results": rows}


def label_routes(app: Any, ctx: Any) -> None:
    """``GET /label`` (the next pair and the progress), ``POST /label`` (an answer), ``POST /label/undo``: the
    page's labelling panel over a :class:`~simpair.adaptation.labels.LabelSession` (``serve --label FILE``)."""

    @app.get("/label")
    def label_state() -> dict[str, Any]:
        return need(ctx.session, "label").state()

    @app.post("/label")
    def label_answer(req: LabelAnswer) -> dict[str, Any]:
        s = need(ctx.session, "label")
        if req.index >= len(s.pairs):
            raise HTTPException(422, f"index {req.index}: the file has {len(s.pairs)} pairs")
        return s.answer(req.index, req.answer)

    @app.post("/label/undo")
    def label_undo() -> dict[str, Any]:
        return need(ctx.session, "label").undo()
