"""The APIs that clients already speak, so the matcher and the encoder drop into an existing stack unchanged:

- ``POST /rerank``, ``/v1/rerank`` and ``/v2/rerank``: the Cohere / Jina / vLLM shape that LangChain, LlamaIndex, Dify and
  Xinference send (``{query, documents, top_n, return_documents}`` → ``{results: [{index, relevance_score,
  document?}], model, usage}``, best first); ``relevance_score`` is the matcher's probability that the document
  asks the same as the query;
- ``POST /v1/embeddings`` and ``/embeddings``: OpenAI's (``{input, model, encoding_format}`` → ``{object: "list",
  data: [{object: "embedding", index, embedding}], model, usage}``; ``base64`` is what the ``openai`` client asks
  for by default), from the bi-encoder;
- ``POST /embed``: text-embeddings-inference's (``{inputs}`` → a list of vectors);
- ``GET /v1/models``: the models this server answers with, in OpenAI's list shape.
"""
from __future__ import annotations

import base64
import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np
from fastapi import HTTPException, Request

from .routes import need, timing
from .schemas import EmbeddingsRequest, EmbedRequest, Limits, RerankRequest, check_text, check_texts


def count_tokens(model: Any, texts: Sequence[str]) -> int:
    """Tokens in ``texts`` by the model's own tokenizer (what ``usage`` reports)."""
    for holder in (model, getattr(model, "model", None), getattr(model, "exported", None)):
        tok = getattr(holder, "tokenizer", None)
        if tok is None:
            continue
        if hasattr(tok, "encode_batch"):  # a tokenizers.Tokenizer (the exports)
            return sum(len(e.ids) for e in tok.encode_batch(list(texts)))
        return sum(len(ids) for ids in tok(list(texts), add_special_tokens=True)["input_ids"])
    return sum(len(t) for t in texts)


def compat_routes(app: Any, ctx: Any) -> None:
    """The rerank, embeddings and models routes (see the module)."""
    lim: Limits = ctx.limits

    async def rerank(req: RerankRequest, request: Request) -> dict[str, Any]:
        """Cohere / Jina rerank: each document scored against the query by the matcher, best first."""
        ce = need(ctx.models.matcher, "match")
        check_text(req.query, "query", lim)
        docs = check_texts([d if isinstance(d, str) else d.text for d in req.documents], "documents", lim,
                           lim.max_documents)
        scores = await ctx.batchers["match"].submit([(req.query, d) for d in docs], timing(request))
        order = sorted(range(len(docs)), key=lambda i: -scores[i])[: req.top_n or len(docs)]
        results = [{"index": i, "relevance_score": float(scores[i]),
                    **({"document": {"text": docs[i]}} if req.return_documents else {})} for i in order]
        tokens = count_tokens(ce, [req.query] * len(docs)) + count_tokens(ce, docs)
        return {"id": str(uuid.uuid4()), "model": ce.name, "results": results,
                "usage": {"total_tokens": tokens},
                "meta": {"api_version": {"version": "2"}, "billed_units": {"search_units": 1}}}

    for path in ("/rerank", "/v1/rerank", "/v2/rerank"):  # v2: the cohere client's ClientV2
        app.post(path, include_in_schema=path == "/rerank")(rerank)

    async def embeddings(req: EmbeddingsRequest, request: Request) -> dict[str, Any]:
        """OpenAI embeddings from the bi-encoder (L2-normalised float32)."""
        bi = need(ctx.models.encoder, "embeddings")
        texts = check_texts([req.input] if isinstance(req.input, str) else req.input, "input", lim)
        if req.dimensions is not None and req.dimensions != bi.dim:
            raise HTTPException(422, f"dimensions={req.dimensions}: {bi.name} gives {bi.dim}-dimensional vectors")
        vectors = await ctx.batchers["embed"].submit(texts, timing(request))
        data = [{"object": "embedding", "index": i, "embedding": _encode(v, req.encoding_format)}
                for i, v in enumerate(vectors)]
        tokens = count_tokens(bi, texts)
        return {"object": "list", "data": data, "model": bi.name,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}

    for path in ("/v1/embeddings", "/embeddings"):
        app.post(path, include_in_schema=path == "/v1/embeddings")(embeddings)

    @app.post("/embed")
    async def embed(req: EmbedRequest, request: Request) -> list[list[float]]:
        """Text-embeddings-inference's /embed: one vector per input (always L2-normalised here)."""
        need(ctx.models.encoder, "embeddings")
        texts = check_texts([req.inputs] if isinstance(req.inputs, str) else req.inputs, "inputs", lim)
        return [np.asarray(v).tolist() for v in await ctx.batchers["embed"].submit(texts, timing(request))]

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        """The models this server answers with (OpenAI's list shape)."""
        m = ctx.models
        names = [x.name for x in (m.matcher, m.encoder, m.classifier) if x is not None]
        return {"object": "list", "data": [{"id": n, "object": "model", "owned_by": "simpair"} for n in names]}


def _encode(vector: Any, fmt: str) -> list[float] | str:
    v = np.asarray(vector, dtype="<f4")
    return base64.b64encode(v.tobytes()).decode("ascii") if fmt == "base64" else v.tolist()
