"""Prometheus metrics: request counts and latency per route template, index size, queue depth.

Each app gets its own registry (several apps live in one test process); the request middleware
is pure ASGI and labels by the matched route's template (`/v1/tracks/{track_id}`), never the raw
path, so a scan of random URLs cannot blow up the label cardinality.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.asgi import HttpMiddleware

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """The service's collectors, bound to one registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("cvsm_http_requests_total", "HTTP requests",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("cvsm_http_request_duration_seconds", "HTTP request latency",
                                 ["method", "route"], buckets=LATENCY_BUCKETS,
                                 registry=self.registry)
        self.index_size = Gauge("cvsm_index_tracks", "tracks in the vector index",
                                registry=self.registry)
        self.queue_depth = Gauge("cvsm_embed_jobs", "decode+embed jobs running or waiting",
                                 registry=self.registry)
        self.rejected = Counter("cvsm_embed_rejected_total", "jobs refused: queue full",
                                registry=self.registry)

    def bind(self, index_size: Callable[[], float], queue_depth: Callable[[], float]) -> None:
        """Read the live values at scrape time instead of tracking them by hand."""
        self.index_size.set_function(index_size)
        self.queue_depth.set_function(queue_depth)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _route_label(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if path else "unmatched"


class MetricsMiddleware(HttpMiddleware):
    """Count and time every HTTP request (outermost, so 413s and 500s are counted too)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        super().__init__(app)
        self.metrics = metrics

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = time.perf_counter()
        status = {"code": 500}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route, method = _route_label(scope), scope.get("method", "")
            self.metrics.requests.labels(method, route, str(status["code"])).inc()
            self.metrics.latency.labels(method, route).observe(time.perf_counter() - start)
