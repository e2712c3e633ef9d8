"""Concurrency invariants with real concurrent RPCs: no overdraft, no oversell, one effect
per idempotency key, also when two svc_order instances serve one account side by side."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from functools import partial
from itertools import cycle, islice

import grpc
import pytest
from trading.v1 import order_pb2, order_pb2_grpc

from tests.integration.order_fixtures import OrderEndpoint, Trader, reason_of, refused

# 0.001 BTC at the default 50000.00 costs exactly 50.00.
UNIT = "0.001"
UNIT_COST = Decimal("50.00")
RACERS = 50


def outcome(call: Callable[[], object]) -> str:
    """OK, or the status code and reason a refused call answered."""
    try:
        call()
    except grpc.RpcError as error:
        return f"{error.code().name}:{reason_of(error)}"
    return "OK"


def alternating(traders: tuple[Trader, ...], count: int) -> list[Trader]:
    return list(islice(cycle(traders), count))


def race(calls: list[Callable[[], object]]) -> Counter[str]:
    """Runs every call at once (each on its own thread, released together)."""
    start = threading.Barrier(len(calls))

    def run(call: Callable[[], object]) -> str:
        start.wait()
        return outcome(call)

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return Counter(pool.map(run, calls))


class BalanceWatcher:
    """Polls GetBalance until stopped; every balance it saw is kept."""

    def __init__(self, trader: Trader) -> None:
        self._trader = trader
        self._stop = threading.Event()
        self.seen: list[Decimal] = []
        self._thread = threading.Thread(target=self._poll, name="balance-watcher")

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.seen.append(Decimal(self._trader.balance()))

    def __enter__(self) -> BalanceWatcher:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


@pytest.fixture(scope="module")
def second_orders(
    start_order_server: Callable[..., OrderEndpoint],
) -> order_pb2_grpc.OrderServiceStub:
    """Another svc_order on its own port, on the same table."""
    return start_order_server().stub


def funded_for(trader: Trader, affordable: int, change: str = "20.00") -> Decimal:
    """Deposits the cost of exactly `affordable` units plus less than one more."""
    initial = UNIT_COST * affordable + Decimal(change)
    trader.deposit(str(initial))
    return initial


def assert_exact_fills(
    results: Counter[str], trader: Trader, initial: Decimal, affordable: int
) -> None:
    assert results == {
        "OK": affordable,
        "FAILED_PRECONDITION:INSUFFICIENT_FUNDS": RACERS - affordable,
    }
    assert Decimal(trader.balance()) == initial - affordable * UNIT_COST
    assert len(trader.list_orders(limit=100).data) == affordable
    assert trader.asset_balance("BTC").quantity == f"{Decimal(UNIT) * affordable:.8f}"
    ledger = trader.cash_transactions(limit=100)
    assert sum(Decimal(t.amount) for t in ledger.transactions) == Decimal(trader.balance())


def test_concurrent_buys_fill_exactly_what_the_cash_affords(trader: Trader) -> None:
    affordable = 13
    initial = funded_for(trader, affordable)
    with BalanceWatcher(trader) as watcher:
        results = race([lambda: trader.buy("BTC", UNIT) for _ in range(RACERS)])
    assert_exact_fills(results, trader, initial, affordable)
    assert watcher.seen, "the watcher read no balance"
    possible = {initial - n * UNIT_COST for n in range(affordable + 1)}
    assert set(watcher.seen) <= possible


def test_two_servers_side_by_side_never_overdraw(
    trader: Trader, second_orders: order_pb2_grpc.OrderServiceStub
) -> None:
    affordable = 9
    initial = funded_for(trader, affordable, change="49.99")
    elsewhere = trader.via(second_orders)
    sides = (trader, elsewhere)
    with BalanceWatcher(elsewhere) as watcher:
        results = race([partial(side.buy, "BTC", UNIT) for side in alternating(sides, RACERS)])
    assert_exact_fills(results, trader, initial, affordable)
    assert min(watcher.seen) >= 0


def test_concurrent_sells_never_sell_more_than_held(trader: Trader) -> None:
    held, sellers = 4, 12
    trader.deposit("1000")
    trader.buy("BTC", f"{Decimal(UNIT) * held}")
    results = race([lambda: trader.sell("BTC", UNIT) for _ in range(sellers)])
    assert results == {"OK": held, "FAILED_PRECONDITION:INSUFFICIENT_HOLDINGS": sellers - held}
    assert refused(lambda: trader.asset_balance("BTC")).code() == grpc.StatusCode.NOT_FOUND
    assert trader.balance() == "1000.00"


def test_one_idempotency_key_places_one_order(
    trader: Trader, second_orders: order_pb2_grpc.OrderServiceStub
) -> None:
    trader.deposit("1000")
    elsewhere = trader.via(second_orders)
    answers: list[order_pb2.Order] = []
    lock = threading.Lock()

    def place(via: Trader) -> None:
        order = via.buy("BTC", UNIT, key="buy-once")
        with lock:
            answers.append(order)

    results = race([partial(place, side) for side in alternating((trader, elsewhere), 20)])
    assert results == {"OK": 20}
    answers.extend(trader.buy("BTC", UNIT, key="buy-once") for _ in range(5))
    assert len(answers) == 25
    assert all(answer == answers[0] for answer in answers)
    assert [o.order_id for o in trader.list_orders().data] == [answers[0].order_id]
    assert trader.balance() == "950.00"


def test_one_key_with_another_body_is_refused(trader: Trader) -> None:
    trader.deposit("1000")
    trader.buy("BTC", UNIT, key="k-1")
    for other in (
        lambda: trader.buy("BTC", "0.002", key="k-1"),
        lambda: trader.buy("ETH", UNIT, key="k-1"),
        lambda: trader.sell("BTC", UNIT, key="k-1"),
        lambda: trader.buy("BTC", UNIT, key="k-1", price="60000"),
    ):
        error = refused(other)
        assert error.code() == grpc.StatusCode.ALREADY_EXISTS
        assert reason_of(error) == "IDEMPOTENCY_CONFLICT"
    assert trader.balance() == "950.00"
    assert len(trader.list_orders().data) == 1
