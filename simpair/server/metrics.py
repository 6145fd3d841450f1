"""``GET /metrics``: the server's counters in the Prometheus text format (prometheus_client), one registry
per app so that several apps in one process (tests, embedding) do not share counts."""
from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class Metrics:
    """Requests by route and status code, latency, batch sizes and model-call time, queue depth."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("simpair_requests", "HTTP requests by route, method and status code",
                                ["route", "method", "code"], registry=self.registry)
        self.latency = Histogram("simpair_request_duration_seconds", "Time from request to response, by route",
                                 ["route"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.batch_size = Histogram("simpair_batch_size", "Items per model call, by endpoint", ["endpoint"],
                                    buckets=BATCH_BUCKETS, registry=self.registry)
        self.inference = Histogram("simpair_inference_duration_seconds", "Seconds per model call, by endpoint",
                                   ["endpoint"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.queue = Gauge("simpair_queue_depth", "Requests waiting or being scored, by endpoint", ["endpoint"],
                           registry=self.registry)

    def observer(self, endpoint: str) -> Callable[[int, float], None]:
        """What a micro-batcher calls after each model call."""
        size, seconds = self.batch_size.labels(endpoint), self.inference.labels(endpoint)

        def observe(n: int, spent: float) -> None:
            size.observe(n)
            seconds.observe(spent)

        return observe

    def watch_queue(self, endpoint: str, depth: Callable[[], int]) -> None:
        self.queue.labels(endpoint).set_function(lambda: float(depth()))

    def render(self) -> bytes:
        return generate_latest(self.registry)
