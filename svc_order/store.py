"""Storage of trading accounts, orders and ledgers: the port and its DynamoDB adapter.

Table layout (one table, `pk`/`sk`; <sk> is `domain.sort_key`, which sorts by time):
    ACCOUNT#<user>  ACCOUNT                   the account: cash, holdings, version, day
                                              counters, resting orders and the last
                                              operation (versioned; every change writes
                                              it on the condition of the version read)
    USER#<user>     ORDER#<sk>                an order, for lists newest first
    USER#<user>     ORDERID#<order id>        the same order, for GetOrder by id
    USER#<user>     CASH#<sk>                 a cash ledger entry
    USER#<user>     TRADE#<asset>#<sk>        a buy or sell of one asset
    RESTING#<asset>#<BUY|SELL>  <limit key>#<order id>
                                              a hint: a resting limit order, sorted by
                                              limit (see `price_key`), for the trigger
    EXPIRING        <expires_at>#<order id>   a hint: a resting day or gtd order, sorted
                                              by expiry, for the sweep
    USER#<user>     KEY#<idempotency key>     the replay record: the operation the key
                                              last applied (newest wins)

Every change is one conditional write of the account item; the other items derive from
the applied operation with deterministic keys and are written afterwards (one batch of
plain puts, and the replay record, whose write only ever replaces an older use of its
key), so writing them twice is harmless; an access that finds any of them missing
writes them all again. Since a change must read the version it replaces, and every
access first completes the last operation's items, no operation is superseded before
its replay record exists: a key is found either in the account's last operation or in
its record. A limit order's record changes with its status, so its two order items are
put on the condition that the stored `revision` (the account version that produced it)
is older: a late rewrite of an older state never wins.

The account item is the truth about resting orders (`open_orders`, whose holds it
derives); the two hint items only let the trigger and the sweep find them without a
scan. They stay a superset of the truth: they are written before the account write that
opens the order (a lost race leaves a hint to nothing) and deleted after the write that
ends it. Whoever follows a hint re-reads the account and acts only on what it says;
a hint to an order that is no longer open is deleted then.

Money, prices and quantities are stored as decimal strings (exact, never a float);
times as ISO 8601 UTC strings with microseconds.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any, Generic, Protocol, TypeVar

from common.dynamo import Item, Table, decode_time, encode_time
from common.errors import InvalidArgument
from svc_order.audit import Books
from svc_order.domain import (
    IDEMPOTENCY_WINDOW,
    Account,
    AppliedOperation,
    AssetEntry,
    CashEntry,
    DerivedItems,
    Holding,
    OpenOrder,
    OperationKind,
    OrderRecord,
    OrderStatus,
    OrderType,
    TimeInForce,
    Trade,
    sort_key,
)

ACCOUNT = "ACCOUNT"
RESTING_PREFIX = "RESTING#"
BOTH_SIDES = frozenset({"BUY", "SELL"})
EXPIRING = "EXPIRING"
ORDER_PREFIX = "ORDER#"
ORDER_ID_PREFIX = "ORDERID#"
CASH_PREFIX = "CASH#"
TRADE_PREFIX = "TRADE#"
KEY_PREFIX = "KEY#"
# Where accounts written by earlier releases kept their recent keyed operations.
LEGACY_RECENT = "recent"
# Reads of one user's items are repeated until the account's version holds still
# around them at most this many times (the audit and the export see one moment).
STABLE_READ_ATTEMPTS = 20
# A page token holds one sort key; anything longer was not made by us.
_MAX_PAGE_TOKEN_LENGTH = 512

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list, newest first; `next_page_token` is "" on the last page."""

    items: tuple[T, ...]
    next_page_token: str

    @property
    def has_more(self) -> bool:
        return bool(self.next_page_token)


@dataclass(frozen=True)
class PageRequest:
    """Which page: `limit` items after the one `page_token` names, skipping `offset`."""

    limit: int
    page_token: str = ""
    offset: int = 0


class UnstableRead(RuntimeError):
    """The account kept changing while its items were read."""


class TradingStore(Protocol):
    def get_account(self, user_id: str) -> Account | None: ...
    def save_account(self, account: Account, read_version: int) -> bool: ...
    def put_derived(self, user_id: str, items: DerivedItems) -> None: ...
    def has_derived(self, user_id: str, items: DerivedItems) -> bool: ...
    def replay_record(self, user_id: str, idempotency_key: str) -> AppliedOperation | None: ...
    def get_order(self, user_id: str, order_id: str) -> OrderRecord | None: ...
    def list_orders(
        self,
        user_id: str,
        page: PageRequest,
        *,
        asset_id: str | None = None,
        order_type: OrderType | None = None,
        status: OrderStatus | None = None,
    ) -> Page[OrderRecord]: ...
    def list_cash_entries(self, user_id: str, page: PageRequest) -> Page[CashEntry]: ...
    def count_cash_entries(self, user_id: str) -> int: ...
    def list_asset_entries(
        self, user_id: str, asset_id: str, page: PageRequest
    ) -> Page[AssetEntry]: ...
    def books(self, user_id: str) -> Books: ...
    def put_hints(self, user_id: str, order: OpenOrder) -> None: ...
    def delete_hints(self, order: OpenOrder) -> None: ...
    def crossed_hints(
        self, asset_id: str, quote_price: Decimal, sides: frozenset[str] = BOTH_SIDES
    ) -> list[tuple[str, OpenOrder]]: ...
    def due_hints(self, now: datetime) -> list[tuple[str, OpenOrder]]: ...
    def has_hints(self, asset_id: str) -> bool: ...


# --- Items ----------------------------------------------------------------------------


def _text(value: Decimal) -> str:
    return f"{value:f}"


def _account_key(user_id: str) -> Item:
    return {"pk": f"ACCOUNT#{user_id}", "sk": ACCOUNT}


def _user_pk(user_id: str) -> str:
    return f"USER#{user_id}"


def operation_to_map(operation: AppliedOperation) -> Item:
    entry: Item = {
        "operation_id": operation.operation_id,
        "kind": operation.kind.value,
        "amount": _text(operation.amount),
        "cash_after": _text(operation.cash_after),
        "created_at": encode_time(operation.created_at),
    }
    if operation.idempotency_key is not None:
        entry["idempotency_key"] = operation.idempotency_key
    if operation.fingerprint:
        entry["fingerprint"] = operation.fingerprint
    if operation.trade is not None:
        entry["trade"] = {
            "order_type": operation.trade.order_type.value,
            "asset_id": operation.trade.asset_id,
            "quantity": _text(operation.trade.quantity),
            "price": _text(operation.trade.price),
        }
    if operation.order is not None:
        entry["order"] = {k: v for k, v in order_fields(operation.order).items() if v is not None}
    return entry


def _operation_from_map(entry: Mapping[str, Any]) -> AppliedOperation:
    trade = entry.get("trade")
    return AppliedOperation(
        operation_id=entry["operation_id"],
        kind=OperationKind(entry["kind"]),
        amount=Decimal(entry["amount"]),
        cash_after=Decimal(entry["cash_after"]),
        created_at=decode_time(entry["created_at"]),
        idempotency_key=entry.get("idempotency_key"),
        fingerprint=entry.get("fingerprint", ""),
        trade=None
        if trade is None
        else Trade(
            order_type=OrderType(trade["order_type"]),
            asset_id=trade["asset_id"],
            quantity=Decimal(trade["quantity"]),
            price=Decimal(trade["price"]),
        ),
        order=order_from_item(entry["order"]) if "order" in entry else None,
    )


def account_to_item(account: Account) -> Item:
    item: Item = {
        **_account_key(account.user_id),
        "user_id": account.user_id,
        "cash": _text(account.cash),
        "holdings": {
            asset_id: {
                "quantity": _text(holding.quantity),
                "created_at": encode_time(holding.created_at),
                "updated_at": encode_time(holding.updated_at),
            }
            for asset_id, holding in account.holdings.items()
        },
        "version": account.version,
        "day": account.day.isoformat(),
        "deposited_today": _text(account.deposited_today),
        "withdrawn_today": _text(account.withdrawn_today),
        "created_at": encode_time(account.created_at),
        "updated_at": encode_time(account.updated_at),
    }
    if account.open_orders:
        item["open_orders"] = {
            order_id: _open_order_to_map(order) for order_id, order in account.open_orders.items()
        }
    if account.last_operation is not None:
        item["last_operation"] = operation_to_map(account.last_operation)
    if account.closed_at is not None:
        item["closed_at"] = encode_time(account.closed_at)
    return item


def account_from_item(item: Mapping[str, Any]) -> Account:
    last = item.get("last_operation")
    return Account(
        user_id=item["user_id"],
        cash=Decimal(item["cash"]),
        holdings={
            asset_id: Holding(
                quantity=Decimal(holding["quantity"]),
                created_at=decode_time(holding["created_at"]),
                updated_at=decode_time(holding["updated_at"]),
            )
            for asset_id, holding in item["holdings"].items()
        },
        version=int(item["version"]),
        day=date.fromisoformat(item["day"]),
        deposited_today=Decimal(item["deposited_today"]),
        withdrawn_today=Decimal(item["withdrawn_today"]),
        created_at=decode_time(item["created_at"]),
        updated_at=decode_time(item["updated_at"]),
        last_operation=None if last is None else _operation_from_map(last),
        closed_at=decode_time(item["closed_at"]) if "closed_at" in item else None,
        open_orders={
            order_id: _open_order_from_map(entry)
            for order_id, entry in item.get("open_orders", {}).items()
        },
    )


def _open_order_to_map(order: OpenOrder) -> Item:
    entry: Item = {
        "order_id": order.order_id,
        "order_type": order.order_type.value,
        "asset_id": order.asset_id,
        "quantity": _text(order.quantity),
        "limit_price": _text(order.limit_price),
        "time_in_force": order.time_in_force.value,
        "created_at": encode_time(order.created_at),
    }
    if order.expires_at is not None:
        entry["expires_at"] = encode_time(order.expires_at)
    return entry


def _open_order_from_map(entry: Mapping[str, Any]) -> OpenOrder:
    return OpenOrder(
        order_id=entry["order_id"],
        order_type=OrderType(entry["order_type"]),
        asset_id=entry["asset_id"],
        quantity=Decimal(entry["quantity"]),
        limit_price=Decimal(entry["limit_price"]),
        time_in_force=TimeInForce(entry["time_in_force"]),
        expires_at=_optionaldecode_time(entry.get("expires_at")),
        created_at=decode_time(entry["created_at"]),
    )


def _optionaldecode_time(text: str | None) -> datetime | None:
    return None if text is None else decode_time(text)


def order_fields(order: OrderRecord) -> Item:
    """An order's attributes; None (not set) is left out by the serializer."""
    return {
        "order_id": order.order_id,
        "order_type": order.order_type.value,
        "asset_id": order.asset_id,
        "quantity": _text(order.quantity),
        "price": None if order.price is None else _text(order.price),
        "status": order.status.value,
        "total_amount": _text(order.total_amount),
        "created_at": encode_time(order.created_at),
        "time_in_force": None if order.time_in_force is None else order.time_in_force.value,
        "limit_price": None if order.limit_price is None else _text(order.limit_price),
        "expires_at": None if order.expires_at is None else encode_time(order.expires_at),
        "filled_at": None if order.filled_at is None else encode_time(order.filled_at),
        "cancelled_at": None if order.cancelled_at is None else encode_time(order.cancelled_at),
        "expired_at": None if order.expired_at is None else encode_time(order.expired_at),
        "held_amount": None if order.held_amount is None else _text(order.held_amount),
        # Market orders never change: only a limit order's states need ordering.
        "revision": order.revision or None,
    }


def order_from_item(item: Mapping[str, Any]) -> OrderRecord:
    price = item.get("price")
    limit_price = item.get("limit_price")
    held = item.get("held_amount")
    tif = item.get("time_in_force")
    return OrderRecord(
        order_id=item["order_id"],
        order_type=OrderType(item["order_type"]),
        asset_id=item["asset_id"],
        quantity=Decimal(item["quantity"]),
        price=None if price is None else Decimal(price),
        status=OrderStatus(item["status"]),
        total_amount=Decimal(item["total_amount"]),
        created_at=decode_time(item["created_at"]),
        time_in_force=None if tif is None else TimeInForce(tif),
        limit_price=None if limit_price is None else Decimal(limit_price),
        expires_at=_optionaldecode_time(item.get("expires_at")),
        # Market orders stored before fills had a time filled when they were placed.
        filled_at=_optionaldecode_time(item.get("filled_at"))
        or (decode_time(item["created_at"]) if price is not None and tif is None else None),
        cancelled_at=_optionaldecode_time(item.get("cancelled_at")),
        expired_at=_optionaldecode_time(item.get("expired_at")),
        held_amount=None if held is None else Decimal(held),
        revision=int(item.get("revision", 0)),
    )


def _cash_sk(entry: CashEntry) -> str:
    return CASH_PREFIX + sort_key(entry.created_at, entry.transaction_id)


def cash_to_item(user_id: str, entry: CashEntry) -> Item:
    return {
        "pk": _user_pk(user_id),
        "sk": _cash_sk(entry),
        "transaction_id": entry.transaction_id,
        "transaction_type": entry.transaction_type.value,
        "amount": _text(entry.amount),
        "status": entry.status,
        "created_at": encode_time(entry.created_at),
        # An empty string is left out: not every engine stores one.
        "reference_id": entry.reference_id or None,
    }


def cash_from_item(item: Mapping[str, Any]) -> CashEntry:
    return CashEntry(
        transaction_id=item["transaction_id"],
        transaction_type=OperationKind(item["transaction_type"]),
        amount=Decimal(item["amount"]),
        status=item["status"],
        created_at=decode_time(item["created_at"]),
        reference_id=item.get("reference_id", ""),
    )


def _trade_prefix(asset_id: str) -> str:
    return f"{TRADE_PREFIX}{asset_id}#"


def derived_to_items(user_id: str, items: DerivedItems) -> list[Item]:
    """The ledger, trade, order (by time and by id) and replay items of one operation."""
    found = [] if items.cash_entry is None else [cash_to_item(user_id, items.cash_entry)]
    if items.replay is not None:
        found.append(replay_to_item(user_id, items.replay))
    if items.asset_entry is not None:
        found.append(asset_entry_to_item(user_id, items.asset_entry))
    if items.order is not None:
        found += order_items(user_id, items.order)
    return found


def order_items(user_id: str, order: OrderRecord) -> list[Item]:
    """An order under both of its keys: by id, and by time for lists."""
    fields = order_fields(order)
    pk = _user_pk(user_id)
    return [
        {"pk": pk, "sk": ORDER_ID_PREFIX + order.order_id, **fields},
        {"pk": pk, "sk": ORDER_PREFIX + sort_key(order.created_at, order.order_id), **fields},
    ]


def price_key(price: Decimal) -> str:
    """A limit as a string that sorts like the number: 8 decimals, zero-padded.

    Limits have at most 8 decimals and are at most 1,000,000 (domain.values), so the
    key is exact for them; a quote with more decimals is rounded outward by the caller.
    """
    return f"{price.quantize(Decimal('0.00000001')):017f}"


def _side(order_type: OrderType) -> str:
    return "BUY" if order_type.is_buy else "SELL"


def _resting_key(order: OpenOrder) -> Item:
    return {
        "pk": f"{RESTING_PREFIX}{order.asset_id}#{_side(order.order_type)}",
        "sk": f"{price_key(order.limit_price)}#{order.order_id}",
    }


def _expiring_key(order: OpenOrder, expires_at: datetime) -> Item:
    return {"pk": EXPIRING, "sk": f"{encode_time(expires_at)}#{order.order_id}"}


def hint_items(user_id: str, order: OpenOrder) -> list[Item]:
    """The hint items of a resting order: by limit, and by expiry when it expires."""
    found: list[Item] = [{**_resting_key(order), "user_id": user_id, **_open_order_to_map(order)}]
    if order.expires_at is not None:
        found.append(
            {
                **_expiring_key(order, order.expires_at),
                "user_id": user_id,
                **_open_order_to_map(order),
            }
        )
    return found


def _replay_key(user_id: str, idempotency_key: str) -> Item:
    return {"pk": _user_pk(user_id), "sk": KEY_PREFIX + idempotency_key}


def replay_to_item(user_id: str, operation: AppliedOperation) -> Item:
    if operation.idempotency_key is None:
        raise ValueError("only an operation with an idempotency key has a replay record")
    expires = operation.created_at + IDEMPOTENCY_WINDOW
    return {
        **_replay_key(user_id, operation.idempotency_key),
        "operation": operation_to_map(operation),
        "created_at": encode_time(operation.created_at),
        # Epoch seconds, as DynamoDB's TTL wants them: it may delete the record once
        # the key's window is over (the service ignores an expired record anyway).
        "ttl": int(expires.timestamp()),
    }


def _is_replay(item: Item) -> bool:
    return str(item["sk"]).startswith(KEY_PREFIX)


def replay_from_item(item: Mapping[str, Any]) -> AppliedOperation:
    return _operation_from_map(item["operation"])


def asset_entry_to_item(user_id: str, entry: AssetEntry) -> Item:
    return {
        "pk": _user_pk(user_id),
        "sk": _trade_prefix(entry.asset_id) + sort_key(entry.created_at, entry.transaction_id),
        "transaction_id": entry.transaction_id,
        "asset_id": entry.asset_id,
        "transaction_type": entry.transaction_type.value,
        "quantity": _text(entry.quantity),
        "price": _text(entry.price),
        "total_amount": _text(entry.total_amount),
        "order_id": entry.order_id,
        "status": entry.status,
        "created_at": encode_time(entry.created_at),
    }


def asset_entry_from_item(item: Mapping[str, Any]) -> AssetEntry:
    return AssetEntry(
        transaction_id=item["transaction_id"],
        asset_id=item["asset_id"],
        transaction_type=OperationKind(item["transaction_type"]),
        quantity=Decimal(item["quantity"]),
        price=Decimal(item["price"]),
        total_amount=Decimal(item["total_amount"]),
        order_id=item["order_id"],
        status=item["status"],
        created_at=decode_time(item["created_at"]),
    )


# --- Page tokens ----------------------------------------------------------------------


def encode_page_token(sk: str) -> str:
    """Opaque to clients: the sort key of the last item given, as base64url JSON."""
    raw = json.dumps({"sk": sk}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode("ascii")


def decode_page_token(token: str, prefix: str) -> str:
    """The sort key a page token holds; INVALID_ARGUMENT when we did not make it."""
    malformed = InvalidArgument.field(
        "page_token", "is not a token from a previous page", reason="INVALID_PAGE_TOKEN"
    )
    if len(token) > _MAX_PAGE_TOKEN_LENGTH:
        raise malformed
    try:
        decoded = json.loads(base64.urlsafe_b64decode(token.encode("ascii")))
    except (ValueError, UnicodeError, binascii.Error):
        raise malformed from None
    if not isinstance(decoded, dict) or set(decoded) != {"sk"}:
        raise malformed
    sk = decoded["sk"]
    # Another list's key (or a made-up one) must not steer this query.
    if not isinstance(sk, str) or not sk.startswith(prefix) or len(sk) == len(prefix):
        raise malformed
    return sk


# --- The DynamoDB adapter -------------------------------------------------------------


class DynamoTradingStore:
    def __init__(self, table: Table) -> None:
        self._table = table

    # Account ------------------------------------------------------------------

    def get_account(self, user_id: str) -> Account | None:
        item = self._table.get(_account_key(user_id))
        if item is None:
            return None
        if LEGACY_RECENT in item:
            self._move_recent_to_records(user_id, item)
        return account_from_item(item)

    def _move_recent_to_records(self, user_id: str, item: Item) -> None:
        """An account written before replay records kept its keyed operations in a list:
        each becomes its record, then the list goes (on the condition that the account
        is unchanged; a newer write has dropped it anyway), so it is done once."""
        for entry in item[LEGACY_RECENT]:
            self._put_replay(replay_to_item(user_id, _operation_from_map(entry)))
        self._table.update_if(
            _account_key(user_id),
            f"REMOVE {LEGACY_RECENT}",
            "version = :read",
            {":read": item["version"]},
        )

    def save_account(self, account: Account, read_version: int) -> bool:
        """Writes the account if it is still at `read_version` (0: never stored).

        False means another write came first: re-read and decide again.
        """
        if account.version != read_version + 1:
            raise ValueError("an account write moves the version on by exactly one")
        item = account_to_item(account)
        if read_version == 0:
            return self._table.put_if(item, "attribute_not_exists(pk)")
        return self._table.put_if(item, "version = :read", {":read": read_version})

    # Derived items ------------------------------------------------------------

    def put_derived(self, user_id: str, items: DerivedItems) -> None:
        order = items.order
        revised = order is not None and bool(order.revision)
        # Not a transaction: every put is idempotent, so the items a failure left out
        # are simply sent again. A limit order's state goes apart (below); its ledger
        # and trade items (a fill) never change.
        derived = derived_to_items(user_id, replace(items, order=None) if revised else items)
        self._table.put_many([item for item in derived if not _is_replay(item)])
        for record in filter(_is_replay, derived):
            self._put_replay(record)
        if order is None or not revised:
            return
        for item in order_items(user_id, order):
            # A lost condition: this state, or a newer one, is stored.
            self._table.put_if(
                item,
                "attribute_not_exists(pk) OR revision < :revision",
                {":revision": order.revision},
            )

    def _put_replay(self, record: Item) -> None:
        # Newer wins: a late completion of an earlier use of the key (its window over)
        # never replaces the record of a later one. A lost condition means this
        # record, or a newer one, is there.
        self._table.put_if(
            record,
            "attribute_not_exists(sk) OR created_at <= :created",
            {":created": record["created_at"]},
        )

    def has_derived(self, user_id: str, items: DerivedItems) -> bool:
        keys = [{"pk": i["pk"], "sk": i["sk"]} for i in derived_to_items(user_id, items)]
        # Keys the engine did not get to count as missing: rewriting them is harmless.
        found = self._table.get_many(keys, projection="pk, sk, revision, created_at")
        if len(found) != len(keys):
            return False
        # A limit order's copies count once they hold this state or a newer one.
        wanted = items.order.revision if items.order is not None else 0
        if not all(int(item.get("revision", wanted)) >= wanted for item in found):
            return False
        # A record of an earlier use of the key is not this operation's.
        return items.replay is None or all(
            item["created_at"] >= encode_time(items.replay.created_at)
            for item in found
            if _is_replay(item)
        )

    def replay_record(self, user_id: str, idempotency_key: str) -> AppliedOperation | None:
        """The operation `idempotency_key` last applied (in or out of its window)."""
        item = self._table.get(_replay_key(user_id, idempotency_key))
        return None if item is None else replay_from_item(item)

    # Hints to resting orders ------------------------------------------------------

    def put_hints(self, user_id: str, order: OpenOrder) -> None:
        """Written before the account write that opens the order (see the module doc)."""
        self._table.put_many(hint_items(user_id, order))

    def delete_hints(self, order: OpenOrder) -> None:
        keys = [_resting_key(order)]
        if order.expires_at is not None:
            keys.append(_expiring_key(order, order.expires_at))
        self._table.delete_many(keys)

    def crossed_hints(
        self, asset_id: str, quote_price: Decimal, sides: frozenset[str] = BOTH_SIDES
    ) -> list[tuple[str, OpenOrder]]:
        """Resting orders of `asset_id` whose limit `quote_price` crosses: buys with a
        limit at or above it, sells at or below (of the `sides` asked: BUY, SELL). One
        query per side, no scan."""
        floor = price_key(quote_price.quantize(Decimal("0.00000001"), rounding=ROUND_FLOOR))
        ceiling = price_key(quote_price.quantize(Decimal("0.00000001"), rounding=ROUND_CEILING))
        found: list[tuple[str, OpenOrder]] = []
        if "BUY" in sides:
            buys = self._table.query(f"{RESTING_PREFIX}{asset_id}#BUY", at_least=floor)
            found += [(item["user_id"], _open_order_from_map(item)) for item in buys]
        if "SELL" in sides:
            # "$" sorts right after the "#" that ends the price part of a key.
            sells = self._table.query(f"{RESTING_PREFIX}{asset_id}#SELL", below=ceiling + "$")
            found += [(item["user_id"], _open_order_from_map(item)) for item in sells]
        return found

    def has_hints(self, asset_id: str) -> bool:
        """Whether any order of `asset_id` may rest (a hint exists, on either side)."""
        return any(
            next(iter(self._table.query(f"{RESTING_PREFIX}{asset_id}#{side}", page_size=1)), None)
            is not None
            for side in ("BUY", "SELL")
        )

    def due_hints(self, now: datetime) -> list[tuple[str, OpenOrder]]:
        """Resting orders whose expiry has come, oldest first."""
        due = self._table.query(EXPIRING, below=encode_time(now) + "$")
        return [(item["user_id"], _open_order_from_map(item)) for item in due]

    def get_order(self, user_id: str, order_id: str) -> OrderRecord | None:
        item = self._table.get({"pk": _user_pk(user_id), "sk": ORDER_ID_PREFIX + order_id})
        return None if item is None else order_from_item(item)

    def list_orders(
        self,
        user_id: str,
        page: PageRequest,
        *,
        asset_id: str | None = None,
        order_type: OrderType | None = None,
        status: OrderStatus | None = None,
    ) -> Page[OrderRecord]:
        def wanted(item: Item) -> bool:
            return (
                (asset_id is None or item["asset_id"] == asset_id)
                and (order_type is None or item["order_type"] == order_type.value)
                and (status is None or item["status"] == status.value)
            )

        return self._page(user_id, ORDER_PREFIX, page, order_from_item, wanted)

    def list_cash_entries(self, user_id: str, page: PageRequest) -> Page[CashEntry]:
        return self._page(user_id, CASH_PREFIX, page, cash_from_item)

    def count_cash_entries(self, user_id: str) -> int:
        return self._table.count(_user_pk(user_id), CASH_PREFIX)

    def list_asset_entries(
        self, user_id: str, asset_id: str, page: PageRequest
    ) -> Page[AssetEntry]:
        return self._page(user_id, _trade_prefix(asset_id), page, asset_entry_from_item)

    def _page(
        self,
        user_id: str,
        prefix: str,
        page: PageRequest,
        convert: Callable[[Item], T],
        wanted: Callable[[Item], bool] = lambda _item: True,
    ) -> Page[T]:
        after_sk = decode_page_token(page.page_token, prefix) if page.page_token else None
        # One more than asked tells whether another page follows.
        batch = page.offset + page.limit + 1
        skipped = 0
        taken: list[Item] = []
        newest_first = self._table.query(
            _user_pk(user_id), prefix, newest_first=True, after_sk=after_sk, page_size=batch
        )
        for item in newest_first:
            if not wanted(item):
                continue
            if skipped < page.offset:
                skipped += 1
                continue
            taken.append(item)
            if len(taken) > page.limit:
                break
        shown = taken[: page.limit]
        has_more = len(taken) > page.limit
        token = encode_page_token(shown[-1]["sk"]) if has_more else ""
        return Page(tuple(convert(item) for item in shown), token)

    # Whole accounts: the audit and the export -----------------------------------

    def user_ids(self) -> Iterator[str]:
        """Every user with an account item or any other item, each once: a full Scan.

        For operators' tools only; requests never scan.
        """
        seen: set[str] = set()
        for found in self._table.scan(projection="pk"):
            pk = found["pk"]
            _, _, user_id = pk.partition("#")
            if pk.startswith(("ACCOUNT#", "USER#")) and user_id not in seen:
                seen.add(user_id)
                yield user_id

    def books(self, user_id: str) -> Books:
        """Every record of one user as of one moment.

        The account item is read before and after the user's other items; when its
        version moved in between (a change landed), the read is repeated, so the
        records belong to one version of the account. UnstableRead after
        STABLE_READ_ATTEMPTS tries.
        """
        for _ in range(STABLE_READ_ATTEMPTS):
            before = self._table.get(_account_key(user_id))
            books = self._read_books(user_id, before)
            after = self._table.get(_account_key(user_id))
            if (before or {}).get("version") == (after or {}).get("version"):
                return books
        raise UnstableRead(f"the account of {user_id} kept changing while it was read")

    def _read_books(self, user_id: str, account: Item | None) -> Books:
        books = Books(user_id)
        if account is not None:
            try:
                books.account = account_from_item(account)
            except (KeyError, ValueError, TypeError, ArithmeticError):
                books.unreadable.append(f"ACCOUNT#{user_id}")
        for item in self._table.query(_user_pk(user_id)):
            _add_to_books(books, item)
        return books


def _add_to_books(books: Books, item: Item) -> None:
    """Files one item of a user's partition; items of other kinds are left out."""
    sk: str = item["sk"]
    try:
        if sk.startswith(ORDER_ID_PREFIX):
            order = order_from_item(item)
            books.orders_by_id[order.order_id] = order
        elif sk.startswith(ORDER_PREFIX):
            order = order_from_item(item)
            books.orders_by_time[order.order_id] = order
        elif sk.startswith(CASH_PREFIX):
            books.cash_entries.append(cash_from_item(item))
        elif sk.startswith(TRADE_PREFIX):
            books.asset_entries.append(asset_entry_from_item(item))
        elif sk.startswith(KEY_PREFIX):
            books.replays[sk.removeprefix(KEY_PREFIX)] = replay_from_item(item)
    except (KeyError, ValueError, TypeError, ArithmeticError):
        books.unreadable.append(f"{item['pk']} {sk}")
