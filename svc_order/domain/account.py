"""A user's trading account, the one item every change rewrites, and replays.

A change reads an `Account`, decides in `operations`, and the store writes the returned
`Account` back on the condition that `version` is still the one read (DESIGN.md, "one
conditional write per change").

An operation with an idempotency key is answered again from its record for 24 h. The
account keeps only its last operation; every earlier one is recorded in an item of
its own, keyed by the idempotency key (a derived item, see `records.DerivedItems`), so
the account stays the same size however many keys a user sends.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from svc_order.domain.errors import IdempotencyConflict
from svc_order.domain.ids import utc
from svc_order.domain.orders import OpenOrder, OrderRecord
from svc_order.domain.values import OrderType

IDEMPOTENCY_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class Limits:
    daily_deposit_limit: Decimal = Decimal("10000.00")
    daily_withdraw_limit: Decimal = Decimal("5000.00")
    max_order_value: Decimal = Decimal("10000.00")

    def __post_init__(self) -> None:
        for name in ("daily_deposit_limit", "daily_withdraw_limit", "max_order_value"):
            value: Decimal = getattr(self, name)
            if not value.is_finite() or value <= 0:
                raise ValueError(f"{name} must be a positive amount, got {value}")


class OperationKind(enum.StrEnum):
    """What an operation did; the values are the ledger's transaction types."""

    DEPOSIT = "DEPOSIT"
    WITHDRAWAL = "WITHDRAWAL"
    BUY = "BUY"
    SELL = "SELL"
    # A limit order's life that moves no cash: it rests (or is cancelled at once, ioc
    # and fok), is cancelled, or expires. These leave no ledger entry.
    PLACE = "PLACE"
    CANCEL = "CANCEL"
    EXPIRE = "EXPIRE"

    @property
    def takes_cash(self) -> bool:
        return self in (OperationKind.WITHDRAWAL, OperationKind.BUY)


@dataclass(frozen=True)
class Holding:
    quantity: Decimal
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Trade:
    """The order part of a buy or sell."""

    order_type: OrderType
    asset_id: str
    quantity: Decimal
    price: Decimal


@dataclass(frozen=True)
class AppliedOperation:
    """One applied change: enough to answer the request again and derive its items."""

    operation_id: str
    kind: OperationKind
    # Cash moved, never negative: the amount, or the order's total_amount.
    amount: Decimal
    cash_after: Decimal
    created_at: datetime
    idempotency_key: str | None = None
    fingerprint: str = ""
    trade: Trade | None = None
    # The order as this operation left it, for limit orders (placed, filled, cancelled,
    # expired); a market order's record is derived from `trade` alone.
    order: OrderRecord | None = None

    @property
    def cash_delta(self) -> Decimal:
        return -self.amount if self.kind.takes_cash else self.amount


@dataclass(frozen=True)
class Account:
    """A user's trading account: the single storage item every change rewrites.

    `version` is 0 for an account never stored; each change increments it by one and the
    store writes on the condition that the stored version is still the one read.
    `day` is the UTC date that `deposited_today` and `withdrawn_today` count.
    `open_orders` are the resting limit orders by id: their holds are derived from them.
    `last_operation` is the newest change, keyed or not, so that its derived items
    (its replay record among them) can be completed after a crash between the writes.
    `closed_at` is set once the account is closed (`closing`); it then takes no change.
    """

    user_id: str
    cash: Decimal
    holdings: Mapping[str, Holding]
    version: int
    day: date
    deposited_today: Decimal
    withdrawn_today: Decimal
    created_at: datetime
    updated_at: datetime
    last_operation: AppliedOperation | None = None
    closed_at: datetime | None = None
    open_orders: Mapping[str, OpenOrder] = field(default_factory=dict)

    def quantity_of(self, asset_id: str) -> Decimal:
        """Units held in total, available and held by resting sells."""
        holding = self.holdings.get(asset_id)
        return holding.quantity if holding else Decimal(0)

    @property
    def held_cash(self) -> Decimal:
        """Cash held by resting buys; `cash` is the total, so the ledger adds up to it."""
        return sum((o.held_cash for o in self.open_orders.values()), Decimal("0.00"))

    @property
    def available_cash(self) -> Decimal:
        return self.cash - self.held_cash

    def held_units(self, asset_id: str) -> Decimal:
        return sum(
            (o.held_units for o in self.open_orders.values() if o.asset_id == asset_id),
            Decimal(0),
        )

    def available_units(self, asset_id: str) -> Decimal:
        return self.quantity_of(asset_id) - self.held_units(asset_id)


@dataclass(frozen=True)
class Change:
    """An operation's result: the account to write and the operation it records."""

    account: Account
    operation: AppliedOperation


def new_account(user_id: str, now: datetime) -> Account:
    """The state of a user who has no account item yet: no cash, nothing held."""
    now = utc(now)
    return Account(
        user_id=user_id,
        cash=Decimal("0.00"),
        holdings={},
        version=0,
        day=now.date(),
        deposited_today=Decimal("0.00"),
        withdrawn_today=Decimal("0.00"),
        created_at=now,
        updated_at=now,
    )


def _is_recent(operation: AppliedOperation, now: datetime) -> bool:
    return now - operation.created_at < IDEMPOTENCY_WINDOW


def find_replay(
    recorded: Iterable[AppliedOperation],
    idempotency_key: str | None,
    fingerprint: str,
    now: datetime,
) -> AppliedOperation | None:
    """The operation recorded for this key in the last 24 h, to answer again unchanged.

    `recorded`: the operations that may hold the key, newest first (the account's last
    operation, then the key's record); taken one at a time, so that a match in the
    first spares reading the next. Raises IdempotencyConflict when the key was used
    for a different request body.
    """
    if idempotency_key is None:
        return None
    now = utc(now)
    for operation in recorded:
        if operation.idempotency_key == idempotency_key and _is_recent(operation, now):
            if operation.fingerprint != fingerprint:
                raise IdempotencyConflict(
                    "this Idempotency-Key was already used for a different request; "
                    "use a new key for a new request"
                )
            return operation
    return None
