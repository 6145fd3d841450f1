"""`simpair serve` as a user runs it: a real uvicorn process on a free loopback port, real HTTP clients (httpx,
the official ``openai`` client, raw sockets). Keys, a 100 MB body, a burst past the queue, a slow client, a
poison request among normal ones, and the rerank call LangChain's Cohere reranker makes."""
from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from conftest import serve_models

pytestmark = pytest.mark.timeout(300)
KEY = "test-key-123"
AUTH = {"Authorization": f"Bearer {KEY}"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


@pytest.fixture(scope="module")
def server(tiny_bert: Path, tmp_path_factory: pytest.TempPathFactory):
    models = serve_models(tiny_bert, tmp_path_factory.mktemp("live"), steps=2)
    port = _free_port()
    cmd = [sys.executable, "-m", "simpair", "serve", "--model", models["model"], "--index", models["index"],
           "--no-sentiment", "--port", str(port), "--api-key", KEY, "--max-queue", "16", "--batch-window-ms", "20",
           "--read-timeout", "1", "--max-texts", "64"]
    log = tmp_path_factory.mktemp("live-log") / "server.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
        assert proc.poll() is None, log.read_text()
    yield url, proc, models
    proc.terminate()
    proc.wait(timeout=20)


def test_keys_on_a_live_server(server) -> None:
    url, _, _ = server
    assert httpx.get(url + "/healthz").status_code == 200
    res = httpx.post(url + "/match", json={"text_a": "a", "text_b": "b"})
    assert res.status_code == 401 and "Bearer" in res.headers["www-authenticate"]
    assert httpx.post(url + "/match", json={"text_a": "a", "text_b": "b"}, headers=AUTH).status_code == 200
    assert httpx.get(url + "/healthz", headers={"Host": "attacker.example"}).status_code == 400


def test_langchain_style_rerank_and_openai_embeddings_unchanged(server) -> None:
    openai = pytest.importorskip("openai")
    url, _, models = server
    # what langchain_cohere.CohereRerank sends through cohere.Client.rerank (POST /v1/rerank, bearer key)
    body = {"model": "rerank-v3.5", "query": "怎么开初婚未育证明", "documents": ["初婚未育证明怎么开", "今天天气"],
            "top_n": 1}
    r = httpx.post(url + "/v1/rerank", json=body, headers=AUTH).json()
    assert len(r["results"]) == 1 and set(r["results"][0]) == {"index", "relevance_score"}
    api = openai.OpenAI(base_url=url + "/v1", api_key=KEY)
    got = api.embeddings.create(model="simpair", input=["怎么开初婚未育证明", "初婚未育证明怎么开"])
    assert len(got.data) == 2 and len(got.data[0].embedding) > 0
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=url + "/v1", api_key="wrong").embeddings.create(model="m", input="x")


def test_a_100_mb_body_is_refused_and_costs_little_memory(server) -> None:
    url, proc, _ = server
    before = _peak_rss_mb(proc.pid)

    def chunks():  # 100 MB, chunked (no Content-Length): the server must stop reading at its limit
        piece = b'["aaaaaaaaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbbbbbbbbbb"], ' * 20000
        sent = 0
        yield b'{"pairs": ['
        while sent < 100_000_000:
            yield piece
            sent += len(piece)

    for body, headers in ((chunks(), {}), (b"x" * 100_000_000, {"content-type": "application/json"})):
        try:
            res = httpx.post(url + "/match", content=body, headers={**AUTH, **headers}, timeout=60)
            assert res.status_code == 413 and res.json()["error_type"] == "PayloadTooLarge"
        except (httpx.RemoteProtocolError, httpx.WriteError, httpx.ReadError):
            pass  # the server answered 413 and closed while the client was still sending: also a refusal
    assert _peak_rss_mb(proc.pid) - before < 50
    assert httpx.post(url + "/match", json={"text_a": "a", "text_b": "b"}, headers=AUTH).status_code == 200


def test_a_burst_is_shed_with_429_then_served_normally(server) -> None:
    url, _, _ = server
    pairs = {"pairs": [[f"问题{i}怎么办", f"请问问题{i}"] for i in range(64)]}

    async def burst() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=500, max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=url, headers=AUTH, limits=limits, timeout=120) as c:
            return await asyncio.gather(*(c.post("/match", json=pairs) for _ in range(500)))

    res = asyncio.run(burst())
    codes = [r.status_code for r in res]
    assert set(codes) <= {200, 429} and codes.count(429) > 0 and codes.count(200) >= 16
    shed = next(r for r in res if r.status_code == 429)
    assert shed.headers["retry-after"] == "1" and shed.json()["error_type"] == "Overloaded"
    assert all(httpx.post(url + "/match", json=pairs, headers=AUTH).status_code == 200 for _ in range(10))


def test_a_slow_client_times_out_without_holding_others(server) -> None:
    url, _, _ = server
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as s:
        s.sendall(f"POST /match HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {KEY}\r\n"
                  "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"text_a\"".encode())
        t0 = time.time()
        assert httpx.post(url + "/match", json={"text_a": "a", "text_b": "b"}, headers=AUTH).status_code == 200
        s.settimeout(10)
        reply = s.recv(4096).decode("latin-1")
        assert reply.startswith("HTTP/1.1 408") and time.time() - t0 < 5


def test_a_poison_request_fails_alone(server) -> None:
    url, _, _ = server
    poison = '{"text_a": "\\ud800", "text_b": "b"}'

    async def mixed() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=url, headers=AUTH, timeout=60) as c:
            normal = [c.post("/match", json={"text_a": f"问题{i}", "text_b": "问题"}) for i in range(12)]
            bad = [c.post("/match", content=poison, headers={"content-type": "application/json"}) for _ in range(12)]
            return await asyncio.gather(*[x for pair in zip(normal, bad) for x in pair])

    codes = [r.status_code for r in asyncio.run(mixed())]
    assert codes[0::2] == [200] * 12 and codes[1::2] == [422] * 12  # 12: within the queue of 16
