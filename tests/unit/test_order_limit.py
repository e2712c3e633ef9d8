"""Limit orders in the pure domain: holds, releases, fills at the limit or better,
every time in force, expiry at 00:00 UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from common.errors import ErrorKind
from svc_order import domain
from svc_order.domain import (
    Account,
    Change,
    InsufficientFunds,
    InsufficientHoldings,
    InvalidExpiry,
    InvalidPrice,
    InvalidTimeInForce,
    Limits,
    MarketQuote,
    OperationKind,
    OrderNotCancellable,
    OrderNotOpen,
    OrderRequest,
    OrderStatus,
    OrderType,
    OrderValueTooHigh,
    Request,
    TimeInForce,
    TooManyOpenOrders,
)

D = Decimal
NOON = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)
LIMITS = Limits()


def funded(cash: str = "1000", btc: str = "0") -> Account:
    account = domain.new_account("user-1", NOON - timedelta(days=2))
    # BTC is bought at 1.00 a unit, so what is left is `cash`.
    account = domain.deposit(
        account,
        D(cash) + domain.buy_cost(D(btc), D(1)),
        Request(NOON - timedelta(days=1), "f0"),
        Limits(D("1000000")),
    ).account
    if D(btc):
        account = domain.place_order(
            account,
            OrderRequest(OrderType.MARKET_BUY, "BTC", D(btc)),
            MarketQuote(D("1")),
            Request(NOON - timedelta(days=1), "f1"),
            LIMITS,
        ).account
    return account


def limit(
    account: Account,
    side: str,
    quantity: str,
    limit_price: str,
    quote: str,
    tif: TimeInForce | None = None,
    expires_at: datetime | None = None,
    now: datetime = NOON,
) -> Change:
    order_type = OrderType.LIMIT_BUY if side == "buy" else OrderType.LIMIT_SELL
    return domain.place_order(
        account,
        OrderRequest(order_type, "BTC", D(quantity), D(limit_price), tif, expires_at),
        MarketQuote(D(quote)),
        Request(now, f"fresh-{account.version}"),
        LIMITS,
    )


def at(account: Account, now: datetime = NOON) -> Request:
    return Request(now, f"fresh-{account.version}")


def fill(account: Account, order_id: str, quote: str, now: datetime = NOON) -> Change | None:
    return domain.fill_order(account, order_id, MarketQuote(D(quote)), at(account, now), LIMITS)


def test_a_buy_above_the_quote_rests_and_holds_quantity_times_limit_rounded_up() -> None:
    change = limit(funded("1000"), "buy", "0.333", "100.01", quote="120")
    account = change.account
    order = change.operation.order
    assert order is not None
    assert order.status is OrderStatus.PENDING
    assert order.price is None
    assert order.held_amount == D("33.31")  # 33.30333 rounded up
    assert change.operation.kind is OperationKind.PLACE
    assert account.cash == D("1000.00")
    assert account.held_cash == D("33.31")
    assert account.available_cash == D("966.69")
    assert domain.derived_items(change.operation).cash_entry is None


def test_held_cash_cannot_be_withdrawn_or_spent() -> None:
    account = limit(funded("100"), "buy", "1", "90", quote="95").account
    with pytest.raises(InsufficientFunds):
        domain.withdraw(account, D("10.01"), at(account), LIMITS)
    with pytest.raises(InsufficientFunds):
        domain.place_order(
            account,
            OrderRequest(OrderType.MARKET_BUY, "ETH", D("1")),
            MarketQuote(D("10.01")),
            at(account),
            LIMITS,
        )
    with pytest.raises(InsufficientFunds):
        limit(account, "buy", "1", "10.01", quote="95")
    assert domain.withdraw(account, D("10.00"), at(account), LIMITS).account.cash == D("90.00")


def test_held_units_cannot_be_sold_twice() -> None:
    account = limit(funded("1000", btc="1"), "sell", "0.6", "200", quote="100").account
    assert account.held_units("BTC") == D("0.6")
    assert account.available_units("BTC") == D("0.4")
    with pytest.raises(InsufficientHoldings, match="not promised to resting sells"):
        limit(account, "sell", "0.5", "200", quote="100")
    with pytest.raises(InsufficientHoldings):
        domain.place_order(
            account,
            OrderRequest(OrderType.MARKET_SELL, "BTC", D("0.41")),
            MarketQuote(D("100")),
            at(account),
            LIMITS,
        )


def test_a_resting_buy_fills_at_the_quote_when_it_falls_to_or_below_the_limit() -> None:
    placed = limit(funded("1000"), "buy", "2", "100", quote="101")
    order_id = placed.operation.order.order_id  # type: ignore[union-attr]
    account = placed.account
    later = NOON + timedelta(minutes=5)
    assert fill(account, order_id, "100.01", later) is None
    filled = domain.fill_order(
        account, order_id, MarketQuote(D("99.505")), at(account, later), LIMITS
    )
    assert filled is not None
    record = filled.operation.order
    assert record is not None
    assert record.order_id == order_id
    assert record.status is OrderStatus.COMPLETED
    assert record.price == D("99.505")  # the quote: the limit or better
    assert record.total_amount == D("199.01")
    assert record.filled_at == later
    assert filled.account.cash == D("800.99")
    assert filled.account.held_cash == 0
    assert filled.account.quantity_of("BTC") == D("2")
    items = domain.derived_items(filled.operation)
    assert items.cash_entry is not None
    assert items.cash_entry.amount == D("-199.01")
    assert items.cash_entry.reference_id == order_id
    assert items.asset_entry is not None
    assert items.asset_entry.order_id == order_id


def test_a_resting_sell_fills_at_the_quote_when_it_rises_to_or_above_the_limit() -> None:
    placed = limit(funded("0", btc="1"), "sell", "1", "150", quote="140")
    order_id = placed.operation.order.order_id  # type: ignore[union-attr]
    account = placed.account
    assert fill(account, order_id, "149.99") is None
    filled = fill(account, order_id, "150.005")
    assert filled is not None
    assert filled.operation.order.price == D("150.005")  # type: ignore[union-attr]
    assert filled.account.cash == D("150.00")  # proceeds rounded down
    assert filled.account.holdings == {}


def test_a_limit_the_quote_already_crosses_fills_at_once_at_the_quote() -> None:
    change = limit(funded("1000"), "buy", "1", "100", quote="95")
    record = change.operation.order
    assert record is not None
    assert record.status is OrderStatus.COMPLETED
    assert record.price == D("95")
    assert record.limit_price == D("100")
    assert record.time_in_force is TimeInForce.GTC
    assert change.account.cash == D("905.00")
    assert change.account.open_orders == {}


@pytest.mark.parametrize("tif", [TimeInForce.IOC, TimeInForce.FOK])
def test_ioc_and_fok_that_the_quote_does_not_cross_are_cancelled_at_once(
    tif: TimeInForce,
) -> None:
    change = limit(funded("1000"), "buy", "1", "90", quote="95", tif=tif)
    record = change.operation.order
    assert record is not None
    assert record.status is OrderStatus.CANCELLED
    assert record.cancelled_at == NOON
    assert change.account.open_orders == {}
    assert change.account.available_cash == D("1000.00")
    sale = limit(funded("1000", btc="1"), "sell", "1", "96", quote="95", tif=tif)
    assert sale.operation.order.status is OrderStatus.CANCELLED  # type: ignore[union-attr]
    assert sale.account.available_units("BTC") == D("1")


@pytest.mark.parametrize("tif", [TimeInForce.IOC, TimeInForce.FOK])
def test_ioc_and_fok_that_the_quote_crosses_fill_whole(tif: TimeInForce) -> None:
    change = limit(funded("1000"), "buy", "2", "100", quote="99", tif=tif)
    assert change.operation.order.status is OrderStatus.COMPLETED  # type: ignore[union-attr]
    assert change.account.quantity_of("BTC") == D("2")


def test_a_day_order_expires_at_the_next_midnight_utc() -> None:
    late = datetime(2025, 3, 14, 23, 59, 59, tzinfo=UTC)
    placed = limit(funded(), "buy", "1", "90", quote="95", tif=TimeInForce.DAY, now=late)
    resting = next(iter(placed.account.open_orders.values()))
    midnight = datetime(2025, 3, 15, tzinfo=UTC)
    assert resting.expires_at == midnight
    account = placed.account
    before = midnight - timedelta(microseconds=1)
    assert domain.expire_order(account, resting.order_id, at(account, before)) is None
    expired = domain.expire_order(account, resting.order_id, at(account, midnight))
    assert expired is not None
    assert expired.operation.order.status is OrderStatus.EXPIRED  # type: ignore[union-attr]
    assert expired.operation.order.expired_at == midnight  # type: ignore[union-attr]
    assert expired.account.held_cash == 0
    # A due order never fills, even when the quote crosses.
    crossing = MarketQuote(D("1"))
    assert (
        domain.fill_order(account, resting.order_id, crossing, at(account, midnight), LIMITS)
        is None
    )


def test_a_day_order_from_another_timezone_still_ends_at_utc_midnight() -> None:
    tokyo = timezone_plus(9)
    now = datetime(2025, 3, 15, 8, 0, tzinfo=tokyo)  # 23:00 UTC on the 14th
    placed = limit(funded(), "buy", "1", "90", quote="95", tif=TimeInForce.DAY, now=now)
    resting = next(iter(placed.account.open_orders.values()))
    assert resting.expires_at == datetime(2025, 3, 15, tzinfo=UTC)


def timezone_plus(hours: int) -> timezone:
    return timezone(timedelta(hours=hours))


def test_a_gtd_order_expires_at_its_time_and_needs_a_future_one() -> None:
    expiry = NOON + timedelta(hours=3)
    placed = limit(funded(), "buy", "1", "90", quote="95", tif=TimeInForce.GTD, expires_at=expiry)
    resting = next(iter(placed.account.open_orders.values()))
    assert resting.expires_at == expiry
    with pytest.raises(InvalidExpiry):
        limit(funded(), "buy", "1", "90", quote="95", tif=TimeInForce.GTD)
    with pytest.raises(InvalidExpiry):
        limit(funded(), "buy", "1", "90", quote="95", tif=TimeInForce.GTD, expires_at=NOON)
    with pytest.raises(InvalidExpiry):
        limit(funded(), "buy", "1", "90", quote="95", tif=TimeInForce.GTC, expires_at=expiry)


def test_gtc_never_expires() -> None:
    placed = limit(funded(), "buy", "1", "90", quote="95")
    resting = next(iter(placed.account.open_orders.values()))
    far = NOON + timedelta(days=3650)
    assert resting.expires_at is None
    assert domain.expire_order(placed.account, resting.order_id, at(placed.account, far)) is None


def test_cancel_releases_the_hold_and_a_second_cancel_finds_nothing_open() -> None:
    placed = limit(funded("1000", btc="1"), "sell", "1", "200", quote="100")
    order_id = next(iter(placed.account.open_orders))
    cancelled = domain.cancel_order(placed.account, order_id, at(placed.account))
    assert cancelled.operation.order.status is OrderStatus.CANCELLED  # type: ignore[union-attr]
    assert cancelled.account.available_units("BTC") == D("1")
    with pytest.raises(OrderNotOpen):
        domain.cancel_order(cancelled.account, order_id, at(cancelled.account))
    assert OrderNotCancellable.kind is ErrorKind.ABORTED


def test_a_filled_order_can_be_neither_filled_again_nor_cancelled() -> None:
    placed = limit(funded("1000"), "buy", "1", "100", quote="101")
    order_id = next(iter(placed.account.open_orders))
    filled = domain.fill_order(
        placed.account, order_id, MarketQuote(D("99")), at(placed.account), LIMITS
    )
    assert filled is not None
    again = domain.fill_order(
        filled.account, order_id, MarketQuote(D("98")), at(filled.account), LIMITS
    )
    assert again is None
    with pytest.raises(OrderNotOpen):
        domain.cancel_order(filled.account, order_id, at(filled.account))


def test_limit_orders_need_a_valid_limit_and_market_orders_no_time_in_force() -> None:
    with pytest.raises(InvalidPrice):
        domain.place_order(
            funded(),
            OrderRequest(OrderType.LIMIT_BUY, "BTC", D("1")),
            MarketQuote(D("100")),
            at(funded()),
            LIMITS,
        )
    with pytest.raises(InvalidPrice):
        limit(funded(), "buy", "1", "0", quote="100")
    with pytest.raises(InvalidTimeInForce):
        domain.place_order(
            funded(),
            OrderRequest(OrderType.MARKET_BUY, "BTC", D("1"), None, TimeInForce.GTC),
            MarketQuote(D("100")),
            at(funded()),
            LIMITS,
        )


def test_the_value_cap_applies_at_the_limit_price() -> None:
    with pytest.raises(OrderValueTooHigh):
        limit(funded("20000"), "buy", "1", "10000.01", quote="20000")
    with pytest.raises(OrderValueTooHigh):
        limit(funded("0", btc="2"), "sell", "2", "5000.01", quote="1")


def test_open_orders_per_account_are_bounded() -> None:
    account = funded("100000")
    for _ in range(domain.MAX_OPEN_ORDERS):
        account = limit(account, "buy", "0.001", "1", quote="2").account
    with pytest.raises(TooManyOpenOrders):
        limit(account, "buy", "0.001", "1", quote="2")


def test_order_ids_of_resting_orders_are_stable_across_their_life() -> None:
    placed = limit(funded("1000"), "buy", "1", "90", quote="95")
    order_id = placed.operation.order.order_id  # type: ignore[union-attr]
    assert domain.order_id_of(placed.operation) == order_id
    cancelled = domain.cancel_order(placed.account, order_id, at(placed.account))
    assert domain.order_id_of(cancelled.operation) == order_id
    assert cancelled.operation.order.revision > placed.operation.order.revision  # type: ignore[union-attr]


def test_status_filters_accept_open_as_pending() -> None:
    assert domain.parse_status_filter("open") is OrderStatus.PENDING
    assert domain.parse_status_filter("completed") is OrderStatus.COMPLETED
    with pytest.raises(domain.InvalidStatus):
        domain.parse_status_filter("filled")
    assert domain.parse_time_in_force("gtd") is TimeInForce.GTD
    with pytest.raises(InvalidTimeInForce):
        domain.parse_time_in_force("gtx")


@pytest.mark.parametrize(
    "quote",
    [
        MarketQuote(D("80"), is_active=False),
        MarketQuote(D("NaN")),
        MarketQuote(D("Infinity")),
        MarketQuote(D("0")),
        MarketQuote(D("-80")),
    ],
)
def test_a_halted_asset_or_a_quote_that_is_no_price_fills_nothing(quote: MarketQuote) -> None:
    # The quote would cross the limit were it a live, positive, finite price.
    account = limit(funded("1000"), "buy", "1", "90", quote="95").account
    [resting] = account.open_orders
    assert domain.fill_order(account, resting, quote, at(account), LIMITS) is None
    assert fill(account, resting, "80") is not None
