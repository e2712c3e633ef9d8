"""An Idempotency-Key answers its first result for 24 h whatever happened since: after
any number of newer keyed operations, to racing threads, to two svc_order processes,
and after a process is killed anywhere between its writes; the account item stays the
same size however many keys a user sends."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from functools import partial
from typing import TypeVar

import grpc
from trading.v1 import order_pb2, order_pb2_grpc

from common.dynamo import make_client, to_attributes
from svc_order.config import OrderSettings
from tests.integration.order_fixtures import Trader, reason_of, refused
from tests.integration.order_processes import *  # noqa: F403
from tests.integration.order_processes import OrderProcess

# The example: one keyed buy, then this many newer keyed orders.
NEWER_KEYED_ORDERS = 100
# 0.001 ETH at the default 3000.00 costs exactly 3.00.
SMALL = "0.001"
SMALL_COST = Decimal("3.00")

T = TypeVar("T")


def all_at_once(calls: list[Callable[[], T]]) -> list[T]:
    """Runs every call at once (each on its own thread, released together)."""
    start = threading.Barrier(len(calls))

    def run(call: Callable[[], T]) -> T:
        start.wait()
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def test_a_key_answers_its_first_result_after_a_hundred_newer_keyed_orders(
    trader: Trader, second_orders: order_pb2_grpc.OrderServiceStub
) -> None:
    trader.deposit("1000", key="D-0")
    first = trader.buy("BTC", "0.002", key="K-0")
    for n in range(1, NEWER_KEYED_ORDERS + 1):
        trader.buy("ETH", SMALL, key=f"K-{n}")
    spent = Decimal("100.00") + NEWER_KEYED_ORDERS * SMALL_COST
    assert Decimal(trader.balance()) == Decimal("1000.00") - spent

    assert trader.buy("BTC", "0.002", key="K-0") == first
    # Racing replays, on two instances, all answer the first result.
    elsewhere = trader.via(second_orders)
    replays = all_at_once(
        [partial(side.buy, "BTC", "0.002", key="K-0") for side in (trader, elsewhere) * 8]
    )
    assert all(replay == first for replay in replays)
    assert Decimal(trader.balance()) == Decimal("1000.00") - spent
    btc = trader.list_orders(asset_id="BTC")
    assert [o.order_id for o in btc.data] == [first.order_id]
    # The same key with another body is a conflict, not a new order.
    conflict = refused(lambda: trader.buy("BTC", "0.003", key="K-0"))
    assert conflict.code() == grpc.StatusCode.ALREADY_EXISTS
    assert reason_of(conflict) == "IDEMPOTENCY_CONFLICT"


def test_deposits_and_withdrawals_answer_their_first_result_after_newer_keys(
    trader: Trader,
) -> None:
    deposited = trader.deposit("500", key="D-first")
    withdrawn = trader.withdraw("100", key="W-first")
    for n in range(NEWER_KEYED_ORDERS):
        trader.deposit("1", key=f"D-{n}")
    balance = Decimal("400.00") + NEWER_KEYED_ORDERS
    assert Decimal(trader.balance()) == balance

    assert trader.deposit("500", key="D-first") == deposited
    assert trader.withdraw("100", key="W-first") == withdrawn
    assert Decimal(trader.balance()) == balance
    assert trader.cash_transactions().total_count == 2 + NEWER_KEYED_ORDERS


def test_the_account_item_stays_the_same_size_however_many_keys(
    trader: Trader, make_order_settings: Callable[..., OrderSettings]
) -> None:
    settings = make_order_settings()
    client = make_client(settings.dynamodb_endpoint, settings.aws_region)
    table = settings.table_prefix + settings.trading_table
    trader.deposit("1", key="size-0")
    key = to_attributes({"pk": f"ACCOUNT#{trader.user_id}", "sk": "ACCOUNT"})

    def account_size() -> int:
        item = client.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"]
        return len(json.dumps(item))

    after_one = account_size()
    for n in range(1, 150):
        trader.deposit("1", key=f"size-{n}")
    # Only digits may grow: cash, day counters, version, the last key ("size-149"); a
    # record of past operations would add hundreds of bytes per key.
    assert account_size() - after_one <= 32


def test_two_svc_order_processes_racing_the_same_keys_apply_each_once(
    trader: Trader, start_order_process: Callable[[], OrderProcess]
) -> None:
    one, other = start_order_process(), start_order_process()
    trader.deposit("1000")
    sides = (trader.via(one.stub), trader.via(other.stub))
    keys = [f"race-{n}" for n in range(10)]
    for key in keys:
        answers = all_at_once([partial(side.buy, "ETH", SMALL, key=key) for side in sides * 4])
        assert len({answer.order_id for answer in answers}) == 1
    assert Decimal(trader.balance()) == Decimal("1000.00") - len(keys) * SMALL_COST
    assert len(trader.list_orders(limit=100).data) == len(keys)
    ledger = trader.cash_transactions(limit=100)
    assert sum(Decimal(t.amount) for t in ledger.transactions) == Decimal(trader.balance())


def test_a_process_killed_amid_keyed_deposits_leaves_one_effect_per_key(
    trader: Trader, start_order_process: Callable[[], OrderProcess]
) -> None:
    doomed = start_order_process()
    keys = [f"kill-{n}" for n in range(60)]
    first_answers: dict[str, order_pb2.DepositResponse] = {}
    twenty_answered = threading.Event()

    def deposit_until_killed() -> None:
        via = trader.via(doomed.stub)
        for key in keys:
            try:
                first_answers[key] = via.deposit("1", key=key)
            except grpc.RpcError:
                return
            if len(first_answers) == 20:
                twenty_answered.set()

    flow = threading.Thread(target=deposit_until_killed, name="deposits")
    flow.start()
    assert twenty_answered.wait(timeout=60)
    doomed.kill()
    flow.join(timeout=60)
    assert len(first_answers) < len(keys), "the process was killed before the last deposit"

    # The client retries every key, on another instance: each moves money once, and a
    # key that was answered answers the same again.
    for key in keys:
        answer = trader.deposit("1", key=key)
        if key in first_answers:
            assert answer == first_answers[key]
    assert Decimal(trader.balance()) == len(keys)
    ledger = trader.cash_transactions(limit=100)
    assert ledger.total_count == len(keys)
    assert sum(Decimal(t.amount) for t in ledger.transactions) == len(keys)
