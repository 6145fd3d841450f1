"""The APIs clients already speak, in process: Cohere/Jina rerank, OpenAI embeddings (through the official
``openai`` client), TEI's /embed, and /v1/models."""
from __future__ import annotations


import numpy as np
import pytest
from fastapi.testclient import TestClient

from simpair.server import create_app

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def client(served: dict[str, str]) -> TestClient:
    return TestClient(create_app(**served, bf16="no", load_sentiment=False))


def test_rerank_in_the_cohere_shape_agrees_with_the_matcher(client: TestClient, served: dict[str, str]) -> None:
    from simpair.cross_encoder import CrossEncoder

    query, docs = "怎么开初婚未育证明", ["初婚未育证明怎么开", "今天天气怎么样", "信用卡怎么提额"]
    expected = CrossEncoder(served["model"], bf16="no").predict([(query, d) for d in docs])
    for path in ("/rerank", "/v1/rerank"):
        r = client.post(path, json={"query": query, "documents": docs, "top_n": 2, "return_documents": True,
                                    "model": "anything"}).json()
        assert [x["index"] for x in r["results"]] == list(np.argsort(-expected)[:2])
        assert np.allclose([x["relevance_score"] for x in r["results"]], np.sort(expected)[::-1][:2], atol=1e-3)
        assert r["results"][0]["document"] == {"text": docs[r["results"][0]["index"]]}
        assert r["model"] == served["model"] and r["usage"]["total_tokens"] > 0
    jina = client.post("/v1/rerank", json={"query": query, "documents": [{"text": d} for d in docs]}).json()
    assert len(jina["results"]) == 3 and "document" not in jina["results"][0]


@pytest.mark.parametrize(("body", "words"), [
    ({"query": "q", "documents": []}, "documents: empty list"),
    ({"query": "q", "documents": ["ok", " "]}, "documents[1]: empty text"),
    ({"query": "q", "documents": ["d"] * 201}, "at most 200"),
    ({"query": "q", "documents": ["d"], "top_n": 0}, "greater than or equal"),
])
def test_rerank_bounds(client: TestClient, body: dict, words: str) -> None:
    res = client.post("/rerank", json=body)
    assert res.status_code == 422 and words in res.json()["error"]


def test_openai_client_embeddings_equal_the_encoder(client: TestClient, served: dict[str, str]) -> None:
    openai = pytest.importorskip("openai")
    from simpair.bi_encoder import BiEncoder
    from simpair.index import Index

    encoder = Index.load(served["index"]).manifest["model"]
    texts = ["怎么开初婚未育证明", "How do I reset my password?"]
    expected = BiEncoder(encoder, bf16="no").encode(texts)
    api = openai.OpenAI(base_url="http://testserver/v1", api_key="unused", http_client=client)
    got = api.embeddings.create(model="simpair", input=texts)  # the client asks for base64 by default
    assert [d.index for d in got.data] == [0, 1] and got.usage.total_tokens > 0
    assert np.allclose([d.embedding for d in got.data], expected, atol=1e-4)
    floats = client.post("/v1/embeddings", json={"input": texts[0], "encoding_format": "float"}).json()
    assert floats["object"] == "list" and floats["data"][0]["object"] == "embedding"
    assert np.allclose(floats["data"][0]["embedding"], expected[0], atol=1e-4)
    tei = client.post("/embed", json={"inputs": texts}).json()
    assert np.allclose(tei, expected, atol=1e-4)
    res = client.post("/v1/embeddings", json={"input": texts, "dimensions": 7})
    assert res.status_code == 422 and "dimensional" in res.json()["error"]
    ids = [m["id"] for m in client.get("/v1/models").json()["data"]]
    assert ids == [served["model"], encoder, served["sentiment_model"]]


def test_embeddings_need_an_encoder(served: dict[str, str]) -> None:
    c = TestClient(create_app(model=served["model"], bf16="no", load_sentiment=False))
    res = c.post("/v1/embeddings", json={"input": "x"})
    assert res.status_code == 404 and "--encoder" in res.json()["error"]
