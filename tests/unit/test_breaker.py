"""common/breaker.py: closed, open after a failure, one probe per interval."""

from __future__ import annotations

import pytest

from common.breaker import CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_failure_turns_callers_away_until_one_probe_after_the_interval() -> None:
    clock = Clock()
    breaker = CircuitBreaker(1.0, clock=clock)
    assert all(breaker.allows() for _ in range(3))  # closed: everyone
    breaker.record(succeeded=False)
    assert not breaker.allows()
    clock.now += 0.99
    assert not breaker.allows()
    clock.now += 0.02
    assert breaker.allows()  # the probe
    assert not breaker.allows()  # only one while it is out
    breaker.record(succeeded=False)  # still down: another interval
    assert not breaker.allows()
    clock.now += 1.01
    assert breaker.allows()
    breaker.record(succeeded=True)
    assert all(breaker.allows() for _ in range(3))  # closed again


def test_an_abandoned_probe_frees_its_place_and_changes_nothing_else() -> None:
    clock = Clock()
    breaker = CircuitBreaker(1.0, clock=clock)
    breaker.allows()
    breaker.record(succeeded=False)
    clock.now += 1.5
    assert breaker.allows()
    breaker.abandon()
    assert breaker.allows()  # a new probe at once: still open, interval over
    breaker.abandon()
    # A call abandoned while closed leaves it closed.
    breaker.record(succeeded=True)
    assert breaker.allows()
    breaker.abandon()
    assert breaker.allows()


def test_the_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        CircuitBreaker(0)
