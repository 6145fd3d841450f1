"""The server's front door, one ASGI middleware in front of every route, applied before any JSON is parsed:

- **Host check** (when bound to loopback): a ``Host`` header naming another machine is refused with 400, so a
  web page cannot reach the server through DNS rebinding;
- **API keys**: with keys set, every route but the page, the docs and ``/health`` needs
  ``Authorization: Bearer <key>`` (compared in constant time); else 401 with ``WWW-Authenticate: Bearer``;
- **body limit and read timeout**: a ``Content-Length`` over ``payload_bytes`` gets 413 unread; a body is read
  from the raw stream and refused with 413 as soon as it passes the limit (a chunked 100 MB upload costs the
  limit, not 100 MB), and a client that takes longer than ``read_timeout_s`` to send it gets 408;
- **metrics and timing**: every request is counted by route and status code with its latency, and every
  response carries ``x-total-time`` (and, from the micro-batcher, ``x-queue-time`` and ``x-inference-time``), in
  milliseconds.
"""
from __future__ import annotations

import asyncio
import hmac
import json
import time
from collections.abc import Sequence
from typing import Any

from .metrics import Metrics
from .schemas import Limits, error_body

OPEN_PATHS = frozenset({"/", "/health", "/healthz", "/docs", "/docs/oauth2-redirect", "/openapi.json", "/redoc"})
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class Guard:
    """Wraps the app: host check, keys, body limit, read timeout, metrics, timing headers (see the module)."""

    def __init__(self, app: Any, metrics: Metrics, limits: Limits, keys: Sequence[str] = (),
                 allowed_hosts: Sequence[str] | None = None, routes: Sequence[str] = ()) -> None:
        self.app, self.metrics, self.limits = app, metrics, limits
        self.keys = [k.encode("utf-8") for k in keys]
        self.allowed_hosts = None if allowed_hosts is None else {h.lower() for h in allowed_hosts}
        self.routes = set(routes) | OPEN_PATHS | {"/metrics"}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        route = scope["path"] if scope["path"] in self.routes else "other"  # bounded label values
        code = [500]

        async def timed_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                code[0] = message["status"]
                message = {**message, "headers": list(message.get("headers", [])) + self._timing(scope, started)}
            await send(message)

        try:
            refusal = self._refuse_host(scope) or self._refuse_key(scope)
            if refusal is None and scope["method"] in BODY_METHODS:
                body, refusal = await self._read_body(scope, receive)
                if refusal is None:
                    receive = _replay(body, receive)
            if refusal is not None:
                await _respond(timed_send, *refusal)
                return
            await self.app(scope, receive, timed_send)
        finally:
            self.metrics.requests.labels(route, scope["method"], str(code[0])).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - started)

    @staticmethod
    def _timing(scope: dict[str, Any], started: float) -> list[tuple[bytes, bytes]]:
        headers = [(b"x-total-time", f"{(time.perf_counter() - started) * 1000:.2f}".encode())]
        timing = scope.get("state", {}).get("timing") or {}
        for key, name in (("queue_ms", b"x-queue-time"), ("inference_ms", b"x-inference-time")):
            if key in timing:
                headers.append((name, f"{timing[key]:.2f}".encode()))
        return headers

    def _refuse_host(self, scope: dict[str, Any]) -> tuple | None:
        if self.allowed_hosts is None:
            return None
        host = _header(scope, b"host").decode("latin-1").lower()
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        if name.strip("[]") in self.allowed_hosts or name in self.allowed_hosts:
            return None
        return 400, error_body(f"Host {host!r} is not this server (allowed: {', '.join(sorted(self.allowed_hosts))}; "
                               "start with --allowed-host NAME to add one)", "InvalidHost"), []

    def _refuse_key(self, scope: dict[str, Any]) -> tuple | None:
        if not self.keys or scope["path"] in OPEN_PATHS:
            return None
        given = _header(scope, b"authorization")
        token = given[7:].strip() if given[:7].lower() == b"bearer " else b""
        ok = False
        for key in self.keys:  # every key compared, in constant time each
            ok |= hmac.compare_digest(token, key)
        if ok:
            return None
        why = "no API key: send Authorization: Bearer <key>" if not token else "API key not accepted"
        return 401, error_body(why, "Unauthorized"), [(b"www-authenticate", b'Bearer realm="simpair"')]

    async def _read_body(self, scope: dict[str, Any], receive: Any) -> tuple[bytes, tuple | None]:
        limit = self.limits.payload_bytes
        declared = _header(scope, b"content-length")
        if declared.isdigit() and int(declared) > limit:
            return b"", _too_large(int(declared), limit)
        chunks, size = [], 0
        deadline = time.monotonic() + self.limits.read_timeout_s
        while True:
            try:
                message = await asyncio.wait_for(receive(), max(deadline - time.monotonic(), 0.001))
            except asyncio.TimeoutError:
                return b"", (408, error_body(f"the request body did not arrive within "
                                             f"{self.limits.read_timeout_s:g} s", "Timeout"), [(b"connection", b"close")])
            if message["type"] == "http.disconnect":
                return b"", (400, error_body("the client went away", "Disconnected"), [])
            size += len(message.get("body", b""))
            if size > limit:
                return b"", _too_large(size, limit)
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                return b"".join(chunks), None


def _too_large(size: int, limit: int) -> tuple:
    return 413, error_body(f"request body of {size:,}+ bytes; the limit is {limit:,} bytes (--payload-limit)",
                           "PayloadTooLarge"), [(b"connection", b"close")]


def _header(scope: dict[str, Any], name: bytes) -> bytes:
    return next((v for k, v in scope.get("headers", []) if k == name), b"")


def _replay(body: bytes, receive: Any) -> Any:
    """A ``receive`` that hands the app the body already read, then the real stream (for disconnects)."""
    sent = False

    async def replay() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _respond(send: Any, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]]) -> None:
    raw = json.dumps(body, ensure_ascii=False).encode("utf-8")
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": raw})
