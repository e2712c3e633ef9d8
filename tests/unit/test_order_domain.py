"""The order service's rules, one accept and one refuse example at a time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import ROUND_CEILING, Decimal

import pytest

from common.errors import ErrorKind, FieldViolation
from svc_order import domain
from svc_order.domain import (
    Account,
    AssetNotTradable,
    Change,
    DailyLimitExceeded,
    IdempotencyConflict,
    InsufficientFunds,
    InsufficientHoldings,
    InvalidAmount,
    InvalidAssetId,
    InvalidExpiry,
    InvalidIdempotencyKey,
    InvalidOrderType,
    InvalidPrice,
    InvalidQuantity,
    InvalidStatus,
    InvalidTimeInForce,
    Limits,
    MarketQuote,
    OperationKind,
    OrderNotCancellable,
    OrderRequest,
    OrderRuleError,
    OrderType,
    OrderValueTooHigh,
    ProtectionPriceBreached,
    Request,
    TooManyOpenOrders,
)
from svc_order.domain.errors import FieldError

D = Decimal
NOON = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)
LIMITS = Limits()


def funded(cash: str, now: datetime = NOON) -> Account:
    account = domain.new_account("user-1", now - timedelta(days=2))
    if D(cash) == 0:
        return account
    # Fund on an earlier day so the day's deposit counter starts at zero.
    return domain.deposit(
        account, D(cash), Request(now - timedelta(days=1), "f0"), Limits(D("1000000"))
    ).account


def deposit(
    account: Account, amount: str, now: datetime = NOON, key: str | None = None, body: str = "b"
) -> Change:
    return domain.deposit(
        account, D(amount), Request(now, f"fresh-{account.version}", key, body), LIMITS
    )


def withdraw(account: Account, amount: str, now: datetime = NOON) -> Change:
    return domain.withdraw(account, D(amount), Request(now, f"fresh-{account.version}"), LIMITS)


def buy(
    account: Account,
    quantity: str,
    price: str,
    *,
    asset: str = "BTC",
    active: bool = True,
    protection: str | None = None,
    limits: Limits = LIMITS,
) -> Change:
    order = OrderRequest(
        OrderType.MARKET_BUY,
        asset,
        D(quantity),
        None if protection is None else D(protection),
    )
    return domain.place_order(
        account,
        order,
        MarketQuote(D(price), active),
        Request(NOON, f"fresh-{account.version}"),
        limits,
    )


def sell(
    account: Account,
    quantity: str,
    price: str,
    *,
    asset: str = "BTC",
    active: bool = True,
    protection: str | None = None,
) -> Change:
    order = OrderRequest(
        OrderType.MARKET_SELL,
        asset,
        D(quantity),
        None if protection is None else D(protection),
    )
    return domain.place_order(
        account,
        order,
        MarketQuote(D(price), active),
        Request(NOON, f"fresh-{account.version}"),
        LIMITS,
    )


# --- Parsing --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1000", "1000.00"),
        ("0.01", "0.01"),
        ("100.5", "100.50"),
        ("10.000", "10.00"),  # trailing zeros carry no decimals
        (" 25 ", "25.00"),
        ("1000000", "1000000.00"),
    ],
)
def test_amount_accepts_plain_decimals_up_to_two_places(raw: str, expected: str) -> None:
    assert domain.format_cash(domain.parse_amount(raw)) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "0",
        "0.00",
        "-5",
        "0.001",
        "1.005",
        "1000000.01",
        "NaN",
        "Infinity",
        "-Infinity",
        "1e3",
        "1E+3",
        "",
        "   ",
        "+5",
        ".5",
        "5.",
        "1,000",
        "٣",  # a non-ASCII digit that Decimal() itself would accept
        "0x10",
        "1" * 50,
    ],
)
def test_amount_refuses_bad_values_and_notations(raw: str) -> None:
    with pytest.raises(InvalidAmount) as refused:
        domain.parse_amount(raw)
    assert refused.value.field == "amount"
    assert refused.value.kind is ErrorKind.INVALID_ARGUMENT
    assert refused.value.violations[0].field == "amount"
    assert refused.value.message.startswith("amount ")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("0.001", "0.00100000"), ("0.1", "0.10000000"), ("2", "2.00000000"), ("1.12345678", None)],
)
def test_quantity_accepts_from_a_thousandth_with_up_to_8_decimals(
    raw: str, expected: str | None
) -> None:
    assert domain.format_quantity(domain.parse_quantity(raw)) == (expected or raw)


@pytest.mark.parametrize(
    "raw", ["0", "0.0009", "-1", "1.123456789", "1000000000.1", "nan", "1e-3", ""]
)
def test_quantity_refuses_values_out_of_bounds(raw: str) -> None:
    with pytest.raises(InvalidQuantity):
        domain.parse_quantity(raw)


@pytest.mark.parametrize("raw", ["0.00000001", "50000", "1000000", "123.45678"])
def test_price_accepts_positive_up_to_a_million(raw: str) -> None:
    assert domain.parse_price(raw) == D(raw)


@pytest.mark.parametrize("raw", ["0", "-1", "1000000.01", "0.000000001", "Infinity", "2e4"])
def test_price_refuses_out_of_range(raw: str) -> None:
    with pytest.raises(InvalidPrice):
        domain.parse_price(raw)


_AMOUNT = (domain.check_amount, "INVALID_AMOUNT", "amount")
_QUANTITY = (domain.check_quantity, "INVALID_QUANTITY", "quantity")
_PRICE = (domain.check_price, "INVALID_PRICE", "price")


@pytest.mark.parametrize(
    ("check", "reason", "field", "value", "problem"),
    [
        (*_AMOUNT, D("0"), "must be greater than 0.00"),
        (*_AMOUNT, D("1000000.01"), "must be at most 1000000.00"),
        (*_AMOUNT, D("1.001"), "must have at most 2 decimals"),
        (*_AMOUNT, D("NaN"), "must be a number"),
        (*_QUANTITY, D("0.0009"), "must be at least 0.001"),
        (*_QUANTITY, D("1000000000.1"), "must be at most 1000000000"),
        (*_QUANTITY, D("1.123456789"), "must have at most 8 decimals"),
        (*_PRICE, D("0"), "must be greater than 0"),
        (*_PRICE, D("1000000.01"), "must be at most 1000000"),
        (*_PRICE, D("1E-9"), "must have at most 8 decimals"),
        (*_PRICE, D("-Infinity"), "must be a number"),
    ],
)
def test_each_bounded_decimal_is_refused_with_its_own_code_and_field(
    check: Callable[[Decimal], Decimal], reason: str, field: str, value: Decimal, problem: str
) -> None:
    # Amounts, quantities and prices share one rule (values.BoundedDecimal); a client
    # still tells them apart by reason and field, and reads which bound was crossed.
    with pytest.raises(FieldError) as refused:
        check(value)
    assert refused.value.reason == reason
    assert refused.value.violations == (FieldViolation(field, problem),)
    assert refused.value.message == f"{field} {problem}"


def test_cash_and_quantities_are_padded_and_prices_kept_as_given() -> None:
    assert str(domain.check_amount(D("5"))) == "5.00"
    assert str(domain.check_quantity(D("0.5"))) == "0.50000000"
    assert str(domain.check_price(D("50000.5"))) == "50000.5"


def test_order_type_accepts_market_and_limit_orders() -> None:
    assert domain.parse_order_type("market_buy") is OrderType.MARKET_BUY
    assert domain.parse_order_type("market_sell") is OrderType.MARKET_SELL
    assert domain.parse_order_type("limit_buy") is OrderType.LIMIT_BUY
    assert domain.parse_order_type("limit_sell") is OrderType.LIMIT_SELL


@pytest.mark.parametrize("raw", ["", "buy", "MARKET_BUY", "stop_loss"])
def test_unknown_order_types_are_invalid(raw: str) -> None:
    with pytest.raises(InvalidOrderType):
        domain.parse_order_type(raw)


def test_asset_id_is_upper_cased_and_checked() -> None:
    assert domain.parse_asset_id("btc") == "BTC"
    for raw in ["", "BTC-USD", "ABCDEFGHIJK", "B C"]:
        with pytest.raises(InvalidAssetId):
            domain.parse_asset_id(raw)


def test_idempotency_key_is_bounded_visible_ascii() -> None:
    assert domain.parse_idempotency_key("3f2a-01:retry.1") == "3f2a-01:retry.1"
    for raw in ["", "a b", "x" * 129, "clé"]:
        with pytest.raises(InvalidIdempotencyKey):
            domain.parse_idempotency_key(raw)


def test_every_rule_error_has_a_stable_reason_and_a_kind() -> None:
    errors: list[type[OrderRuleError]] = [
        InvalidAmount,
        InvalidQuantity,
        InvalidPrice,
        InvalidOrderType,
        DailyLimitExceeded,
        InsufficientFunds,
        InsufficientHoldings,
        OrderValueTooHigh,
        ProtectionPriceBreached,
        AssetNotTradable,
        InvalidTimeInForce,
        InvalidExpiry,
        InvalidStatus,
        TooManyOpenOrders,
        OrderNotCancellable,
        IdempotencyConflict,
    ]
    reasons = {error.reason for error in errors}
    assert len(reasons) == len(errors)
    assert IdempotencyConflict.kind is ErrorKind.ALREADY_EXISTS
    assert InsufficientFunds.kind is ErrorKind.FAILED_PRECONDITION


# --- Formatting and rounding ----------------------------------------------------------


def test_cash_is_formatted_with_exactly_two_decimals() -> None:
    assert domain.format_cash(D("1000")) == "1000.00"
    assert domain.format_cash(D("-300.5")) == "-300.50"
    assert domain.format_cash(D("1E+3")) == "1000.00"
    with pytest.raises(ValueError, match="more decimals"):
        domain.format_cash(D("0.001"))


def test_prices_are_formatted_without_exponent() -> None:
    assert domain.format_price(D("5E+4")) == "50000"
    assert domain.format_price(D("0.00000123")) == "0.00000123"
    assert domain.format_price(D("50000.00")) == "50000.00"


def test_buy_rounds_up_and_sale_rounds_down_to_the_cent() -> None:
    assert domain.buy_cost(D("0.001"), D("33.333")) == D("0.04")
    assert domain.sell_proceeds(D("0.001"), D("33.333")) == D("0.03")
    assert domain.buy_cost(D("0.1"), D("50000.00")) == D("5000.00")
    assert domain.sell_proceeds(D("0.1"), D("50000.00")) == D("5000.00")


def test_rounding_up_sees_digits_beyond_the_default_28() -> None:
    quantity = D("1.00000000")
    price = D("100.00000000000000000000000000001")
    # At the default precision the product loses its tail and would round up to 100.00.
    assert (quantity * price).quantize(domain.CENT, rounding=ROUND_CEILING) == D("100.00")
    assert domain.buy_cost(quantity, price) == D("100.01")
    assert domain.sell_proceeds(quantity, price) == D("100.00")


# --- Deposits and withdrawals ---------------------------------------------------------


def test_a_new_account_has_nothing() -> None:
    account = domain.new_account("user-1", NOON)
    assert (account.cash, dict(account.holdings), account.version) == (D("0.00"), {}, 0)
    assert domain.format_cash(account.cash) == "0.00"


def test_deposit_adds_to_the_balance() -> None:
    first = deposit(domain.new_account("user-1", NOON), "1000")
    assert first.account.cash == D("1000.00")
    assert first.account.version == 1
    assert first.operation.kind is OperationKind.DEPOSIT
    assert first.operation.cash_after == D("1000.00")


def test_deposits_add_up() -> None:
    account = deposit(domain.new_account("user-1", NOON), "500").account
    assert deposit(account, "300").account.cash == D("800.00")


def test_withdraw_takes_from_the_balance() -> None:
    change = withdraw(funded("1000"), "300")
    assert change.account.cash == D("700.00")
    assert change.operation.cash_delta == D("-300.00")


def test_withdrawing_more_than_the_balance_is_refused() -> None:
    with pytest.raises(InsufficientFunds, match="insufficient balance"):
        withdraw(funded("100"), "100.01")


def test_operations_refuse_invalid_amounts_too() -> None:
    with pytest.raises(InvalidAmount):
        deposit(funded("0"), "0.001")
    with pytest.raises(InvalidAmount):
        withdraw(funded("10"), "-1")


def test_daily_deposit_limit() -> None:
    account = deposit(funded("0"), "9999.99").account
    account = deposit(account, "0.01").account
    with pytest.raises(DailyLimitExceeded, match=r"0\.00 can still be deposited"):
        deposit(account, "0.01")


def test_daily_withdrawal_limit() -> None:
    account = withdraw(funded("20000"), "4000").account
    with pytest.raises(DailyLimitExceeded, match=r"1000\.00 can still be withdrawn"):
        withdraw(account, "1000.01")
    assert withdraw(account, "1000").account.withdrawn_today == D("5000.00")


def test_daily_limits_reset_on_a_new_utc_day() -> None:
    late = datetime(2025, 3, 14, 23, 59, 59, tzinfo=UTC)
    account = deposit(funded("0"), "10000", now=late).account
    with pytest.raises(DailyLimitExceeded):
        deposit(account, "1", now=late)
    next_day = late + timedelta(seconds=1)
    after = deposit(account, "10000", now=next_day).account
    assert after.day == date(2025, 3, 15)
    assert after.deposited_today == D("10000.00")


def test_utc_day_is_used_whatever_the_callers_time_zone() -> None:
    new_york = datetime(2025, 3, 14, 16, 0, tzinfo=timezone(timedelta(hours=-4)))
    account = deposit(funded("0", now=NOON), "10000", now=NOON).account
    # 20:00 UTC is still 14 March in UTC although it is 16:00 in New York.
    with pytest.raises(DailyLimitExceeded):
        deposit(account, "1", now=new_york)


def test_a_clock_running_behind_does_not_reopen_the_limit() -> None:
    account = deposit(funded("0"), "10000", now=NOON).account
    with pytest.raises(DailyLimitExceeded):
        deposit(account, "1", now=NOON - timedelta(days=1))


def test_limits_are_configurable() -> None:
    small = Limits(daily_deposit_limit=D("100"), daily_withdraw_limit=D("50"))
    account = domain.deposit(funded("0"), D("100"), Request(NOON, "a"), small).account
    with pytest.raises(DailyLimitExceeded):
        domain.withdraw(account, D("51"), Request(NOON, "b"), small)
    with pytest.raises(ValueError, match="positive"):
        Limits(max_order_value=D(0))


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        deposit(funded("0"), "1", now=datetime(2025, 3, 14, 12))


# --- Orders ---------------------------------------------------------------------------


def test_buy_takes_the_cost_and_adds_the_holding() -> None:
    change = buy(funded("10000"), "0.1", "50000.00")
    assert change.account.cash == D("5000.00")
    assert change.account.quantity_of("BTC") == D("0.1")
    holding = change.account.holdings["BTC"]
    assert holding.created_at == holding.updated_at == NOON
    assert change.operation.amount == D("5000.00")


def test_buying_more_keeps_the_holdings_creation_time() -> None:
    account = buy(funded("10000"), "0.1", "100").account
    later = domain.place_order(
        account,
        OrderRequest(OrderType.MARKET_BUY, "BTC", D("0.2")),
        MarketQuote(D("100")),
        Request(NOON + timedelta(hours=1), "later"),
        LIMITS,
    ).account
    assert later.quantity_of("BTC") == D("0.3")
    assert later.holdings["BTC"].created_at == NOON
    assert later.holdings["BTC"].updated_at == NOON + timedelta(hours=1)


def test_buy_cost_is_rounded_up_and_sale_proceeds_down() -> None:
    bought = buy(funded("1"), "0.001", "33.333")
    assert bought.account.cash == D("0.96")
    sold = sell(bought.account, "0.001", "33.333")
    assert sold.account.cash == D("0.99")
    assert "BTC" not in sold.account.holdings


def test_buying_beyond_the_cash_is_refused() -> None:
    with pytest.raises(InsufficientFunds, match=r"costs 5000\.01"):
        buy(funded("5000"), "0.1", "50000.0001")


def test_order_value_above_the_maximum_is_refused() -> None:
    assert buy(funded("20000"), "0.2", "50000").account.cash == D("10000.00")
    with pytest.raises(OrderValueTooHigh, match=r"10000\.01"):
        buy(funded("20000"), "0.2", "50000.0001")
    account = buy(funded("20000"), "0.2", "50000").account
    with pytest.raises(OrderValueTooHigh):
        sell(account, "0.2", "50000.01")


def test_maximum_order_value_is_configurable() -> None:
    with pytest.raises(OrderValueTooHigh):
        buy(funded("1000"), "1", "100.01", limits=Limits(max_order_value=D("100")))


def test_inactive_assets_are_not_traded() -> None:
    with pytest.raises(AssetNotTradable, match="not tradable"):
        buy(funded("1000"), "1", "10", active=False)
    account = buy(funded("1000"), "1", "10").account
    with pytest.raises(AssetNotTradable):
        sell(account, "1", "10", active=False)


def test_a_quote_without_a_positive_price_is_not_traded() -> None:
    with pytest.raises(AssetNotTradable, match="no valid price"):
        buy(funded("1000"), "1", "0")


def test_buy_protection_refuses_a_price_above_it() -> None:
    assert buy(funded("1000"), "1", "100", protection="100").account.cash == D("900.00")
    with pytest.raises(ProtectionPriceBreached, match="above your protection price"):
        buy(funded("1000"), "1", "100.01", protection="100")


def test_sell_protection_refuses_a_price_below_it() -> None:
    account = buy(funded("1000"), "1", "100").account
    assert sell(account, "1", "100", protection="100").account.cash == D("1000.00")
    with pytest.raises(ProtectionPriceBreached, match="below your protection price"):
        sell(account, "1", "99.99", protection="100")


def test_an_invalid_protection_price_is_refused() -> None:
    with pytest.raises(InvalidPrice):
        buy(funded("1000"), "1", "100", protection="0")


def test_selling_more_than_held_is_refused() -> None:
    account = buy(funded("1000"), "0.5", "100").account
    with pytest.raises(InsufficientHoldings, match=r"0\.50000000 BTC held"):
        sell(account, "0.50000001", "100")
    with pytest.raises(InsufficientHoldings):
        sell(account, "1", "100", asset="ETH")


def test_selling_part_keeps_the_rest() -> None:
    account = buy(funded("1000"), "0.5", "100").account
    after = sell(account, "0.2", "110").account
    assert after.quantity_of("BTC") == D("0.3")
    assert after.cash == D("972.00")


def test_orders_refuse_invalid_quantities() -> None:
    with pytest.raises(InvalidQuantity):
        buy(funded("1000"), "0.0001", "100")


def test_a_refused_operation_changes_nothing() -> None:
    account = funded("100")
    with pytest.raises(InsufficientFunds):
        withdraw(account, "200")
    assert account == funded("100")


# --- Idempotency ----------------------------------------------------------------------


def last(account: domain.Account) -> tuple[domain.AppliedOperation, ...]:
    return () if account.last_operation is None else (account.last_operation,)


def test_replay_returns_the_recorded_operation_and_changes_nothing() -> None:
    fingerprint = domain.request_fingerprint("deposit", {"amount": "100.00"})
    change = deposit(funded("0"), "100", key="k-1", body=fingerprint)
    later = NOON + timedelta(hours=23)
    replay = domain.find_replay(last(change.account), "k-1", fingerprint, later)
    assert replay == change.operation
    assert replay.cash_after == D("100.00")


def test_a_replay_is_found_in_the_keys_record_once_other_operations_followed() -> None:
    first = deposit(funded("0"), "100", key="k-1", body="b")
    record = domain.derived_items(first.operation).replay
    account = first.account
    for n in range(3):
        account = deposit(account, "1", key=f"k-{n + 2}", body="b").account
    assert domain.find_replay(last(account), "k-1", "b", NOON) is None
    assert record is not None
    assert domain.find_replay((*last(account), record), "k-1", "b", NOON) == first.operation


def test_unknown_or_absent_keys_have_no_replay() -> None:
    change = deposit(funded("0"), "100", key="k-1", body="b")
    assert domain.find_replay(last(change.account), "k-2", "b", NOON) is None
    assert domain.find_replay(last(change.account), None, "b", NOON) is None


def test_same_key_with_a_different_body_is_a_conflict() -> None:
    change = deposit(funded("0"), "100", key="k-1", body="body-a")
    with pytest.raises(IdempotencyConflict) as refused:
        domain.find_replay(last(change.account), "k-1", "body-b", NOON)
    assert refused.value.kind is ErrorKind.ALREADY_EXISTS
    with pytest.raises(IdempotencyConflict):
        deposit(change.account, "200", key="k-1", body="body-b")


def test_applying_a_seen_key_again_is_a_programming_error() -> None:
    change = deposit(funded("0"), "100", key="k-1", body="b")
    with pytest.raises(ValueError, match="replay it instead"):
        deposit(change.account, "100", key="k-1", body="b")


def test_a_key_needs_a_fingerprint() -> None:
    with pytest.raises(ValueError, match="fingerprint"):
        deposit(funded("0"), "100", key="k-1", body="")


def test_keys_expire_after_24_hours() -> None:
    change = deposit(funded("0"), "100", key="k-1", body="a")
    expired = NOON + timedelta(hours=24)
    assert domain.find_replay(last(change.account), "k-1", "other body", expired) is None
    again = deposit(change.account, "100", now=expired, key="k-1", body="other body")
    assert again.account.cash == D("200.00")
    assert domain.derived_items(again.operation).replay == again.operation
    # The reused key still gets a new operation id, so no older order is overwritten.
    assert again.operation.operation_id != change.operation.operation_id


def test_the_account_holds_only_its_last_operation_however_many_keys() -> None:
    one = deposit(funded("0"), "1", key="k-0", body="b").account
    account = one
    for n in range(150):
        account = deposit(account, "1", key=f"k-{n + 1}", body="b").account
    # Same fields, one operation: every earlier key lives in its own replay record.
    assert account.last_operation is not None
    assert account.last_operation.idempotency_key == "k-150"
    assert set(vars(account)) == set(vars(one))


def test_unkeyed_operations_have_no_replay_record_but_are_the_last_operation() -> None:
    change = deposit(funded("0"), "100")
    assert domain.derived_items(change.operation).replay is None
    assert change.account.last_operation == change.operation
    assert change.operation.operation_id == "fresh-0"


def test_operation_ids_from_a_key_are_deterministic() -> None:
    first = deposit(funded("0"), "100", key="k-1", body="b").operation
    second = deposit(funded("0"), "100", key="k-1", body="b").operation
    assert first.operation_id == second.operation_id
    other_user = domain.operation_id("user-2", "k-1", 2, "fresh")
    assert other_user != first.operation_id


def test_fingerprints_are_canonical() -> None:
    a = domain.request_fingerprint("order", {"quantity": "1", "asset_id": "BTC"})
    b = domain.request_fingerprint("order", {"asset_id": "BTC", "quantity": "1"})
    assert a == b
    assert len(a) == 64
    assert a != domain.request_fingerprint("deposit", {"asset_id": "BTC", "quantity": "1"})
    assert a != domain.request_fingerprint("order", {"asset_id": "BTC", "quantity": "2"})


# --- Derived items --------------------------------------------------------------------


def test_a_buy_derives_an_order_a_cash_entry_and_an_asset_entry() -> None:
    operation = buy(funded("10000"), "0.1", "50000.00").operation
    items = domain.derived_items(operation)
    assert items.order is not None
    assert items.asset_entry is not None
    assert items.order.order_type is OrderType.MARKET_BUY
    assert (items.order.quantity, items.order.price) == (D("0.1"), D("50000.00"))
    assert items.order.total_amount == D("5000.00")
    assert items.order.status == "completed"
    assert items.cash_entry is not None
    assert items.cash_entry.transaction_type is OperationKind.BUY
    assert items.cash_entry.amount == D("-5000.00")
    assert items.cash_entry.reference_id == items.order.order_id
    assert items.asset_entry.order_id == items.order.order_id
    assert items.asset_entry.transaction_type is OperationKind.BUY


def test_a_sale_credits_the_ledger() -> None:
    account = buy(funded("1000"), "1", "100").account
    items = domain.derived_items(sell(account, "1", "100").operation)
    assert items.cash_entry is not None
    assert items.cash_entry.amount == D("100.00")
    assert items.cash_entry.transaction_type is OperationKind.SELL


def test_deposits_and_withdrawals_derive_only_a_cash_entry() -> None:
    deposited = deposit(funded("0"), "100")
    items = domain.derived_items(deposited.operation)
    assert (items.order, items.asset_entry) == (None, None)
    assert items.cash_entry is not None
    assert items.cash_entry.amount == D("100.00")
    assert items.cash_entry.reference_id == ""
    withdrawn = domain.derived_items(withdraw(deposited.account, "30").operation)
    assert withdrawn.cash_entry is not None
    assert withdrawn.cash_entry.transaction_type is OperationKind.WITHDRAWAL
    assert withdrawn.cash_entry.amount == D("-30.00")
    with pytest.raises(ValueError, match="not a trade"):
        domain.order_record(deposited.operation)


def test_derived_ids_are_deterministic_and_distinct() -> None:
    operation = buy(funded("1000"), "1", "100").operation
    assert domain.derived_items(operation) == domain.derived_items(operation)
    ids = {
        domain.order_id_of(operation),
        domain.cash_transaction_id_of(operation),
        domain.asset_transaction_id_of(operation),
    }
    assert len(ids) == 3


def test_ledger_balance_equals_the_cash() -> None:
    deposited = deposit(domain.new_account("user-1", NOON), "1000")
    bought = buy(deposited.account, "0.003", "333.33")
    sold = sell(bought.account, "0.001", "333.33")
    withdrawn = withdraw(sold.account, "100")
    changes = [deposited, bought, sold, withdrawn]
    entries = [domain.cash_entry(change.operation) for change in changes]
    # 1000 - 1.00 (0.99999 up) + 0.33 (0.33333 down) - 100
    assert domain.ledger_balance(entries) == withdrawn.account.cash == D("899.33")


def test_sort_keys_sort_chronologically() -> None:
    times = [
        datetime(1970, 1, 1, tzinfo=UTC),
        datetime(2001, 9, 9, 1, 46, 39, 999999, tzinfo=UTC),
        datetime(2001, 9, 9, 1, 46, 40, tzinfo=UTC),
        datetime(2025, 3, 14, 12, tzinfo=UTC),
        datetime(2286, 11, 20, tzinfo=UTC),
    ]
    keys = [domain.sort_key(moment, "op") for moment in times]
    assert keys == sorted(keys)
    assert domain.sort_key(NOON, "a") < domain.sort_key(NOON, "b")
    assert domain.sort_key(NOON, "x").startswith("00001741953600000000#")
    with pytest.raises(ValueError, match="1970"):
        domain.sort_key(datetime(1969, 12, 31, tzinfo=UTC), "op")


# --- Portfolio ------------------------------------------------------------------------


def test_portfolio_values_holdings_and_shares() -> None:
    portfolio = domain.value_portfolio(
        D("5000.00"),
        {"BTC": D("0.1"), "ETH": D("2"), "DOGE": D("0")},
        {"BTC": D("50000"), "ETH": D("1250.005"), "DOGE": D("0.1")},
    )
    assert [line.asset_id for line in portfolio.assets] == ["BTC", "ETH"]
    btc, eth = portfolio.assets
    assert btc.market_value == D("5000.00")
    assert eth.market_value == D("2500.01")  # 2500.010, rounded down
    assert portfolio.total_asset_value == D("7500.01")
    assert portfolio.total_value == D("12500.01")
    assert (btc.percentage, eth.percentage) == (D("40.00"), D("20.00"))


def test_portfolio_rounds_market_values_down() -> None:
    portfolio = domain.value_portfolio(D("0"), {"X": D("0.001")}, {"X": D("33.333")})
    assert portfolio.assets[0].market_value == D("0.03")


def test_an_empty_portfolio_has_no_division_by_zero() -> None:
    portfolio = domain.value_portfolio(D("0.00"), {}, {})
    assert portfolio.assets == ()
    assert portfolio.total_value == D("0.00")
    worthless = domain.value_portfolio(D("0.00"), {"X": D("0.001")}, {"X": D("0.01")})
    assert worthless.assets[0].percentage == D("0.00")


def test_portfolio_needs_a_price_for_each_holding() -> None:
    with pytest.raises(ValueError, match="no price for BTC"):
        domain.value_portfolio(D("0"), {"BTC": D("1")}, {})
