"""The conservation rules over one account's books (svc_order/audit.py), on books built
as svc_order writes them (every change's derived items stored), each rule broken in
turn. tests/integration/test_audit.py plants one fault of each kind in a real store;
these check the other members of each kind: every sort of derived item lost, a key
record of an earlier use, the ways a trade can disagree, every way a hold can."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from ops.audit import AuditReport, print_report
from svc_order import domain
from svc_order.audit import Books, Discrepancy, DiscrepancyKind, audit_books
from svc_order.domain import (
    Change,
    Holding,
    Limits,
    MarketQuote,
    OperationKind,
    OrderRequest,
    OrderType,
    Request,
)

D = Decimal
NOON = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)
LIMITS = Limits(daily_deposit_limit=D("1000000"))
QUOTE = MarketQuote(D("50000.00"))


class Ledger:
    """One account and its books, every change stored whole."""

    def __init__(self, user_id: str = "user-1") -> None:
        self.account = domain.new_account(user_id, NOON)
        self.books = Books(user_id)
        self.minutes = 0

    def request(self, key: str | None = None) -> Request:
        self.minutes += 1
        now = NOON + timedelta(minutes=self.minutes)
        return Request(now, f"op-{self.minutes}", key, "fingerprint" if key else "")

    def store(self, change: Change) -> domain.AppliedOperation:
        self.account = change.account
        items = domain.derived_items(change.operation)
        if items.cash_entry is not None:
            self.books.cash_entries.append(items.cash_entry)
        if items.asset_entry is not None:
            self.books.asset_entries.append(items.asset_entry)
        if items.order is not None:
            self.books.orders_by_id[items.order.order_id] = items.order
            self.books.orders_by_time[items.order.order_id] = items.order
        if items.replay is not None and items.replay.idempotency_key is not None:
            self.books.replays[items.replay.idempotency_key] = items.replay
        return change.operation

    def deposit(self, amount: str, key: str | None = None) -> domain.AppliedOperation:
        return self.store(domain.deposit(self.account, D(amount), self.request(key), LIMITS))

    def order(
        self, order_type: OrderType, quantity: str, limit: str | None = None, key: str | None = None
    ) -> domain.AppliedOperation:
        return self.store(
            domain.place_order(
                self.account,
                OrderRequest(order_type, "BTC", D(quantity), None if limit is None else D(limit)),
                QUOTE,
                self.request(key),
                LIMITS,
            )
        )

    def audit(self) -> list[Discrepancy]:
        return audit_books(replace(self.books, account=self.account))


def kinds(found: list[Discrepancy]) -> list[DiscrepancyKind]:
    return [d.kind for d in found]


def test_books_of_nobody_and_a_new_account_balance() -> None:
    assert audit_books(Books("nobody")) == []
    assert Ledger().audit() == []


def test_books_kept_whole_balance_with_trades_limit_orders_and_keys() -> None:
    ledger = Ledger()
    ledger.deposit("1000", key="dep-1")
    ledger.order(OrderType.MARKET_BUY, "0.004", key="buy-1")
    ledger.order(OrderType.LIMIT_BUY, "0.002", limit="40000")
    ledger.order(OrderType.LIMIT_SELL, "0.001", limit="60000")
    ledger.deposit("5")
    assert ledger.audit() == []


def test_every_item_a_remembered_trade_lost_is_named() -> None:
    ledger = Ledger()
    ledger.deposit("1000")
    buy = ledger.order(OrderType.MARKET_BUY, "0.004", key="buy-1")
    # A later change: the buy is remembered by its key's record only.
    ledger.deposit("5")
    items = domain.derived_items(buy)
    assert items.order is not None
    assert items.asset_entry is not None
    order_id = items.order.order_id
    del ledger.books.orders_by_id[order_id]
    del ledger.books.orders_by_time[order_id]
    ledger.books.asset_entries.remove(items.asset_entry)
    [missing] = [d for d in ledger.audit() if d.kind is DiscrepancyKind.DERIVED_ITEM_MISSING]
    assert missing.ids == (
        buy.operation_id,
        f"ORDERID#{order_id}",
        f"ORDER#{order_id}",
        items.asset_entry.transaction_id,
    )
    assert "the last operation" not in missing.detail


def test_a_key_record_of_an_earlier_use_of_the_key_does_not_count() -> None:
    ledger = Ledger()
    deposit = ledger.deposit("1000", key="dep-1")
    ledger.books.replays["dep-1"] = replace(deposit, created_at=NOON - timedelta(days=1))
    [missing] = ledger.audit()
    assert missing.kind is DiscrepancyKind.DERIVED_ITEM_MISSING
    assert missing.ids == (deposit.operation_id, "KEY#dep-1")
    assert "the last operation: the next access or a sweep writes them" in missing.detail


def test_the_last_operations_missing_items_are_one_discrepancy_not_three() -> None:
    ledger = Ledger()
    ledger.deposit("1000")
    buy = ledger.order(OrderType.MARKET_BUY, "0.004")
    items = domain.derived_items(buy)
    assert items.order is not None
    assert items.asset_entry is not None
    ledger.books.asset_entries.remove(items.asset_entry)
    del ledger.books.orders_by_time[items.order.order_id]
    # The sums and the trade are taken as if the items were written.
    assert kinds(ledger.audit()) == [DiscrepancyKind.DERIVED_ITEM_MISSING]


def test_a_stored_order_newer_than_the_remembered_operation_is_not_wrong() -> None:
    ledger = Ledger()
    ledger.deposit("1000")
    placed = ledger.order(OrderType.LIMIT_BUY, "0.002", limit="40000", key="limit-1")
    assert placed.order is not None
    order_id = placed.order.order_id
    cancelled = ledger.store(domain.cancel_order(ledger.account, order_id, ledger.request()))
    assert cancelled.kind is OperationKind.CANCEL
    # The key's record still says "placed"; the stored order is the later cancelled state.
    assert ledger.audit() == []
    older = replace(ledger.books.orders_by_id[order_id], revision=placed.order.revision)
    ledger.books.orders_by_id[order_id] = older
    found = ledger.audit()
    assert DiscrepancyKind.DERIVED_ITEM_WRONG in kinds(found)


def test_each_way_an_old_trade_can_disagree_is_said() -> None:
    ledger = Ledger()
    ledger.deposit("1000")
    buy = ledger.order(OrderType.MARKET_BUY, "0.004")
    ledger.deposit("5")  # the buy is no longer remembered: only the trade rules see it
    items = domain.derived_items(buy)
    assert items.order is not None
    assert items.asset_entry is not None
    order_id = items.order.order_id
    ledger.books.orders_by_time[order_id] = replace(items.order, created_at=NOON)
    index = ledger.books.asset_entries.index(items.asset_entry)
    ledger.books.asset_entries[index] = replace(
        items.asset_entry, price=D("1.00"), transaction_type=OperationKind.SELL
    )
    assert items.cash_entry is not None
    index = ledger.books.cash_entries.index(items.cash_entry)
    ledger.books.cash_entries[index] = replace(items.cash_entry, amount=D("-1.00"))
    found = [d for d in ledger.audit() if d.kind is DiscrepancyKind.TRADE_DISAGREES]
    [disagrees] = found
    assert disagrees.ids[0] == order_id
    assert "its two copies differ" in disagrees.detail
    assert f"cash entry -1.00 for a total of {items.order.total_amount}" in disagrees.detail
    assert "asset entry differs from the order" in disagrees.detail
    assert "cash and asset entries name different sides" in disagrees.detail


def test_a_hold_whose_record_disagrees_or_is_missing_is_reported() -> None:
    ledger = Ledger()
    ledger.deposit("1000")
    placed = ledger.order(OrderType.LIMIT_BUY, "0.002", limit="40000")
    ledger.deposit("5")
    assert placed.order is not None
    order_id = placed.order.order_id
    record = ledger.books.orders_by_id[order_id]
    ledger.books.orders_by_id[order_id] = replace(record, held_amount=D("1.00"))
    [disagrees] = [d for d in ledger.audit() if d.kind is DiscrepancyKind.HELD_NOT_RESTING]
    assert disagrees.detail == f"order {order_id}: its record and the hold disagree"
    del ledger.books.orders_by_id[order_id]
    held = [d for d in ledger.audit() if d.kind is DiscrepancyKind.HELD_NOT_RESTING]
    assert [d.detail for d in held] == [
        f"the account holds 80.00 for order {order_id}, but no record"
    ]


def test_a_pending_record_nothing_holds_for_is_reported() -> None:
    ledger = Ledger()
    ledger.deposit("1000")
    placed = ledger.order(OrderType.LIMIT_BUY, "0.002", limit="40000")
    ledger.deposit("5")
    assert placed.order is not None
    ledger.account = replace(ledger.account, open_orders={})
    found = [d for d in ledger.audit() if d.kind is DiscrepancyKind.HELD_NOT_RESTING]
    assert [d.ids for d in found] == [(placed.order.order_id,)]
    assert "shows as resting, but nothing is held for it" in found[0].detail


def test_holding_more_than_there_is_is_reported_for_cash_and_for_units() -> None:
    ledger = Ledger()
    ledger.deposit("1000")
    ledger.order(OrderType.MARKET_BUY, "0.004")
    ledger.order(OrderType.LIMIT_BUY, "0.002", limit="40000")
    ledger.order(OrderType.LIMIT_SELL, "0.003", limit="60000")
    ledger.deposit("5")
    holding = ledger.account.holdings["BTC"]
    ledger.account = replace(
        ledger.account,
        cash=D("10.00"),
        holdings={"BTC": Holding(D("0.001"), holding.created_at, holding.updated_at)},
    )
    held = [d for d in ledger.audit() if d.kind is DiscrepancyKind.HELD_NOT_RESTING]
    assert [d.ids for d in held] == [("ACCOUNT#user-1",), ("ACCOUNT#user-1", "BTC")]
    assert held[0].detail == "80.00 cash held, more than the 10.00 there is"
    assert held[1].detail == "0.00300000 BTC held, more than the 0.001 there are"


def test_the_audit_report_names_every_id_and_each_account_it_could_not_read() -> None:
    report = AuditReport(
        accounts=3,
        records=42,
        discrepancies=[
            Discrepancy(DiscrepancyKind.CASH_NOT_LEDGER, "u1", ("ACCOUNT#u1",), "cash 5"),
            Discrepancy(DiscrepancyKind.TRADE_INCOMPLETE, "u2", ("o1",), "lacks its cash"),
            Discrepancy(DiscrepancyKind.CASH_NOT_LEDGER, "u2", ("ACCOUNT#u2",), "cash 6"),
        ],
        unread=["u3"],
    )
    out = io.StringIO()
    print_report(report, "trading", out)
    assert out.getvalue().splitlines() == [
        "Audit of trading",
        "  accounts audited     3",
        "  records checked      42",
        "  discrepancies        3",
        "    CASH_NOT_LEDGER            2",
        "    TRADE_INCOMPLETE           1",
        "  not read (busy)      1",
        "CASH_NOT_LEDGER user=u1 ids=ACCOUNT#u1: cash 5",
        "TRADE_INCOMPLETE user=u2 ids=o1: lacks its cash",
        "CASH_NOT_LEDGER user=u2 ids=ACCOUNT#u2: cash 6",
        "NOT_READ user=u3: the account kept changing; audit it again",
        "The books do NOT balance.",
    ]
    # An account not read is not a clean audit either.
    assert not AuditReport(unread=["u3"]).clean
    assert AuditReport(accounts=1).clean
