"""Prices from svc_inventory: the port the service uses and its gRPC adapter."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

import grpc
from trading.v1 import inventory_pb2, inventory_pb2_grpc

from common.channels import CallPolicy, make_channel
from common.errors import Unavailable

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
