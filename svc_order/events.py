"""Order events between replicas: Redis publish/subscribe, one channel per user.

An event is published after the writes of the operation it reports, by whichever
replica made it (a fill may come from another replica's trigger), and reaches every
open StreamOrderUpdates of that user on any replica. Delivery is at most once and only
to streams open at the time: live updates are a convenience, the order list is the
record (a client that reconnects lists `status=open` orders to catch up).
"""

from __future__ import annotations

import json
import logging
import time

import redis

from common.errors import Unavailable
from svc_order.domain import OrderRecord
from svc_order.store import order_fields, order_from_item

log = logging.getLogger(__name__)

SUBSCRIBE_TIMEOUT_SECONDS = 2.0
# Below the Redis client's command budget (REDIS_TIMEOUT_SECONDS), so a quiet wait is
# never mistaken for a stalled Redis.
CONFIRM_POLL_SECONDS = 0.4


class RedisOrderFeed:
    def __init__(self, pubsub: redis.client.PubSub) -> None:
        self._pubsub = pubsub

    def next(self, timeout_seconds: float) -> tuple[str, OrderRecord] | None:
        try:
            message = self._pubsub.get_message(
                ignore_subscribe_messages=True, timeout=timeout_seconds
            )
        except redis.RedisError:
            raise Unavailable(
                "live order updates were interrupted; reconnect",
                reason="ORDER_EVENTS_UNAVAILABLE",
                retry_after_seconds=1,
            ) from None
        if message is None or message.get("type") != "message":
            return None
        try:
            decoded = json.loads(message["data"])
            return str(decoded["event"]), order_from_item(decoded["order"])
        # Whatever a bad message holds (not JSON, a field missing or of another type, a
        # number that is no decimal), it is dropped, never the stream.
        except (ValueError, KeyError, TypeError, AttributeError, ArithmeticError):
            log.warning("unreadable order event dropped")
            return None

    def close(self) -> None:
        try:
            self._pubsub.close()
        except redis.RedisError:
            log.debug("closing an order feed failed", exc_info=True)


class RedisOrderEvents:
    """`namespace` keeps deployments sharing one Redis apart (the table name)."""

    def __init__(self, client: redis.Redis, namespace: str) -> None:
        self._redis = client
        self._namespace = namespace

    def _channel(self, user_id: str) -> str:
        return f"orders:{self._namespace}:{user_id}"

    def publish(self, user_id: str, event: str, order: OrderRecord) -> None:
        fields = {k: v for k, v in order_fields(order).items() if v is not None}
        payload = json.dumps({"event": event, "order": fields}, separators=(",", ":"))
        self._redis.publish(self._channel(user_id), payload)

    def subscribe(self, user_id: str) -> RedisOrderFeed:
        """A feed that receives every event published from now on: it returns once Redis
        has confirmed the subscription. Unavailable when Redis does not answer."""
        pubsub = self._redis.pubsub()  # type: ignore[no-untyped-call]
        try:
            pubsub.subscribe(self._channel(user_id))
            deadline = time.monotonic() + SUBSCRIBE_TIMEOUT_SECONDS
            while time.monotonic() < deadline:
                message = pubsub.get_message(timeout=CONFIRM_POLL_SECONDS)
                if message is not None and message.get("type") == "subscribe":
                    return RedisOrderFeed(pubsub)
        except redis.RedisError:
            log.warning("order events unavailable", exc_info=True)
        pubsub.close()
        raise Unavailable(
            "live order updates are unavailable; try again shortly",
            reason="ORDER_EVENTS_UNAVAILABLE",
            retry_after_seconds=1,
        )
