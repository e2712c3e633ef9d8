"""Price changes fanned out to the open StreamPrices calls of this process.

Each subscriber has a bounded buffer; when a slow reader lets it fill, the oldest
change is dropped, so the ticker never waits for a reader and a reader that catches
up sees the newest prices. Closing the broadcaster (at shutdown) ends every stream.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime

from common.errors import Unavailable
from common.stream_slots import StreamSlots
from svc_inventory import metrics
from svc_inventory.domain import Asset

# Larger than any catalogue snapshot a new subscriber is primed with.
SUBSCRIBER_BUFFER = 512
# How often a waiting stream checks that its client is still there; a cancel wakes it
# at once through `close`, this only bounds how long a missed wake-up could last.
POLL_SECONDS = 1.0


class Subscription:
    def __init__(
        self, wanted: frozenset[str] | None, on_close: Callable[[Subscription], None]
    ) -> None:
        self._wanted = wanted
        self._on_close = on_close
        self._buffer: deque[Asset] = deque(maxlen=SUBSCRIBER_BUFFER)
        self._ready = threading.Condition()
        self._closed = False

    def wants(self, asset_id: str) -> bool:
        return self._wanted is None or asset_id in self._wanted

    def offer(self, assets: Iterable[Asset]) -> None:
        with self._ready:
            # deque(maxlen) drops the oldest entry when full.
            self._buffer.extend(a for a in assets if self.wants(a.asset_id))
            self._ready.notify_all()

    def close(self) -> None:
        with self._ready:
            if self._closed:
                return
            self._closed = True
            self._ready.notify_all()
        self._on_close(self)

    def updates(self, is_active: Callable[[], bool]) -> Iterator[Asset]:
        """Buffered changes as they come, newer than what this stream already sent,
        until the subscription is closed or `is_active` turns false."""
        sent_as_of: dict[str, datetime] = {}
        while is_active():
            with self._ready:
                self._ready.wait_for(lambda: self._buffer or self._closed, POLL_SECONDS)
                if self._closed:
                    return
                batch = list(self._buffer)
                self._buffer.clear()
            for asset in batch:
                # The priming snapshot and a change published meanwhile may repeat.
                last = sent_as_of.get(asset.asset_id)
                if last is not None and asset.last_updated <= last:
                    continue
                sent_as_of[asset.asset_id] = asset.last_updated
                yield asset

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


class PriceBroadcaster:
    def __init__(self, max_subscribers: int) -> None:
        self._slots = StreamSlots(max_subscribers, "price streams", metrics.price_streams.inc)
        self._subscribers: set[Subscription] = set()
        self._lock = threading.Lock()
        self._closed = False

    @property
    def subscriber_count(self) -> int:
        with self._lock:
            return len(self._subscribers)

    def subscribe(self, wanted: frozenset[str] | None) -> Subscription:
        """A new subscription to the given asset ids (None: every asset)."""
        subscription = Subscription(wanted, self._remove)
        with self._lock:
            if self._closed:
                raise Unavailable("price stream is shutting down", reason="SHUTTING_DOWN")
            self._slots.take()
            self._subscribers.add(subscription)
        return subscription

    def publish(self, assets: Iterable[Asset]) -> None:
        changed = list(assets)
        with self._lock:
            subscribers = list(self._subscribers)
        for subscription in subscribers:
            subscription.offer(changed)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            subscribers = list(self._subscribers)
        for subscription in subscribers:
            subscription.close()

    def _remove(self, subscription: Subscription) -> None:
        with self._lock:
            if subscription in self._subscribers:
                self._subscribers.discard(subscription)
                self._slots.release()
