"""Places for open streams: a bridge-wide limit and a limit per client.

An open stream holds no thread in the bridge (it is read on the event loop, `calls.py`)
but, for up to `bridge_stream_max_seconds`, a client connection here and one of its
service's stream places there (an RPC thread each: svc_inventory's MAX_PRICE_STREAMS,
which svc_order's price trigger needs one of, and svc_order's MAX_ORDER_STREAMS). So
the bridge serves at most `bridge_max_streams` at once, price and order streams
together, and one bridge's clients cannot take every place of a service. Without a
share per client, one client (eight anonymous price streams from one address) could
take every place and leave a signed-in user's order stream 429. A client is the
verified user for a request whose bearer token the bridge could verify, else the client
address (the rate limiter's: the peer, or the address behind `TRUSTED_PROXIES`).
"""

from __future__ import annotations

from collections.abc import Callable

from rest_bridge.errors import ApiError

TOO_MANY_STREAMS = "TOO_MANY_STREAMS"


class StreamPlaces:
    """Counts open streams in total and per client key. Used from the event loop only
    (taking a place is one synchronous step: no await between the check and the count)."""

    def __init__(self, total: int, per_client: int, *, retry_after: int) -> None:
        self._total = total
        self._per_client = per_client
        self._retry_after = retry_after
        self._open = 0
        self._by_client: dict[str, int] = {}

    @property
    def open(self) -> int:
        return self._open

    def held_by(self, client: str) -> int:
        return self._by_client.get(client, 0)

    def take(self, client: str) -> Callable[[], None]:
        """One place for `client`, or ApiError 429 TOO_MANY_STREAMS (with Retry-After)
        naming the limit that refused it. Returns the place's release; calling it more
        than once releases it once."""
        if self.held_by(client) >= self._per_client:
            raise ApiError(
                429,
                TOO_MANY_STREAMS,
                f"this client already has {self._per_client} streams open, the most one "
                "client may hold (BRIDGE_MAX_STREAMS_PER_CLIENT); close one or try again later",
                retry_after=self._retry_after,
            )
        if self._open >= self._total:
            raise ApiError(
                429,
                TOO_MANY_STREAMS,
                f"the bridge has {self._total} streams open, its most (BRIDGE_MAX_STREAMS); "
                "try again later",
                retry_after=self._retry_after,
            )
        self._open += 1
        self._by_client[client] = self.held_by(client) + 1
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            self._open -= 1
            left = self._by_client[client] - 1
            if left:
                self._by_client[client] = left
            else:
                del self._by_client[client]

        return release
