"""Prometheus metrics of one bridge, in a registry of its own.

Requests are labelled by route template (`/api/v1/orders/{order_id}`), never by raw
path, so an id in a URL cannot blow up the number of series; a request that matched no
route, or that the HTTP protocol refused before any route was looked up, is
`route="unmatched"`.
"""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

UNMATCHED_ROUTE = "unmatched"
# The method label of a request the HTTP protocol refused before it was one (malformed,
# headers too slow or too large: `http_server.py`); its route is UNMATCHED_ROUTE.
UNREAD_METHOD = "unread"


class BridgeMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "bridge_http_requests",
            "HTTP requests answered, by route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "bridge_http_request_duration_seconds",
            "Time to answer an HTTP request (to the end of the headers for streams).",
            ["method", "route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "bridge_rate_limit_rejections",
            "Requests refused with 429 by the bridge's own limits, by bucket scope.",
            ["scope"],
            registry=self.registry,
        )
        self.redis_errors = Counter(
            "bridge_redis_errors",
            "Redis calls that failed, by purpose (rate limits fail open).",
            ["purpose"],
            registry=self.registry,
        )

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def exposition(self) -> bytes:
        """The bridge's own families, then the process-wide ones of `common.metrics`
        (outgoing calls, Redis commands) and the process collector."""
        return generate_latest(self.registry) + generate_latest(REGISTRY)
