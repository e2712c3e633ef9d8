"""Concurrency invariants with real concurrent RPCs: no overdraft, no oversell, one effect
per idempotency key. Every race runs twice (`racers`): against one svc_order, whose
per-user lock queues one account's changes, and with its calls alternating over two
svc_order servers side by side on one table, where only the account item's version
condition referees."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from functools import partial

import grpc
from trading.v1 import order_pb2

from tests.integration.order_fixtures import Trader, alternating, reason_of, refused

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


def test_concurrent_buys_fill_exactly_what_the_cash_affords(racers: tuple[Trader, ...]) -> None:
    trader = racers[0]
    affordable = 13
    initial = funded_for(trader, affordable)
    # The watcher reads through the last server: with two, not the one funded through.
    with BalanceWatcher(racers[-1]) as watcher:
        results = race([partial(side.buy, "BTC", UNIT) for side in alternating(racers, RACERS)])
    assert_exact_fills(results, trader, initial, affordable)
    assert watcher.seen, "the watcher read no balance"
    possible = {initial - n * UNIT_COST for n in range(affordable + 1)}
    assert set(watcher.seen) <= possible


def test_buys_for_all_but_a_cent_of_the_cash_never_overdraw(racers: tuple[Trader, ...]) -> None:
    trader = racers[0]
    affordable = 9
    initial = funded_for(trader, affordable, change="49.99")
    with BalanceWatcher(racers[-1]) as watcher:
        results = race([partial(side.buy, "BTC", UNIT) for side in alternating(racers, RACERS)])
    assert_exact_fills(results, trader, initial, affordable)
    assert min(watcher.seen) >= 0


def test_concurrent_withdrawals_never_take_more_than_the_balance(
    racers: tuple[Trader, ...],
) -> None:
    trader = racers[0]
    trader.deposit("1000")
    results = race([partial(side.withdraw, "150") for side in alternating(racers, 20)])
    assert results == {"OK": 6, "FAILED_PRECONDITION:INSUFFICIENT_FUNDS": 14}
    assert trader.balance() == "100.00"
    ledger = trader.cash_transactions(limit=100)
    assert [t.amount for t in ledger.transactions].count("-150.00") == 6
    assert sum(Decimal(t.amount) for t in ledger.transactions) == Decimal("100.00")


def test_concurrent_sells_never_sell_more_than_held(racers: tuple[Trader, ...]) -> None:
    trader = racers[0]
    held, sellers = 4, 12
    trader.deposit("1000")
    trader.buy("BTC", f"{Decimal(UNIT) * held}")
    results = race([partial(side.sell, "BTC", UNIT) for side in alternating(racers, sellers)])
    assert results == {"OK": held, "FAILED_PRECONDITION:INSUFFICIENT_HOLDINGS": sellers - held}
    assert refused(lambda: trader.asset_balance("BTC")).code() == grpc.StatusCode.NOT_FOUND
    assert trader.balance() == "1000.00"


def test_one_idempotency_key_places_one_order(racers: tuple[Trader, ...]) -> None:
    trader = racers[0]
    trader.deposit("1000")
    answers: list[order_pb2.Order] = []
    lock = threading.Lock()

    def place(via: Trader) -> None:
        order = via.buy("BTC", UNIT, key="buy-once")
        with lock:
            answers.append(order)

    results = race([partial(place, side) for side in alternating(racers, 20)])
    assert results == {"OK": 20}
    answers.extend(side.buy("BTC", UNIT, key="buy-once") for side in alternating(racers, 5))
    assert len(answers) == 25
    assert all(answer == answers[0] for answer in answers)
    assert [o.order_id for o in trader.list_orders().data] == [answers[0].order_id]
    assert trader.balance() == "950.00"


def test_one_key_with_another_body_is_refused(racers: tuple[Trader, ...]) -> None:
    trader, elsewhere = racers[0], racers[-1]
    trader.deposit("1000")
    trader.buy("BTC", UNIT, key="k-1")
    # Each conflicting body is tried through the other server too (when there are two).
    for other in (
        lambda via: via.buy("BTC", "0.002", key="k-1"),
        lambda via: via.buy("ETH", UNIT, key="k-1"),
        lambda via: via.sell("BTC", UNIT, key="k-1"),
        lambda via: via.buy("BTC", UNIT, key="k-1", price="60000"),
    ):
        for via in (trader, elsewhere):
            error = refused(partial(other, via))
            assert error.code() == grpc.StatusCode.ALREADY_EXISTS
            assert reason_of(error) == "IDEMPOTENCY_CONFLICT"
    assert trader.balance() == "950.00"
    assert len(trader.list_orders().data) == 1
