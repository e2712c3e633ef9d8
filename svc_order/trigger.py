"""What ends resting limit orders without a request: the price trigger and the expiry sweep.

The trigger follows svc_inventory's price stream (one stream per replica, not a poll per
order) and hands every quote to `OrderService.fill_crossed`, which finds the crossed
orders of that asset through their hint items. The stream starts with the current quote
of every asset, so each (re)connect re-checks every resting order: after a restart, a
broken stream or ticks a slow reader missed. The stream is reopened every
`stream_seconds` for the same reason.

Only the side the price moved toward is looked at: a fall can fill buys, a rise sells.
An order placed between two ticks is not missed by this: it was placed at (about) the
last quote, and filled at once if that quote crossed it; so a later tick crosses it
only by moving toward it. Each asset's first quote after a (re)connect, and every
re-check, looks at both sides.

Only assets that may have resting orders are looked at (`WatchedAssets`): those found
with hints when the stream (re)connects and at every re-check, and those this replica
placed a resting order for since (at once). An order placed on another replica is
watched there; here from the next re-check on.

A quote whose fills failed (a store outage, an account write that kept losing races)
is not lost: `recheck` (run by the sweep's rhythm) asks for a fresh quote of that asset
and tries again; and every `recheck_seconds` it re-checks every asset the stream named,
in case the stream stalled without breaking.

The sweep calls `OrderService.expire_due` at a fixed rhythm, so day and gtd orders expire
on time whoever touches the account, and after a restart (the hints are stored).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from decimal import Decimal

from common.errors import Unavailable
from svc_order.quotes import PriceFeed, Quote, StreamedQuotes
from svc_order.store import BOTH_SIDES

log = logging.getLogger(__name__)


class WatchedAssets:
    """Assets that may have resting orders: a superset, refreshed by the re-checks."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._assets: set[str] = set()
        self._added: set[str] = set()

    def add(self, asset_id: str) -> None:
        with self._lock:
            self._assets.add(asset_id)
            self._added.add(asset_id)

    def __contains__(self, asset_id: object) -> bool:
        with self._lock:
            return asset_id in self._assets

    def replace(self, found: set[str]) -> None:
        """The assets a re-check found, and those added while it ran."""
        with self._lock:
            self._assets = found | self._added
            self._added = set()


class PriceTrigger:
    """A daemon thread: reads the price stream and calls `on_quote` for each quote."""

    def __init__(
        self,
        quotes: StreamedQuotes,
        on_quote: Callable[[Quote, frozenset[str]], object],
        *,
        watched: WatchedAssets,
        has_hints: Callable[[str], bool],
        stream_seconds: float,
        retry_seconds: float = 1.0,
        recheck_seconds: float = 30.0,
    ) -> None:
        self._quotes = quotes
        self._on_quote = on_quote
        self._stream_seconds = stream_seconds
        self._retry_seconds = retry_seconds
        self._stopping = threading.Event()
        self._stream: PriceFeed | None = None
        self._recheck_seconds = recheck_seconds
        self._watched = watched
        self._has_hints = has_hints
        self._lock = threading.Lock()
        # Assets whose last fills failed, and every asset the stream named.
        self._failed: set[str] = set()
        self._seen: set[str] = set()
        # The last price handled per asset, for the direction of the next move.
        self._last: dict[str, Decimal] = {}
        self._last_full_check = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="price-trigger", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_seconds: float = 5.0) -> None:
        self._stopping.set()
        with self._lock:
            if self._stream is not None:
                self._stream.cancel()
        if self._thread.is_alive():
            self._thread.join(timeout_seconds)

    def _run(self) -> None:
        while not self._stopping.is_set():
            with self._lock:
                self._last.clear()  # a reconnect re-checks both sides
            stream = self._quotes.watch(self._stream_seconds)
            with self._lock:
                self._stream = stream
            if self._stopping.is_set():
                stream.cancel()
                return
            try:
                for quote in stream:
                    self._handle(quote)
            except Unavailable as error:
                if not self._stopping.is_set():
                    log.warning("price stream broke; reconnecting", extra={"error": str(error)})
                    self._stopping.wait(self._retry_seconds)

    def _handle(self, quote: Quote, both: bool = False) -> None:
        with self._lock:
            self._seen.add(quote.asset_id)
            last = None if both else self._last.get(quote.asset_id)
            self._last[quote.asset_id] = quote.price
        if last is None and not both:
            # The first quote of an asset since (re)connecting: is it worth watching?
            try:
                if self._has_hints(quote.asset_id):
                    self._watched.add(quote.asset_id)
            except Exception:
                log.exception(
                    "looking for resting orders failed", extra={"asset_id": quote.asset_id}
                )
                self._watched.add(quote.asset_id)
        if quote.asset_id not in self._watched:
            return
        if last is None or last == quote.price:
            sides = BOTH_SIDES
        else:
            sides = frozenset({"BUY"} if quote.price < last else {"SELL"})
        try:
            self._on_quote(quote, sides)
        except Exception:
            # One failed fill (a store outage, a crash injected by a test) must not stop
            # the trigger: `recheck` tries that asset again with a fresh quote.
            log.exception("filling crossed orders failed", extra={"asset_id": quote.asset_id})
            with self._lock:
                self._failed.add(quote.asset_id)
        else:
            with self._lock:
                self._failed.discard(quote.asset_id)

    def recheck(self) -> None:
        """Tries the assets whose fills failed again, and every asset now and then."""
        now = time.monotonic()
        with self._lock:
            due = now - self._last_full_check >= self._recheck_seconds
            assets = set(self._seen) if due else set(self._failed)
            if due:
                self._last_full_check = now
        if not assets:
            return
        if due:
            self._watched.replace({a for a in assets if self._has_hints(a)})
        for quote in self._quotes.quotes(sorted(assets)).values():
            self._handle(quote, both=True)
