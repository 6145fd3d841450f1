"""What the server accepts: request bodies (pydantic) and the bounds every text and list is checked against.

Every text that passes is safe to tokenize: non-empty, at most ``max_chars`` characters, valid Unicode (a lone
UTF-16 surrogate such as ``"\\ud800"`` parses as JSON but breaks the tokenizer, so it is refused here, with the
field that holds it, and never reaches a batch shared with other clients).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from fastapi import HTTPException
from pydantic import BaseModel, Field, model_validator


@dataclass
class Limits:
    """Per-request and per-server bounds: enough for real use, small enough that one client cannot stall the rest."""

    max_texts: int = 64  # pairs per /match, texts per /sentiment and /v1/embeddings
    max_chars: int = 1000  # characters per text
    max_k: int = 100
    max_candidates: int = 200
    max_documents: int = 200  # documents per /rerank
    payload_bytes: int = 2 * 1024 * 1024  # request body, checked on the raw stream before parsing
    max_queue: int = 128  # requests waiting per endpoint; one more gets 429
    timeout_s: float = 60.0  # the longest a request may wait for its scores (then 503)
    read_timeout_s: float = 15.0  # the longest a client may take to send its body (then 408)


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


class Document(BaseModel):
    text: str


class RerankRequest(BaseModel):
    """The Cohere / Jina / vLLM rerank request: a query and documents (strings or ``{"text"}``)."""

    query: str
    documents: list[str | Document]
    top_n: int | None = Field(None, ge=1)
    return_documents: bool = False
    model: str | None = None


class EmbeddingsRequest(BaseModel):
    """The OpenAI embeddings request (text input only)."""

    input: str | list[str]
    model: str | None = None
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(None, ge=1)
    user: str | None = None


class EmbedRequest(BaseModel):
    """Text-embeddings-inference's ``/embed`` request."""

    inputs: str | list[str]
    normalize: bool = True
    truncate: bool = True


def check_text(text: str, what: str, lim: Limits) -> str:
    """``text`` if it can be scored, else 422 naming ``what``."""
    if not text.strip():
        raise HTTPException(422, f"{what}: empty text; expected a non-empty text")
    if len(text) > lim.max_chars:
        raise HTTPException(422, f"{what}: {len(text)} characters; at most {lim.max_chars} per text")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise HTTPException(422, f"{what}: not valid Unicode at character {exc.start} (a lone surrogate); "
                                 "expected UTF-8 text") from None
    return text


def check_count(n: int, what: str, most: int) -> None:
    """422 for an empty list or one longer than ``most``."""
    if n == 0:
        raise HTTPException(422, f"{what}: empty list; expected at least one item")
    if n > most:
        raise HTTPException(422, f"{what}: {n} items; at most {most} per request")


def check_texts(texts: list[str], what: str, lim: Limits, most: int | None = None) -> list[str]:
    check_count(len(texts), what, most or lim.max_texts)
    return [check_text(t, f"{what}[{i}]", lim) for i, t in enumerate(texts)]


def error_body(message: str, error_type: str, **extra: Any) -> dict[str, Any]:
    """The error shape of every refusal: ``detail`` (FastAPI's), and TEI's ``error`` / ``error_type``."""
    return {"detail": message, "error": message, "error_type": error_type, **extra}
