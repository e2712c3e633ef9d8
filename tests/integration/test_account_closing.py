"""Closing a trading account against real svc_order and dynalite: deposits racing the
close (on one server, and over two side by side) never leave money in a closed account;
a closed account refuses every change."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import grpc
from trading.v1 import order_pb2

from tests.integration.order_fixtures import (
    CALL_TIMEOUT,
    Trader,
    alternating,
    reason_of,
    refused,
)


def close(trader: Trader) -> order_pb2.CloseTradingAccountResponse:
    return trader.stub.CloseTradingAccount(
        order_pb2.CloseTradingAccountRequest(), metadata=trader.metadata(), timeout=CALL_TIMEOUT
    )


def test_a_closed_account_refuses_every_change_and_closing_again_answers_the_same(
    trader: Trader,
) -> None:
    first = close(trader)
    assert close(trader).closed_at == first.closed_at
    for attempt in (
        lambda: trader.deposit("10"),
        lambda: trader.withdraw("10"),
        lambda: trader.buy("BTC", "0.001"),
        lambda: trader.sell("BTC", "0.001"),
    ):
        error = refused(attempt)
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert reason_of(error) == "ACCOUNT_CLOSED"
    assert trader.balance() == "0.00"


def test_deposits_racing_a_close_never_leave_money_in_a_closed_account(
    racers: tuple[Trader, ...],
) -> None:
    # With two servers the deposits alternate over both and the close goes through the
    # second: only the account's version condition orders them.
    trader = racers[0]
    start = threading.Barrier(11)

    def deposit(via: Trader) -> str:
        start.wait()
        try:
            via.deposit("10")
        except grpc.RpcError as error:
            return reason_of(error)
        return "OK"

    def closing() -> str:
        start.wait()
        try:
            close(racers[-1])
        except grpc.RpcError as error:
            return reason_of(error)
        return "OK"

    with ThreadPoolExecutor(max_workers=11) as pool:
        deposits = [pool.submit(deposit, via) for via in alternating(racers, 10)]
        closed = pool.submit(closing)
        outcomes = [f.result() for f in deposits]
        was_closed = closed.result() == "OK"
    assert set(outcomes) <= {"OK", "ACCOUNT_CLOSED"}
    assert closed.result() in ("OK", "ACCOUNT_NOT_EMPTY")
    accepted = outcomes.count("OK")
    assert trader.balance() == f"{10 * accepted}.00"
    if was_closed:
        # Closed first: no deposit got in after it.
        assert accepted == 0
    else:
        assert accepted > 0
        export = trader.stub.ExportTradingAccount(
            order_pb2.ExportTradingAccountRequest(), metadata=trader.metadata(), timeout=30
        )
        assert not export.account.HasField("closed_at")
        assert len(export.account.ledger) == accepted
