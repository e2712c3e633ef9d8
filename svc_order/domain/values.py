"""Values of requests and how money is written and rounded: parsing, checks, formats.

Text formats (what `format_*` produce and the API shows):
- cash: exactly 2 decimals, "1000.00";
- quantities: exactly 8 decimals, "0.10000000" (the API's own example is "0.00100000");
- prices: as quoted, in plain notation (never an exponent);
- percentages: 2 decimals.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal, localcontext

from common import idempotency
from svc_order.domain.errors import (
    FieldError,
    InvalidAmount,
    InvalidAssetId,
    InvalidIdempotencyKey,
    InvalidOrderType,
    InvalidPrice,
    InvalidQuantity,
    InvalidStatus,
    InvalidTimeInForce,
)

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
MAX_IDEMPOTENCY_KEY_LENGTH = idempotency.MAX_LENGTH

# Plain decimal notation only: no sign other than "-", no exponent, no NaN/Infinity, and
# ASCII digits only (Decimal() would accept other scripts' digits).
_DECIMAL_TEXT = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_MAX_DECIMAL_TEXT_LENGTH = 40
_ASSET_ID = re.compile(r"[A-Za-z0-9]{1,10}")


class OrderType(enum.StrEnum):
    MARKET_BUY = "market_buy"
    MARKET_SELL = "market_sell"
    LIMIT_BUY = "limit_buy"
    LIMIT_SELL = "limit_sell"

    @property
    def is_buy(self) -> bool:
        return self in (OrderType.MARKET_BUY, OrderType.LIMIT_BUY)

    @property
    def is_limit(self) -> bool:
        return self in (OrderType.LIMIT_BUY, OrderType.LIMIT_SELL)


class TimeInForce(enum.StrEnum):
    """How long a limit order may rest (the names brokers and exchanges use)."""

    GTC = "gtc"  # good till cancelled
    DAY = "day"  # until the next 00:00 UTC
    GTD = "gtd"  # good till a date: until `expires_at`
    IOC = "ioc"  # immediate or cancel
    FOK = "fok"  # fill or kill: all now or nothing

    @property
    def may_rest(self) -> bool:
        return self not in (TimeInForce.IOC, TimeInForce.FOK)


class OrderStatus(enum.StrEnum):
    """pending (resting) -> completed | cancelled | expired; market orders complete at once."""

    PENDING = "pending"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


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


def _parse_decimal_text(raw: str, error: type[FieldError]) -> Decimal:
    text = raw.strip()
    if not text:
        raise error("is required")
    if len(text) > _MAX_DECIMAL_TEXT_LENGTH or not _DECIMAL_TEXT.fullmatch(text):
        raise error("must be a plain decimal number, such as 12.34")
    return Decimal(text)


@dataclass(frozen=True)
class BoundedDecimal:
    """The one rule of a decimal a user gives (an amount, a quantity, a price): finite,
    above `minimum` (or at least it, when `minimum_allowed`), at most `maximum`, with at
    most `places` decimals that carry information. Refusals are `error` (its reason and
    field); `show` writes a bound in a message. A checked value is padded to `places`
    decimals when `pad` (cash and quantities are; prices stay as given)."""

    error: type[FieldError]
    minimum: Decimal
    maximum: Decimal
    places: int
    minimum_allowed: bool = False
    pad: bool = True
    show: Callable[[Decimal], str] = str

    def check(self, value: Decimal) -> Decimal:
        if not value.is_finite():
            raise self.error("must be a number")
        if self.minimum_allowed and value < self.minimum:
            raise self.error(f"must be at least {self.show(self.minimum)}")
        if not self.minimum_allowed and value <= self.minimum:
            raise self.error(f"must be greater than {self.show(self.minimum)}")
        if value > self.maximum:
            raise self.error(f"must be at most {self.show(self.maximum)}")
        if decimal_places(value) > self.places:
            raise self.error(f"must have at most {self.places} decimals")
        return value.quantize(Decimal(1).scaleb(-self.places)) if self.pad else value

    def parse(self, raw: str) -> Decimal:
        """The value of plain decimal text ("100", "100.5"; not "1e3", "NaN")."""
        return self.check(_parse_decimal_text(raw, self.error))


def parse_order_type(raw: str) -> OrderType:
    try:
        return OrderType(raw)
    except ValueError:
        choices = ", ".join(t.value for t in OrderType)
        raise InvalidOrderType(f"must be one of {choices}") from None


def parse_time_in_force(raw: str) -> TimeInForce:
    try:
        return TimeInForce(raw)
    except ValueError:
        choices = ", ".join(t.value for t in TimeInForce)
        raise InvalidTimeInForce(f"must be one of {choices}") from None


def parse_status_filter(raw: str) -> OrderStatus:
    """A list filter: a status, or "open" for the resting (pending) orders."""
    text = raw
    if text == "open":
        return OrderStatus.PENDING
    try:
        return OrderStatus(text)
    except ValueError:
        choices = ", ".join([*(s.value for s in OrderStatus), "open"])
        raise InvalidStatus(f"must be one of {choices}") from None


def parse_asset_id(raw: str) -> str:
    """1 to 10 letters or digits, upper-cased ("btc" -> "BTC"). Nothing is trimmed:
    " btc" is refused here as it is by svc_inventory (the contract's pattern)."""
    if not _ASSET_ID.fullmatch(raw):
        raise InvalidAssetId("must be 1 to 10 letters or digits")
    return raw.upper()


def parse_idempotency_key(raw: str) -> str:
    """An Idempotency-Key as common.idempotency defines it (1 to 128 visible ASCII
    characters). The bound matters: keys are stored in the account item."""
    if not idempotency.is_valid_key(raw):
        raise InvalidIdempotencyKey(f"must be {idempotency.DESCRIPTION}")
    return raw


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


# A deposit or withdrawal amount, returned with exactly 2 decimals.
AMOUNT = BoundedDecimal(InvalidAmount, Decimal(0), MAX_AMOUNT, CASH_PLACES, show=format_cash)
# An order quantity, returned with exactly 8 decimals.
QUANTITY = BoundedDecimal(
    InvalidQuantity, MIN_QUANTITY, MAX_QUANTITY, QUANTITY_PLACES, minimum_allowed=True
)
# A protection or limit price given by the user, returned as given.
PRICE = BoundedDecimal(InvalidPrice, Decimal(0), MAX_PRICE, PRICE_PLACES, pad=False)

check_amount = AMOUNT.check
parse_amount = AMOUNT.parse
check_quantity = QUANTITY.check
parse_quantity = QUANTITY.parse
check_price = PRICE.check
parse_price = PRICE.parse


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
