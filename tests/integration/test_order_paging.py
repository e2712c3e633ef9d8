"""Lists are newest first and every item is reachable: page tokens, offset, filters."""

from __future__ import annotations

import base64

import grpc
import pytest

from common.grpc_errors import field_violations
from tests.integration.order_fixtures import Trader, refused


@pytest.fixture
def seven_orders(trader: Trader) -> list[str]:
    """Ids of 7 orders (BTC and ETH buys, interleaved), newest first."""
    trader.deposit("1000")
    placed = [trader.buy("BTC" if n % 2 else "ETH", "0.001").order_id for n in range(7)]
    return placed[::-1]


def test_order_pages_of_three_reach_every_order_once(
    trader: Trader, seven_orders: list[str]
) -> None:
    pages: list[list[str]] = []
    token = ""
    while True:
        page = trader.list_orders(limit=3, page_token=token)
        pages.append([order.order_id for order in page.data])
        assert page.has_more == bool(page.next_page_token)
        if not page.has_more:
            break
        token = page.next_page_token
    assert [len(page) for page in pages] == [3, 3, 1]
    assert [order_id for page in pages for order_id in page] == seven_orders


def test_orders_come_newest_first_by_default(trader: Trader, seven_orders: list[str]) -> None:
    listed = trader.list_orders()
    assert [order.order_id for order in listed.data] == seven_orders
    assert not listed.has_more
    times = [order.created_at.ToDatetime() for order in listed.data]
    assert times == sorted(times, reverse=True)


def test_offset_skips_for_old_clients(trader: Trader, seven_orders: list[str]) -> None:
    page = trader.list_orders(limit=3, offset=2)
    assert [order.order_id for order in page.data] == seven_orders[2:5]
    assert page.has_more
    last = trader.list_orders(limit=3, offset=5)
    assert [order.order_id for order in last.data] == seven_orders[5:]
    assert not last.has_more
    assert list(trader.list_orders(offset=7).data) == []


def test_filters_keep_full_pages(trader: Trader, seven_orders: list[str]) -> None:
    btc = [order_id for n, order_id in enumerate(seven_orders) if n % 2]
    first = trader.list_orders(asset_id="btc", limit=2)
    assert [order.order_id for order in first.data] == btc[:2]
    assert first.has_more
    rest = trader.list_orders(asset_id="BTC", limit=2, page_token=first.next_page_token)
    assert [order.order_id for order in rest.data] == btc[2:]
    assert not rest.has_more
    assert len(trader.list_orders(order_type="market_buy").data) == 7
    assert list(trader.list_orders(order_type="market_sell").data) == []
    assert list(trader.list_orders(order_type="limit_buy").data) == []


def test_the_ledger_pages_with_a_total(trader: Trader, seven_orders: list[str]) -> None:
    first = trader.cash_transactions(limit=5)
    assert first.total_count == 8
    assert [t.reference_id for t in first.transactions] == seven_orders[:5]
    rest = trader.cash_transactions(limit=5, page_token=first.next_page_token)
    assert [t.transaction_type for t in rest.transactions] == [
        "order_payment",
        "order_payment",
        "deposit",
    ]
    assert not rest.has_more
    assert rest.total_count == 8


def test_asset_transactions_page_too(trader: Trader, seven_orders: list[str]) -> None:
    eth = [order_id for n, order_id in enumerate(seven_orders) if n % 2 == 0]
    first = trader.asset_transactions("ETH", limit=3)
    rest = trader.asset_transactions("ETH", limit=3, page_token=first.next_page_token)
    assert [t.order_id for t in (*first.data, *rest.data)] == eth
    assert (first.has_more, rest.has_more) == (True, False)


def _token(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    "page_token",
    [
        "not base64!",
        _token("not json"),
        _token('["sk"]'),
        _token('{"sk": 7}'),
        _token('{"sk": "CASH#00000000000000000001#x"}'),  # another list's key
        _token('{"sk": "ORDER#1", "pk": "USER#someone-else"}'),
        "A" * 600,
    ],
)
def test_a_malformed_page_token_is_refused(trader: Trader, page_token: str) -> None:
    error = refused(lambda: trader.list_orders(page_token=page_token))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [field for field, _ in field_violations(error)] == ["page_token"]


@pytest.mark.parametrize(
    ("field", "value"), [("limit", 101), ("limit", -1), ("offset", -1), ("offset", 10_001)]
)
def test_limits_of_a_page_are_checked(trader: Trader, field: str, value: int) -> None:
    error = refused(lambda: trader.list_orders(**{field: value}))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [name for name, _ in field_violations(error)] == [field]
