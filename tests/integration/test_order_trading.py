"""Market orders, holdings and their history through the real svc_order."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest

from common.grpc_errors import error_info, field_violations
from tests.integration.order_fixtures import (
    FakeInventory,
    OrderEndpoint,
    Trader,
    reason_of,
    refused,
    unreachable_address,
)


def assert_unchanged(trader: Trader, cash: str, orders: int) -> None:
    assert trader.balance() == cash
    assert len(trader.list_orders().data) == orders


def test_a_buy_moves_the_rounded_cost_into_a_holding(trader: Trader, market: FakeInventory) -> None:
    trader.deposit("10000")
    order = trader.buy("btc", "0.1")
    assert (order.order_type, order.asset_id, order.status) == ("market_buy", "BTC", "completed")
    assert (order.quantity, order.price, order.total_amount) == (
        "0.10000000",
        "50000.00",
        "5000.00",
    )
    assert trader.balance() == "5000.00"

    portfolio = trader.portfolio()
    assert [
        (a.asset_id, a.quantity, a.current_price, a.market_value, a.percentage)
        for a in portfolio.assets
    ] == [("BTC", "0.10000000", "50000.00", "5000.00", "50.00")]
    assert (portfolio.cash_balance, portfolio.total_asset_value, portfolio.total_value) == (
        "5000.00",
        "5000.00",
        "10000.00",
    )
    held = trader.asset_balance("BTC")
    assert (held.asset_name, held.quantity, held.current_price, held.total_value) == (
        "Bitcoin",
        "0.10000000",
        "50000.00",
        "5000.00",
    )

    ledger = trader.cash_transactions()
    newest = ledger.transactions[0]
    assert (newest.transaction_type, newest.amount, newest.reference_id) == (
        "order_payment",
        "-5000.00",
        order.order_id,
    )
    assert [o.order_id for o in trader.list_orders().data] == [order.order_id]
    assert trader.get_order(order.order_id) == order
    trades = trader.asset_transactions("BTC").data
    assert [
        (t.transaction_type, t.quantity, t.price, t.total_amount, t.order_id) for t in trades
    ] == [("BUY", "0.10000000", "50000.00", "5000.00", order.order_id)]


def test_rounding_never_creates_money(trader: Trader, market: FakeInventory) -> None:
    market.set_quote("ODD", "33.333")
    trader.deposit("100")
    bought = trader.buy("ODD", "1")
    assert bought.total_amount == "33.34"  # 33.333 rounded up for a buy
    sold = trader.sell("ODD", "1")
    assert sold.total_amount == "33.33"  # and down for a sale
    assert trader.balance() == "99.99"
    assert list(trader.portfolio().assets) == []


def test_a_sale_pays_and_a_holding_sold_out_disappears(
    trader: Trader, market: FakeInventory
) -> None:
    trader.deposit("1000")
    trader.buy("ETH", "0.25")
    market.set_quote("ETH", "3200.00", name="Ethereum")
    sale = trader.sell("ETH", "0.25")
    assert (sale.order_type, sale.total_amount) == ("market_sell", "800.00")
    assert trader.balance() == "1050.00"
    assert refused(lambda: trader.asset_balance("ETH")).code() == grpc.StatusCode.NOT_FOUND
    assert [t.transaction_type for t in trader.asset_transactions("ETH").data] == ["SELL", "BUY"]


def test_selling_more_than_held_changes_nothing(trader: Trader) -> None:
    trader.deposit("1000")
    trader.buy("BTC", "0.001")
    error = refused(lambda: trader.sell("BTC", "0.00100001"))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason_of(error) == "INSUFFICIENT_HOLDINGS"
    assert_unchanged(trader, "950.00", orders=1)
    assert trader.asset_balance("BTC").quantity == "0.00100000"


def test_buying_more_than_the_cash_changes_nothing(trader: Trader) -> None:
    trader.deposit("49.99")
    error = refused(lambda: trader.buy("BTC", "0.001"))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason_of(error) == "INSUFFICIENT_FUNDS"
    # The order's body has no amount: the quantity is what the client can change.
    assert [field for field, _ in field_violations(error)] == ["quantity"]
    assert_unchanged(trader, "49.99", orders=0)


def test_another_users_order_is_not_found(trader: Trader, new_trader: Callable[[], Trader]) -> None:
    trader.deposit("100")
    order = trader.buy("BTC", "0.001")
    stranger = new_trader()
    error = refused(lambda: stranger.get_order(order.order_id))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    missing = refused(lambda: stranger.get_order("00000000-0000-0000-0000-000000000000"))
    assert (missing.code(), missing.details()) == (error.code(), error.details())
    assert list(stranger.list_orders().data) == []


@pytest.mark.parametrize(
    "order_id", ["", "42", "not-an-id", "00000000-0000-0000-0000-00000000000g"]
)
def test_a_malformed_order_id_is_refused(trader: Trader, order_id: str) -> None:
    error = refused(lambda: trader.get_order(order_id))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [field for field, _ in field_violations(error)] == ["order_id"]


def test_a_stale_quote_is_never_traded_on(trader: Trader, market: FakeInventory) -> None:
    trader.deposit("1000")
    market.set_quote("BTC", "50000.00", name="Bitcoin", age_seconds=11)
    error = refused(lambda: trader.buy("BTC", "0.001"))
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    info = error_info(error)
    assert info is not None
    assert info.reason == "STALE_QUOTE"
    assert info.metadata["retry_after_seconds"] == "1"
    assert_unchanged(trader, "1000.00", orders=0)


def test_a_protection_price_refuses_a_worse_fill(trader: Trader) -> None:
    trader.deposit("1000")
    error = refused(lambda: trader.buy("BTC", "0.001", price="49999.99"))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason_of(error) == "PROTECTION_PRICE_BREACHED"
    assert [field for field, _ in field_violations(error)] == ["price"]
    assert_unchanged(trader, "1000.00", orders=0)
    trader.buy("BTC", "0.001", price="50000")
    assert refused(lambda: trader.sell("BTC", "0.001", price="50000.01")).code() == (
        grpc.StatusCode.FAILED_PRECONDITION
    )
    assert_unchanged(trader, "950.00", orders=1)


@pytest.mark.parametrize(
    ("field", "order_type", "asset_id", "quantity", "price"),
    [
        ("order_type", "market_hold", "BTC", "1", None),
        ("asset_id", "market_buy", "BTC-USD", "1", None),
        ("quantity", "market_buy", "BTC", "0.0009", None),
        ("quantity", "market_buy", "BTC", "0.000000001", None),
        ("price", "market_buy", "BTC", "0.001", "0"),
        ("price", "market_buy", "BTC", "0.001", "1000000.01"),
    ],
)
def test_order_fields_outside_the_rules_are_refused(
    trader: Trader, field: str, order_type: str, asset_id: str, quantity: str, price: str | None
) -> None:
    error = refused(lambda: trader.order(order_type, asset_id, quantity, price=price))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [name for name, _ in field_violations(error)] == [field]


def test_an_order_over_the_maximum_value_is_refused(trader: Trader) -> None:
    trader.deposit("10000")
    error = refused(lambda: trader.buy("BTC", "0.20000001"))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason_of(error) == "ORDER_VALUE_TOO_HIGH"


def test_an_unknown_asset_in_an_order_is_refused_naming_the_field(trader: Trader) -> None:
    trader.deposit("100")
    error = refused(lambda: trader.buy("NOPE", "1"))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason_of(error) == "UNKNOWN_ASSET"
    assert [name for name, _ in field_violations(error)] == ["asset_id"]
    # A missing id in the path of a read stays NOT_FOUND.
    listing = refused(lambda: trader.asset_transactions("NOPE"))
    assert (listing.code(), reason_of(listing)) == (grpc.StatusCode.NOT_FOUND, "ASSET_NOT_FOUND")
    assert trader.asset_transactions("ETH").data == []


def test_an_inactive_asset_is_not_traded(trader: Trader, market: FakeInventory) -> None:
    trader.deposit("100")
    market.set_quote("FTT", "1.25", is_active=False)
    error = refused(lambda: trader.buy("FTT", "1"))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason_of(error) == "ASSET_NOT_TRADABLE"


def test_an_asset_not_held_has_no_balance(trader: Trader) -> None:
    error = refused(lambda: trader.asset_balance("BTC"))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert reason_of(error) == "HOLDING_NOT_FOUND"


def test_the_portfolio_is_valued_with_one_quote_call(trader: Trader, market: FakeInventory) -> None:
    trader.deposit("1000")
    trader.buy("BTC", "0.01")
    trader.buy("ETH", "0.1")
    market.set_quote("BTC", "60000.00", name="Bitcoin")
    calls_before = len(market.calls)
    portfolio = trader.portfolio()
    assert market.calls[calls_before:] == [["BTC", "ETH"]]
    assert [(a.asset_id, a.market_value, a.percentage) for a in portfolio.assets] == [
        ("BTC", "600.00", "54.55"),
        ("ETH", "300.00", "27.27"),
    ]
    assert (portfolio.cash_balance, portfolio.total_value) == ("200.00", "1100.00")


def test_an_unreachable_inventory_answers_unavailable(
    start_order_server: Callable[..., OrderEndpoint],
    trader: Trader,
) -> None:
    trader.deposit("1000")
    cut_off = trader.via(
        start_order_server(
            inventory_service_addr=unreachable_address(), default_deadline_seconds=2
        ).stub
    )
    error = refused(lambda: cut_off.buy("BTC", "0.001"))
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert cut_off.balance() == "1000.00"
