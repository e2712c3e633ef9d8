"""Background work is not a request: the health probes and the revocation keeper make
no spans (issue #13), while a call of a request is traced as before. Real Redis,
instrumented as the services instrument it, spans collected in memory."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from common.health import Dependency, DependencyMonitor, redis_probe
from common.redis_clients import redis_client
from common.revocation import RevocationKeeper, RevocationList

INTERVAL_SECONDS = 0.02


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = RedisInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        yield exporter
    finally:
        instrumentor.uninstrument()
        provider.shutdown()


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    made = redis_client(redis_url)
    yield made
    made.close()


def test_health_probes_make_no_spans(spans: InMemorySpanExporter, client: redis.Redis) -> None:
    monitor = DependencyMonitor(
        {"redis": Dependency(redis_probe(client))}, lambda _name, _serving: None, 1.0
    )
    assert monitor.probe_once() == {"redis": True, "": True}
    assert spans.get_finished_spans() == ()
    # The same call made for a request is traced.
    client.ping()
    assert [span.name for span in spans.get_finished_spans()] == ["PING"]


def test_the_revocation_keeper_makes_no_spans(
    spans: InMemorySpanExporter, client: redis.Redis
) -> None:
    keeper = RevocationKeeper(RevocationList(client), list, interval_seconds=INTERVAL_SECONDS)
    keeper.start()
    time.sleep(INTERVAL_SECONDS * 10)
    keeper.stop()
    time.sleep(INTERVAL_SECONDS * 5)  # its thread ends at its next wake
    assert spans.get_finished_spans() == ()
    client.exists("revoked:complete")
    assert [span.name for span in spans.get_finished_spans()] == ["EXISTS"]
