"""Order events between replicas over the session's real Redis (svc_order/events.py):
what one replica publishes reaches another's feed whole; what cannot be read is
dropped and the feed goes on; a Redis that is down or drops the connection is
UNAVAILABLE ORDER_EVENTS_UNAVAILABLE with Retry-After, never a stuck stream."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import redis

from common.errors import Unavailable
from common.redis_clients import redis_client
from devstack.engines import free_port
from svc_order.domain import OrderRecord, OrderStatus, OrderType, TimeInForce
from svc_order.events import RedisOrderEvents
from svc_order.store import order_fields

WAIT_SECONDS = 2.0
RESTING = OrderRecord(
    order_id="ord-1",
    order_type=OrderType.LIMIT_BUY,
    asset_id="BTC",
    quantity=Decimal("0.00100000"),
    price=None,
    status=OrderStatus.PENDING,
    total_amount=Decimal("0.00"),
    created_at=datetime(2025, 3, 14, 12, 0, tzinfo=UTC),
    time_in_force=TimeInForce.GTD,
    limit_price=Decimal("40000.00"),
    expires_at=datetime(2025, 3, 15, 0, 0, tzinfo=UTC),
    held_amount=Decimal("40.00"),
    revision=3,
)


@pytest.fixture
def client_name() -> str:
    return f"events-{uuid.uuid4().hex[:8]}"


@dataclass
class Replicas:
    """Two replicas' events in one namespace over the same Redis: `listening`'s
    connections are named `client_name`; `other` is the other replica's Redis client."""

    namespace: str
    listening: RedisOrderEvents
    publishing: RedisOrderEvents
    other: redis.Redis


@pytest.fixture
def replicas(redis_url: str, client_name: str) -> Iterator[Replicas]:
    namespace = f"test-{uuid.uuid4().hex[:8]}"
    subscriber = redis_client(f"{redis_url}?client_name={client_name}")
    other = redis_client(redis_url)
    yield Replicas(
        namespace,
        RedisOrderEvents(subscriber, namespace),
        RedisOrderEvents(other, namespace),
        other,
    )
    subscriber.close()
    other.close()


def test_an_event_published_by_one_replica_reaches_the_others_feed_whole(
    replicas: Replicas,
) -> None:
    feed = replicas.listening.subscribe("user-1")
    try:
        replicas.publishing.publish("user-2", "order_filled", RESTING)
        replicas.publishing.publish("user-1", "order_placed", RESTING)
        assert feed.next(WAIT_SECONDS) == ("order_placed", RESTING)
        # Nothing for user-2 reaches user-1's feed.
        assert feed.next(0.2) is None
    finally:
        feed.close()


def test_an_unreadable_event_is_dropped_and_the_feed_goes_on(
    replicas: Replicas, caplog: pytest.LogCaptureFixture
) -> None:
    feed = replicas.listening.subscribe("user-1")
    # What an older or broken publisher might put on the user's channel.
    channel = f"orders:{replicas.namespace}:user-1"
    try:
        fields = {k: v for k, v in order_fields(RESTING).items() if v is not None}
        junk = [
            "not json",
            '{"event": "order_placed"}',
            '{"event": "order_placed", "order": []}',
            json.dumps({"event": "order_placed", "order": {**fields, "quantity": "lots"}}),
            json.dumps({"event": "order_placed", "order": {**fields, "status": "lost"}}),
        ]
        for message in junk:
            replicas.other.publish(channel, message)
        replicas.publishing.publish("user-1", "order_cancelled", RESTING)
        with caplog.at_level(logging.WARNING, logger="svc_order.events"):
            received = [feed.next(WAIT_SECONDS) for _ in range(len(junk) + 1)]
        assert received == [None] * len(junk) + [("order_cancelled", RESTING)]
        assert caplog.text.count("unreadable order event dropped") == len(junk)
    finally:
        feed.close()


def test_a_feed_whose_connection_redis_drops_is_unavailable(
    replicas: Replicas, client_name: str
) -> None:
    feed = replicas.listening.subscribe("user-1")
    try:
        for client in replicas.other.client_list():
            if client.get("name") == client_name:
                replicas.other.client_kill_filter(_id=client["id"])
        with pytest.raises(Unavailable) as refused:
            feed.next(WAIT_SECONDS)
        assert refused.value.reason == "ORDER_EVENTS_UNAVAILABLE"
        assert refused.value.retry_after_seconds == 1
    finally:
        feed.close()


def test_subscribing_while_redis_is_down_is_unavailable() -> None:
    down = redis_client(f"redis://127.0.0.1:{free_port()}")
    with pytest.raises(Unavailable) as refused:
        RedisOrderEvents(down, "test").subscribe("user-1")
    assert refused.value.reason == "ORDER_EVENTS_UNAVAILABLE"
    assert refused.value.retry_after_seconds == 1
