"""A crash between the account write and the order/ledger writes loses nothing: the
next access, on any instance, completes the operation's items, and money moves once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC

import grpc
import pytest
from trading.v1 import order_pb2_grpc

from svc_order.domain import AppliedOperation
from tests.integration.order_fixtures import *  # noqa: F403
from tests.integration.order_fixtures import OrderEndpoint, Trader, refused


class CrashSwitch:
    """Raises once, after the account write, whenever it is armed."""

    def __init__(self) -> None:
        self._armed = threading.Event()
        self.crashed: list[AppliedOperation] = []

    def arm(self) -> None:
        self._armed.set()

    def __call__(self, operation: AppliedOperation) -> None:
        if self._armed.is_set():
            self._armed.clear()
            self.crashed.append(operation)
            raise RuntimeError("injected crash between the account and the derived writes")


@pytest.fixture(scope="module")
def crash_switch() -> CrashSwitch:
    return CrashSwitch()


@pytest.fixture(scope="module")
def crashing_orders(
    start_order_server: Callable[..., OrderEndpoint], crash_switch: CrashSwitch
) -> order_pb2_grpc.OrderServiceStub:
    return start_order_server(after_account_write=crash_switch).stub


def test_an_order_lost_in_a_crash_appears_on_the_next_access(
    trader: Trader, crashing_orders: order_pb2_grpc.OrderServiceStub, crash_switch: CrashSwitch
) -> None:
    crashing = trader.via(crashing_orders)
    crashing.deposit("1000")
    crash_switch.arm()
    error = refused(lambda: crashing.buy("BTC", "0.002"))
    assert error.code() == grpc.StatusCode.INTERNAL
    assert "Traceback" not in (error.details() or "")
    [lost] = crash_switch.crashed[-1:]

    # The other instance never saw this operation: it completes it from the account.
    assert trader.balance() == "900.00"
    [order] = trader.list_orders().data
    assert (order.asset_id, order.quantity, order.total_amount) == ("BTC", "0.00200000", "100.00")
    assert order.created_at.ToDatetime(tzinfo=UTC) == lost.created_at
    ledger = trader.cash_transactions()
    assert [(t.transaction_type, t.amount, t.reference_id) for t in ledger.transactions] == [
        ("order_payment", "-100.00", order.order_id),
        ("deposit", "1000.00", ""),
    ]
    assert [t.order_id for t in trader.asset_transactions("BTC").data] == [order.order_id]
    assert trader.get_order(order.order_id) == order


def test_a_retried_request_after_a_crash_answers_the_first_result(
    trader: Trader, crashing_orders: order_pb2_grpc.OrderServiceStub, crash_switch: CrashSwitch
) -> None:
    crashing = trader.via(crashing_orders)
    crashing.deposit("1000")
    crash_switch.arm()
    refused(lambda: crashing.buy("ETH", "0.1", key="lost-reply"))
    # The client never got its answer and tries again, on the same instance.
    retried = crashing.buy("ETH", "0.1", key="lost-reply")
    assert retried.total_amount == "300.00"
    assert [o.order_id for o in crashing.list_orders().data] == [retried.order_id]
    assert crashing.balance() == "700.00"
    assert crashing.cash_transactions().total_count == 2


def test_a_deposit_lost_in_a_crash_is_in_the_ledger(
    trader: Trader, crashing_orders: order_pb2_grpc.OrderServiceStub, crash_switch: CrashSwitch
) -> None:
    crashing = trader.via(crashing_orders)
    crash_switch.arm()
    assert refused(lambda: crashing.deposit("250")).code() == grpc.StatusCode.INTERNAL
    # The next change completes it before it writes its own.
    assert crashing.deposit("50").current_balance == "300.00"
    ledger = crashing.cash_transactions()
    assert [(t.transaction_type, t.amount) for t in ledger.transactions] == [
        ("deposit", "50.00"),
        ("deposit", "250.00"),
    ]
