"""A crash before, between or after the account write and the order/ledger/replay
writes loses nothing: the next access, on any instance, completes the operation's
items, money moves once, and a retried key answers its first result."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC
from decimal import Decimal
from functools import partial

import grpc
import pytest
from trading.v1 import order_pb2, order_pb2_grpc

from svc_order.domain import AppliedOperation
from svc_order.service import WriteStage
from tests.integration.order_fixtures import OrderEndpoint, Trader, refused


class CrashSwitch:
    """Raises once at the armed stage (by default between the account write and the
    derived writes), whenever it is armed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stage: WriteStage | None = None
        self.crashed: list[AppliedOperation] = []

    def arm(self, stage: WriteStage = WriteStage.AFTER_ACCOUNT_WRITE) -> None:
        with self._lock:
            self._stage = stage

    def __call__(self, stage: WriteStage, operation: AppliedOperation) -> None:
        with self._lock:
            if stage is not self._stage:
                return
            self._stage = None
            self.crashed.append(operation)
        raise RuntimeError(f"injected crash at {stage.value}")


@pytest.fixture(scope="module")
def crash_switch() -> CrashSwitch:
    return CrashSwitch()


@pytest.fixture(scope="module")
def crashing_orders(
    start_order_server: Callable[..., OrderEndpoint], crash_switch: CrashSwitch
) -> order_pb2_grpc.OrderServiceStub:
    return start_order_server(write_hook=crash_switch).stub


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


@pytest.mark.parametrize("stage", list(WriteStage))
def test_a_keyed_order_crashed_at_any_stage_has_one_effect_and_its_retry_the_first_result(
    trader: Trader,
    crashing_orders: order_pb2_grpc.OrderServiceStub,
    crash_switch: CrashSwitch,
    stage: WriteStage,
) -> None:
    crashing = trader.via(crashing_orders)
    crashing.deposit("1000", key=f"fund-{stage.value}")
    crash_switch.arm(stage)
    refused(lambda: crashing.buy("BTC", "0.002", key="K-crash"))
    [crashed] = crash_switch.crashed[-1:]

    # Other keyed orders go on, on the other instance, before the client retries.
    for n in range(5):
        trader.buy("ETH", "0.001", key=f"K-after-{n}")
    retried = crashing.buy("BTC", "0.002", key="K-crash")
    again = trader.buy("BTC", "0.002", key="K-crash")

    assert again == retried
    if stage is not WriteStage.BEFORE_ACCOUNT_WRITE:
        # The crashed operation was applied: the retry answers it, from its record.
        assert retried.created_at.ToDatetime(tzinfo=UTC) == crashed.created_at
    btc = [o for o in trader.list_orders().data if o.asset_id == "BTC"]
    assert [o.order_id for o in btc] == [retried.order_id]
    # 1000 - 100.00 (BTC) - 5 × 3.00 (ETH)
    assert trader.balance() == "885.00"
    ledger = trader.cash_transactions()
    assert ledger.total_count == 7
    assert sum(Decimal(t.amount) for t in ledger.transactions) == Decimal("885.00")


def test_both_instances_completing_a_crashed_order_at_once_leave_one_effect(
    trader: Trader, crashing_orders: order_pb2_grpc.OrderServiceStub, crash_switch: CrashSwitch
) -> None:
    crashing = trader.via(crashing_orders)
    crashing.deposit("1000")
    crash_switch.arm()
    refused(lambda: crashing.buy("BTC", "0.002", key="K-both"))
    [crashed] = crash_switch.crashed[-1:]

    # The retries and newer keyed orders arrive at once, on both instances: each
    # instance finds the crashed operation's items missing and writes them.
    sides = (crashing, trader) * 8
    retries = [partial(side.buy, "BTC", "0.002", key="K-both") for side in sides]
    newer = [partial(side.buy, "ETH", "0.001", key=f"K-new-{n}") for n, side in enumerate(sides)]
    start = threading.Barrier(len(retries) + len(newer))

    def run(call: Callable[[], order_pb2.Order]) -> order_pb2.Order:
        start.wait()
        return call()

    with ThreadPoolExecutor(max_workers=len(retries) + len(newer)) as pool:
        answers = list(pool.map(run, retries + newer))
    replays = answers[: len(retries)]
    assert all(replay == replays[0] for replay in replays)
    assert replays[0].created_at.ToDatetime(tzinfo=UTC) == crashed.created_at
    btc = [o for o in trader.list_orders(limit=100).data if o.asset_id == "BTC"]
    assert [o.order_id for o in btc] == [replays[0].order_id]
    assert len({answer.order_id for answer in answers[len(retries) :]}) == len(newer)
    # 1000 - 100.00 (BTC) - 16 × 3.00 (ETH)
    assert trader.balance() == "852.00"
    ledger = trader.cash_transactions(limit=100)
    assert ledger.total_count == 2 + len(newer)
    assert sum(Decimal(t.amount) for t in ledger.transactions) == Decimal("852.00")
    assert [t.order_id for t in trader.asset_transactions("BTC").data] == [replays[0].order_id]
