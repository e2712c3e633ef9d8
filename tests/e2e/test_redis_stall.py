"""The bridge's rate limits against a stalled Redis (a real redis-server, SIGSTOPped):
after one failed check the limits fail open at once (README: "When Redis is down"),
and one request probes Redis again after RATE_LIMIT_PROBE_SECONDS."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from devstack.engines import Engine, start_redis
from tests.e2e.conftest import Bridge

PROBE_SECONDS = 3.0
ROUTE = "/api/v1/inventory/assets?limit=1"


@pytest.fixture
def own_redis() -> Iterator[Engine]:
    engine = start_redis()
    yield engine
    os.kill(engine.process.pid, signal.SIGCONT)
    engine.stop()


def _failed_checks(client: httpx.Client) -> float:
    """bridge_redis_errors_total{purpose="ratelimit"}: checks that reached Redis and failed."""
    for line in client.get("/metrics").text.splitlines():
        if line.startswith('bridge_redis_errors_total{purpose="ratelimit"}'):
            return float(line.split()[-1])
    return 0.0


def _timed_get(client: httpx.Client) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    answer = client.get(ROUTE)
    return answer, time.monotonic() - started


def _until(condition: Callable[[], bool], what: str, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds} s: {what}")
        time.sleep(0.05)


def test_a_stalled_redis_costs_one_check_then_limits_fail_open_at_once(
    own_redis: Engine, start_bridge: Callable[..., Bridge]
) -> None:
    bridge = start_bridge(redis_url=own_redis.url, rate_limit_probe_seconds=PROBE_SECONDS)
    with bridge.client() as client:
        assert "RateLimit-Limit" in client.get(ROUTE).headers
        os.kill(own_redis.process.pid, signal.SIGSTOP)
        try:
            first, first_waited = _timed_get(client)
            after = [_timed_get(client) for _ in range(5)]
            failed_after_burst = _failed_checks(client)
            # After the interval one request probes the still stalled Redis.
            _until(lambda: _failed_checks(client) >= 2, "a probe of the stalled Redis")
            _until(lambda: _timed_get(client)[0].status_code == 200, "an answer")
        finally:
            os.kill(own_redis.process.pid, signal.SIGCONT)
        # Redis is back: the next probe closes the breaker and limits apply again.
        _until(lambda: "RateLimit-Limit" in client.get(ROUTE).headers, "limits back on")
        failed_in_all = _failed_checks(client)
    print(f"\nFIGURE Redis stalled: first request {first_waited:.2f} s (its check timed out)")
    print(f"FIGURE Redis stalled: next 5 requests {max(w for _, w in after):.3f} s at most")
    assert first.status_code == 200
    assert "RateLimit-Limit" not in first.headers  # failed open
    assert [answer.status_code for answer, _ in after] == [200] * 5
    assert all("RateLimit-Limit" not in answer.headers for answer, _ in after)
    # Only the first check went to Redis; the five after it failed open without a try.
    assert failed_after_burst == 1
    # Dozens of requests (the polls above) met the stalled Redis, but only the first and
    # one probe per interval tried it (a third only if this machine paused for 3 s).
    assert 2 <= failed_in_all <= 3
