"""Orders: the record every order leaves, and a resting limit order as the account holds it.

A limit order that the quote does not cross when it is placed rests: its `OpenOrder`
lives in the account item, and what it holds (cash for a buy, units for a sell) is
derived from it, so a hold and its release are part of the same one-item write as the
order's placement and its end.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal

from svc_order.domain.values import OrderStatus, OrderType, TimeInForce, buy_cost


@dataclass(frozen=True)
class OrderRecord:
    """An order as lists and GetOrder show it.

    `price` is the execution price (None until filled); `total_amount` is quantity ×
    price rounded up to the cent for a buy and down for a sale (0.00 until filled).
    `held_amount` is what a resting order holds: cash for a buy, units for a sell.
    `revision` is the account version of the operation that produced this state: a
    store keeps the newest, so a late write of an older state never wins.
    """

    order_id: str
    order_type: OrderType
    asset_id: str
    quantity: Decimal
    price: Decimal | None
    status: OrderStatus
    total_amount: Decimal
    created_at: datetime
    time_in_force: TimeInForce | None = None
    limit_price: Decimal | None = None
    expires_at: datetime | None = None
    filled_at: datetime | None = None
    cancelled_at: datetime | None = None
    expired_at: datetime | None = None
    held_amount: Decimal | None = None
    revision: int = 0


@dataclass(frozen=True)
class OpenOrder:
    """A resting limit order inside the account item: enough to fill, cancel or expire
    it and to know what it holds."""

    order_id: str
    order_type: OrderType
    asset_id: str
    quantity: Decimal
    limit_price: Decimal
    time_in_force: TimeInForce
    expires_at: datetime | None
    created_at: datetime

    @property
    def held_cash(self) -> Decimal:
        """A buy holds quantity × limit rounded up to the cent: the most a fill costs."""
        if self.order_type.is_buy:
            return buy_cost(self.quantity, self.limit_price)
        return Decimal("0.00")

    @property
    def held_units(self) -> Decimal:
        return Decimal(0) if self.order_type.is_buy else self.quantity

    def crossed_by(self, quote_price: Decimal) -> bool:
        """Buy: the quote is at or below the limit; sell: at or above it."""
        if self.order_type.is_buy:
            return quote_price <= self.limit_price
        return quote_price >= self.limit_price

    def is_due(self, now: datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def record(self, status: OrderStatus, revision: int) -> OrderRecord:
        """This order as a record with no fill (pending, cancelled or expired)."""
        return OrderRecord(
            order_id=self.order_id,
            order_type=self.order_type,
            asset_id=self.asset_id,
            quantity=self.quantity,
            price=None,
            status=status,
            total_amount=Decimal("0.00"),
            created_at=self.created_at,
            time_in_force=self.time_in_force,
            limit_price=self.limit_price,
            expires_at=self.expires_at,
            held_amount=(self.held_cash if self.order_type.is_buy else self.held_units)
            if status is OrderStatus.PENDING
            else None,
            revision=revision,
        )


def next_midnight_utc(now: datetime) -> datetime:
    """When a day order placed at `now` (UTC) expires: the next 00:00 UTC."""
    return datetime.combine(now.date() + timedelta(days=1), time(0), tzinfo=now.tzinfo)


def resting_of(record: OrderRecord) -> OpenOrder:
    """The resting order a limit order's record describes (what its hints are keyed by)."""
    if record.limit_price is None or record.time_in_force is None:
        raise ValueError(f"order {record.order_id} is not a limit order")
    return OpenOrder(
        order_id=record.order_id,
        order_type=record.order_type,
        asset_id=record.asset_id,
        quantity=record.quantity,
        limit_price=record.limit_price,
        time_in_force=record.time_in_force,
        expires_at=record.expires_at,
        created_at=record.created_at,
    )
