"""What the front door checks before any route runs (in process): API keys, the Host header, the body limit,
and what it reports: /metrics and the timing headers."""
from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from simpair.errors import InputError
from simpair.server import Limits, api_keys, check_exposure, create_app

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def client(served: dict[str, str]) -> TestClient:
    app = create_app(**served, bf16="no", load_sentiment=False, keys=["k-one", "k-two"],
                     allowed_hosts=["127.0.0.1", "localhost", "testserver"], limits=Limits(payload_bytes=4096))
    return TestClient(app)


def test_keys_are_needed_except_on_the_page_docs_and_health(client: TestClient) -> None:
    pair = {"text_a": "你好", "text_b": "您好"}
    for path in ("/", "/healthz", "/health", "/docs", "/openapi.json"):
        assert client.get(path).status_code == 200, path
    none = client.post("/match", json=pair)
    assert none.status_code == 401 and none.headers["www-authenticate"].startswith("Bearer")
    assert none.json()["error_type"] == "Unauthorized" and "Authorization: Bearer" in none.json()["error"]
    wrong = client.post("/match", json=pair, headers={"Authorization": "Bearer k-on"})
    assert wrong.status_code == 401 and "not accepted" in wrong.json()["error"]
    for key in ("k-one", "k-two"):
        assert client.post("/match", json=pair, headers={"Authorization": f"Bearer {key}"}).status_code == 200
    assert client.get("/info").status_code == 401 and client.get("/metrics").status_code == 401
    assert client.get("/info", headers={"Authorization": "Bearer k-one"}).json()["auth"] is True


def test_another_host_name_is_refused(client: TestClient) -> None:
    res = client.get("/healthz", headers={"Host": "evil.example:8000"})
    assert res.status_code == 400 and res.json()["error_type"] == "InvalidHost"
    assert client.get("/healthz", headers={"Host": "localhost:8000"}).status_code == 200


def test_a_body_over_the_limit_is_refused_before_parsing(client: TestClient) -> None:
    auth = {"Authorization": "Bearer k-one", "content-type": "application/json"}
    res = client.post("/match", content=b'{"text_a": "' + b"x" * 5000 + b'", "text_b": "y"}', headers=auth)
    assert res.status_code == 413 and "4,096 bytes" in res.json()["error"]

    def chunks():  # no Content-Length: counted on the stream
        for _ in range(100):
            yield b"x" * 1000

    res = client.post("/match", content=chunks(), headers=auth)
    assert res.status_code == 413 and res.json()["error_type"] == "PayloadTooLarge"


def test_metrics_count_requests_and_batches_and_responses_carry_timing(client: TestClient) -> None:
    auth = {"Authorization": "Bearer k-one"}
    res = client.post("/match", json={"pairs": [["a", "b"], ["c", "d"]]}, headers=auth)
    assert res.status_code == 200
    assert float(res.headers["x-total-time"]) > 0 and float(res.headers["x-inference-time"]) > 0
    assert float(res.headers["x-queue-time"]) >= 0
    client.post("/match", json={"text_a": " ", "text_b": "b"}, headers=auth)
    text = client.get("/metrics", headers=auth).text
    ok = [line for line in text.splitlines() if line.startswith('simpair_requests_total{code="200",method="POST"'
                                                                ',route="/match"}')]
    assert ok and float(ok[0].split()[-1]) >= 1
    assert 'simpair_requests_total{code="422",method="POST",route="/match"}' in text
    assert 'simpair_requests_total{code="401"' in text
    assert 'simpair_batch_size_bucket{endpoint="match",le="2.0"}' in text and "simpair_queue_depth" in text
    assert 'simpair_request_duration_seconds_count{route="/match"}' in text


def test_keys_come_from_flags_env_and_a_file_and_exposure_needs_one(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "keys.txt"
    f.write_text("alpha\n# a comment\n\nbeta  # team b\n", encoding="utf-8")
    monkeypatch.setenv("SIMPAIR_API_KEY", "gamma, delta")
    assert api_keys(["zeta"], str(f)) == ["alpha", "beta", "delta", "gamma", "zeta"]
    with pytest.raises(InputError, match="no such API key file"):
        api_keys((), str(tmp_path / "missing.txt"))
    with pytest.raises(InputError, match="--insecure"):
        check_exposure("0.0.0.0", [], insecure=False)
    check_exposure("0.0.0.0", ["alpha"], insecure=False)
    check_exposure("0.0.0.0", [], insecure=True)
    check_exposure("127.0.0.1", [], insecure=False)
