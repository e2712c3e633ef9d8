"""The rules of cash, market orders and portfolios: pure functions over frozen dataclasses.

Nothing here does I/O, reads a clock or makes a random id: `now` and fresh ids are
arguments, so every decision can be replayed and tested. Amounts are `Decimal`, times are
timezone-aware UTC datetimes.

A user's trading account is one storage item (see DESIGN.md, "one conditional write per
change"): an operation reads an `Account`, decides here, and the store writes the returned
`Account` back on the condition that `version` is still the one read. Orders and ledger
entries are derived from the `AppliedOperation` with deterministic ids, so writing them
twice is harmless.

Text formats (what `format_*` produce and the API shows):
- cash: exactly 2 decimals, "1000.00";
- quantities: exactly 8 decimals, "0.10000000" (the API's own example is "0.00100000");
- prices: as quoted, in plain notation (never an exponent);
- percentages: 2 decimals.
"""

from __future__ import annotations

import enum
import hashlib
import json
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal, localcontext
from typing import Any

from common.errors import DomainError, ErrorKind, FieldViolation

CENT = Decimal("0.01")
QUANTITY_QUANTUM = Decimal("0.00000001")

MAX_AMOUNT = Decimal("1000000")
MAX_PRICE = Decimal("1000000")
MIN_QUANTITY = Decimal("0.001")
# No asset trades in billions of units within a 10,000.00 order cap; the bound keeps
# every quantity (with its 8 decimals) well inside DynamoDB's 38 significant digits.
MAX_QUANTITY = Decimal("1000000000")
CASH_PLACES = 2
QUANTITY_PLACES = 8
PRICE_PLACES = 8

IDEMPOTENCY_WINDOW = timedelta(hours=24)
# The account item carries the recent keyed operations; the bound keeps it far below
# DynamoDB's 400 KB item limit. A user with more keyed operations than this in 24 h can
# lose replay protection for the oldest ones: a documented trade-off of one-item writes.
MAX_RECENT_OPERATIONS = 100
MAX_IDEMPOTENCY_KEY_LENGTH = 128

STATUS_COMPLETED = "completed"

# Plain decimal notation only: no sign other than "-", no exponent, no NaN/Infinity, and
# ASCII digits only (Decimal() would accept other scripts' digits).
_DECIMAL_TEXT = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_MAX_DECIMAL_TEXT_LENGTH = 40
_ASSET_ID = re.compile(r"[A-Za-z0-9]{1,10}")
_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]+")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MICROSECOND = timedelta(microseconds=1)
# Fixed namespace for name-based (uuid5) ids: the same inputs give the same id everywhere.
_ID_NAMESPACE = uuid.UUID("6f1d3c2e-9b4a-5e8f-a1c7-2d4b6e8f0a13")


# --- Errors ---------------------------------------------------------------------------


class OrderRuleError(DomainError):
    """A request the order rules refuse; the message is safe to show to the user.

    `kind` tells the error interceptor the status code, `reason` is the stable code
    clients see, `field` names the request field at fault when there is one.
    """

    field: str | None = None

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message, **details)
        if self.field is not None and not self.violations:
            # Clients show rule refusals next to the field, as they do bad input.
            self.violations = (FieldViolation(self.field, message),)


class _FieldError(OrderRuleError):
    """Bad input in one request field, reported as a field violation too."""

    kind = ErrorKind.INVALID_ARGUMENT
    field = "value"

    def __init__(self, problem: str) -> None:
        super().__init__(f"{self.field} {problem}")
        self.violations = (FieldViolation(self.field, problem),)


class InvalidAmount(_FieldError):
    reason = "INVALID_AMOUNT"
    field = "amount"


class InvalidQuantity(_FieldError):
    reason = "INVALID_QUANTITY"
    field = "quantity"


class InvalidPrice(_FieldError):
    reason = "INVALID_PRICE"
    field = "price"


class InvalidOrderType(_FieldError):
    reason = "INVALID_ORDER_TYPE"
    field = "order_type"


class InvalidAssetId(_FieldError):
    reason = "INVALID_ASSET_ID"
    field = "asset_id"


class InvalidIdempotencyKey(_FieldError):
    reason = "INVALID_IDEMPOTENCY_KEY"
    field = "idempotency_key"


class _Refusal(OrderRuleError):
    """Well-formed input that the rules refuse in the account's current state."""

    kind = ErrorKind.FAILED_PRECONDITION


class LimitOrdersUnsupported(_Refusal):
    reason = "LIMIT_ORDERS_UNSUPPORTED"
    field = "order_type"


class DailyLimitExceeded(_Refusal):
    reason = "DAILY_LIMIT_EXCEEDED"
    field = "amount"


class InsufficientFunds(_Refusal):
    reason = "INSUFFICIENT_FUNDS"
    field = "amount"


class InsufficientHoldings(_Refusal):
    reason = "INSUFFICIENT_HOLDINGS"
    field = "quantity"


class OrderValueTooHigh(_Refusal):
    reason = "ORDER_VALUE_TOO_HIGH"
    field = "quantity"


class ProtectionPriceBreached(_Refusal):
    reason = "PROTECTION_PRICE_BREACHED"
    field = "price"


class AssetNotTradable(_Refusal):
    reason = "ASSET_NOT_TRADABLE"
    field = "asset_id"


class IdempotencyConflict(OrderRuleError):
    kind = ErrorKind.ALREADY_EXISTS
    reason = "IDEMPOTENCY_CONFLICT"


# --- Parsing and validation -----------------------------------------------------------


class OrderType(enum.StrEnum):
    MARKET_BUY = "market_buy"
    MARKET_SELL = "market_sell"
    LIMIT_BUY = "limit_buy"
    LIMIT_SELL = "limit_sell"


def decimal_places(value: Decimal) -> int:
    """Decimals that carry information: trailing zeros do not count ("10.500" has 1)."""
    _, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int):
        raise ValueError(f"{value} is not a finite number")
    places = -exponent
    for digit in reversed(digits):
        if places <= 0 or digit != 0:
            break
        places -= 1
    return max(places, 0)


def _parse_decimal_text(raw: str, error: type[_FieldError]) -> Decimal:
    text = raw.strip()
    if not text:
        raise error("is required")
    if len(text) > _MAX_DECIMAL_TEXT_LENGTH or not _DECIMAL_TEXT.fullmatch(text):
        raise error("must be a plain decimal number, such as 12.34")
    return Decimal(text)


def check_amount(value: Decimal) -> Decimal:
    """A deposit or withdrawal amount, returned with exactly 2 decimals."""
    if not value.is_finite():
        raise InvalidAmount("must be a number")
    if value <= 0:
        raise InvalidAmount("must be greater than 0")
    if value > MAX_AMOUNT:
        raise InvalidAmount(f"must be at most {format_cash(MAX_AMOUNT)}")
    if decimal_places(value) > CASH_PLACES:
        raise InvalidAmount(f"must have at most {CASH_PLACES} decimals")
    return value.quantize(CENT)


def parse_amount(raw: str) -> Decimal:
    """Amount text ("100", "100.5", "100.50"; not "1e3", "NaN", "-5", "0.001")."""
    return check_amount(_parse_decimal_text(raw, InvalidAmount))


def check_quantity(value: Decimal) -> Decimal:
    """An order quantity, returned with exactly 8 decimals."""
    if not value.is_finite():
        raise InvalidQuantity("must be a number")
    if value < MIN_QUANTITY:
        raise InvalidQuantity(f"must be at least {MIN_QUANTITY}")
    if value > MAX_QUANTITY:
        raise InvalidQuantity(f"must be at most {MAX_QUANTITY}")
    if decimal_places(value) > QUANTITY_PLACES:
        raise InvalidQuantity(f"must have at most {QUANTITY_PLACES} decimals")
    return value.quantize(QUANTITY_QUANTUM)


def parse_quantity(raw: str) -> Decimal:
    return check_quantity(_parse_decimal_text(raw, InvalidQuantity))


def check_price(value: Decimal) -> Decimal:
    """A protection (or, later, limit) price given by the user."""
    if not value.is_finite():
        raise InvalidPrice("must be a number")
    if value <= 0:
        raise InvalidPrice("must be greater than 0")
    if value > MAX_PRICE:
        raise InvalidPrice(f"must be at most {format_cash(MAX_PRICE)}")
    if decimal_places(value) > PRICE_PLACES:
        raise InvalidPrice(f"must have at most {PRICE_PLACES} decimals")
    return value


def parse_price(raw: str) -> Decimal:
    return check_price(_parse_decimal_text(raw, InvalidPrice))


def parse_order_type(raw: str) -> OrderType:
    """The order type; only market orders execute today, limit orders are refused."""
    try:
        order_type = OrderType(raw.strip())
    except ValueError:
        choices = ", ".join(t.value for t in OrderType)
        raise InvalidOrderType(f"must be one of {choices}") from None
    if order_type in (OrderType.LIMIT_BUY, OrderType.LIMIT_SELL):
        raise LimitOrdersUnsupported(
            "limit orders are not available yet; place a market order, optionally with "
            "a protection price"
        )
    return order_type


def parse_asset_id(raw: str) -> str:
    """1 to 10 letters or digits, upper-cased ("btc" -> "BTC")."""
    text = raw.strip()
    if not _ASSET_ID.fullmatch(text):
        raise InvalidAssetId("must be 1 to 10 letters or digits")
    return text.upper()


def parse_idempotency_key(raw: str) -> str:
    """An Idempotency-Key: 1 to 128 visible ASCII characters.

    The bound matters: keys are stored in the account item, whose size is limited.
    """
    if len(raw) > MAX_IDEMPOTENCY_KEY_LENGTH or not _IDEMPOTENCY_KEY.fullmatch(raw):
        raise InvalidIdempotencyKey(
            f"must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} visible ASCII characters"
        )
    return raw


# --- Formatting and rounding ----------------------------------------------------------


def _quantize_exactly(value: Decimal, quantum: Decimal) -> Decimal:
    quantized = value.quantize(quantum)
    if quantized != value:
        # Formatting must never round money silently: round explicitly before.
        raise ValueError(f"{value} has more decimals than {quantum}")
    return quantized


def format_cash(value: Decimal) -> str:
    """Cash with exactly 2 decimals ("1000.00"); refuses a sub-cent value."""
    return f"{_quantize_exactly(value, CENT):f}"


def format_quantity(value: Decimal) -> str:
    """A quantity with exactly 8 decimals ("0.10000000")."""
    return f"{_quantize_exactly(value, QUANTITY_QUANTUM):f}"


def format_price(value: Decimal) -> str:
    """A price as quoted, in plain notation ("50000.00", never "5E+4")."""
    return f"{value:f}"


def format_percentage(value: Decimal) -> str:
    return f"{value.quantize(CENT, rounding=ROUND_HALF_EVEN):f}"


def _exact_product(a: Decimal, b: Decimal) -> Decimal:
    # The default context keeps 28 digits; a long quantity times a long price could be
    # rounded before the rounding to the cent, which could then go the wrong way.
    with localcontext() as ctx:
        ctx.prec = len(a.as_tuple().digits) + len(b.as_tuple().digits) + 1
        return a * b


def notional(quantity: Decimal, price: Decimal) -> Decimal:
    """quantity × price, exactly (no rounding)."""
    return _exact_product(quantity, price)


def buy_cost(quantity: Decimal, price: Decimal) -> Decimal:
    """What a buy costs: quantity × price rounded up to the cent."""
    return notional(quantity, price).quantize(CENT, rounding=ROUND_CEILING)


def sell_proceeds(quantity: Decimal, price: Decimal) -> Decimal:
    """What a sale pays: quantity × price rounded down to the cent."""
    return notional(quantity, price).quantize(CENT, rounding=ROUND_FLOOR)


def market_value(quantity: Decimal, price: Decimal) -> Decimal:
    """A holding's value, rounded down to the cent: what selling it would at most pay."""
    return sell_proceeds(quantity, price)


# --- Time and ids ---------------------------------------------------------------------


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("datetimes must be timezone-aware")
    return moment.astimezone(UTC)


def sort_key(created_at: datetime, op_id: str) -> str:
    """A key that sorts chronologically as a string: zero-padded epoch µs, then the id.

    The id breaks ties between operations of the same microsecond, so keys are unique.
    """
    micros = (_utc(created_at) - _EPOCH) // _ONE_MICROSECOND
    if micros < 0:
        raise ValueError("times before 1970 have no sort key")
    return f"{micros:020d}#{op_id}"


def _name_based_id(name: str) -> str:
    return str(uuid.uuid5(_ID_NAMESPACE, name))


def operation_id(user_id: str, idempotency_key: str | None, version: int, fresh_id: str) -> str:
    """The id of an operation: from the idempotency key when there is one, else fresh.

    With a key it is a function of the user, the key and the account version the
    operation creates: two racing requests with one key decide the same id, and a key
    reused after its 24 h window still gets a new id (so it never overwrites an old order).
    """
    if idempotency_key is None:
        return fresh_id
    return _name_based_id(f"operation\n{user_id}\n{version}\n{idempotency_key}")


def request_fingerprint(kind: str, fields: Mapping[str, str]) -> str:
    """sha256 of a canonical encoding of a request body (hex).

    Callers pass normalized values (e.g. `format_cash(parse_amount(raw))`), so that
    "100" and "100.00" are the same request.
    """
    canonical = json.dumps(
        {"kind": kind, "fields": dict(fields)},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
    )
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


# --- Account state --------------------------------------------------------------------


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

    @property
    def cash_delta(self) -> Decimal:
        return -self.amount if self.kind.takes_cash else self.amount


@dataclass(frozen=True)
class Account:
    """A user's trading account: the single storage item every change rewrites.

    `version` is 0 for an account never stored; each change increments it by one and the
    store writes on the condition that the stored version is still the one read.
    `day` is the UTC date that `deposited_today` and `withdrawn_today` count.
    `recent` holds keyed operations of the last 24 h, oldest first, at most
    MAX_RECENT_OPERATIONS. `last_operation` is the newest change, keyed or not, so that
    its derived items can be completed after a crash between the two writes.
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
    recent: tuple[AppliedOperation, ...] = ()
    last_operation: AppliedOperation | None = None

    def quantity_of(self, asset_id: str) -> Decimal:
        holding = self.holdings.get(asset_id)
        return holding.quantity if holding else Decimal(0)


@dataclass(frozen=True)
class Change:
    """An operation's result: the account to write and the operation it records."""

    account: Account
    operation: AppliedOperation


def new_account(user_id: str, now: datetime) -> Account:
    """The state of a user who has no account item yet: no cash, nothing held."""
    now = _utc(now)
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


# --- Idempotency ----------------------------------------------------------------------


def _is_recent(operation: AppliedOperation, now: datetime) -> bool:
    return now - operation.created_at < IDEMPOTENCY_WINDOW


def find_replay(
    account: Account, idempotency_key: str | None, fingerprint: str, now: datetime
) -> AppliedOperation | None:
    """The operation recorded for this key in the last 24 h, to answer again unchanged.

    Raises IdempotencyConflict when the key was used for a different request body.
    """
    if idempotency_key is None:
        return None
    now = _utc(now)
    for operation in reversed(account.recent):
        if operation.idempotency_key == idempotency_key and _is_recent(operation, now):
            if operation.fingerprint != fingerprint:
                raise IdempotencyConflict(
                    "this Idempotency-Key was already used for a different request; "
                    "use a new key for a new request"
                )
            return operation
    return None


def _remember(
    recent: tuple[AppliedOperation, ...], operation: AppliedOperation, now: datetime
) -> tuple[AppliedOperation, ...]:
    kept = tuple(entry for entry in recent if _is_recent(entry, now))
    if operation.idempotency_key is not None:
        kept += (operation,)
    return kept[-MAX_RECENT_OPERATIONS:]


@dataclass(frozen=True)
class _Request:
    """Who asks and when: the arguments every operation shares."""

    now: datetime
    fresh_id: str
    idempotency_key: str | None
    fingerprint: str

    def __post_init__(self) -> None:
        if self.idempotency_key is not None and not self.fingerprint:
            raise ValueError("a request with an idempotency key needs its fingerprint")


def _refuse_seen_key(account: Account, request: _Request) -> None:
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
    request: _Request,
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
        recent=_remember(account.recent, operation, request.now),
        last_operation=operation,
    )
    return Change(updated, operation)


# --- Operations -----------------------------------------------------------------------


def deposit(
    account: Account,
    amount: Decimal,
    *,
    now: datetime,
    limits: Limits,
    fresh_id: str,
    idempotency_key: str | None = None,
    fingerprint: str = "",
) -> Change:
    request = _Request(_utc(now), fresh_id, idempotency_key, fingerprint)
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


def withdraw(
    account: Account,
    amount: Decimal,
    *,
    now: datetime,
    limits: Limits,
    fresh_id: str,
    idempotency_key: str | None = None,
    fingerprint: str = "",
) -> Change:
    request = _Request(_utc(now), fresh_id, idempotency_key, fingerprint)
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


def _check_tradable(asset_id: str, quote_price: Decimal, quote_is_active: bool) -> None:
    if not quote_is_active:
        raise AssetNotTradable(f"{asset_id} is not tradable at the moment")
    if not quote_price.is_finite() or quote_price <= 0:
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


def market_buy(
    account: Account,
    *,
    asset_id: str,
    quantity: Decimal,
    quote_price: Decimal,
    quote_is_active: bool,
    protection_price: Decimal | None,
    now: datetime,
    limits: Limits,
    fresh_id: str,
    idempotency_key: str | None = None,
    fingerprint: str = "",
) -> Change:
    """Buys at the quote; the cost (rounded up to the cent) leaves the cash."""
    request = _Request(_utc(now), fresh_id, idempotency_key, fingerprint)
    _refuse_seen_key(account, request)
    quantity = check_quantity(quantity)
    _check_tradable(asset_id, quote_price, quote_is_active)
    if protection_price is not None and quote_price > check_price(protection_price):
        raise ProtectionPriceBreached(
            f"the price of {asset_id} is {format_price(quote_price)}, above your "
            f"protection price of {format_price(protection_price)}; nothing was bought"
        )
    _check_order_value(quantity, quote_price, limits)
    cost = buy_cost(quantity, quote_price)
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
        trade=Trade(OrderType.MARKET_BUY, asset_id, quantity, quote_price),
    )


def market_sell(
    account: Account,
    *,
    asset_id: str,
    quantity: Decimal,
    quote_price: Decimal,
    quote_is_active: bool,
    protection_price: Decimal | None,
    now: datetime,
    limits: Limits,
    fresh_id: str,
    idempotency_key: str | None = None,
    fingerprint: str = "",
) -> Change:
    """Sells at the quote; the proceeds (rounded down to the cent) join the cash."""
    request = _Request(_utc(now), fresh_id, idempotency_key, fingerprint)
    _refuse_seen_key(account, request)
    quantity = check_quantity(quantity)
    held = account.quantity_of(asset_id)
    if quantity > held:
        raise InsufficientHoldings(
            f"insufficient holdings: {format_quantity(held)} {asset_id} held, "
            f"{format_quantity(quantity)} to sell"
        )
    _check_tradable(asset_id, quote_price, quote_is_active)
    if protection_price is not None and quote_price < check_price(protection_price):
        raise ProtectionPriceBreached(
            f"the price of {asset_id} is {format_price(quote_price)}, below your "
            f"protection price of {format_price(protection_price)}; nothing was sold"
        )
    _check_order_value(quantity, quote_price, limits)
    proceeds = sell_proceeds(quantity, quote_price)
    return _commit(
        account,
        request,
        kind=OperationKind.SELL,
        amount=proceeds,
        cash=account.cash + proceeds,
        counters=_counters_for(account, request.now),
        holdings=_holdings_with(account.holdings, asset_id, held - quantity, request.now),
        trade=Trade(OrderType.MARKET_SELL, asset_id, quantity, quote_price),
    )


# --- Derived items: orders and ledger entries -----------------------------------------


@dataclass(frozen=True)
class OrderRecord:
    order_id: str
    order_type: OrderType
    asset_id: str
    quantity: Decimal
    price: Decimal
    status: str
    total_amount: Decimal
    created_at: datetime


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
    """Everything an operation writes besides the account; trades have all three."""

    cash_entry: CashEntry
    order: OrderRecord | None = None
    asset_entry: AssetEntry | None = None


def order_id_of(operation: AppliedOperation) -> str:
    return _name_based_id(f"order\n{operation.operation_id}")


def cash_transaction_id_of(operation: AppliedOperation) -> str:
    return _name_based_id(f"cash\n{operation.operation_id}")


def asset_transaction_id_of(operation: AppliedOperation) -> str:
    return _name_based_id(f"asset\n{operation.operation_id}")


def _trade_of(operation: AppliedOperation) -> Trade:
    if operation.trade is None:
        raise ValueError(f"operation {operation.operation_id} is not a trade")
    return operation.trade


def order_record(operation: AppliedOperation) -> OrderRecord:
    trade = _trade_of(operation)
    return OrderRecord(
        order_id=order_id_of(operation),
        order_type=trade.order_type,
        asset_id=trade.asset_id,
        quantity=trade.quantity,
        price=trade.price,
        status=STATUS_COMPLETED,
        total_amount=operation.amount,
        created_at=operation.created_at,
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
    if operation.trade is None:
        return DerivedItems(cash_entry(operation))
    return DerivedItems(cash_entry(operation), order_record(operation), asset_entry(operation))


def ledger_balance(entries: Iterable[CashEntry]) -> Decimal:
    """The cash that a ledger adds up to; equals the account's cash when complete."""
    return sum((entry.amount for entry in entries), Decimal("0.00"))


# --- Portfolio ------------------------------------------------------------------------


@dataclass(frozen=True)
class PortfolioLine:
    asset_id: str
    quantity: Decimal
    current_price: Decimal
    # quantity × price rounded down to the cent.
    market_value: Decimal
    # Share of cash + holdings in percent, 2 decimals; 0.00 when the total is 0.
    percentage: Decimal


@dataclass(frozen=True)
class Portfolio:
    assets: tuple[PortfolioLine, ...]
    cash_balance: Decimal
    total_asset_value: Decimal
    total_value: Decimal


def _share(part: Decimal, total: Decimal) -> Decimal:
    if total == 0:
        return Decimal("0.00")
    return (part * 100 / total).quantize(CENT, rounding=ROUND_HALF_EVEN)


def value_portfolio(
    cash: Decimal, holdings: Mapping[str, Decimal], prices: Mapping[str, Decimal]
) -> Portfolio:
    """Cash and holdings (asset id → quantity) valued at `prices`, largest value first.

    Market values are rounded down to the cent, so the portfolio never shows more than
    selling would pay. A price is needed for every non-zero holding.
    """
    held = {asset_id: qty for asset_id, qty in holdings.items() if qty != 0}
    missing = sorted(set(held) - set(prices))
    if missing:
        raise ValueError(f"no price for {', '.join(missing)}")
    values = {asset_id: market_value(qty, prices[asset_id]) for asset_id, qty in held.items()}
    total_asset_value = sum(values.values(), Decimal("0.00"))
    total_value = cash + total_asset_value
    lines = tuple(
        PortfolioLine(
            asset_id=asset_id,
            quantity=held[asset_id],
            current_price=prices[asset_id],
            market_value=values[asset_id],
            percentage=_share(values[asset_id], total_value),
        )
        for asset_id in sorted(values, key=lambda a: (-values[a], a))
    )
    return Portfolio(lines, cash, total_asset_value, total_value)
