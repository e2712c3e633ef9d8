"""How long the bridge lets a gRPC call take: the client's X-Request-Timeout, bounded
by the maximum; anything unusable is the default (rest_bridge/dispatch.py)."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from rest_bridge.config import BridgeSettings
from rest_bridge.dispatch import Dispatcher
from rest_bridge.metrics import BridgeMetrics
from rest_bridge.subjects import TokenSubjects

DEFAULT, MAXIMUM = 5.0, 30.0


@pytest.mark.parametrize(
    ("header", "timeout"),
    [
        (None, DEFAULT),
        ("2.5", 2.5),
        ("30", MAXIMUM),
        ("600", MAXIMUM),
        ("1e9", MAXIMUM),
        ("0", DEFAULT),
        ("-1", DEFAULT),
        ("soon", DEFAULT),
        ("nan", DEFAULT),
        ("inf", DEFAULT),
    ],
)
def test_the_clients_timeout_is_honoured_up_to_the_maximum(
    header: str | None, timeout: float
) -> None:
    settings = BridgeSettings(
        redis_url="redis://127.0.0.1:1/0",
        bridge_default_timeout_seconds=DEFAULT,
        bridge_max_timeout_seconds=MAXIMUM,
    )
    subjects = TokenSubjects(None, issuer="test", audience="test", fetch_timeout=1.0)
    dispatcher = Dispatcher(settings, {}, metrics=BridgeMetrics(), subjects=subjects)
    headers = [] if header is None else [(b"x-request-timeout", header.encode())]
    assert dispatcher.timeout_of(Request({"type": "http", "headers": headers})) == timeout
