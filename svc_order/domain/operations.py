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
    remember,
)
from svc_order.domain.errors import (
    AccountClosed,
    AssetNotTradable,
    DailyLimitExceeded,
    InsufficientFunds,
    InsufficientHoldings,
    LimitOrdersUnsupported,
    OrderValueTooHigh,
    ProtectionPriceBreached,
)
from svc_order.domain.ids import operation_id, utc
from svc_order.domain.values import (
    OrderType,
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
    it or a sell below it is refused) or a limit order's limit."""

    order_type: OrderType
    asset_id: str
    quantity: Decimal
    price: Decimal | None = None


@dataclass(frozen=True)
class MarketQuote:
    """The asset's current price as the inventory quotes it."""

    price: Decimal
    is_active: bool = True


def _refuse_closed(account: Account) -> None:
    if account.closed_at is not None:
        raise AccountClosed("this account is closed and takes no deposit, withdrawal or order")


def _refuse_seen_key(account: Account, request: Request) -> None:
    seen = find_replay(account, request.idempotency_key, request.fingerprint, request.now)
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
) -> Change:
    version = account.version + 1
    operation = AppliedOperation(
        operation_id=operation_id(
            account.user_id, request.idempotency_key, version, request.fresh_id
        ),
        kind=kind,
        amount=amount,
        cash_after=cash,
        created_at=request.now,
        idempotency_key=request.idempotency_key,
        fingerprint=request.fingerprint,
        trade=trade,
    )
    updated = replace(
        account,
        cash=cash,
        holdings=account.holdings if holdings is None else holdings,
        version=version,
        day=counters.day,
        deposited_today=counters.deposited,
        withdrawn_today=counters.withdrawn,
        updated_at=request.now,
        recent=remember(account.recent, operation, request.now),
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
    if amount > account.cash:
        raise InsufficientFunds(
            f"insufficient balance: {format_cash(account.cash)} available, "
            f"{format_cash(amount)} requested"
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


def _check_order_value(quantity: Decimal, price: Decimal, limits: Limits) -> None:
    # The exact value, before rounding, so that neither side can round its way past.
    if notional(quantity, price) > limits.max_order_value:
        raise OrderValueTooHigh(
            f"the order value of {format_cash(buy_cost(quantity, price))} is above the "
            f"maximum of {format_cash(limits.max_order_value)} per order"
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
    """The one way an order enters an account.

    A market buy pays the quote (cost rounded up to the cent); a market sell is paid it
    (proceeds rounded down). Refusals: InvalidQuantity, InsufficientFunds,
    InsufficientHoldings, AssetNotTradable, ProtectionPriceBreached, OrderValueTooHigh.
    """
    _refuse_closed(account)
    _refuse_seen_key(account, request)
    if order.order_type in (OrderType.LIMIT_BUY, OrderType.LIMIT_SELL):
        raise LimitOrdersUnsupported(
            "limit orders are not available yet; place a market order, optionally with "
            "a protection price"
        )
    quantity = check_quantity(order.quantity)
    if order.order_type is OrderType.MARKET_BUY:
        return _buy_at_quote(account, order, quantity, quote, request, limits)
    return _sell_at_quote(account, order, quantity, quote, request, limits)


def _buy_at_quote(
    account: Account,
    order: OrderRequest,
    quantity: Decimal,
    quote: MarketQuote,
    request: Request,
    limits: Limits,
) -> Change:
    asset_id = order.asset_id
    _check_tradable(asset_id, quote)
    protection = order.price
    if protection is not None and quote.price > check_price(protection):
        raise ProtectionPriceBreached(
            f"the price of {asset_id} is {format_price(quote.price)}, above your "
            f"protection price of {format_price(protection)}; nothing was bought"
        )
    _check_order_value(quantity, quote.price, limits)
    cost = buy_cost(quantity, quote.price)
    if cost > account.cash:
        raise InsufficientFunds(
            f"insufficient balance: the order costs {format_cash(cost)}, "
            f"{format_cash(account.cash)} available"
        )
    held = account.quantity_of(asset_id) + quantity
    return _commit(
        account,
        request,
        kind=OperationKind.BUY,
        amount=cost,
        cash=account.cash - cost,
        counters=_counters_for(account, request.now),
        holdings=_holdings_with(account.holdings, asset_id, held, request.now),
        trade=Trade(order.order_type, asset_id, quantity, quote.price),
    )


def _sell_at_quote(
    account: Account,
    order: OrderRequest,
    quantity: Decimal,
    quote: MarketQuote,
    request: Request,
    limits: Limits,
) -> Change:
    asset_id = order.asset_id
    held = account.quantity_of(asset_id)
    if quantity > held:
        raise InsufficientHoldings(
            f"insufficient holdings: {format_quantity(held)} {asset_id} held, "
            f"{format_quantity(quantity)} to sell"
        )
    _check_tradable(asset_id, quote)
    protection = order.price
    if protection is not None and quote.price < check_price(protection):
        raise ProtectionPriceBreached(
            f"the price of {asset_id} is {format_price(quote.price)}, below your "
            f"protection price of {format_price(protection)}; nothing was sold"
        )
    _check_order_value(quantity, quote.price, limits)
    proceeds = sell_proceeds(quantity, quote.price)
    return _commit(
        account,
        request,
        kind=OperationKind.SELL,
        amount=proceeds,
        cash=account.cash + proceeds,
        counters=_counters_for(account, request.now),
        holdings=_holdings_with(account.holdings, asset_id, held - quantity, request.now),
        trade=Trade(order.order_type, asset_id, quantity, quote.price),
    )
