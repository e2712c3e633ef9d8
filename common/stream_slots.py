"""A cap on the server streams of one kind open at once in this process.

A server stream holds one of the process's RPC threads (`GRPC_MAX_WORKERS`) for its
whole life; streams past the cap are refused so unary calls always find a thread.
Refusal: `ResourceExhausted` with reason `TOO_MANY_STREAMS` (gRPC RESOURCE_EXHAUSTED,
HTTP 429 at the bridge).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from common.errors import ResourceExhausted

TOO_MANY_STREAMS = "TOO_MANY_STREAMS"


def check_below_workers(setting: str, limit: int, grpc_max_workers: int) -> None:
    """ValueError unless `limit` streams leave at least one RPC thread for calls."""
    if limit >= grpc_max_workers:
        raise ValueError(f"{setting} ({limit}) must be below GRPC_MAX_WORKERS ({grpc_max_workers})")


class StreamSlots:
    """At most `limit` places, taken when a stream opens and given back when it ends.

    `on_change(+1 / -1)` follows every take and release (e.g. a gauge of open streams).
    """

    def __init__(
        self, limit: int, what: str, on_change: Callable[[int], None] | None = None
    ) -> None:
        self._limit = limit
        self._what = what
        self._on_change = on_change
        self._taken = 0
        self._lock = threading.Lock()

    @property
    def taken(self) -> int:
        with self._lock:
            return self._taken

    def take(self) -> None:
        """One place, or ResourceExhausted(TOO_MANY_STREAMS) when all are taken."""
        with self._lock:
            if self._taken >= self._limit:
                raise ResourceExhausted(
                    f"too many {self._what} open; try again later", reason=TOO_MANY_STREAMS
                )
            self._taken += 1
        if self._on_change is not None:
            self._on_change(1)

    def release(self) -> None:
        """Gives back a place that `take` handed out (once per take)."""
        with self._lock:
            self._taken -= 1
        if self._on_change is not None:
            self._on_change(-1)
