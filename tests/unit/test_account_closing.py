"""Closing an account: only when nothing is left in it, and a closed account takes no
further change (svc_order.domain.closing)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from common.errors import ErrorKind
from svc_order import domain
from svc_order.domain import (
    AccountClosed,
    AccountNotEmpty,
    Limits,
    MarketQuote,
    OrderRequest,
    OrderType,
    Request,
    close_account,
)

NOON = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)
LIMITS = Limits()


def funded(cash: str) -> domain.Account:
    account = domain.new_account("user-1", NOON - timedelta(days=1))
    return domain.deposit(account, Decimal(cash), Request(NOON, "f1"), LIMITS).account


def test_an_account_with_cash_or_holdings_is_not_closed_and_the_refusal_says_what_to_move() -> None:
    account = funded("100.50")
    bought = domain.place_order(
        account,
        OrderRequest(OrderType.MARKET_BUY, "BTC", Decimal("0.001")),
        MarketQuote(Decimal("50000")),
        Request(NOON, "f2"),
        LIMITS,
    ).account
    with pytest.raises(AccountNotEmpty) as refused:
        close_account(bought, NOON)
    assert refused.value.kind is ErrorKind.ABORTED
    assert refused.value.reason == "ACCOUNT_NOT_EMPTY"
    assert str(refused.value.message) == (
        "the account still holds money or assets: withdraw 50.50 USD, sell 0.00100000 BTC first"
    )


def test_an_empty_account_closes_once_and_then_refuses_every_change() -> None:
    emptied = domain.withdraw(funded("20"), Decimal("20"), Request(NOON, "f2"), LIMITS).account
    closed = close_account(emptied, NOON + timedelta(minutes=1))
    assert closed.closed_at == NOON + timedelta(minutes=1)
    assert closed.version == emptied.version + 1
    assert (closed.cash, closed.last_operation) == (Decimal("0.00"), emptied.last_operation)
    assert close_account(closed, NOON + timedelta(hours=1)) is closed
    with pytest.raises(AccountClosed):
        domain.deposit(closed, Decimal("1"), Request(NOON, "f3"), LIMITS)
    with pytest.raises(AccountClosed):
        domain.place_order(
            closed,
            OrderRequest(OrderType.MARKET_BUY, "BTC", Decimal("0.001")),
            MarketQuote(Decimal("50000")),
            Request(NOON, "f4"),
            LIMITS,
        )


def test_an_account_never_used_closes_too() -> None:
    closed = close_account(domain.new_account("user-2", NOON), NOON)
    assert (closed.version, closed.closed_at) == (1, NOON)


def test_a_resting_order_is_named_first_its_hold_is_in_the_cash() -> None:
    resting = domain.place_order(
        funded("100"),
        OrderRequest(OrderType.LIMIT_BUY, "BTC", Decimal("0.001"), Decimal("40000")),
        MarketQuote(Decimal("50000")),
        Request(NOON, "f2"),
        LIMITS,
    ).account
    [order_id] = resting.open_orders
    with pytest.raises(AccountNotEmpty) as refused:
        close_account(resting, NOON)
    assert str(refused.value.message) == (
        f"the account still holds money or assets: cancel order {order_id}, "
        "withdraw 100.00 USD first"
    )
