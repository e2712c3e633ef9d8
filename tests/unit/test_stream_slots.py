"""The cap on open server streams (common/stream_slots.py) and the settings that size it."""

from __future__ import annotations

import pytest

from common.errors import ResourceExhausted
from common.stream_slots import TOO_MANY_STREAMS, StreamSlots
from svc_order.config import OrderSettings


def test_places_past_the_limit_are_refused_until_one_is_given_back() -> None:
    changes: list[int] = []
    slots = StreamSlots(2, "order streams", changes.append)
    slots.take()
    slots.take()
    with pytest.raises(ResourceExhausted) as refused:
        slots.take()
    assert refused.value.reason == TOO_MANY_STREAMS
    assert "order streams" in str(refused.value)
    assert slots.taken == 2
    slots.release()
    slots.take()
    assert slots.taken == 2
    # A refused take moves no gauge.
    assert changes == [1, 1, -1, 1]


def _order_settings(**fields: object) -> OrderSettings:
    return OrderSettings(
        redis_url="redis://127.0.0.1:1/0",
        inventory_service_addr="127.0.0.1:1",
        user_service_addr="127.0.0.1:1",
        **fields,  # type: ignore[arg-type]
    )


def test_order_streams_must_leave_threads_for_other_calls() -> None:
    assert _order_settings().max_order_streams < _order_settings().grpc_max_workers
    assert _order_settings(grpc_max_workers=8, max_order_streams=7).max_order_streams == 7
    with pytest.raises(ValueError, match="MAX_ORDER_STREAMS"):
        _order_settings(grpc_max_workers=8, max_order_streams=8)
