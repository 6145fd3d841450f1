"""`simpair serve` on tiny models, in process: endpoints, bounds (422 naming the field), the error shape,
micro-batching, loopback default."""
from __future__ import annotations

import asyncio

import numpy as np
import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from simpair.search import RERANK_WEIGHT  # noqa: E402
from simpair.server import DEFAULT_MAX_BATCH, OPENVINO_MATCH_BATCH, Limits, batch_sizes, create_app  # noqa: E402


pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def client(served: dict[str, str]) -> TestClient:
    # no "with": each request may run in a fresh event loop, which the batchers must survive
    return TestClient(create_app(**served, bf16="no", limits=Limits(max_texts=8, max_chars=200, max_k=20)))


def test_health_info_docs_and_page(client: TestClient, served: dict[str, str]) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    info = client.get("/info").json()
    assert info["match"]["model"] == served["model"] and info["search"]["size"] == 335
    assert info["sentiment"]["labels"] == ["negative", "positive"] and info["limits"]["max_texts"] == 8
    assert info["batching"]["max_batch"] == dict.fromkeys(("match", "search", "sentiment", "embed"), DEFAULT_MAX_BATCH)
    assert info["search"]["rerank_weight"] == RERANK_WEIGHT  # re-ranked hits: cosine + this x probability
    assert client.get("/docs").status_code == 200
    assert set(client.get("/openapi.json").json()["paths"]) == {
        "/healthz", "/info", "/metrics", "/match", "/search", "/sentiment", "/label", "/label/undo", "/rerank",
        "/v1/embeddings", "/embed", "/v1/models"}
    assert client.get("/health").json() == {"status": "ok"}
    assert info["label"] is None
    off = client.get("/label")
    assert off.status_code == 404 and "--label FILE" in off.json()["detail"]
    page = client.get("/")
    assert page.status_code == 200 and 'id="match-go"' in page.text


def test_match_one_and_batch_agree_with_the_model(client: TestClient, served: dict[str, str]) -> None:
    from simpair.cross_encoder import CrossEncoder

    pairs = [["怎么开初婚未育证明", "初婚未育证明怎么开"], ["今天天气", "明天下雨吗"]]
    expected = CrossEncoder(served["model"], bf16="no").predict([tuple(p) for p in pairs])
    one = client.post("/match", json={"text_a": pairs[0][0], "text_b": pairs[0][1]}).json()
    assert one["probability"] == pytest.approx(float(expected[0]), abs=1e-3)
    assert one["same"] == (one["probability"] >= one["threshold"])
    batch = client.post("/match", json={"pairs": pairs}).json()["results"]
    assert np.allclose([r["probability"] for r in batch], expected, atol=1e-3)


def test_search_with_and_without_rerank(client: TestClient) -> None:
    plain = client.post("/search", json={"query": "怎么开初婚未育证明", "k": 3}).json()
    assert len(plain["hits"]) == 3 and all("rerank_score" not in h for h in plain["hits"])
    scores = [h["score"] for h in plain["hits"]]
    assert scores == sorted(scores, reverse=True)
    rr = client.post("/search", json={"query": "怎么开初婚未育证明", "k": 3, "rerank": True, "candidates": 10}).json()
    assert len(rr["hits"]) == 3 and all("rerank_score" in h and "same" in h for h in rr["hits"])


def test_sentiment_one_and_batch(client: TestClient) -> None:
    one = client.post("/sentiment", json={"text": "服务很好"}).json()
    assert one["label"] in ("negative", "positive") and 0.5 <= one["score"] <= 1.0
    many = client.post("/sentiment", json={"texts": ["服务很好", "terrible", "ok"]}).json()["results"]
    assert [r["text"] for r in many] == ["服务很好", "terrible", "ok"]


@pytest.mark.parametrize(("path", "body", "status", "words"), [
    ("/match", {"pairs": [["a", "b"]] * 9}, 422, "pairs: 9 items; at most 8"),
    ("/match", {"text_a": "x" * 201, "text_b": "y"}, 422, "text_a: 201 characters; at most 200"),
    ("/match", '{"pairs": [["a", "b"], ["c", "\\ud800"]]}', 422, "pairs[1].text_b: not valid Unicode"),
    ("/match", {"text_a": "only one"}, 422, "text_a and text_b"),
    ("/match", {"text_a": " ", "text_b": "y"}, 422, "empty text"),
    ("/sentiment", {"texts": ["x"] * 9}, 422, "texts: 9 items; at most 8"),
    ("/sentiment", '{"text": "ok \\udfff"}', 422, "text: not valid Unicode"),
    ("/sentiment", {"texts": []}, 422, "empty list"),
    ("/sentiment", {}, 422, "text or texts"),
    ("/search", {"query": "q", "k": 21}, 422, "at most 20"),
    ("/search", {"query": "q", "k": 0}, 422, "greater than or equal"),
    ("/search", {"k": 3}, 422, "query"),
])
def test_limits_and_malformed_requests(client: TestClient, path: str, body: dict | str, status: int,
                                      words: str) -> None:
    # a str body goes as it is: JSON escapes such as a lone surrogate, which a client library would not encode
    res = (client.post(path, content=body, headers={"content-type": "application/json"}) if isinstance(body, str)
           else client.post(path, json=body))
    assert res.status_code == status and words in str(res.json()["detail"])
    assert res.json()["error_type"] == "Validation" and words.split(":")[0] in res.json()["error"]


def test_refusals_never_echo_the_input_and_non_finite_numbers_are_422(client: TestClient) -> None:
    big = "x" * 200_000
    res = client.post("/search", json={"query": "q", "k": big})
    assert res.status_code == 422 and len(res.content) < 2000 and "k" in res.json()["error"]
    res = client.post("/search", content=b'{"query": "q", "k": NaN}', headers={"content-type": "application/json"})
    assert res.status_code == 422
    res = client.post("/match", content=b'{"text_a": Infinity, "text_b": "b"}',
                      headers={"content-type": "application/json"})
    assert res.status_code == 422
    res = client.post("/match", content=b"\xff\xfe not json", headers={"content-type": "application/json"})
    assert res.status_code == 400 and res.json()["error_type"] == "BadRequest"


def test_missing_endpoints_say_how_to_enable_them(served: dict[str, str]) -> None:
    app = create_app(model=served["model"], load_sentiment=False)
    with TestClient(app) as c:
        res = c.post("/search", json={"query": "q"})
        assert res.status_code == 404 and "--index" in res.json()["detail"]
        assert c.post("/sentiment", json={"text": "x"}).status_code == 404


@pytest.mark.parametrize("batching", [True, False])
def test_concurrent_requests_are_batched(served: dict[str, str], batching: bool) -> None:
    import httpx

    from simpair.cross_encoder import CrossEncoder

    app = create_app(model=served["model"], load_sentiment=False, batching=batching, window_ms=50, bf16="no")
    pairs = [(f"问题{i}怎么办", f"请问问题{i}") for i in range(16)]
    expected = CrossEncoder(served["model"], bf16="no").predict(pairs)

    async def run() -> list[float]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            res = await asyncio.gather(*(c.post("/match", json={"text_a": a, "text_b": b}) for a, b in pairs))
        return [r.json()["probability"] for r in res]

    got = asyncio.run(run())
    assert np.allclose(got, expected, atol=1e-3)  # every caller gets its own row back
    batcher = app.state.batchers["match"]
    assert batcher.items == 16
    assert (batcher.batches < 16) if batching else (batcher.batches == 16)


def test_batch_sizes_per_endpoint() -> None:
    from types import SimpleNamespace

    on = lambda backend: SimpleNamespace(matcher=SimpleNamespace(backend=backend))  # noqa: E731
    assert batch_sizes(on("torch")) == dict.fromkeys(("match", "search", "sentiment", "embed"), DEFAULT_MAX_BATCH)
    assert batch_sizes(on("openvino")) == {"match": OPENVINO_MATCH_BATCH, "search": DEFAULT_MAX_BATCH,
                                           "sentiment": DEFAULT_MAX_BATCH, "embed": DEFAULT_MAX_BATCH}
    assert batch_sizes(on("openvino"), 32) == dict.fromkeys(("match", "search", "sentiment", "embed"), 32)  # the user's
    assert batch_sizes(SimpleNamespace(matcher=None))["match"] == DEFAULT_MAX_BATCH


def test_max_batch_bounds_each_model_call(served: dict[str, str]) -> None:
    import httpx

    app = create_app(model=served["model"], load_sentiment=False, window_ms=50, bf16="no", max_batch=4)
    pairs = [(f"问题{i}怎么办", f"请问问题{i}") for i in range(12)]

    async def run() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            await asyncio.gather(*(c.post("/match", json={"text_a": a, "text_b": b}) for a, b in pairs))

    asyncio.run(run())
    batcher = app.state.batchers["match"]
    assert batcher.max_batch == 4 and batcher.items == 12 and batcher.batches >= 3


def test_cli_binds_to_loopback_by_default(served: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn
    from click.testing import CliRunner

    from simpair.cli import main

    seen: dict[str, object] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, host, port, **kw: seen.update(host=host, port=port))
    res = CliRunner().invoke(main, ["serve", "--model", served["model"], "--no-sentiment"])
    assert res.exit_code == 0, res.output
    assert seen == {"host": "127.0.0.1", "port": 8000}


def test_cli_refuses_an_exposed_server_without_a_key(served: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn
    from click.testing import CliRunner

    from simpair.cli import main

    seen: dict[str, object] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, host, port, **kw: seen.update(host=host))
    monkeypatch.delenv("SIMPAIR_API_KEY", raising=False)
    res = CliRunner().invoke(main, ["serve", "--model", served["model"], "--no-sentiment", "--host", "0.0.0.0"])
    assert res.exit_code == 2 and "--insecure" in res.output and not seen
    res = CliRunner().invoke(main, ["serve", "--model", served["model"], "--no-sentiment", "--host", "0.0.0.0",
                                    "--api-key", "k"])
    assert res.exit_code == 0 and seen == {"host": "0.0.0.0"}


@pytest.mark.parametrize("route", ["/match", "/rerank", "/v1/embeddings"])
def test_deeply_nested_json_is_refused_not_a_500(client: TestClient, route: str) -> None:
    """A nesting bomb (lists and objects thousands deep, well under the body limit) is a 400 or 422 in the
    one error shape, never an internal error."""
    for depth in (900, 5000, 50_000):
        for bomb in ("[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth):
            r = client.post(route, content='{"query": "q", "pairs": %s, "documents": %s, "input": %s}' % ((bomb,) * 3),
                            headers={"content-type": "application/json"})
            assert r.status_code in (400, 422), (depth, r.status_code, r.text[:200])
            assert set(r.json()) == {"detail", "error", "error_type"}
