"""Cash through the real svc_order: balances, amount rules, daily limits, the ledger."""

from __future__ import annotations

import grpc
import pytest

from common.grpc_errors import field_violations
from tests.integration.order_fixtures import Trader, reason_of, refused


def test_a_new_user_has_nothing(trader: Trader) -> None:
    assert trader.balance() == "0.00"
    assert trader.cash_transactions().total_count == 0
    portfolio = trader.portfolio()
    assert (portfolio.cash_balance, portfolio.total_value) == ("0.00", "0.00")
    assert list(portfolio.assets) == []


def test_deposits_and_withdrawals_add_up_to_the_cent(trader: Trader) -> None:
    receipt = trader.deposit("1000")
    assert receipt.success
    assert receipt.current_balance == "1000.00"
    assert trader.balance() == "1000.00"
    assert trader.withdraw("300").current_balance == "700.00"
    assert trader.deposit("0.01").current_balance == "700.01"
    assert trader.balance() == "700.01"


def test_two_deposits_sum(trader: Trader) -> None:
    trader.deposit("500")
    trader.deposit("300")
    assert trader.balance() == "800.00"


@pytest.mark.parametrize("amount", ["0", "-1", "1.001", "1000000.01", "abc", "1e3", ""])
def test_an_amount_outside_the_rules_is_refused_naming_amount(trader: Trader, amount: str) -> None:
    for operation in (trader.deposit, trader.withdraw):
        error = refused(lambda op=operation: op(amount))  # type: ignore[misc]
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert [field for field, _ in field_violations(error)] == ["amount"]
    assert trader.balance() == "0.00"


def test_the_daily_deposit_limit_allows_exactly_ten_thousand(trader: Trader) -> None:
    trader.deposit("6000")
    trader.deposit("4000")
    error = refused(lambda: trader.deposit("0.01"))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason_of(error) == "DAILY_LIMIT_EXCEEDED"
    assert trader.balance() == "10000.00"


def test_the_daily_withdrawal_limit_allows_exactly_five_thousand(trader: Trader) -> None:
    trader.deposit("10000")
    trader.withdraw("5000")
    error = refused(lambda: trader.withdraw("0.01"))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason_of(error) == "DAILY_LIMIT_EXCEEDED"
    assert trader.balance() == "5000.00"


def test_withdrawing_more_than_the_balance_changes_nothing(trader: Trader) -> None:
    trader.deposit("100")
    error = refused(lambda: trader.withdraw("100.01"))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason_of(error) == "INSUFFICIENT_FUNDS"
    assert trader.balance() == "100.00"
    assert trader.cash_transactions().total_count == 1


def test_the_ledger_lists_signed_amounts_newest_first(trader: Trader) -> None:
    first = trader.deposit("1000")
    second = trader.withdraw("250.50")
    ledger = trader.cash_transactions()
    assert ledger.total_count == 2
    assert not ledger.has_more
    assert [(t.transaction_type, t.amount, t.status) for t in ledger.transactions] == [
        ("withdraw", "-250.50", "completed"),
        ("deposit", "1000.00", "completed"),
    ]
    assert [t.transaction_id for t in ledger.transactions] == [
        second.transaction_id,
        first.transaction_id,
    ]
    assert all(t.reference_id == "" for t in ledger.transactions)


def test_a_replayed_deposit_key_answers_the_same_and_moves_money_once(trader: Trader) -> None:
    first = trader.deposit("100", key="deposit-1")
    again = trader.deposit("100.00", key="deposit-1")
    assert again == first
    assert trader.balance() == "100.00"
    error = refused(lambda: trader.deposit("200", key="deposit-1"))
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS
    # The same key for another kind of request is another body, too.
    assert refused(lambda: trader.withdraw("100", key="deposit-1")).code() == (
        grpc.StatusCode.ALREADY_EXISTS
    )
    assert trader.balance() == "100.00"


def test_a_malformed_idempotency_key_is_refused(trader: Trader) -> None:
    error = refused(lambda: trader.deposit("1", key="x" * 129))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [field for field, _ in field_violations(error)] == ["idempotency_key"]


def test_every_call_needs_a_token(trader: Trader) -> None:
    anonymous = Trader("not-a-token", trader.stub)
    assert refused(anonymous.balance).code() == grpc.StatusCode.UNAUTHENTICATED
