"""svc_inventory's metrics (Prometheus): price freshness, the quote cache, streams.

The hit ratio is `sum(rate(price_cache_lookups_total{result="hit"}[5m])) /
sum(rate(price_cache_lookups_total[5m]))`; the age of the prices is
`time() - price_updated_timestamp_seconds`.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

cache_lookups = Counter(
    "price_cache_lookups_total",
    "Quotes looked up in the Redis price cache, by result (hit, miss).",
    ["result"],
)
price_updated = Gauge(
    "price_updated_timestamp_seconds",
    "Unix time of the newest price this process holds (its as_of).",
)
price_streams = Gauge("price_streams_active", "StreamPrices calls open now.")
