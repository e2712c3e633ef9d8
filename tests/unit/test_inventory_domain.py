"""The inventory's pure rules: asset ids, limits, rounding, catalogue, listing."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from common.errors import ErrorKind
from svc_inventory.domain import (
    DEFAULT_LIST_LIMIT,
    MAX_LIST_LIMIT,
    SEED_CATALOGUE,
    InvalidAssetId,
    InvalidLimit,
    MarketTick,
    apply_tick,
    decimal_string,
    list_assets,
    normalize_asset_id,
    quantize_price,
    quote_of,
    validate_list_limit,
)

BTC = next(a for a in SEED_CATALOGUE if a.asset_id == "BTC")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("btc", "BTC"),
        ("BTC", "BTC"),
        ("Eth", "ETH"),
        ("1INCH", "1INCH"),
        ("A", "A"),
        ("ABCDEFGHIJ", "ABCDEFGHIJ"),
    ],
)
def test_asset_id_is_upper_cased(raw: str, expected: str) -> None:
    assert normalize_asset_id(raw) == expected


@pytest.mark.parametrize(
    "raw",
    ["", "ABCDEFGHIJK", " BTC", "BTC ", "BT-C", "BTC\n", "btc/usd", "ÉTH", "٣", "x" * 1000],
)
def test_malformed_asset_id_is_refused(raw: str) -> None:
    with pytest.raises(InvalidAssetId) as caught:
        normalize_asset_id(raw)
    error = caught.value
    assert isinstance(error, ValueError)
    assert error.kind is ErrorKind.INVALID_ARGUMENT
    assert error.reason == "INVALID_ASSET_ID"
    assert [v.field for v in error.violations] == ["asset_id"]
    assert "1 to 10 letters or digits" in str(error)
    # A huge input is not echoed back whole.
    assert len(str(error)) < 200


def test_asset_id_error_names_the_field_it_came_from() -> None:
    with pytest.raises(InvalidAssetId) as caught:
        normalize_asset_id("no!", field="asset_ids")
    assert caught.value.violations[0].field == "asset_ids"


@pytest.mark.parametrize(("limit", "expected"), [(None, DEFAULT_LIST_LIMIT), (1, 1), (250, 250)])
def test_list_limit_accepts_the_documented_range(limit: int | None, expected: int) -> None:
    assert validate_list_limit(limit) == expected
    assert DEFAULT_LIST_LIMIT == 50


@pytest.mark.parametrize("limit", [0, -1, 251, 10_000])
def test_list_limit_outside_the_range_is_refused(limit: int) -> None:
    with pytest.raises(InvalidLimit) as caught:
        validate_list_limit(limit)
    assert isinstance(caught.value, ValueError)
    assert caught.value.violations[0].field == "limit"
    assert str(MAX_LIST_LIMIT) in str(caught.value)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("67712.4", "67712.40"),  # never fewer than 2 decimals
        ("67712.456", "67712.46"),
        ("3781.0649", "3781.06"),
        ("166.2149", "166.215"),  # 6 significant digits
        ("1", "1.00000"),
        ("0.99994123", "0.999941"),
        ("0.0000247", "0.00002470"),  # never more than 8 decimals
        ("0.000024715", "0.00002472"),
        ("0.000000001", "0.00000001"),  # a positive price never becomes zero
    ],
)
def test_prices_are_quantized_to_stable_strings(raw: str, expected: str) -> None:
    assert decimal_string(quantize_price(Decimal(raw))) == expected


@pytest.mark.parametrize("raw", ["0", "-1", "NaN", "Infinity"])
def test_a_price_must_be_positive_and_finite(raw: str) -> None:
    with pytest.raises(ValueError, match="positive"):
        quantize_price(Decimal(raw))


def test_catalogue_has_twenty_real_assets_with_unique_ids_and_ranks() -> None:
    ids = [a.asset_id for a in SEED_CATALOGUE]
    ranks = [a.market_cap_rank for a in SEED_CATALOGUE]
    assert len(SEED_CATALOGUE) >= 20
    assert len(set(ids)) == len(ids)
    assert len(set(ranks)) == len(ranks)
    assert {"BTC", "ETH", "USDT", "SOL", "XRP", "DOGE", "LINK", "UNI"} <= set(ids)
    for asset in SEED_CATALOGUE:
        assert normalize_asset_id(asset.asset_id) == asset.asset_id
        assert asset.name
        assert asset.current_price > 0
        assert asset.circulating_supply > 0
        assert asset.market_cap == (asset.current_price * asset.circulating_supply).quantize(
            Decimal("0.01")
        )
        assert asset.low_24h <= asset.current_price <= asset.high_24h
        assert asset.last_updated.tzinfo is not None


def test_catalogue_prices_are_realistic() -> None:
    prices = {a.asset_id: a.current_price for a in SEED_CATALOGUE}
    assert Decimal(10_000) < prices["BTC"] < Decimal(500_000)
    assert prices["ETH"] < prices["BTC"]
    for stable in ("USDT", "USDC"):
        assert prices[stable] == Decimal(1)


def test_catalogue_keeps_an_inactive_asset_that_cannot_be_traded() -> None:
    inactive = [a for a in SEED_CATALOGUE if not a.is_active]
    assert inactive
    assert all(not quote_of(a).is_active for a in inactive)


def test_catalogue_uses_known_categories() -> None:
    categories = {a.category for a in SEED_CATALOGUE}
    assert {"layer-1", "stablecoin", "meme", "defi", "oracle", "payments"} <= categories


def test_quote_carries_price_time_and_tradability() -> None:
    quote = quote_of(BTC)
    assert (quote.asset_id, quote.asset_name, quote.price) == ("BTC", "Bitcoin", BTC.current_price)
    assert quote.as_of == BTC.last_updated
    assert quote.is_active


def _tick(price: str, as_of: datetime) -> MarketTick:
    return MarketTick(
        asset_id="BTC",
        price=Decimal(price),
        high_24h=Decimal(price),
        low_24h=Decimal("60000.00"),
        price_change_24h=Decimal("-12.50"),
        price_change_percentage_24h=Decimal("-0.02"),
        total_volume_24h=Decimal("1000.00"),
        as_of=as_of,
    )


def test_a_tick_updates_price_figures_and_market_cap() -> None:
    later = BTC.last_updated + timedelta(minutes=1)
    updated = apply_tick(BTC, _tick("70000.00", later))
    assert updated.current_price == Decimal("70000.00")
    assert updated.market_cap == Decimal("70000.00") * BTC.circulating_supply
    assert updated.low_24h == Decimal("60000.00")
    assert updated.price_change_24h == Decimal("-12.50")
    assert updated.last_updated == later
    assert (updated.name, updated.market_cap_rank, updated.is_active) == ("Bitcoin", 1, True)


def test_an_older_tick_never_overwrites_a_newer_price() -> None:
    earlier = BTC.last_updated - timedelta(seconds=1)
    assert apply_tick(BTC, _tick("1.00", earlier)) == BTC


def test_a_tick_for_another_asset_is_refused() -> None:
    eth_tick = replace(_tick("3000.00", BTC.last_updated), asset_id="ETH")
    with pytest.raises(ValueError, match="ETH"):
        apply_tick(BTC, eth_tick)


def test_assets_refuse_naive_times_and_lower_case_ids() -> None:
    with pytest.raises(ValueError, match="timezone"):
        replace(BTC, last_updated=datetime(2024, 6, 1))
    with pytest.raises(ValueError, match="upper-case"):
        replace(BTC, asset_id="btc")
    with pytest.raises(ValueError, match="positive"):
        replace(BTC, current_price=Decimal(0))


def test_listing_is_by_rank_and_counts_the_whole_catalogue() -> None:
    shuffled = list(reversed(SEED_CATALOGUE))
    listing = list_assets(shuffled, active_only=True, limit=None)
    ranks = [a.market_cap_rank for a in listing.assets]
    assert ranks == sorted(ranks)
    assert listing.assets[0].asset_id == "BTC"
    assert all(a.is_active for a in listing.assets)
    assert listing.total_count == len(SEED_CATALOGUE)
    assert listing.active_count == sum(a.is_active for a in SEED_CATALOGUE)
    assert listing.active_count < listing.total_count


def test_listing_can_include_inactive_assets_and_respects_the_limit() -> None:
    everything = list_assets(SEED_CATALOGUE, active_only=False, limit=MAX_LIST_LIMIT)
    assert len(everything.assets) == len(SEED_CATALOGUE)
    assert [a.asset_id for a in list_assets(SEED_CATALOGUE, active_only=True, limit=3).assets] == [
        "BTC",
        "ETH",
        "USDT",
    ]
    with pytest.raises(InvalidLimit):
        list_assets(SEED_CATALOGUE, active_only=True, limit=MAX_LIST_LIMIT + 1)


def test_listing_has_a_stable_order_for_equal_ranks() -> None:
    twins = [replace(BTC, asset_id="ZZZ"), BTC, replace(BTC, asset_id="AAA")]
    assert [a.asset_id for a in list_assets(twins, active_only=True, limit=None).assets] == [
        "AAA",
        "BTC",
        "ZZZ",
    ]


def test_quote_time_is_utc_aware() -> None:
    assert quote_of(BTC).as_of.utcoffset() == timedelta(0)
    assert quote_of(BTC).as_of == datetime(2024, 6, 1, tzinfo=UTC)
