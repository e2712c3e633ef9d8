"""Racing requests through the bridge to svc_order's two servers (balanced round robin,
one table): no overdraft, no lost update, one effect per idempotency key. Between two
processes only the account item's version condition referees."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import httpx

from tests.e2e.conftest import Account, Stack

RACERS = 24
BUY = {"order_type": "market_buy", "asset_id": "BTC", "quantity": "0.001"}


def race(calls: list[Callable[[], httpx.Response]]) -> list[httpx.Response]:
    """Runs every call at once (each on its own thread, released together)."""
    start = threading.Barrier(len(calls))

    def run(call: Callable[[], httpx.Response]) -> httpx.Response:
        start.wait()
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def outcomes(answers: list[httpx.Response]) -> Counter[str]:
    return Counter(
        str(a.status_code) if a.is_success else f"{a.status_code}:{a.json()['code']}"
        for a in answers
    )


def balance(http: httpx.Client, account: Account) -> Decimal:
    return Decimal(http.get("/api/v1/balance", headers=account.auth).json()["current_balance"])


def test_both_servers_serve_one_users_orders(
    http: httpx.Client, account: Account, stack: Stack
) -> None:
    assert len(stack.orders) == 2
    http.post("/api/v1/balance/deposit", json={"amount": 1000}, headers=account.auth)
    placed = []
    for _ in range(6):
        answer = http.post("/api/v1/orders", json=BUY, headers=account.auth)
        assert answer.status_code == 201, answer.text
        placed.append(answer.json()["data"]["order_id"])
    served = [[order_id in written for order_id in placed] for written in stack.written]
    # Each order was written by exactly one server, and each server wrote some.
    assert all(a != b for a, b in zip(*served, strict=True)), served
    assert all(any(flags) for flags in served), served


def test_racing_withdrawals_never_overdraw(http: httpx.Client, account: Account) -> None:
    http.post("/api/v1/balance/deposit", json={"amount": "1000"}, headers=account.auth)
    answers = race(
        [
            lambda: http.post(
                "/api/v1/balance/withdraw", json={"amount": "100"}, headers=account.auth
            )
            for _ in range(RACERS)
        ]
    )
    assert outcomes(answers) == {"201": 10, "422:INSUFFICIENT_FUNDS": RACERS - 10}
    assert balance(http, account) == 0
    # Every success saw its own balance: no two withdrawals took the same 100.
    left = sorted(Decimal(a.json()["current_balance"]) for a in answers if a.is_success)
    assert left == [Decimal(100 * n) for n in range(10)]
    ledger = http.get("/api/v1/balance/transactions?limit=100", headers=account.auth).json()
    assert sum(Decimal(t["amount"]) for t in ledger["transactions"]) == 0


def test_racing_buys_spend_exactly_what_they_cost(http: httpx.Client, account: Account) -> None:
    http.post("/api/v1/balance/deposit", json={"amount": "500"}, headers=account.auth)
    # At the live BTC price (tens of thousands) the cash affords some of these, not all.
    answers = race([lambda: http.post("/api/v1/orders", json=BUY, headers=account.auth)] * RACERS)
    counted = outcomes(answers)
    assert set(counted) <= {"201", "422:INSUFFICIENT_FUNDS"}, counted
    filled = [a.json()["data"] for a in answers if a.status_code == 201]
    assert filled, counted
    assert counted["422:INSUFFICIENT_FUNDS"], counted
    spent = sum(Decimal(order["total_amount"]) for order in filled)
    left = balance(http, account)
    # No lost update (which leaves more cash than this) and no overdraft.
    assert left == Decimal("500") - spent >= 0
    listed = http.get("/api/v1/orders?limit=100", headers=account.auth).json()["data"]
    assert sorted(o["order_id"] for o in listed) == sorted(o["order_id"] for o in filled)
    holding = http.get("/api/v1/balance/asset/BTC", headers=account.auth).json()
    assert Decimal(holding["quantity"]) == Decimal("0.001") * len(filled)
    # Which server wins how many is the race's: one may take them all (its queue of
    # calls ran first). That the calls reach both is the first test's.


def test_one_key_raced_through_both_servers_deposits_once_and_orders_once(
    http: httpx.Client, account: Account
) -> None:
    deposit_key = {**account.auth, "Idempotency-Key": uuid.uuid4().hex}
    deposits = race(
        [lambda: http.post("/api/v1/balance/deposit", json={"amount": "300"}, headers=deposit_key)]
        * 16
    )
    assert outcomes(deposits) == {"201": 16}
    assert len({a.json()["transaction_id"] for a in deposits}) == 1
    assert {a.json()["current_balance"] for a in deposits} == {"300.00"}

    order_key = {**account.auth, "Idempotency-Key": uuid.uuid4().hex}
    orders = race([lambda: http.post("/api/v1/orders", json=BUY, headers=order_key)] * 16)
    assert outcomes(orders) == {"201": 16}
    placed = orders[0].json()["data"]
    assert all(a.json()["data"] == placed for a in orders)
    listed = http.get("/api/v1/orders?limit=100", headers=account.auth).json()["data"]
    assert [o["order_id"] for o in listed] == [placed["order_id"]]
    assert balance(http, account) == Decimal("300") - Decimal(placed["total_amount"])
