"""Items derived from an applied operation: its order and ledger entries.

Their ids are name-based on the operation's id (a limit order keeps the id of the
operation that placed it), so writing them twice is harmless.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from svc_order.domain.account import AppliedOperation, OperationKind, Trade
from svc_order.domain.ids import name_based_id
from svc_order.domain.orders import OrderRecord
from svc_order.domain.values import OrderStatus

STATUS_COMPLETED = OrderStatus.COMPLETED.value


@dataclass(frozen=True)
class CashEntry:
    transaction_id: str
    transaction_type: OperationKind
    # Signed: negative when cash left the account.
    amount: Decimal
    status: str
    created_at: datetime
    # The order of a BUY or SELL; "" otherwise.
    reference_id: str = ""


@dataclass(frozen=True)
class AssetEntry:
    transaction_id: str
    asset_id: str
    transaction_type: OperationKind
    quantity: Decimal
    price: Decimal
    total_amount: Decimal
    order_id: str
    status: str
    created_at: datetime


@dataclass(frozen=True)
class DerivedItems:
    """Everything an operation writes besides the account: trades have all three, cash
    movements a ledger entry, a limit order's placement, cancel or expiry its order; a
    keyed operation also its replay record."""

    cash_entry: CashEntry | None
    order: OrderRecord | None = None
    asset_entry: AssetEntry | None = None
    # The replay record of an operation with an idempotency key: the operation itself,
    # stored under the key, so that the key answers its first result for 24 h.
    replay: AppliedOperation | None = None


def order_id_of(operation: AppliedOperation) -> str:
    """The id of the order an operation placed, or of the limit order it changed."""
    if operation.order is not None:
        return operation.order.order_id
    return new_order_id(operation.operation_id)


def new_order_id(operation_id: str) -> str:
    return name_based_id(f"order\n{operation_id}")


def cash_transaction_id_of(operation: AppliedOperation) -> str:
    return name_based_id(f"cash\n{operation.operation_id}")


def asset_transaction_id_of(operation: AppliedOperation) -> str:
    return name_based_id(f"asset\n{operation.operation_id}")


def _trade_of(operation: AppliedOperation) -> Trade:
    if operation.trade is None:
        raise ValueError(f"operation {operation.operation_id} is not a trade")
    return operation.trade


def order_record(operation: AppliedOperation) -> OrderRecord:
    if operation.order is not None:
        return operation.order
    trade = _trade_of(operation)
    return OrderRecord(
        order_id=order_id_of(operation),
        order_type=trade.order_type,
        asset_id=trade.asset_id,
        quantity=trade.quantity,
        price=trade.price,
        status=OrderStatus.COMPLETED,
        total_amount=operation.amount,
        created_at=operation.created_at,
        filled_at=operation.created_at,
    )


def cash_entry(operation: AppliedOperation) -> CashEntry:
    return CashEntry(
        transaction_id=cash_transaction_id_of(operation),
        transaction_type=operation.kind,
        amount=operation.cash_delta,
        status=STATUS_COMPLETED,
        created_at=operation.created_at,
        reference_id=order_id_of(operation) if operation.trade else "",
    )


def asset_entry(operation: AppliedOperation) -> AssetEntry:
    trade = _trade_of(operation)
    return AssetEntry(
        transaction_id=asset_transaction_id_of(operation),
        asset_id=trade.asset_id,
        transaction_type=operation.kind,
        quantity=trade.quantity,
        price=trade.price,
        total_amount=operation.amount,
        order_id=order_id_of(operation),
        status=STATUS_COMPLETED,
        created_at=operation.created_at,
    )


def derived_items(operation: AppliedOperation) -> DerivedItems:
    replay = None if operation.idempotency_key is None else operation
    if operation.trade is not None:
        return DerivedItems(
            cash_entry(operation), order_record(operation), asset_entry(operation), replay
        )
    if operation.order is not None:
        return DerivedItems(None, operation.order, replay=replay)
    return DerivedItems(cash_entry(operation), replay=replay)


def ledger_balance(entries: Iterable[CashEntry]) -> Decimal:
    """The cash that a ledger adds up to; equals the account's cash when complete."""
    return sum((entry.amount for entry in entries), Decimal("0.00"))


_EVENTS = {
    OrderStatus.PENDING: "placed",
    OrderStatus.COMPLETED: "filled",
    OrderStatus.CANCELLED: "cancelled",
    OrderStatus.EXPIRED: "expired",
}


def order_event(operation: AppliedOperation) -> str | None:
    """What happened to an order in this operation (placed, filled, cancelled, expired);
    None for a deposit or withdrawal."""
    if operation.order is None and operation.trade is None:
        return None
    return _EVENTS[order_record(operation).status]
