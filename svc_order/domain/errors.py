"""The order rules' refusals: typed errors that the error interceptor maps to statuses."""

from __future__ import annotations

from typing import Any

from common.errors import DomainError, ErrorKind, FieldViolation


class OrderRuleError(DomainError):
    """A request the order rules refuse; the message is safe to show to the user.

    `kind` tells the error interceptor the status code, `reason` is the stable code
    clients see, `field` names the request field at fault when there is one. A rule
    met by several requests names the fields the client sent on each (`fields`).
    """

    field: str | None = None

    def __init__(
        self, message: str, *, fields: tuple[str, ...] | None = None, **details: Any
    ) -> None:
        super().__init__(message, **details)
        named = fields if fields is not None else (() if self.field is None else (self.field,))
        if named and not self.violations:
            # Clients show rule refusals next to the field, as they do bad input.
            self.violations = tuple(FieldViolation(name, message) for name in named)


class FieldError(OrderRuleError):
    """Bad input in one request field, reported as a field violation too."""

    kind = ErrorKind.INVALID_ARGUMENT
    field = "value"

    def __init__(self, problem: str) -> None:
        super().__init__(f"{self.field} {problem}")
        self.violations = (FieldViolation(self.field, problem),)


class InvalidAmount(FieldError):
    reason = "INVALID_AMOUNT"
    field = "amount"


class InvalidQuantity(FieldError):
    reason = "INVALID_QUANTITY"
    field = "quantity"


class InvalidPrice(FieldError):
    reason = "INVALID_PRICE"
    field = "price"


class InvalidOrderType(FieldError):
    reason = "INVALID_ORDER_TYPE"
    field = "order_type"


class InvalidTimeInForce(FieldError):
    reason = "INVALID_TIME_IN_FORCE"
    field = "time_in_force"


class InvalidExpiry(FieldError):
    reason = "INVALID_EXPIRES_AT"
    field = "expires_at"


class InvalidStatus(FieldError):
    reason = "INVALID_STATUS"
    field = "status"


class InvalidAssetId(FieldError):
    reason = "INVALID_ASSET_ID"
    field = "asset_id"


class InvalidIdempotencyKey(FieldError):
    reason = "INVALID_IDEMPOTENCY_KEY"
    field = "idempotency_key"


class Refusal(OrderRuleError):
    """Well-formed input that the rules refuse in the account's current state."""

    kind = ErrorKind.FAILED_PRECONDITION


class DailyLimitExceeded(Refusal):
    reason = "DAILY_LIMIT_EXCEEDED"
    field = "amount"


class InsufficientFunds(Refusal):
    """Not enough available cash. Names what the client sent that set the sum: `amount`
    on a withdrawal; `quantity` on a buy at the quote, `quantity` and `price` on a
    limit buy whose hold is quantity × limit."""

    reason = "INSUFFICIENT_FUNDS"

    def __init__(self, message: str, *, fields: tuple[str, ...]) -> None:
        super().__init__(message, fields=fields)


class InsufficientHoldings(Refusal):
    reason = "INSUFFICIENT_HOLDINGS"
    field = "quantity"


class OrderValueTooHigh(Refusal):
    """Names `quantity` (at the quote) or `quantity` and `price` (at a limit): the
    fields the value was computed from."""

    reason = "ORDER_VALUE_TOO_HIGH"
    field = "quantity"


class ProtectionPriceBreached(Refusal):
    reason = "PROTECTION_PRICE_BREACHED"
    field = "price"


class AssetNotTradable(Refusal):
    reason = "ASSET_NOT_TRADABLE"
    field = "asset_id"


class UnknownAsset(Refusal):
    """An order names an asset the catalogue does not have. The route exists and the
    body refers to something missing: a refusal of the request (422), not a 404."""

    reason = "UNKNOWN_ASSET"
    field = "asset_id"


class TooManyOpenOrders(Refusal):
    reason = "TOO_MANY_OPEN_ORDERS"
    field = "order_type"


class OrderNotCancellable(OrderRuleError):
    """The order is no longer resting; answered the same way however often it is asked.

    ABORTED, not FAILED_PRECONDITION: API.md answers a cancel of a finished order 409.
    """

    kind = ErrorKind.ABORTED
    reason = "ORDER_NOT_CANCELLABLE"


class IdempotencyConflict(OrderRuleError):
    kind = ErrorKind.ALREADY_EXISTS
    reason = "IDEMPOTENCY_CONFLICT"


class AccountClosed(Refusal):
    reason = "ACCOUNT_CLOSED"


class AccountNotEmpty(OrderRuleError):
    """Closing needs zero cash and nothing held; the message says what to move first.

    ABORTED, which the REST surface answers 409 (API.md: account/close).
    """

    kind = ErrorKind.ABORTED
    reason = "ACCOUNT_NOT_EMPTY"
