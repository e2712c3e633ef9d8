"""The conservation audit (`python -m ops audit`, which `./dev audit` runs) finds every
kind of discrepancy planted in a real store, names the ids, and exits non-zero; books
written by a real svc_order balance."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from common.dynamo import Table, ensure_table, from_attributes, make_client, to_attributes
from devstack.engines import ROOT
from svc_order.audit import DiscrepancyKind, audit_books
from svc_order.store import DynamoTradingStore
from tests.integration.order_fixtures import FakeInventory, OrderEndpoint, Trader
from tests.support import unique


@dataclass(frozen=True)
class Ledger:
    """One svc_order with a trading table of its own, and the raw client to tamper."""

    client: Any
    prefix: str
    table: str
    endpoint: OrderEndpoint


@pytest.fixture(scope="module")
def ledger(start_order_server: Callable[..., OrderEndpoint], dynamodb_endpoint: str) -> Ledger:
    prefix = unique("audit") + "-"
    client = make_client(dynamodb_endpoint, "us-east-1")
    ensure_table(client, prefix + "trading")
    return Ledger(client, prefix, prefix + "trading", start_order_server(table_prefix=prefix))


def partition(ledger: Ledger, pk: str) -> list[dict[str, Any]]:
    response = ledger.client.query(
        TableName=ledger.table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues=to_attributes({":pk": pk}),
        ConsistentRead=True,
    )
    return [from_attributes(item) for item in response["Items"]]


def items(ledger: Ledger, user_id: str, prefix: str) -> list[dict[str, Any]]:
    return [i for i in partition(ledger, f"USER#{user_id}") if i["sk"].startswith(prefix)]


def put(ledger: Ledger, item: dict[str, Any]) -> None:
    ledger.client.put_item(TableName=ledger.table, Item=to_attributes(item))


def delete(ledger: Ledger, item: dict[str, Any]) -> None:
    key = {"pk": item["pk"], "sk": item["sk"]}
    ledger.client.delete_item(TableName=ledger.table, Key=to_attributes(key))


def run_audit(ledger: Ledger, dynamodb_endpoint: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "generated")]),
        "DYNAMODB_ENDPOINT": dynamodb_endpoint,
        "TABLE_PREFIX": ledger.prefix,
    }
    return subprocess.run(
        [sys.executable, "-m", "ops", "audit"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def funded_trader(new_trader: Callable[[], Trader], ledger: Ledger) -> tuple[Trader, str]:
    """A user who deposited, bought BTC twice and sold some, through the real service."""
    trader = new_trader().via(ledger.endpoint.stub)
    trader.deposit("1000", key=unique("dep"))
    trader.buy("BTC", "0.002")
    trader.buy("BTC", "0.004")
    # A limit buy below the market rests and holds its cash.
    resting = trader.order("limit_buy", "BTC", "0.002", price="40000")
    assert resting.status == "pending"
    trader.sell("BTC", "0.001", key=unique("sell"))
    return trader, trader.user_id


def test_books_kept_by_the_service_balance_and_each_planted_fault_is_reported(
    new_trader: Callable[[], Trader],
    market: FakeInventory,
    ledger: Ledger,
    dynamodb_endpoint: str,
) -> None:
    traders = {kind: funded_trader(new_trader, ledger) for kind in DiscrepancyKind}
    store = DynamoTradingStore(Table(ledger.client, ledger.table))
    for _, user_id in traders.values():
        assert audit_books(store.books(user_id)) == []
    clean = run_audit(ledger, dynamodb_endpoint)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "discrepancies        0" in clean.stdout
    assert "The books balance." in clean.stdout

    planted: dict[DiscrepancyKind, str] = {}

    def user(kind: DiscrepancyKind) -> str:
        return traders[kind][1]

    # Cash that no ledger entry explains.
    account = partition(ledger, f"ACCOUNT#{user(DiscrepancyKind.CASH_NOT_LEDGER)}")[0]
    put(ledger, {**account, "cash": "1000000.00"})
    planted[DiscrepancyKind.CASH_NOT_LEDGER] = f"ACCOUNT#{user(DiscrepancyKind.CASH_NOT_LEDGER)}"

    # Units that no trade explains.
    account = partition(ledger, f"ACCOUNT#{user(DiscrepancyKind.HOLDING_NOT_TRADES)}")[0]
    account["holdings"]["BTC"]["quantity"] = "7.00000000"
    put(ledger, account)
    planted[DiscrepancyKind.HOLDING_NOT_TRADES] = "BTC"

    # The last operation (the keyed sell) lost its cash entry: a crash between writes.
    [sell_cash] = [
        i
        for i in items(ledger, user(DiscrepancyKind.DERIVED_ITEM_MISSING), "CASH#")
        if i["transaction_type"] == "SELL"
    ]
    delete(ledger, sell_cash)
    planted[DiscrepancyKind.DERIVED_ITEM_MISSING] = sell_cash["transaction_id"]

    # A remembered operation's entry that is not what the operation derives.
    [deposit_cash] = [
        i
        for i in items(ledger, user(DiscrepancyKind.DERIVED_ITEM_WRONG), "CASH#")
        if i["transaction_type"] == "DEPOSIT"
    ]
    put(ledger, {**deposit_cash, "status": "failed"})
    planted[DiscrepancyKind.DERIVED_ITEM_WRONG] = deposit_cash["transaction_id"]

    # An old trade lost one copy of its order.
    first_order = next(
        i
        for i in items(ledger, user(DiscrepancyKind.TRADE_INCOMPLETE), "ORDER#")
        if i["status"] == "completed"
    )
    delete(ledger, first_order)
    planted[DiscrepancyKind.TRADE_INCOMPLETE] = first_order["order_id"]

    # An old trade whose order says another price than its entries.
    first_order = next(
        i
        for i in items(ledger, user(DiscrepancyKind.TRADE_DISAGREES), "ORDERID#")
        if i["status"] == "completed"
    )
    put(ledger, {**first_order, "price": "1.00"})
    planted[DiscrepancyKind.TRADE_DISAGREES] = first_order["order_id"]

    # The account holds cash for a resting order whose records say it was cancelled.
    held_for = [
        i
        for i in items(ledger, user(DiscrepancyKind.HELD_NOT_RESTING), "ORDER")
        if i["status"] == "pending"
    ]
    assert len(held_for) == 2  # the order by id and by time
    for copy in held_for:
        put(ledger, {**copy, "status": "cancelled"})
    planted[DiscrepancyKind.HELD_NOT_RESTING] = held_for[0]["order_id"]

    # Records whose account item is gone.
    orphan = user(DiscrepancyKind.RECORDS_WITHOUT_ACCOUNT)
    delete(ledger, partition(ledger, f"ACCOUNT#{orphan}")[0])
    planted[DiscrepancyKind.RECORDS_WITHOUT_ACCOUNT] = f"USER#{orphan}"

    # An item that is not a ledger entry any more.
    [garbled] = items(ledger, user(DiscrepancyKind.UNREADABLE_ITEM), "CASH#")[:1]
    put(ledger, {**garbled, "amount": "lots"})
    planted[DiscrepancyKind.UNREADABLE_ITEM] = garbled["sk"]

    found = run_audit(ledger, dynamodb_endpoint)
    assert found.returncode == 1, found.stdout + found.stderr
    assert "The books do NOT balance." in found.stdout
    lines = found.stdout.splitlines()
    for kind, planted_id in planted.items():
        reported = [
            line
            for line in lines
            if line.startswith(f"{kind.value} user={user(kind)} ") and planted_id in line
        ]
        assert len(reported) == 1, (kind, planted_id, found.stdout)
    # The accounts nobody touched stay out of the report.
    untouched = new_trader().via(ledger.endpoint.stub)
    untouched.deposit("5")
    assert f"user={untouched.user_id}" not in run_audit(ledger, dynamodb_endpoint).stdout
