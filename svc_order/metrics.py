"""svc_order's business metrics (Prometheus): orders, traded value, cash moved,
idempotent replays, the age of the quotes orders trade on.

Refusals by reason are counted for every service by the interceptor
(`grpc_server_refusals_total`); here an order is only "filled" or "refused". Values are
in US dollars, the platform's one cash currency. Labels come from our enums.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import Counter, Gauge, Histogram

from common.errors import DomainError
from svc_order.domain import AppliedOperation, OperationKind, OrderStatus, OrderType

orders = Counter(
    "orders_total",
    "Orders by type and what happened to them: filled (at once or later), resting "
    "(placed, waiting for its price), cancelled, expired, refused; a replayed request "
    "is not counted again.",
    ["order_type", "outcome"],
)
quote_sources = Counter(
    "order_quote_sources_total",
    "Quotes asked for orders and portfolios, by where they came from: the price stream "
    "this process holds (stream) or a GetQuotes call to svc_inventory (inventory).",
    ["source"],
)
traded_value = Counter(
    "orders_traded_value_usd_total",
    "Total amount of filled orders in US dollars, by order type.",
    ["order_type"],
)
order_streams = Gauge("order_streams_active", "StreamOrderUpdates calls open now.")
cash_operations = Counter(
    "cash_operations_total", "Deposits and withdrawals applied, by kind.", ["kind"]
)
cash_value = Counter(
    "cash_operations_value_usd_total",
    "US dollars deposited and withdrawn, by kind.",
    ["kind"],
)
replays = Counter(
    "idempotent_replays_total",
    "Requests answered from an earlier result with the same idempotency key, by kind.",
    ["kind"],
)
quote_age = Histogram(
    "order_quote_age_seconds",
    "Age of the quote an order is priced with, when it is checked (older than "
    "MAX_QUOTE_AGE_SECONDS is refused as STALE_QUOTE).",
    buckets=(0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 20, 30, 60),
)

_ORDER_TYPES = frozenset(order_type.value for order_type in OrderType)


_OUTCOMES = {
    OrderStatus.PENDING: "resting",
    OrderStatus.COMPLETED: "filled",
    OrderStatus.CANCELLED: "cancelled",
    OrderStatus.EXPIRED: "expired",
}


def applied(operation: AppliedOperation) -> None:
    """Count a change that was just written (not a replay): a deposit or withdrawal, a
    fill (a market order, or a limit order at once or later), or a step of a limit
    order's life that moves no cash (it rests, is cancelled, expires)."""
    if operation.kind in (OperationKind.DEPOSIT, OperationKind.WITHDRAWAL):
        kind = operation.kind.value.lower()
        cash_operations.labels(kind).inc()
        cash_value.labels(kind).inc(float(operation.amount))
    elif operation.trade is not None:
        order_type = operation.trade.order_type.value
        orders.labels(order_type, "filled").inc()
        traded_value.labels(order_type).inc(float(operation.amount))
    elif operation.order is not None:
        order = operation.order
        orders.labels(order.order_type.value, _OUTCOMES[order.status]).inc()


def replayed(operation: AppliedOperation) -> None:
    replays.labels(operation.kind.value.lower()).inc()


@contextmanager
def order_outcome(raw_order_type: str) -> Iterator[None]:
    """Count an order refused by a rule under its type ("invalid" for an unknown one)."""
    try:
        yield
    except DomainError:
        order_type = raw_order_type if raw_order_type in _ORDER_TYPES else "invalid"
        orders.labels(order_type, "refused").inc()
        raise
