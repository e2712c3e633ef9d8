"""Limit orders against a real svc_inventory whose prices the test scripts: resting,
holds, fills at the quote from the price stream, cancel, expiry, races, replicas and a
crash between the account write and the order update."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import grpc
import pytest
from trading.v1 import order_pb2

from svc_order.domain import AppliedOperation, OperationKind
from svc_order.service import WriteStage
from tests.integration.limit_fixtures import LimitStack
from tests.integration.order_fixtures import (
    CALL_TIMEOUT,
    Trader,
    alternating,
    reason_of,
    refused,
    wait_until,
)

D = Decimal


def status_of(trader: Trader, order_id: str) -> str:
    return str(trader.get_order(order_id).status)


def wait_for_status(trader: Trader, order_id: str, status: str) -> order_pb2.Order:
    wait_until(lambda: status_of(trader, order_id) == status, f"order {order_id} is {status}")
    return trader.get_order(order_id)


def ledger(trader: Trader) -> list[order_pb2.CashTransaction]:
    return list(trader.cash_transactions(limit=100).transactions)


def assert_books_balance(trader: Trader) -> None:
    """What a user can check: total cash = available + held = the ledger's sum."""
    balance = trader.balances()
    total = D(balance.current_balance)
    assert D(balance.available_balance) + D(balance.held_balance) == total
    assert sum((D(t.amount) for t in ledger(trader)), D("0.00")) == total


def test_a_buy_rests_holds_cash_and_fills_at_the_quote_when_the_price_falls_through(
    limits: LimitStack,
) -> None:
    limits.move("BTC", "100.00")
    trader = limits.trader("1000")
    order = trader.limit("buy", "BTC", "2", "90.005")
    assert order.status == "pending"
    assert (order.price, order.total_amount) == ("", "0.00")
    assert (order.limit_price, order.time_in_force, order.held_amount) == (
        "90.005",
        "gtc",
        "180.01",
    )
    balance = trader.balances()
    assert (balance.current_balance, balance.available_balance, balance.held_balance) == (
        "1000.00",
        "819.99",
        "180.01",
    )
    assert [o.order_id for o in trader.list_orders(status="open").data] == [order.order_id]

    limits.move("BTC", "95.00")  # not yet through the limit
    assert status_of(trader, order.order_id) == "pending"
    limits.move("BTC", "89.50")
    filled = wait_for_status(trader, order.order_id, "completed")
    assert filled.price == "89.50"  # the quote: better than the limit
    assert filled.total_amount == "179.00"
    assert filled.HasField("filled_at")
    balance = trader.balances()
    assert (balance.current_balance, balance.held_balance) == ("821.00", "0.00")
    assert trader.asset_balance("BTC").quantity == "2.00000000"
    assert ledger(trader)[0].reference_id == order.order_id
    assert list(trader.list_orders(status="open").data) == []
    assert_books_balance(trader)


def test_a_sell_rests_holds_units_and_fills_when_the_price_rises_through(
    limits: LimitStack,
) -> None:
    limits.move("ETH", "50.00")
    trader = limits.trader("1000")
    trader.buy("ETH", "3")
    order = trader.limit("sell", "ETH", "2", "60")
    assert (order.status, order.held_amount) == ("pending", "2.00000000")
    held = trader.asset_balance("ETH")
    assert (held.quantity, held.available_quantity, held.held_quantity) == (
        "3.00000000",
        "1.00000000",
        "2.00000000",
    )
    # Held units cannot be sold twice.
    error = refused(lambda: trader.sell("ETH", "1.5"))
    assert reason_of(error) == "INSUFFICIENT_HOLDINGS"
    portfolio = trader.portfolio()
    assert [(a.available_quantity, a.held_quantity) for a in portfolio.assets] == [
        ("1.00000000", "2.00000000")
    ]

    limits.move("ETH", "61.25")
    filled = wait_for_status(trader, order.order_id, "completed")
    assert (filled.price, filled.total_amount) == ("61.25", "122.50")
    assert trader.asset_balance("ETH").quantity == "1.00000000"
    assert trader.balance() == str(D("1000.00") - D("150.00") + D("122.50"))
    assert_books_balance(trader)


@pytest.mark.parametrize("tif", ["ioc", "fok"])
def test_ioc_and_fok_that_are_not_marketable_are_cancelled_at_once(
    limits: LimitStack, tif: str
) -> None:
    limits.move("BTC", "100.00")
    trader = limits.trader("1000")
    order = trader.limit("buy", "BTC", "1", "99", time_in_force=tif)
    assert (order.status, order.time_in_force) == ("cancelled", tif)
    assert order.HasField("cancelled_at")
    assert trader.balances().held_balance == "0.00"
    marketable = trader.limit("buy", "BTC", "1", "101", time_in_force=tif)
    assert (marketable.status, marketable.price) == ("completed", "100.00")


def test_a_gtd_order_expires_on_time_with_nobody_touching_the_account(
    limits: LimitStack,
) -> None:
    limits.move("BTC", "100.00")
    trader = limits.trader("1000")
    expires_at = datetime.now(UTC) + timedelta(seconds=1)
    order = trader.limit("buy", "BTC", "1", "50", time_in_force="gtd", expires_at=expires_at)
    assert order.status == "pending"
    assert order.expires_at.ToDatetime(tzinfo=UTC) == expires_at
    # Nobody calls for this account meanwhile: the sweep expires it.
    wait_until(lambda: datetime.now(UTC) > expires_at + timedelta(seconds=1), "time passes")
    expired = wait_for_status(trader, order.order_id, "expired")
    assert expired.expired_at.ToDatetime(tzinfo=UTC) >= expires_at
    assert trader.balances().available_balance == "1000.00"
    limits.move("BTC", "40.00")  # an expired order never fills
    assert status_of(trader, order.order_id) == "expired"


def test_a_gtd_in_the_past_and_a_market_order_with_time_in_force_are_refused(
    limits: LimitStack,
) -> None:
    trader = limits.trader("1000")
    past = datetime.now(UTC) - timedelta(seconds=1)
    error = refused(lambda: trader.limit("buy", "BTC", "1", "50", "gtd", expires_at=past))
    assert (error.code(), reason_of(error)) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_EXPIRES_AT",
    )
    request = order_pb2.PlaceOrderRequest(
        order_type="market_buy", asset_id="BTC", quantity="1", time_in_force="gtc"
    )
    error = refused(lambda: trader.stub.PlaceOrder(request, metadata=trader.metadata()))
    assert reason_of(error) == "INVALID_TIME_IN_FORCE"


def test_cancel_before_a_fill_releases_the_hold_and_the_order_never_fills(
    limits: LimitStack, new_trader: Callable[[], Trader]
) -> None:
    limits.move("BTC", "100.00")
    trader = limits.trader("1000")
    order = trader.limit("buy", "BTC", "1", "90")
    cancelled = trader.cancel(order.order_id)
    assert cancelled.status == "cancelled"
    assert cancelled.HasField("cancelled_at")
    assert trader.balances().available_balance == "1000.00"
    limits.move("BTC", "80.00")
    assert status_of(trader, order.order_id) == "cancelled"
    # Cancelling again is answered the same way every time.
    for _ in range(2):
        error = refused(lambda: trader.cancel(order.order_id))
        assert (error.code(), reason_of(error)) == (
            grpc.StatusCode.ABORTED,
            "ORDER_NOT_CANCELLABLE",
        )
        assert "cancelled" in str(error.details())
    stranger = limits.trader()
    error = refused(lambda: stranger.cancel(order.order_id))
    assert (error.code(), reason_of(error)) == (grpc.StatusCode.NOT_FOUND, "ORDER_NOT_FOUND")
    assert_books_balance(trader)


def test_cancel_after_a_fill_is_refused_with_the_status(limits: LimitStack) -> None:
    limits.move("BTC", "100.00")
    trader = limits.trader("1000")
    order = trader.limit("buy", "BTC", "1", "90")
    limits.move("BTC", "89.00")
    wait_for_status(trader, order.order_id, "completed")
    error = refused(lambda: trader.cancel(order.order_id))
    assert (error.code(), reason_of(error)) == (grpc.StatusCode.ABORTED, "ORDER_NOT_CANCELLABLE")
    assert "completed" in str(error.details())
    assert trader.balance() == "911.00"


@pytest.mark.parametrize("servers", [1, 2], ids=["one-server", "two-servers"])
def test_twenty_cancels_racing_a_fill_end_in_exactly_one_outcome(
    limits: LimitStack, servers: int
) -> None:
    # With two replicas the cancels alternate over both, and both price triggers race
    # them to the fill: only the account's version condition orders the three.
    while len(limits.replicas) < servers:
        limits.start_replica()
    limits.move("BTC", "100.00")
    trader = limits.trader("1000")
    order = trader.limit("buy", "BTC", "1", "90")
    sides = alternating(tuple(trader.via(r.stub) for r in limits.replicas[:servers]), 20)
    start = threading.Barrier(21, timeout=CALL_TIMEOUT)

    def cancel(via: Trader) -> str:
        start.wait()
        try:
            return str(via.cancel(order.order_id).status)
        except grpc.RpcError as error:
            return reason_of(error)

    def cross() -> None:
        start.wait()
        limits.market.move("BTC", "85.00")

    with ThreadPoolExecutor(21) as pool:
        crossing = pool.submit(cross)
        cancels = [pool.submit(cancel, via) for via in sides]
        crossing.result()
        answers = [future.result() for future in cancels]
    wait_until(
        lambda: status_of(trader, order.order_id) in ("completed", "cancelled"),
        "the order ended",
    )
    final = trader.get_order(order.order_id)
    cash = [t for t in ledger(trader) if t.reference_id == order.order_id]
    if final.status == "cancelled":
        assert answers.count("cancelled") == 1
        assert answers.count("ORDER_NOT_CANCELLABLE") == 19
        assert cash == []
        assert trader.balance() == "1000.00"
    else:
        assert answers.count("cancelled") == 0
        assert answers.count("ORDER_NOT_CANCELLABLE") == 20
        assert [t.amount for t in cash] == ["-85.00"]
        assert trader.balance() == "915.00"
    assert trader.balances().held_balance == "0.00"
    limits.move("BTC", "100.00")
    assert_books_balance(trader)


def test_two_replicas_never_fill_one_order_twice(limits: LimitStack) -> None:
    second = limits.start_replica()
    limits.move("BTC", "100.00")
    trader = limits.trader("5000")
    orders = [trader.limit("buy", "BTC", "1", "90") for _ in range(5)]
    orders += [trader.via(second.stub).limit("buy", "BTC", "1", "91") for _ in range(5)]
    limits.move("BTC", "88.00")
    for order in orders:
        wait_for_status(trader, order.order_id, "completed")
    trades = trader.asset_transactions("BTC", limit=100).data
    assert sorted(t.order_id for t in trades) == sorted(o.order_id for o in orders)
    assert trader.asset_balance("BTC").quantity == "10.00000000"
    assert trader.balance() == "4120.00"
    assert_books_balance(trader)


class CrashOnFill:
    """Raises after the account write of every fill of a resting order."""

    def __init__(self) -> None:
        self.crashed: list[AppliedOperation] = []

    def __call__(self, stage: WriteStage, operation: AppliedOperation) -> None:
        if stage is not WriteStage.AFTER_ACCOUNT_WRITE:
            return
        if operation.order is not None and operation.kind is OperationKind.BUY:
            self.crashed.append(operation)
            raise RuntimeError("injected crash between the account write and the order update")


def test_a_crash_between_the_account_write_and_the_order_update_leaves_one_outcome(
    make_limit_stack: Callable[[], LimitStack],
) -> None:
    stack = make_limit_stack()
    crash = CrashOnFill()
    crashing = stack.start_replica(write_hook=crash)
    stack.move("BTC", "100.00")
    trader = stack.trader("1000")
    order = trader.limit("buy", "BTC", "1", "90")
    stack.move("BTC", "87.00")
    wait_until(lambda: bool(crash.crashed), "the fill crashed after the account write")
    # The account says filled; the next access (any replica) completes the order.
    healthy = stack.start_replica()
    filled = trader.via(healthy.stub).get_order(order.order_id)
    assert (filled.status, filled.price) == ("completed", "87.00")
    assert trader.via(crashing.stub).get_order(order.order_id).status == "completed"
    assert [t.amount for t in ledger(trader) if t.reference_id == order.order_id] == ["-87.00"]
    assert trader.balances().held_balance == "0.00"
    assert trader.asset_balance("BTC").quantity == "1.00000000"
    assert len(crash.crashed) == 1
    assert_books_balance(trader)


def test_a_restart_loses_neither_an_expiry_nor_a_fill(
    make_limit_stack: Callable[[], LimitStack],
) -> None:
    stack = make_limit_stack()
    first = stack.start_replica()
    stack.move("BTC", "100.00")
    trader = stack.trader("1000")
    expires_at = datetime.now(UTC) + timedelta(seconds=1)
    expiring = trader.limit("buy", "BTC", "1", "50", time_in_force="gtd", expires_at=expires_at)
    crossing = trader.limit("buy", "BTC", "1", "90")
    first.server.shutdown()
    # While no svc_order runs, the gtd order's time comes and the price falls through.
    stack.market.move("BTC", "85.00")
    wait_until(lambda: datetime.now(UTC) > expires_at, "the expiry passes")
    second = stack.start_replica()
    restarted = trader.via(second.stub)
    wait_for_status(restarted, expiring.order_id, "expired")
    filled = wait_for_status(restarted, crossing.order_id, "completed")
    assert filled.price == "85.00"
    assert restarted.balance() == "915.00"
    assert_books_balance(restarted)


def test_a_limit_order_with_an_idempotency_key_rests_once(limits: LimitStack) -> None:
    limits.move("BTC", "100.00")
    trader = limits.trader("1000")
    first = trader.limit("buy", "BTC", "1", "90", key="limit-1")
    again = trader.limit("buy", "BTC", "1", "90", key="limit-1")
    assert again.order_id == first.order_id
    assert [o.order_id for o in trader.list_orders(status="open").data] == [first.order_id]
    assert trader.balances().held_balance == "90.00"
    error = refused(lambda: trader.limit("buy", "BTC", "1", "91", key="limit-1"))
    assert reason_of(error) == "IDEMPOTENCY_CONFLICT"
    trader.cancel(first.order_id)
