"""The asset store's contract, run against every engine it must work on: dynalite, moto."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest

from common.dynamo import Table
from svc_inventory.domain import SEED_CATALOGUE, Asset, decimal_string
from svc_inventory.store import DynamoAssetStore

BY_ID = {a.asset_id: a for a in SEED_CATALOGUE}


@pytest.fixture
def store(engine_table: Table) -> DynamoAssetStore:
    return DynamoAssetStore(engine_table)


@pytest.fixture
def seeded(store: DynamoAssetStore) -> DynamoAssetStore:
    store.seed_catalogue(SEED_CATALOGUE)
    return store


def _moved(asset: Asset, *, seconds: int, price: str) -> Asset:
    return replace(
        asset,
        current_price=Decimal(price),
        high_24h=max(asset.high_24h, Decimal(price)),
        last_updated=asset.last_updated + timedelta(seconds=seconds),
    )


def test_seeding_writes_every_asset_once(store: DynamoAssetStore) -> None:
    assert store.seed_catalogue(SEED_CATALOGUE) == len(SEED_CATALOGUE)
    assert store.seed_catalogue(SEED_CATALOGUE) == 0
    assert len(store.list_assets()) == len(SEED_CATALOGUE)


def test_seeding_again_never_overwrites_live_prices(seeded: DynamoAssetStore) -> None:
    live = _moved(BY_ID["BTC"], seconds=60, price="70123.45")
    assert seeded.save_prices([live]) == ["BTC"]
    seeded.seed_catalogue(SEED_CATALOGUE)
    assert seeded.get_asset("BTC") == live


def test_the_list_is_by_market_cap_rank(seeded: DynamoAssetStore) -> None:
    listed = seeded.list_assets()
    assert [a.market_cap_rank for a in listed] == sorted(a.market_cap_rank for a in listed)
    assert listed[0].asset_id == "BTC"
    assert listed[-1].asset_id == "FTT"


def test_assets_round_trip_with_their_decimal_scale(seeded: DynamoAssetStore) -> None:
    for asset in seeded.list_assets():
        original = BY_ID[asset.asset_id]
        assert asset == original
        # "1.00" must come back as "1.00", not "1": clients read these strings.
        assert decimal_string(asset.current_price) == decimal_string(original.current_price)
        assert decimal_string(asset.market_cap) == decimal_string(original.market_cap)


def test_get_asset_and_get_assets(seeded: DynamoAssetStore) -> None:
    assert seeded.get_asset("ETH") == BY_ID["ETH"]
    assert seeded.get_asset("ZZZZ") is None
    # More ids than one batch read takes, with repeats and unknown ones among them.
    asked = ["BTC", "FTT", "BTC", *(f"X{n}" for n in range(150)), "SOL"]
    assert seeded.get_assets(asked) == {i: BY_ID[i] for i in ("BTC", "FTT", "SOL")}
    assert seeded.get_assets([]) == {}


def test_a_newer_price_wins_and_an_older_or_repeated_one_changes_nothing(
    seeded: DynamoAssetStore,
) -> None:
    newer = _moved(BY_ID["ETH"], seconds=20, price="3900.5")
    older = _moved(BY_ID["ETH"], seconds=10, price="3700.25")
    assert seeded.save_prices([newer]) == ["ETH"]
    assert seeded.save_prices([older]) == []
    assert seeded.save_prices([replace(newer, current_price=Decimal("1.23"))]) == []
    assert seeded.get_asset("ETH") == newer


def test_saving_prices_touches_only_the_price_fields_of_known_assets(
    seeded: DynamoAssetStore,
) -> None:
    renamed = replace(
        _moved(BY_ID["DOGE"], seconds=5, price="0.2"), name="Renamed", is_active=False
    )
    unknown = replace(renamed, asset_id="NOPE")
    assert seeded.save_prices([renamed, unknown]) == ["DOGE"]
    stored = seeded.get_asset("DOGE")
    assert stored is not None
    assert (stored.name, stored.is_active) == ("Dogecoin", True)
    assert stored.current_price == Decimal("0.2")
    assert seeded.get_asset("NOPE") is None
