"""The conservation rules of the books, checked over one account's stored records: pure.

What must hold for every account (DESIGN.md, "one conditional write per change"):
- cash = Σ of its cash ledger entries (signed amounts);
- each holding = Σ of its trades of that asset (buys add, sells take away);
- every applied operation on record (the account's last one and those in replay
  records) has its derived items, and they are the ones derived from it (same ids,
  amounts, quantities, prices);
- every trade is whole: its order (under both keys, identical), its cash entry and its
  asset entry exist and agree with each other.

The last operation's derived items may be missing for a moment (they are written after
the account) or after a crash (the next access completes them); that is reported as
`DERIVED_ITEM_MISSING` and the sums are taken as if they were written, so that one
cause gives one discrepancy.

Resting limit orders live in the account item and their holds are derived from them
(domain.account); cash (the total: available + held) is what the ledger adds up to.
What can disagree is checked (`HELD_NOT_RESTING`): the holds are Σ of the resting
orders the records show, that is every order the account holds for has its record,
pending, with the same quantity, limit and hold, every pending record is held for by
the account, and nothing holds more than there is (held cash ≤ cash, held units ≤ the
holding). A limit order's record
changes with its status: a stored state newer (`revision`) than what a remembered
operation derives is not wrong, and an order that never filled is no trade.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from svc_order.domain import (
    Account,
    AppliedOperation,
    AssetEntry,
    CashEntry,
    DerivedItems,
    OperationKind,
    OrderRecord,
    OrderStatus,
    derived_items,
    ledger_balance,
)


class DiscrepancyKind(enum.StrEnum):
    CASH_NOT_LEDGER = "CASH_NOT_LEDGER"
    HOLDING_NOT_TRADES = "HOLDING_NOT_TRADES"
    DERIVED_ITEM_MISSING = "DERIVED_ITEM_MISSING"
    DERIVED_ITEM_WRONG = "DERIVED_ITEM_WRONG"
    TRADE_INCOMPLETE = "TRADE_INCOMPLETE"
    TRADE_DISAGREES = "TRADE_DISAGREES"
    RECORDS_WITHOUT_ACCOUNT = "RECORDS_WITHOUT_ACCOUNT"
    UNREADABLE_ITEM = "UNREADABLE_ITEM"
    HELD_NOT_RESTING = "HELD_NOT_RESTING"


@dataclass(frozen=True)
class Discrepancy:
    """One broken rule: what, whose, the ids involved and a sentence for the operator."""

    kind: DiscrepancyKind
    user_id: str
    ids: tuple[str, ...]
    detail: str


@dataclass
class Books:
    """Everything stored for one user in the trading table.

    `orders_by_id` holds the ORDERID# copies, `orders_by_time` the ORDER# copies (both
    keyed by order id); `replays` the replay records (by idempotency key); `unreadable`
    the keys of items that could not be parsed.
    """

    user_id: str
    account: Account | None = None
    cash_entries: list[CashEntry] = field(default_factory=list)
    asset_entries: list[AssetEntry] = field(default_factory=list)
    orders_by_id: dict[str, OrderRecord] = field(default_factory=dict)
    orders_by_time: dict[str, OrderRecord] = field(default_factory=dict)
    unreadable: list[str] = field(default_factory=list)
    replays: dict[str, AppliedOperation] = field(default_factory=dict)

    @property
    def is_empty(self) -> bool:
        return self.account is None and not (
            self.cash_entries or self.asset_entries or self.orders_by_id or self.orders_by_time
        )


def _missing_items(books: Books, expected: DerivedItems) -> list[str]:
    """Ids of the items of `expected` that are not stored (or not stored as derived)."""
    cash_ids = {entry.transaction_id: entry for entry in books.cash_entries}
    asset_ids = {entry.transaction_id: entry for entry in books.asset_entries}
    missing = []
    if expected.cash_entry is not None and expected.cash_entry.transaction_id not in cash_ids:
        missing.append(expected.cash_entry.transaction_id)
    if expected.order is not None:
        if expected.order.order_id not in books.orders_by_id:
            missing.append(f"ORDERID#{expected.order.order_id}")
        if expected.order.order_id not in books.orders_by_time:
            missing.append(f"ORDER#{expected.order.order_id}")
    if expected.asset_entry is not None and expected.asset_entry.transaction_id not in asset_ids:
        missing.append(expected.asset_entry.transaction_id)
    replay = expected.replay
    if replay is not None and replay.idempotency_key is not None:
        recorded = books.replays.get(replay.idempotency_key)
        # A record of an earlier use of the key does not count; a later one replaces it.
        if recorded is None or recorded.created_at < replay.created_at:
            missing.append(f"KEY#{replay.idempotency_key}")
    return missing


def _wrong_items(books: Books, expected: DerivedItems) -> list[str]:
    """Ids of stored items of `expected` whose content differs from the derivation."""
    stored: list[tuple[str, object, object]] = []
    if expected.cash_entry is not None:
        wanted_cash = expected.cash_entry
        stored.append(
            (
                wanted_cash.transaction_id,
                next(
                    (
                        e
                        for e in books.cash_entries
                        if e.transaction_id == wanted_cash.transaction_id
                    ),
                    None,
                ),
                wanted_cash,
            )
        )
    if expected.order is not None:
        order_id = expected.order.order_id
        for name, copy in (
            (f"ORDERID#{order_id}", books.orders_by_id.get(order_id)),
            (f"ORDER#{order_id}", books.orders_by_time.get(order_id)),
        ):
            # A later state of the same limit order supersedes this one.
            if copy is None or copy.revision <= expected.order.revision:
                stored.append((name, copy, expected.order))
    if expected.asset_entry is not None:
        wanted = expected.asset_entry
        found = next(
            (e for e in books.asset_entries if e.transaction_id == wanted.transaction_id), None
        )
        stored.append((wanted.transaction_id, found, wanted))
    return [ident for ident, found, want in stored if found is not None and found != want]


def _remembered_operations(books: Books, account: Account) -> list[AppliedOperation]:
    """The operations on record, each once: the replay records, then the last one."""
    seen = {op.operation_id: op for op in books.replays.values()}
    if account.last_operation is not None:
        seen[account.last_operation.operation_id] = account.last_operation
    return list(seen.values())


def _completed(books: Books, pending: DerivedItems) -> Books:
    """The books as they are once the last operation's missing items are written."""
    cash = list(books.cash_entries)
    entry = pending.cash_entry
    if entry is not None and all(e.transaction_id != entry.transaction_id for e in cash):
        cash.append(entry)
    assets = list(books.asset_entries)
    if pending.asset_entry is not None and all(
        e.transaction_id != pending.asset_entry.transaction_id for e in assets
    ):
        assets.append(pending.asset_entry)
    by_id, by_time = dict(books.orders_by_id), dict(books.orders_by_time)
    if pending.order is not None:
        for copies in (by_id, by_time):
            stored = copies.get(pending.order.order_id)
            if stored is None or stored.revision < pending.order.revision:
                copies[pending.order.order_id] = pending.order
    replays = dict(books.replays)
    if pending.replay is not None and pending.replay.idempotency_key is not None:
        replays.setdefault(pending.replay.idempotency_key, pending.replay)
    return Books(
        books.user_id, books.account, cash, assets, by_id, by_time, books.unreadable, replays
    )


def _check_operations(books: Books, account: Account) -> tuple[Books, list[Discrepancy]]:
    found: list[Discrepancy] = []
    for operation in _remembered_operations(books, account):
        expected = derived_items(operation)
        missing = _missing_items(books, expected)
        if missing:
            found.append(
                Discrepancy(
                    DiscrepancyKind.DERIVED_ITEM_MISSING,
                    books.user_id,
                    (operation.operation_id, *missing),
                    f"{operation.kind.value} operation {operation.operation_id} lacks "
                    f"{len(missing)} derived item(s)"
                    + (
                        " (the last operation: the next access or a sweep writes them)"
                        if operation is account.last_operation
                        else ""
                    ),
                )
            )
        wrong = _wrong_items(books, expected)
        if wrong:
            found.append(
                Discrepancy(
                    DiscrepancyKind.DERIVED_ITEM_WRONG,
                    books.user_id,
                    (operation.operation_id, *wrong),
                    f"stored items of {operation.kind.value} operation "
                    f"{operation.operation_id} differ from what it derives",
                )
            )
    if account.last_operation is not None:
        books = _completed(books, derived_items(account.last_operation))
    return books, found


def _check_trades(books: Books) -> list[Discrepancy]:
    """Every order, trade entry and trade cash entry belongs to a whole, agreeing trade."""
    found: list[Discrepancy] = []
    cash_by_order = {e.reference_id: e for e in books.cash_entries if e.reference_id}
    asset_by_order = {e.order_id: e for e in books.asset_entries}
    order_ids = set(books.orders_by_id) | set(books.orders_by_time)
    order_ids |= set(cash_by_order) | set(asset_by_order)
    for order_id in sorted(order_ids):
        by_id = books.orders_by_id.get(order_id)
        by_time = books.orders_by_time.get(order_id)
        cash = cash_by_order.get(order_id)
        asset = asset_by_order.get(order_id)
        unfilled = [o for o in (by_id, by_time) if o is not None and o.price is None]
        if unfilled and cash is None and asset is None:
            continue  # a limit order that rests, or ended without a fill: no trade
        if by_id is None or by_time is None or cash is None or asset is None:
            lacking = [
                name
                for name, item in (
                    ("order by id", by_id),
                    ("order by time", by_time),
                    ("cash entry", cash),
                    ("asset entry", asset),
                )
                if item is None
            ]
            found.append(
                Discrepancy(
                    DiscrepancyKind.TRADE_INCOMPLETE,
                    books.user_id,
                    (order_id,),
                    f"order {order_id} lacks its {', '.join(lacking)}",
                )
            )
            continue
        problems = _trade_disagreements(by_id, by_time, cash, asset)
        if problems:
            found.append(
                Discrepancy(
                    DiscrepancyKind.TRADE_DISAGREES,
                    books.user_id,
                    (order_id, cash.transaction_id, asset.transaction_id),
                    f"order {order_id}: {'; '.join(problems)}",
                )
            )
    return found


def _trade_disagreements(
    by_id: OrderRecord, by_time: OrderRecord, cash: CashEntry, asset: AssetEntry
) -> list[str]:
    problems = []
    if by_id != by_time:
        problems.append("its two copies differ")
    signed = -by_id.total_amount if cash.transaction_type.takes_cash else by_id.total_amount
    if cash.amount != signed:
        problems.append(f"cash entry {cash.amount} for a total of {by_id.total_amount}")
    if (asset.quantity, asset.price, asset.total_amount, asset.asset_id) != (
        by_id.quantity,
        by_id.price,
        by_id.total_amount,
        by_id.asset_id,
    ):
        problems.append("asset entry differs from the order")
    if cash.transaction_type != asset.transaction_type:
        problems.append("cash and asset entries name different sides")
    return problems


def trade_balance(entries: Iterable[AssetEntry]) -> dict[str, Decimal]:
    """Units per asset that the trades add up to: buys add, sells take away."""
    units: dict[str, Decimal] = {}
    for entry in entries:
        sign = -1 if entry.transaction_type is OperationKind.SELL else 1
        units[entry.asset_id] = units.get(entry.asset_id, Decimal(0)) + sign * entry.quantity
    return units


def _check_sums(books: Books, cash: Decimal, holdings: Mapping[str, Decimal]) -> list[Discrepancy]:
    found: list[Discrepancy] = []
    ledger = ledger_balance(books.cash_entries)
    if ledger != cash:
        found.append(
            Discrepancy(
                DiscrepancyKind.CASH_NOT_LEDGER,
                books.user_id,
                (f"ACCOUNT#{books.user_id}",),
                f"cash {cash} but the {len(books.cash_entries)} ledger entries add up to "
                f"{ledger} (difference {cash - ledger})",
            )
        )
    traded = trade_balance(books.asset_entries)
    for asset_id in sorted(set(holdings) | set(traded)):
        held = holdings.get(asset_id, Decimal(0))
        units = traded.get(asset_id, Decimal(0))
        if held != units:
            found.append(
                Discrepancy(
                    DiscrepancyKind.HOLDING_NOT_TRADES,
                    books.user_id,
                    (f"ACCOUNT#{books.user_id}", asset_id),
                    f"{asset_id} holding {held} but its trades add up to {units} "
                    f"(difference {held - units})",
                )
            )
    return found


def _check_holds(books: Books, account: Account) -> list[Discrepancy]:
    """Held amounts = Σ of the resting orders, as the records show them."""
    found: list[Discrepancy] = []

    def report(ids: tuple[str, ...], detail: str) -> None:
        found.append(Discrepancy(DiscrepancyKind.HELD_NOT_RESTING, books.user_id, ids, detail))

    for order_id, resting in sorted(account.open_orders.items()):
        record = books.orders_by_id.get(order_id)
        held = resting.held_cash if resting.order_type.is_buy else resting.held_units
        if record is None or record.status is not OrderStatus.PENDING:
            shown = "no record" if record is None else f"its record says {record.status.value}"
            report((order_id,), f"the account holds {held} for order {order_id}, but {shown}")
        elif (record.quantity, record.limit_price, record.held_amount) != (
            resting.quantity,
            resting.limit_price,
            held,
        ):
            report((order_id,), f"order {order_id}: its record and the hold disagree")
    for order_id, record in sorted(books.orders_by_id.items()):
        if record.status is OrderStatus.PENDING and order_id not in account.open_orders:
            report((order_id,), f"order {order_id} shows as resting, but nothing is held for it")
    if account.held_cash > account.cash:
        report(
            (f"ACCOUNT#{books.user_id}",),
            f"{account.held_cash} cash held, more than the {account.cash} there is",
        )
    for asset_id in sorted({o.asset_id for o in account.open_orders.values()}):
        held_units = account.held_units(asset_id)
        if held_units > account.quantity_of(asset_id):
            report(
                (f"ACCOUNT#{books.user_id}", asset_id),
                f"{held_units} {asset_id} held, more than the "
                f"{account.quantity_of(asset_id)} there are",
            )
    return found


def audit_books(books: Books) -> list[Discrepancy]:
    """Every rule of the module docstring that `books` breaks; [] when they balance."""
    found = [
        Discrepancy(DiscrepancyKind.UNREADABLE_ITEM, books.user_id, (key,), f"cannot read {key}")
        for key in books.unreadable
    ]
    account = books.account
    if account is None:
        if not books.is_empty:
            found.append(
                Discrepancy(
                    DiscrepancyKind.RECORDS_WITHOUT_ACCOUNT,
                    books.user_id,
                    (f"USER#{books.user_id}",),
                    "ledger, trade or order items exist but the account item does not",
                )
            )
        return found + _check_trades(books) + _check_sums(books, Decimal("0.00"), {})
    books, operations = _check_operations(books, account)
    holdings = {asset_id: h.quantity for asset_id, h in account.holdings.items()}
    return (
        found
        + operations
        + _check_trades(books)
        + _check_sums(books, account.cash, holdings)
        + _check_holds(books, account)
    )
