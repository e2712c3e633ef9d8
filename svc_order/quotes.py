"""Prices from svc_inventory: the port the service uses and its gRPC adapter."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

import grpc
from trading.v1 import inventory_pb2, inventory_pb2_grpc

from common.channels import CallPolicy, make_channel
from common.errors import Unavailable
from svc_order import metrics

log = logging.getLogger(__name__)

INVENTORY_SERVICE_NAME = inventory_pb2.DESCRIPTOR.services_by_name["InventoryService"].full_name
# A dependency that failed is worth a quick second try: the client is told so.
RETRY_AFTER_SECONDS = 1


@dataclass(frozen=True)
class Quote:
    asset_id: str
    asset_name: str
    price: Decimal
    as_of: datetime
    is_active: bool


PendingQuotes = Callable[[], dict[str, Quote]]


class QuoteSource(Protocol):
    def quotes(self, asset_ids: Sequence[str]) -> dict[str, Quote]:
        """Current quotes by asset id; an asset the inventory does not know is left out."""
        ...

    def request_quotes(self, asset_ids: Sequence[str]) -> PendingQuotes:
        """Asks now; the returned function waits for the answer (as `quotes` would give
        it). Lets a caller overlap the quote with its own reads; never calling it is fine."""
        ...


def _unavailable(message: str) -> Unavailable:
    return Unavailable(
        message, reason="QUOTES_UNAVAILABLE", retry_after_seconds=RETRY_AFTER_SECONDS
    )


def _quote_from_message(message: inventory_pb2.Quote) -> Quote:
    try:
        price = Decimal(message.price)
    except InvalidOperation:
        log.error("unreadable price from inventory", extra={"asset_id": message.asset_id})
        raise _unavailable("prices are unavailable at the moment") from None
    return Quote(
        asset_id=message.asset_id,
        asset_name=message.asset_name,
        price=price,
        as_of=message.as_of.ToDatetime(tzinfo=UTC),
        is_active=message.is_active,
    )


def inventory_channel(address: str, policy: CallPolicy) -> grpc.Channel:
    """The channel to svc_inventory: deadlines, retries and request ids come with it;
    a quote gets at most the policy's budget, so a hung svc_inventory costs an order
    that much and then 503 QUOTES_UNAVAILABLE."""
    return make_channel(address, services=[INVENTORY_SERVICE_NAME], policy=policy)


class PriceFeed(Protocol):
    """A price stream being read: its quotes, and a way to end it from another thread."""

    def __iter__(self) -> Iterator[Quote]: ...

    def cancel(self) -> None: ...


class QuoteStream:
    """Quotes of svc_inventory's price stream as they change; the first ones are the
    current quote of every asset. Ends with Unavailable when the stream breaks."""

    def __init__(self, call: Any) -> None:
        self._call = call

    def __iter__(self) -> Iterator[Quote]:
        try:
            for message in self._call:
                yield _quote_from_message(message.quote)
        except grpc.RpcError as error:
            code = error.code() if isinstance(error, grpc.Call) else None
            raise _unavailable(f"the price stream ended: {getattr(code, 'name', code)}") from None

    def cancel(self) -> None:
        self._call.cancel()


class InventoryQuotes:
    def __init__(self, channel: grpc.Channel) -> None:
        self._stub = inventory_pb2_grpc.InventoryServiceStub(channel)

    def quotes(self, asset_ids: Sequence[str]) -> dict[str, Quote]:
        return self.request_quotes(asset_ids)()

    def watch(self, seconds: float) -> QuoteStream:
        """Every asset's quote now and at each change, for `seconds` (then reconnect)."""
        return QuoteStream(
            self._stub.StreamPrices(inventory_pb2.StreamPricesRequest(), timeout=seconds)
        )

    def request_quotes(self, asset_ids: Sequence[str]) -> PendingQuotes:
        call = self._stub.GetQuotes.future(
            inventory_pb2.GetQuotesRequest(asset_ids=list(asset_ids))
        )

        def answer() -> dict[str, Quote]:
            try:
                response = call.result()
            except grpc.RpcError as error:
                code = error.code() if isinstance(error, grpc.Call) else None
                log.warning("inventory call failed", extra={"code": getattr(code, "name", None)})
                raise _unavailable("prices are unavailable at the moment") from None
            return {q.asset_id: q for q in map(_quote_from_message, response.quotes)}

        return answer


class StreamedQuotes:
    """Quotes pushed, not pulled: the latest quote of each asset as this process's price
    stream (the trigger's, see `watch`) delivered it, so an order asks svc_inventory
    nothing while the stream flows.

    A held quote serves only while its `as_of` is at most `fresh_for` old; an asset
    without one (never streamed, not moved for a while: the stream carries only moves)
    is asked from svc_inventory as before. When the stream ends or breaks, every held
    quote is dropped until the next stream delivers again: a gap makes quotes come from
    svc_inventory, never from an old stream. The staleness rule of trading is the
    service's, unchanged, on whichever quote it gets. `fresh_for` 0 turns this off.
    """

    def __init__(
        self,
        inventory: InventoryQuotes,
        *,
        fresh_for: timedelta,
        clock: Callable[[], datetime],
    ) -> None:
        self._inventory = inventory
        self._fresh_for = fresh_for
        self._clock = clock
        self._lock = threading.Lock()
        self._held: dict[str, Quote] = {}

    def quotes(self, asset_ids: Sequence[str]) -> dict[str, Quote]:
        return self.request_quotes(asset_ids)()

    def request_quotes(self, asset_ids: Sequence[str]) -> PendingQuotes:
        if self._fresh_for > timedelta(0):
            now = self._clock()
            with self._lock:
                held = {a: self._held[a] for a in asset_ids if a in self._held}
            if len(held) == len(set(asset_ids)) and all(
                now - quote.as_of <= self._fresh_for for quote in held.values()
            ):
                metrics.quote_sources.labels("stream").inc()
                return lambda: dict(held)
        metrics.quote_sources.labels("inventory").inc()
        return self._inventory.request_quotes(asset_ids)

    def watch(self, seconds: float) -> PriceFeed:
        """svc_inventory's price stream for `seconds`; what it delivers is held."""
        return _HeldStream(self._inventory.watch(seconds), self)

    def note(self, quote: Quote) -> None:
        with self._lock:
            current = self._held.get(quote.asset_id)
            if current is None or current.as_of <= quote.as_of:
                self._held[quote.asset_id] = quote

    def forget(self) -> None:
        with self._lock:
            self._held.clear()


class _HeldStream:
    def __init__(self, stream: QuoteStream, held: StreamedQuotes) -> None:
        self._stream = stream
        self._held = held

    def __iter__(self) -> Iterator[Quote]:
        try:
            for quote in self._stream:
                self._held.note(quote)
                yield quote
        finally:
            self._held.forget()

    def cancel(self) -> None:
        self._stream.cancel()
