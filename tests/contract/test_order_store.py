"""The trading store's contract, run against every engine it must work on: dynalite, moto."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from common.dynamo import Table
from common.errors import InvalidArgument
from svc_order import domain
from svc_order.domain import (
    Account,
    Change,
    Limits,
    MarketQuote,
    OrderRequest,
    OrderType,
    Request,
    derived_items,
)
from svc_order.store import (
    DynamoTradingStore,
    PageRequest,
    account_to_item,
    encode_page_token,
    operation_to_map,
)

START = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)
LIMITS = Limits()
USER = "user-1"


@pytest.fixture
def store(engine_table: Table) -> DynamoTradingStore:
    return DynamoTradingStore(engine_table)


def deposited(account: Account, amount: str, minutes: int, key: str | None = None) -> Change:
    request = Request(
        START + timedelta(minutes=minutes), f"fresh-{account.version}", key, "body" if key else ""
    )
    return domain.deposit(account, Decimal(amount), request, LIMITS)


def bought(account: Account, asset_id: str, minutes: int) -> Change:
    return domain.place_order(
        account,
        OrderRequest(OrderType.MARKET_BUY, asset_id, Decimal("0.001")),
        MarketQuote(Decimal("50000.00")),
        Request(START + timedelta(minutes=minutes), f"fresh-{account.version}"),
        LIMITS,
    )


def saved(store: DynamoTradingStore, change: Change, read: Account) -> Account:
    assert store.save_account(change.account, read.version)
    store.put_derived(USER, derived_items(change.operation))
    return change.account


@pytest.fixture
def history(store: DynamoTradingStore) -> list[Change]:
    """A deposit, then 5 buys (BTC, ETH, BTC, ...), a minute apart, all stored."""
    account = domain.new_account(USER, START)
    changes = [deposited(account, "1000", 0)]
    account = saved(store, changes[0], account)
    for n in range(5):
        change = bought(account, "BTC" if n % 2 == 0 else "ETH", n + 1)
        account = saved(store, change, account)
        changes.append(change)
    return changes


def test_an_account_round_trips_exactly(store: DynamoTradingStore) -> None:
    account = domain.new_account(USER, START)
    assert store.get_account(USER) is None
    funded = deposited(account, "1000.5", 0, key="k1")
    assert store.save_account(funded.account, 0)
    trade = bought(funded.account, "BTC", 1)
    assert store.save_account(trade.account, 1)
    assert store.get_account(USER) == trade.account


def _rivals(store: DynamoTradingStore) -> tuple[Change, list[Change]]:
    """The stored first deposit, and ten writers that all read it and decided apart."""
    first = deposited(domain.new_account(USER, START), "100", 0)
    assert store.save_account(first.account, 0)
    return first, [deposited(first.account, f"{n + 1}", 1) for n in range(10)]


def test_a_version_race_has_exactly_one_winner(store: DynamoTradingStore) -> None:
    first, rivals = _rivals(store)
    # A second creator of the account loses too.
    assert not store.save_account(deposited(domain.new_account(USER, START), "5", 0).account, 0)
    outcomes = [store.save_account(rival.account, first.account.version) for rival in rivals]
    assert outcomes == [True] + [False] * 9
    assert store.get_account(USER) == rivals[0].account


# Real engines only: moto's in-memory backend checks a condition and writes without a
# lock (seen here: 2 winners in 1 run of 25), so it cannot referee threads. The same
# race one write after another runs on both engines above.
@pytest.mark.parametrize("engine_table", ["dynalite"], indirect=True)
def test_concurrent_writers_have_exactly_one_winner(store: DynamoTradingStore) -> None:
    first, rivals = _rivals(store)
    start = threading.Barrier(len(rivals))

    def write(change: Change) -> bool:
        start.wait()
        return store.save_account(change.account, first.account.version)

    with ThreadPoolExecutor(max_workers=len(rivals)) as pool:
        outcomes = list(pool.map(write, rivals))
    assert outcomes.count(True) == 1
    assert store.get_account(USER) == rivals[outcomes.index(True)].account


def test_derived_items_written_twice_appear_once(
    store: DynamoTradingStore, history: list[Change]
) -> None:
    again = derived_items(history[-1].operation)
    store.put_derived(USER, again)
    store.put_derived(USER, again)
    assert again.order is not None
    assert store.has_derived(USER, again)
    assert store.get_order(USER, again.order.order_id) == again.order
    assert len(store.list_orders(USER, PageRequest(limit=100)).items) == 5
    assert store.count_cash_entries(USER) == 6


def test_missing_items_are_missing(store: DynamoTradingStore) -> None:
    change = deposited(domain.new_account(USER, START), "100", 0)
    assert not store.has_derived(USER, derived_items(change.operation))
    assert store.get_order(USER, "00000000-0000-0000-0000-000000000000") is None
    assert store.get_order("someone-else", "00000000-0000-0000-0000-000000000000") is None


def test_a_keyed_operation_is_on_record_under_its_key(store: DynamoTradingStore) -> None:
    change = deposited(domain.new_account(USER, START), "100", 0, key="k-1")
    items = derived_items(change.operation)
    assert store.replay_record(USER, "k-1") is None
    assert not store.has_derived(USER, items)
    saved(store, change, domain.new_account(USER, START))
    assert store.replay_record(USER, "k-1") == change.operation
    assert store.has_derived(USER, items)


def test_the_newest_use_of_a_key_stays_on_record(store: DynamoTradingStore) -> None:
    account = domain.new_account(USER, START)
    first = deposited(account, "100", 0, key="k-1")
    account = saved(store, first, account)
    # A day later the key's window is over and it is used again.
    later = deposited(account, "5", 25 * 60, key="k-1")
    saved(store, later, account)
    # A late completion of the first use does not put it back on record...
    store.put_derived(USER, derived_items(first.operation))
    assert store.replay_record(USER, "k-1") == later.operation
    # ...and an earlier use's record does not count as the later one's.
    assert store.has_derived(USER, derived_items(first.operation))
    third = deposited(later.account, "7", 50 * 60, key="k-1")
    assert not store.has_derived(USER, derived_items(third.operation))


def test_an_account_of_an_earlier_release_moves_its_recent_keys_to_records(
    store: DynamoTradingStore, engine_table: Table
) -> None:
    first = deposited(domain.new_account(USER, START), "100", 0, key="k-1")
    second = deposited(first.account, "5", 1, key="k-2")
    legacy = account_to_item(second.account)
    legacy["recent"] = [operation_to_map(c.operation) for c in (first, second)]
    engine_table.put(legacy)

    assert store.get_account(USER) == second.account
    assert store.replay_record(USER, "k-1") == first.operation
    assert store.replay_record(USER, "k-2") == second.operation
    stored = engine_table.get({"pk": legacy["pk"], "sk": legacy["sk"]})
    assert stored is not None
    assert "recent" not in stored
    assert stored["version"] == second.account.version


def test_lists_are_newest_first_and_page(store: DynamoTradingStore, history: list[Change]) -> None:
    newest_first = [derived_items(c.operation) for c in reversed(history)]
    order_ids = [items.order.order_id for items in newest_first if items.order]
    first = store.list_orders(USER, PageRequest(limit=2))
    second = store.list_orders(USER, PageRequest(limit=2, page_token=first.next_page_token))
    third = store.list_orders(USER, PageRequest(limit=2, page_token=second.next_page_token))
    assert [o.order_id for page in (first, second, third) for o in page.items] == order_ids
    assert (first.has_more, second.has_more, third.has_more) == (True, True, False)

    skipped = store.list_orders(USER, PageRequest(limit=2, offset=3))
    assert [o.order_id for o in skipped.items] == order_ids[3:5]

    cash = store.list_cash_entries(USER, PageRequest(limit=10))
    assert [e.transaction_id for e in cash.items] == [
        i.cash_entry.transaction_id for i in newest_first if i.cash_entry is not None
    ]
    assert not cash.has_more


def test_filters_apply_before_the_page_is_cut(
    store: DynamoTradingStore, history: list[Change]
) -> None:
    btc = store.list_orders(USER, PageRequest(limit=2), asset_id="BTC")
    assert [o.asset_id for o in btc.items] == ["BTC", "BTC"]
    assert btc.has_more
    rest = store.list_orders(
        USER, PageRequest(limit=2, page_token=btc.next_page_token), asset_id="BTC"
    )
    assert [o.asset_id for o in rest.items] == ["BTC"]
    assert not rest.has_more
    sells = store.list_orders(USER, PageRequest(limit=2), order_type=OrderType.MARKET_SELL)
    assert sells.items == ()
    eth = store.list_asset_entries(USER, "ETH", PageRequest(limit=10))
    assert [e.asset_id for e in eth.items] == ["ETH", "ETH"]
    assert eth.items[0].created_at > eth.items[1].created_at


def test_a_token_from_another_list_is_refused(
    store: DynamoTradingStore, history: list[Change]
) -> None:
    cash = store.list_cash_entries(USER, PageRequest(limit=1))
    with pytest.raises(InvalidArgument):
        store.list_orders(USER, PageRequest(limit=1, page_token=cash.next_page_token))
    with pytest.raises(InvalidArgument):
        store.list_orders(USER, PageRequest(limit=1, page_token=encode_page_token("ORDER#")))
