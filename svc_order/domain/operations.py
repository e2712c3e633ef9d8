"""The operations that change an account: deposit, withdraw, and one order function.

Each takes the account read, the operation's own values, a `Request` (who asks, when,
with which idempotency key) and the `Limits`, and returns the `Change` to write. Nothing
here does I/O, reads a clock or makes a random id: `now` and fresh ids come in the
request, so every decision can be replayed and tested.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal

from svc_order.domain.account import (
    Account,
    AppliedOperation,
    Change,
    Holding,
    Limits,
    OperationKind,
    Trade,
    find_replay,
)
from svc_order.domain.errors import (
    AccountClosed,
    AssetNotTradable,
    DailyLimitExceeded,
    InsufficientFunds,
    InsufficientHoldings,
    InvalidExpiry,
    InvalidPrice,
    InvalidTimeInForce,
    OrderValueTooHigh,
    ProtectionPriceBreached,
    TooManyOpenOrders,
)
from svc_order.domain.ids import operation_id, utc
from svc_order.domain.orders import OpenOrder, OrderRecord, next_midnight_utc
from svc_order.domain.records import new_order_id
from svc_order.domain.values import (
    OrderStatus,
    OrderType,
    TimeInForce,
    buy_cost,
    check_amount,
    check_price,
    check_quantity,
    format_cash,
    format_price,
    format_quantity,
    notional,
    sell_proceeds,
)

# Resting orders live in the account item; the bound keeps it far below DynamoDB's
# 400 KB item limit (and a cancel-all within one request's work).
MAX_OPEN_ORDERS = 50


@dataclass(frozen=True)
class Request:
    """Who asks and when: what every operation shares.

    `now` is timezone-aware; `fresh_id` names the operation when it has no idempotency
    key; `fingerprint` (`ids.request_fingerprint` of the normalized body) tells a replay
    of the key from a different request.
    """

    now: datetime
    fresh_id: str
    idempotency_key: str | None = None
    fingerprint: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "now", utc(self.now))
        if self.idempotency_key is not None and not self.fingerprint:
            raise ValueError("a request with an idempotency key needs its fingerprint")


@dataclass(frozen=True)
class OrderRequest:
    """What an order asks for. `price` is a market order's protection price (a buy above
    it or a sell below it is refused) or a limit order's limit (required).
    `time_in_force` (limit orders only) defaults to gtc; `expires_at` is for gtd only."""

    order_type: OrderType
    asset_id: str
    quantity: Decimal
    price: Decimal | None = None
    time_in_force: TimeInForce | None = None
    expires_at: datetime | None = None


@dataclass(frozen=True)
class MarketQuote:
    """The asset's current price as the inventory quotes it."""

    price: Decimal
    is_active: bool = True


def _refuse_closed(account: Account) -> None:
    if account.closed_at is not None:
        raise AccountClosed("this account is closed and takes no deposit, withdrawal or order")


def _refuse_seen_key(account: Account, request: Request) -> None:
    last = () if account.last_operation is None else (account.last_operation,)
    seen = find_replay(last, request.idempotency_key, request.fingerprint, request.now)
    if seen is not None:
        # The service answers a replay from find_replay; applying it again would be
        # the double effect idempotency exists to prevent.
        raise ValueError("this idempotency key was already applied; replay it instead")


@dataclass(frozen=True)
class _DailyCounters:
    day: date
    deposited: Decimal
    withdrawn: Decimal


def _counters_for(account: Account, now: datetime) -> _DailyCounters:
    today = now.date()
    # Only a later day resets: a slightly slow clock elsewhere must not reopen a limit.
    if today > account.day:
        return _DailyCounters(today, Decimal("0.00"), Decimal("0.00"))
    return _DailyCounters(account.day, account.deposited_today, account.withdrawn_today)


def _next_operation_id(account: Account, request: Request) -> str:
    return operation_id(
        account.user_id, request.idempotency_key, account.version + 1, request.fresh_id
    )


def _commit(
    account: Account,
    request: Request,
    *,
    kind: OperationKind,
    amount: Decimal,
    cash: Decimal,
    counters: _DailyCounters,
    holdings: Mapping[str, Holding] | None = None,
    trade: Trade | None = None,
    order: OrderRecord | None = None,
    open_orders: Mapping[str, OpenOrder] | None = None,
) -> Change:
    version = account.version + 1
    operation = AppliedOperation(
        operation_id=_next_operation_id(account, request),
        kind=kind,
        amount=amount,
        cash_after=cash,
        created_at=request.now,
        idempotency_key=request.idempotency_key,
        fingerprint=request.fingerprint,
        trade=trade,
        order=order,
    )
    updated = replace(
        account,
        cash=cash,
        holdings=account.holdings if holdings is None else holdings,
        open_orders=account.open_orders if open_orders is None else open_orders,
        version=version,
        day=counters.day,
        deposited_today=counters.deposited,
        withdrawn_today=counters.withdrawn,
        updated_at=request.now,
        last_operation=operation,
    )
    return Change(updated, operation)


# Cash ---------------------------------------------------------------------------------


def deposit(account: Account, amount: Decimal, request: Request, limits: Limits) -> Change:
    _refuse_closed(account)
    _refuse_seen_key(account, request)
    amount = check_amount(amount)
    counters = _counters_for(account, request.now)
    allowed = limits.daily_deposit_limit - counters.deposited
    if amount > allowed:
        raise DailyLimitExceeded(
            f"the daily deposit limit of {format_cash(limits.daily_deposit_limit)} would "
            f"be exceeded; {format_cash(max(allowed, Decimal('0.00')))} can still be "
            "deposited today (UTC)"
        )
    counters = replace(counters, deposited=counters.deposited + amount)
    return _commit(
        account,
        request,
        kind=OperationKind.DEPOSIT,
        amount=amount,
        cash=account.cash + amount,
        counters=counters,
    )


def withdraw(account: Account, amount: Decimal, request: Request, limits: Limits) -> Change:
    _refuse_closed(account)
    _refuse_seen_key(account, request)
    amount = check_amount(amount)
    if amount > account.available_cash:
        raise InsufficientFunds(
            f"insufficient balance: {format_cash(account.available_cash)} available, "
            f"{format_cash(amount)} requested",
            fields=("amount",),
        )
    counters = _counters_for(account, request.now)
    allowed = limits.daily_withdraw_limit - counters.withdrawn
    if amount > allowed:
        raise DailyLimitExceeded(
            f"the daily withdrawal limit of {format_cash(limits.daily_withdraw_limit)} "
            f"would be exceeded; {format_cash(max(allowed, Decimal('0.00')))} can still "
            "be withdrawn today (UTC)"
        )
    counters = replace(counters, withdrawn=counters.withdrawn + amount)
    return _commit(
        account,
        request,
        kind=OperationKind.WITHDRAWAL,
        amount=amount,
        cash=account.cash - amount,
        counters=counters,
    )


# Orders -------------------------------------------------------------------------------


def _check_tradable(asset_id: str, quote: MarketQuote) -> None:
    if not quote.is_active:
        raise AssetNotTradable(f"{asset_id} is not tradable at the moment")
    if not quote.price.is_finite() or quote.price <= 0:
        raise AssetNotTradable(f"{asset_id} has no valid price at the moment")


def _check_order_value(
    quantity: Decimal, price: Decimal, limits: Limits, *, at_limit: bool = False
) -> None:
    """`at_limit`: `price` is the client's limit price, so it is named too."""
    # The exact value, before rounding, so that neither side can round its way past.
    if notional(quantity, price) > limits.max_order_value:
        raise OrderValueTooHigh(
            f"the order value of {format_cash(buy_cost(quantity, price))} is above the "
            f"maximum of {format_cash(limits.max_order_value)} per order",
            fields=("quantity", "price") if at_limit else ("quantity",),
        )


def _holdings_with(
    holdings: Mapping[str, Holding], asset_id: str, quantity: Decimal, now: datetime
) -> dict[str, Holding]:
    """The holdings with `asset_id` set to `quantity`; a zero holding is dropped."""
    updated = dict(holdings)
    if quantity == 0:
        updated.pop(asset_id, None)
        return updated
    previous = holdings.get(asset_id)
    created_at = previous.created_at if previous else now
    updated[asset_id] = Holding(quantity, created_at, now)
    return updated


def place_order(
    account: Account,
    order: OrderRequest,
    quote: MarketQuote,
    request: Request,
    limits: Limits,
) -> Change:
    """The one way an order enters an account, market or limit.

    A market order executes at the quote: a buy pays it (cost rounded up to the cent),
    a sell is paid it (proceeds rounded down). A limit order that the quote crosses
    (buy: quote <= limit; sell: quote >= limit) executes the same way at once, at the
    quote; one that it does not cross is cancelled at once (ioc, fok) or rests as
    pending (gtc, day, gtd), holding quantity × limit of cash (rounded up to the cent)
    or the units. Refusals: InvalidQuantity, InvalidPrice, InvalidTimeInForce,
    InvalidExpiry, InsufficientFunds, InsufficientHoldings, AssetNotTradable,
    ProtectionPriceBreached, OrderValueTooHigh, TooManyOpenOrders.
    """
    _refuse_closed(account)
    _refuse_seen_key(account, request)
    quantity = check_quantity(order.quantity)
    if not order.order_type.is_limit:
        if order.time_in_force is not None or order.expires_at is not None:
            raise InvalidTimeInForce("applies to limit orders only")
        protection = None if order.price is None else check_price(order.price)
        return _execute(account, order, quantity, quote, request, limits, protection=protection)
    if order.price is None:
        raise InvalidPrice("is required for a limit order: it is the limit")
    resting = _open_order(account, order, quantity, check_price(order.price), request)
    # The value cap applies at the limit: the most a buy can cost, the least a sale pays.
    _check_order_value(quantity, resting.limit_price, limits, at_limit=True)
    _check_tradable(order.asset_id, quote)
    _check_can_hold(account, resting)
    if resting.crossed_by(quote.price):
        return _execute(account, order, quantity, quote, request, limits, resting=resting)
    if not resting.time_in_force.may_rest:
        return _commit(
            account,
            request,
            kind=OperationKind.PLACE,
            amount=Decimal("0.00"),
            cash=account.cash,
            counters=_counters_for(account, request.now),
            order=replace(
                resting.record(OrderStatus.CANCELLED, account.version + 1),
                cancelled_at=request.now,
            ),
        )
    if len(account.open_orders) >= MAX_OPEN_ORDERS:
        raise TooManyOpenOrders(
            f"at most {MAX_OPEN_ORDERS} limit orders may rest at once; cancel one first"
        )
    return _commit(
        account,
        request,
        kind=OperationKind.PLACE,
        amount=Decimal("0.00"),
        cash=account.cash,
        counters=_counters_for(account, request.now),
        order=resting.record(OrderStatus.PENDING, account.version + 1),
        open_orders={**account.open_orders, resting.order_id: resting},
    )


def _open_order(
    account: Account, order: OrderRequest, quantity: Decimal, limit: Decimal, request: Request
) -> OpenOrder:
    tif = order.time_in_force or TimeInForce.GTC
    expires_at = None
    if tif is TimeInForce.GTD:
        if order.expires_at is None:
            raise InvalidExpiry("is required for a gtd order")
        expires_at = utc(order.expires_at)
        if expires_at <= request.now:
            raise InvalidExpiry("must be in the future")
    elif order.expires_at is not None:
        raise InvalidExpiry("is only for gtd orders")
    elif tif is TimeInForce.DAY:
        expires_at = next_midnight_utc(request.now)
    return OpenOrder(
        order_id=new_order_id(_next_operation_id(account, request)),
        order_type=order.order_type,
        asset_id=order.asset_id,
        quantity=quantity,
        limit_price=limit,
        time_in_force=tif,
        expires_at=expires_at,
        created_at=request.now,
    )


def _check_can_hold(account: Account, resting: OpenOrder) -> None:
    """What the order would hold must be available: nothing is held or spent twice."""
    if resting.order_type.is_buy:
        if resting.held_cash > account.available_cash:
            raise InsufficientFunds(
                f"insufficient balance: the order holds {format_cash(resting.held_cash)} "
                f"at its limit, {format_cash(account.available_cash)} available",
                fields=("quantity", "price"),
            )
        return
    if resting.quantity > account.available_units(resting.asset_id):
        raise InsufficientHoldings(
            f"insufficient holdings: {_units_free(account, resting.asset_id)}, "
            f"{format_quantity(resting.quantity)} to sell"
        )


def _units_free(account: Account, asset_id: str) -> str:
    free = f"{format_quantity(account.available_units(asset_id))} {asset_id} held"
    if account.held_units(asset_id):
        free += " and not promised to resting sells"
    return free


def _execute(
    account: Account,
    order: OrderRequest,
    quantity: Decimal,
    quote: MarketQuote,
    request: Request,
    limits: Limits,
    *,
    protection: Decimal | None = None,
    resting: OpenOrder | None = None,
) -> Change:
    """Executes at the quote: a market order, or a limit order the quote crosses (given
    as `resting`; its hold, if it rested, is released in the same write)."""
    asset_id = order.asset_id
    open_orders = dict(account.open_orders)
    placed = resting is not None and open_orders.pop(resting.order_id, None) is not None
    after_release = replace(account, open_orders=open_orders)
    if order.order_type.is_buy:
        _check_tradable(asset_id, quote)
        if protection is not None and quote.price > protection:
            raise ProtectionPriceBreached(
                f"the price of {asset_id} is {format_price(quote.price)}, above your "
                f"protection price of {format_price(protection)}; nothing was bought"
            )
        if resting is None:
            _check_order_value(quantity, quote.price, limits)
        cost = buy_cost(quantity, quote.price)
        if cost > after_release.available_cash:
            raise InsufficientFunds(
                f"insufficient balance: the order costs {format_cash(cost)}, "
                f"{format_cash(after_release.available_cash)} available",
                fields=("quantity",),
            )
        kind, amount, cash = OperationKind.BUY, cost, account.cash - cost
        units = account.quantity_of(asset_id) + quantity
    else:
        available = after_release.available_units(asset_id)
        if quantity > available:
            raise InsufficientHoldings(
                f"insufficient holdings: {_units_free(after_release, asset_id)}, "
                f"{format_quantity(quantity)} to sell"
            )
        _check_tradable(asset_id, quote)
        if protection is not None and quote.price < protection:
            raise ProtectionPriceBreached(
                f"the price of {asset_id} is {format_price(quote.price)}, below your "
                f"protection price of {format_price(protection)}; nothing was sold"
            )
        if resting is None:
            _check_order_value(quantity, quote.price, limits)
        proceeds = sell_proceeds(quantity, quote.price)
        kind, amount, cash = OperationKind.SELL, proceeds, account.cash + proceeds
        units = account.quantity_of(asset_id) - quantity
    record = None
    if resting is not None:
        record = replace(
            resting.record(OrderStatus.COMPLETED, account.version + 1),
            price=quote.price,
            total_amount=amount,
            filled_at=request.now,
        )
    return _commit(
        account,
        request,
        kind=kind,
        amount=amount,
        cash=cash,
        counters=_counters_for(account, request.now),
        holdings=_holdings_with(account.holdings, asset_id, units, request.now),
        trade=Trade(order.order_type, asset_id, quantity, quote.price),
        order=record,
        open_orders=open_orders if placed else None,
    )


# A resting order's end ----------------------------------------------------------------


def fill_order(
    account: Account, order_id: str, quote: MarketQuote, request: Request, limits: Limits
) -> Change | None:
    """Fills a resting order entirely at `quote` when it crosses the limit.

    None when there is nothing to do: the order is not resting (filled, cancelled or
    expired already, or unknown), is due to expire, the asset does not trade, or the
    quote does not cross. The hold is released in the same write.
    """
    resting = account.open_orders.get(order_id)
    if resting is None or resting.is_due(request.now):
        return None
    if not quote.is_active or not quote.price.is_finite() or quote.price <= 0:
        return None
    if not resting.crossed_by(quote.price):
        return None
    order = OrderRequest(resting.order_type, resting.asset_id, resting.quantity)
    return _execute(account, order, resting.quantity, quote, request, limits, resting=resting)


def cancel_order(account: Account, order_id: str, request: Request) -> Change:
    """Cancels a resting order and releases its hold.

    Raises OrderNotOpen when the account has no such resting order (the caller tells a
    missing order from a finished one by its record).
    """
    resting = account.open_orders.get(order_id)
    if resting is None:
        raise OrderNotOpen(order_id)
    return _end(account, resting, request, OperationKind.CANCEL)


def expire_order(account: Account, order_id: str, request: Request) -> Change | None:
    """Expires a resting day or gtd order once its time has come; None otherwise."""
    resting = account.open_orders.get(order_id)
    if resting is None or not resting.is_due(request.now):
        return None
    return _end(account, resting, request, OperationKind.EXPIRE)


class OrderNotOpen(LookupError):
    """The account has no resting order of that id."""


def _end(account: Account, resting: OpenOrder, request: Request, kind: OperationKind) -> Change:
    open_orders = {k: v for k, v in account.open_orders.items() if k != resting.order_id}
    if kind is OperationKind.CANCEL:
        record = replace(
            resting.record(OrderStatus.CANCELLED, account.version + 1), cancelled_at=request.now
        )
    else:
        record = replace(
            resting.record(OrderStatus.EXPIRED, account.version + 1), expired_at=request.now
        )
    return _commit(
        account,
        request,
        kind=kind,
        amount=Decimal("0.00"),
        cash=account.cash,
        counters=_counters_for(account, request.now),
        order=record,
        open_orders=open_orders,
    )
