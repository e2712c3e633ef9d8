"""A lost write race is decided again on fresh state, a bounded number of times.

The service runs on the real store (dynalite); a rival writer slips a deposit in
between each read and write, as another instance would, so the races are exact.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from common.dynamo import Table, make_client
from common.errors import Aborted
from svc_order import domain
from svc_order.config import OrderSettings
from svc_order.domain import Account, Limits, Request, derived_items
from svc_order.quotes import Quote
from svc_order.service import OrderService
from svc_order.store import DynamoTradingStore, PageRequest
from tests.support import unique


class RivalWriter(DynamoTradingStore):
    """The real store, except that before each of the first `rounds` account writes a
    rival deposits 1.00 from the same state, and so wins."""

    def __init__(self, table: Table, rounds: int) -> None:
        super().__init__(table)
        self.rounds = rounds

    def save_account(self, account: Account, read_version: int) -> bool:
        if self.rounds > 0:
            self.rounds -= 1
            current = self.get_account(account.user_id) or domain.new_account(
                account.user_id, datetime.now(UTC)
            )
            rival = domain.deposit(
                current, Decimal("1.00"), Request(datetime.now(UTC), str(uuid.uuid4())), Limits()
            )
            assert super().save_account(rival.account, current.version)
            self.put_derived(account.user_id, derived_items(rival.operation))
        return super().save_account(account, read_version)


class NoQuotes:
    def quotes(self, asset_ids: object) -> dict[str, Quote]:
        return {}

    def request_quotes(self, asset_ids: object) -> Callable[[], dict[str, Quote]]:
        return dict


@pytest.fixture
def service_with_rival(
    make_order_settings: Callable[..., OrderSettings],
) -> Callable[[int], tuple[OrderService, RivalWriter]]:
    settings = make_order_settings()
    client = make_client(settings.dynamodb_endpoint, settings.aws_region)
    table = Table(client, settings.table_prefix + settings.trading_table)

    def make(rounds: int) -> tuple[OrderService, RivalWriter]:
        rival = RivalWriter(table, rounds)
        service = OrderService(
            store=rival,
            quotes=NoQuotes(),
            limits=Limits(),
            clock=lambda: datetime.now(UTC),
            new_id=lambda: str(uuid.uuid4()),
            max_quote_age=timedelta(seconds=10),
            write_attempts=3,
        )
        return service, rival

    return make


def test_a_lost_race_is_decided_again_on_the_winners_state(
    service_with_rival: Callable[[int], tuple[OrderService, RivalWriter]],
) -> None:
    service, rival = service_with_rival(2)
    user = unique()
    receipt = service.deposit(user, "100", None)
    # Two rival deposits came first; this one was applied on top of both.
    assert receipt.cash_after == Decimal("102.00")
    assert service.balance(user).cash == Decimal("102.00")
    assert rival.count_cash_entries(user) == 3
    assert rival.rounds == 0


def test_too_many_lost_races_answer_aborted_and_change_nothing_of_ours(
    service_with_rival: Callable[[int], tuple[OrderService, RivalWriter]],
) -> None:
    service, _ = service_with_rival(3)
    user = unique()
    with pytest.raises(Aborted):
        service.deposit(user, "100", None)
    # Only the rival's three deposits happened.
    assert service.balance(user).cash == Decimal("3.00")
    ledger = service.cash_transactions(user, PageRequest(limit=10))[0]
    assert [entry.amount for entry in ledger.items] == [Decimal("1.00")] * 3
