"""svc_inventory's use cases, price fan-out and ticker with in-memory fakes."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from common.errors import InvalidArgument, ResourceExhausted, Unavailable
from common.periodic import PeriodicTask
from svc_inventory.__main__ import price_source
from svc_inventory.broadcast import SUBSCRIBER_BUFFER, PriceBroadcaster
from svc_inventory.config import InventorySettings
from svc_inventory.domain import SEED_CATALOGUE, Asset, MarketTick, Quote, quote_of
from svc_inventory.feeds import CoinGeckoMarkets, PriceFeedError, SimulatedMarket
from svc_inventory.service import MAX_IDS_PER_REQUEST, InventoryService

NOW = datetime(2024, 6, 2, tzinfo=UTC)
BY_ID = {a.asset_id: a for a in SEED_CATALOGUE}


class FakeStore:
    def __init__(self, assets: Iterable[Asset]) -> None:
        self.assets = {a.asset_id: a for a in assets}
        self.failing = False

    def seed_catalogue(self, assets: Iterable[Asset]) -> int:
        missing = [a for a in assets if a.asset_id not in self.assets]
        self.assets.update((a.asset_id, a) for a in missing)
        return len(missing)

    def list_assets(self) -> list[Asset]:
        return sorted(self.assets.values(), key=lambda a: (a.market_cap_rank, a.asset_id))

    def get_asset(self, asset_id: str) -> Asset | None:
        return self.assets.get(asset_id)

    def get_assets(self, asset_ids: Sequence[str]) -> dict[str, Asset]:
        return {i: self.assets[i] for i in asset_ids if i in self.assets}

    def save_prices(self, assets: Iterable[Asset]) -> list[str]:
        if self.failing:
            raise ConnectionError("store down")
        saved = []
        for asset in assets:
            if self.assets[asset.asset_id].last_updated < asset.last_updated:
                self.assets[asset.asset_id] = asset
                saved.append(asset.asset_id)
        return saved


class FakeCache:
    def __init__(self) -> None:
        self.quotes: dict[str, Quote] = {}
        self.down = False

    def put_many(self, quotes: Iterable[Quote]) -> None:
        if not self.down:
            self.quotes.update((q.asset_id, q) for q in quotes)

    def get_many(self, asset_ids: Sequence[str]) -> dict[str, Quote]:
        return {} if self.down else {i: self.quotes[i] for i in asset_ids if i in self.quotes}


class FakeSource:
    def __init__(self) -> None:
        self.ticks: dict[str, MarketTick] = {}
        self.error: PriceFeedError | None = None

    def snapshot(self, now: datetime) -> dict[str, MarketTick]:
        if self.error is not None:
            raise self.error
        return dict(self.ticks)


def _tick(asset_id: str, price: str, as_of: datetime = NOW) -> MarketTick:
    value = Decimal(price)
    return MarketTick(asset_id, value, value, value, Decimal(0), Decimal(0), Decimal(1), as_of)


class World:
    def __init__(self, snapshot_interval: timedelta = timedelta(0)) -> None:
        self.store = FakeStore(SEED_CATALOGUE)
        self.cache = FakeCache()
        self.source = FakeSource()
        self.streams = PriceBroadcaster(max_subscribers=2)
        self.now = NOW
        self.service = InventoryService(
            store=self.store,
            cache=self.cache,
            source=self.source,
            broadcaster=self.streams,
            clock=lambda: self.now,
            assets=self.store.list_assets(),
            snapshot_interval=snapshot_interval,
        )


@pytest.fixture
def world() -> World:
    return World()


def _drain(world: World, wanted: Sequence[str]) -> list[Asset]:
    """What a stream of `wanted` holds right now, read without blocking for long."""
    with world.service.watch_prices(wanted) as subscription:
        calls = iter([True, False])
        return list(subscription.updates(lambda: next(calls, False)))


# ---------------------------------------------------------------- refresh_prices


def test_a_tick_reaches_the_store_the_cache_and_the_streams(world: World) -> None:
    subscription = world.streams.subscribe(frozenset({"BTC", "USDT"}))
    world.source.ticks = {"BTC": _tick("BTC", "70000"), "USDT": _tick("USDT", "1.00")}
    advanced = world.service.refresh_prices()
    assert {a.asset_id for a in advanced} == {"BTC", "USDT"}
    assert world.store.assets["BTC"].current_price == Decimal("70000")
    assert world.cache.quotes["USDT"].as_of == NOW
    flags = iter([True, False])
    published = list(subscription.updates(lambda: next(flags, False)))
    # USDT was observed (fresh as_of) but did not move: streams hear only of BTC.
    assert [a.asset_id for a in published] == ["BTC"]


def test_a_failing_feed_keeps_the_last_prices(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    world.source.error = PriceFeedError("HTTP 429")
    with caplog.at_level(logging.WARNING, logger="svc_inventory.service"):
        assert world.service.refresh_prices() == []
    assert world.store.assets["BTC"] == BY_ID["BTC"]
    assert "price feed failed" in caplog.text


def test_a_tick_no_newer_than_the_known_price_changes_nothing(world: World) -> None:
    world.source.ticks = {"BTC": _tick("BTC", "1", as_of=BY_ID["BTC"].last_updated)}
    assert world.service.refresh_prices() == []
    assert world.cache.quotes == {}


def test_ticks_for_assets_outside_the_catalogue_are_ignored(world: World) -> None:
    world.source.ticks = {"PEPE": _tick("PEPE", "0.00001")}
    assert world.service.refresh_prices() == []
    assert "PEPE" not in world.store.assets


def test_a_store_failure_still_updates_the_cache(world: World) -> None:
    world.store.failing = True
    world.source.ticks = {"ETH": _tick("ETH", "4000")}
    assert [a.asset_id for a in world.service.refresh_prices()] == ["ETH"]
    assert world.cache.quotes["ETH"].price == Decimal("4000")


def test_the_store_gets_a_snapshot_per_interval_and_readers_the_live_prices() -> None:
    world = World(snapshot_interval=timedelta(seconds=60))
    world.source.ticks = {"BTC": _tick("BTC", "70000")}
    world.service.refresh_prices()  # the first tick is saved: a restart starts from it
    assert world.store.assets["BTC"].current_price == Decimal("70000")
    for seconds, price in ((1, "70001"), (2, "70002"), (59, "70059")):
        world.now = NOW + timedelta(seconds=seconds)
        world.source.ticks = {"BTC": _tick("BTC", price, world.now)}
        world.service.refresh_prices()
        # Not written, yet every reader sees the tick: the catalogue, quotes, streams.
        assert world.store.assets["BTC"].current_price == Decimal("70000")
        live = world.service.get_asset("btc")
        assert (live.current_price, live.last_updated) == (Decimal(price), world.now)
        assert live.name == BY_ID["BTC"].name
        listed = world.service.list_assets(active_only=True, limit=None).assets
        assert next(a for a in listed if a.asset_id == "BTC") == live
        world.cache.down = True
        assert world.service.get_quotes(["BTC"])[0].price == Decimal(price)
        world.cache.down = False
    world.now = NOW + timedelta(seconds=60)
    world.source.ticks = {
        "BTC": _tick("BTC", "70060", world.now),
        "ETH": _tick("ETH", "4000", world.now),
    }
    world.service.refresh_prices()
    assert world.store.assets["BTC"].current_price == Decimal("70060")
    assert world.store.assets["ETH"].current_price == Decimal("4000")


def test_a_snapshot_at_shutdown_saves_what_changed_since_the_last_one() -> None:
    world = World(snapshot_interval=timedelta(seconds=60))
    world.source.ticks = {"BTC": _tick("BTC", "70000")}
    world.service.refresh_prices()
    world.now = NOW + timedelta(seconds=5)
    world.source.ticks = {"SOL": _tick("SOL", "150", world.now)}
    world.service.refresh_prices()
    assert world.service.save_snapshot() == ["SOL"]
    assert world.store.assets["SOL"].current_price == Decimal("150")
    assert world.service.save_snapshot() == []


def test_a_snapshot_the_store_refused_is_saved_with_the_next_one() -> None:
    world = World(snapshot_interval=timedelta(seconds=60))
    world.store.failing = True
    world.source.ticks = {"BTC": _tick("BTC", "70000")}
    world.service.refresh_prices()
    world.store.failing = False
    world.now = NOW + timedelta(seconds=60)
    world.source.ticks = {"ETH": _tick("ETH", "4000", world.now)}
    world.service.refresh_prices()
    assert world.store.assets["BTC"].current_price == Decimal("70000")
    assert world.store.assets["ETH"].current_price == Decimal("4000")


# ---------------------------------------------------------------- quotes


def test_quotes_prefer_the_cache_and_fall_back_to_the_live_prices(world: World) -> None:
    cached = replace(quote_of(BY_ID["BTC"]), price=Decimal("1"))
    world.cache.quotes["BTC"] = cached
    quotes = world.service.get_quotes(["eth", "ZZZZ", "BTC", "btc"])
    assert quotes == [quote_of(BY_ID["ETH"]), cached]
    world.cache.down = True
    assert world.service.get_quotes(["BTC"]) == [quote_of(BY_ID["BTC"])]


def test_a_quote_of_an_asset_added_to_the_store_after_the_start_comes_from_it(
    world: World,
) -> None:
    added = replace(BY_ID["BTC"], asset_id="NEWC", name="New coin")
    world.store.assets["NEWC"] = added
    assert world.service.get_quotes(["NEWC"]) == [quote_of(added)]


def test_quotes_refuse_too_many_ids(world: World) -> None:
    with pytest.raises(InvalidArgument) as raised:
        world.service.get_quotes(["BTC"] * (MAX_IDS_PER_REQUEST + 1))
    assert [v.field for v in raised.value.violations] == ["asset_ids"]


# ---------------------------------------------------------------- streams


def test_a_new_stream_starts_with_the_current_prices_of_its_symbols(world: World) -> None:
    assert {a.asset_id for a in _drain(world, ["btc", "SOL"])} == {"BTC", "SOL"}
    assert len(_drain(world, [])) == len(SEED_CATALOGUE)


def test_a_stream_never_repeats_a_price_it_already_sent(world: World) -> None:
    with world.service.watch_prices(["BTC"]) as subscription:
        subscription.offer([BY_ID["BTC"]])
        flags = iter([True, False])
        assert len(list(subscription.updates(lambda: next(flags, False)))) == 1


def test_a_slow_reader_loses_the_oldest_changes_not_the_newest() -> None:
    streams = PriceBroadcaster(max_subscribers=1)
    subscription = streams.subscribe(None)
    base = BY_ID["BTC"]
    changes = [
        replace(base, last_updated=NOW + timedelta(seconds=n))
        for n in range(SUBSCRIBER_BUFFER + 10)
    ]
    for change in changes:
        streams.publish([change])
    flags = iter([True, False])
    received = list(subscription.updates(lambda: next(flags, False)))
    assert len(received) == SUBSCRIBER_BUFFER
    assert received[-1] == changes[-1]


def test_the_broadcaster_limits_and_ends_subscriptions() -> None:
    streams = PriceBroadcaster(max_subscribers=1)
    first = streams.subscribe(None)
    with pytest.raises(ResourceExhausted):
        streams.subscribe(None)
    ended = threading.Event()

    def read() -> None:
        list(first.updates(lambda: True))
        ended.set()

    reader = threading.Thread(target=read)
    reader.start()
    streams.close()
    assert ended.wait(5)
    reader.join()
    assert streams.subscriber_count == 0
    with pytest.raises(Unavailable):
        streams.subscribe(None)


# ---------------------------------------------------------------- ticker


def test_the_ticker_survives_a_failing_step_and_stops_when_asked() -> None:
    calls: list[int] = []
    twice = threading.Event()

    def step() -> None:
        calls.append(1)
        if len(calls) >= 2:
            twice.set()
        raise RuntimeError("boom")

    ticker = PeriodicTask("test-ticker", step, interval_seconds=0.001)
    ticker.start()
    assert twice.wait(5)
    ticker.stop()
    assert not ticker.running


# ---------------------------------------------------------------- settings


def _settings(**fields: object) -> InventorySettings:
    return InventorySettings(redis_url="redis://127.0.0.1:1/0", **fields)  # type: ignore[arg-type]


def test_the_tick_follows_the_price_source_unless_set() -> None:
    assert _settings(price_source="simulated").tick_seconds == 1.0
    assert _settings(price_source="coingecko").tick_seconds == 30.0
    assert _settings(price_source="coingecko", price_tick_seconds=60).tick_seconds == 60.0


def test_the_price_source_setting_picks_the_adapter_without_calling_it() -> None:
    assert isinstance(price_source(_settings(), SEED_CATALOGUE), SimulatedMarket)
    assert isinstance(
        price_source(_settings(price_source="coingecko"), SEED_CATALOGUE), CoinGeckoMarkets
    )


def test_streams_must_leave_threads_for_other_calls() -> None:
    with pytest.raises(ValueError, match="MAX_PRICE_STREAMS"):
        _settings(grpc_max_workers=8, max_price_streams=8)
