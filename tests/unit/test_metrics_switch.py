"""METRICS_ENABLED=false leaves the metric hooks out (the benchmark's "off"); on by
default."""

from __future__ import annotations

import pytest
import redis

from common.metrics import count_redis_commands, metrics_enabled


def test_the_hooks_are_on_by_default_and_off_when_disabled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("METRICS_ENABLED", raising=False)
    assert metrics_enabled()
    counted = count_redis_commands(redis.Redis())
    assert "execute_command" in vars(counted)  # wrapped on the instance

    monkeypatch.setenv("METRICS_ENABLED", "false")
    assert not metrics_enabled()
    plain = count_redis_commands(redis.Redis())
    assert "execute_command" not in vars(plain)
