"""svc_order's quotes pushed by the price stream (StreamedQuotes), with a fake svc_inventory."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from common.errors import Unavailable
from svc_order.quotes import PendingQuotes, Quote, StreamedQuotes

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def quote(asset_id: str, price: str, age_seconds: float = 0.0) -> Quote:
    return Quote(
        asset_id, asset_id.title(), Decimal(price), NOW - timedelta(seconds=age_seconds), True
    )


class FakeStream:
    def __init__(self, quotes: list[Quote], breaks: bool) -> None:
        self.quotes = quotes
        self.breaks = breaks

    def __iter__(self) -> Iterator[Quote]:
        yield from self.quotes
        if self.breaks:
            raise Unavailable("the price stream ended: UNAVAILABLE", reason="QUOTES_UNAVAILABLE")

    def cancel(self) -> None:
        pass


class FakeInventory:
    def __init__(self) -> None:
        self.asked: list[list[str]] = []
        self.stream: FakeStream = FakeStream([], breaks=False)

    def request_quotes(self, asset_ids: Sequence[str]) -> PendingQuotes:
        self.asked.append(list(asset_ids))
        return lambda: {a: quote(a, "1.00") for a in asset_ids}

    def watch(self, seconds: float) -> FakeStream:
        return self.stream


def held(inventory: FakeInventory, fresh_seconds: float = 2.0) -> StreamedQuotes:
    fake: Any = inventory
    return StreamedQuotes(fake, fresh_for=timedelta(seconds=fresh_seconds), clock=lambda: NOW)


def read_until_held(quotes: StreamedQuotes, count: int) -> Iterator[Quote]:
    """The stream as the trigger reads it, paused after `count` quotes (still open)."""
    feed = iter(quotes.watch(60))
    for _ in range(count):
        next(feed)
    return feed


def test_a_streamed_quote_young_enough_answers_without_asking_inventory() -> None:
    inventory = FakeInventory()
    inventory.stream = FakeStream([quote("BTC", "70000", 1.5), quote("ETH", "4000")], False)
    quotes = held(inventory)
    open_feed = read_until_held(quotes, 2)
    assert quotes.quotes(["BTC", "ETH"]) == {
        "BTC": quote("BTC", "70000", 1.5),
        "ETH": quote("ETH", "4000"),
    }
    assert inventory.asked == []
    # An asset the stream did not deliver: the whole request asks svc_inventory.
    assert quotes.quotes(["BTC", "SOL"])["SOL"].price == Decimal("1.00")
    assert inventory.asked == [["BTC", "SOL"]]
    del open_feed


def test_a_streamed_quote_older_than_allowed_is_asked_again() -> None:
    inventory = FakeInventory()
    inventory.stream = FakeStream([quote("BTC", "70000", 2.5)], False)
    quotes = held(inventory)
    open_feed = read_until_held(quotes, 1)
    assert quotes.quotes(["BTC"])["BTC"].price == Decimal("1.00")
    assert inventory.asked == [["BTC"]]
    del open_feed


@pytest.mark.parametrize("breaks", [True, False])
def test_when_the_stream_ends_or_breaks_nothing_held_is_used(breaks: bool) -> None:
    inventory = FakeInventory()
    inventory.stream = FakeStream([quote("BTC", "70000")], breaks)
    quotes = held(inventory)
    try:
        list(quotes.watch(60))
    except Unavailable:
        assert breaks
    assert quotes.quotes(["BTC"])["BTC"].price == Decimal("1.00")
    assert inventory.asked == [["BTC"]]


def test_an_older_quote_never_replaces_a_newer_one() -> None:
    quotes = held(FakeInventory())
    quotes.note(quote("BTC", "70001", 0.5))
    quotes.note(quote("BTC", "70000", 1.0))
    assert quotes.quotes(["BTC"])["BTC"].price == Decimal("70001")


def test_zero_freshness_always_asks_inventory() -> None:
    inventory = FakeInventory()
    quotes = held(inventory, fresh_seconds=0)
    quotes.note(quote("BTC", "70000"))
    assert quotes.quotes(["BTC"])["BTC"].price == Decimal("1.00")
    assert inventory.asked == [["BTC"]]
