"""The inventory's rules: asset identity, list limits, price rounding and the catalogue.

Pure code: no I/O, no protobuf. Every price and amount is a `Decimal`; floats never
leave this module (the simulated market may use them internally, see `feeds.py`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal

from common.errors import FieldViolation, InvalidArgument

ASSET_ID_PATTERN = re.compile(r"[A-Za-z0-9]{1,10}")

DEFAULT_LIST_LIMIT = 50
MAX_LIST_LIMIT = 250

# Prices keep 6 significant digits, but never fewer than 2 decimals (so dollar prices
# read like money: "67234.57") nor more than 8 (so tiny prices stay bounded strings:
# "0.00002470"). One rule for every asset keeps quotes stable from tick to tick.
PRICE_SIGNIFICANT_DIGITS = 6
PRICE_MIN_DECIMALS = 2
PRICE_MAX_DECIMALS = 8
# A positive price never rounds to zero: it is floored at the smallest quotable unit.
SMALLEST_PRICE = Decimal(1).scaleb(-PRICE_MAX_DECIMALS)

_CENT = Decimal("0.01")


class InvalidAssetId(InvalidArgument, ValueError):
    """An asset id that is not 1 to 10 ASCII letters or digits."""

    reason = "INVALID_ASSET_ID"

    def __init__(self, raw: object, *, field: str = "asset_id") -> None:
        description = "must be 1 to 10 letters or digits (A-Z, a-z, 0-9)"
        # Echo only a bounded prefix of the input: it ends up in logs and replies.
        shown = repr(raw) if len(repr(raw)) <= 24 else repr(raw)[:21] + "..."
        super().__init__(
            f"{field} {description}; got {shown}",
            violations=(FieldViolation(field, description),),
        )


class InvalidLimit(InvalidArgument, ValueError):
    """A list limit outside 1..MAX_LIST_LIMIT."""

    reason = "INVALID_LIMIT"

    def __init__(self, limit: object) -> None:
        description = f"must be between 1 and {MAX_LIST_LIMIT}"
        super().__init__(
            f"limit {description}; got {limit}",
            violations=(FieldViolation("limit", description),),
        )


def normalize_asset_id(raw: str, *, field: str = "asset_id") -> str:
    """The canonical (upper-case) form of an asset id; `InvalidAssetId` otherwise.

    No trimming: " btc" is refused rather than silently repaired, as the API says.
    """
    # ASCII only: str.isalnum and re's \w would also accept other scripts' digits.
    if not isinstance(raw, str) or ASSET_ID_PATTERN.fullmatch(raw) is None:
        raise InvalidAssetId(raw, field=field)
    return raw.upper()


def validate_list_limit(limit: int | None) -> int:
    """The number of assets a list returns; None (not given) is the default, and 0
    is out of range like any other number outside 1..MAX_LIST_LIMIT."""
    if limit is None:
        return DEFAULT_LIST_LIMIT
    # bool is an int subclass; a True limit is a caller bug, not "1".
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise InvalidLimit(limit)
    if not 1 <= limit <= MAX_LIST_LIMIT:
        raise InvalidLimit(limit)
    return limit


def _quantize_significant(value: Decimal) -> Decimal:
    if not value.is_finite():
        raise ValueError(f"price must be a finite number, got {value}")
    if value.is_zero():
        return Decimal(0).quantize(Decimal(1).scaleb(-PRICE_MIN_DECIMALS))
    # adjusted() is the power of ten of the leading digit: 67234.5 -> 4, 0.0123 -> -2.
    decimals = PRICE_SIGNIFICANT_DIGITS - 1 - value.adjusted()
    decimals = max(PRICE_MIN_DECIMALS, min(PRICE_MAX_DECIMALS, decimals))
    return value.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_EVEN)


def quantize_price(value: Decimal) -> Decimal:
    """A positive price under the rounding rule above; ValueError for <= 0 or NaN."""
    if not value.is_finite() or value <= 0:
        raise ValueError(f"price must be positive, got {value}")
    return max(_quantize_significant(value), SMALLEST_PRICE)


def quantize_price_change(value: Decimal) -> Decimal:
    """A signed price difference under the same rule as prices (zero allowed)."""
    return _quantize_significant(value)


def quantize_usd(value: Decimal) -> Decimal:
    """Market cap and volume: whole cents (display figures, not money that moves)."""
    if not value.is_finite():
        raise ValueError(f"amount must be a finite number, got {value}")
    return value.quantize(_CENT, rounding=ROUND_HALF_EVEN)


def quantize_percentage(value: Decimal) -> Decimal:
    """A percentage with 2 decimals ("-1.25")."""
    return quantize_usd(value)


def decimal_string(value: Decimal) -> str:
    """The plain decimal string of a value: never exponent notation ("1E-8")."""
    return format(value, "f")


def _require_utc(name: str, moment: datetime) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {moment!r}")


@dataclass(frozen=True)
class Asset:
    """An asset of the catalogue with its latest market figures (US dollars)."""

    asset_id: str
    name: str
    category: str
    market_cap_rank: int
    current_price: Decimal
    market_cap: Decimal
    total_volume_24h: Decimal
    high_24h: Decimal
    low_24h: Decimal
    price_change_24h: Decimal
    price_change_percentage_24h: Decimal
    circulating_supply: Decimal
    is_active: bool
    last_updated: datetime

    def __post_init__(self) -> None:
        if normalize_asset_id(self.asset_id) != self.asset_id:
            raise ValueError(f"asset_id must be upper-case, got {self.asset_id!r}")
        if self.current_price <= 0:
            raise ValueError(f"{self.asset_id}: current_price must be positive")
        _require_utc("last_updated", self.last_updated)


@dataclass(frozen=True)
class Quote:
    """The price to trade an asset at, and when it was observed."""

    asset_id: str
    asset_name: str
    price: Decimal
    as_of: datetime
    is_active: bool

    def __post_init__(self) -> None:
        if self.price <= 0:
            raise ValueError(f"{self.asset_id}: price must be positive")
        _require_utc("as_of", self.as_of)


@dataclass(frozen=True)
class MarketTick:
    """What a price source observed for one asset at one moment."""

    asset_id: str
    price: Decimal
    high_24h: Decimal
    low_24h: Decimal
    price_change_24h: Decimal
    price_change_percentage_24h: Decimal
    total_volume_24h: Decimal
    as_of: datetime

    def __post_init__(self) -> None:
        if self.price <= 0:
            raise ValueError(f"{self.asset_id}: price must be positive")
        _require_utc("as_of", self.as_of)


@dataclass(frozen=True)
class AssetListing:
    """One page of ListAssets; the counts describe the whole catalogue."""

    assets: tuple[Asset, ...]
    total_count: int
    active_count: int


def quote_of(asset: Asset) -> Quote:
    return Quote(
        asset_id=asset.asset_id,
        asset_name=asset.name,
        price=asset.current_price,
        as_of=asset.last_updated,
        is_active=asset.is_active,
    )


def apply_tick(asset: Asset, tick: MarketTick) -> Asset:
    """The asset with the tick's figures; a tick older than the asset changes nothing.

    Market cap is derived from our own circulating supply so that every source, real or
    simulated, gives the same figure for the same price.
    """
    if tick.asset_id != asset.asset_id:
        raise ValueError(f"tick for {tick.asset_id} applied to {asset.asset_id}")
    if tick.as_of < asset.last_updated:
        return asset
    return replace(
        asset,
        current_price=tick.price,
        market_cap=quantize_usd(tick.price * asset.circulating_supply),
        total_volume_24h=tick.total_volume_24h,
        high_24h=tick.high_24h,
        low_24h=tick.low_24h,
        price_change_24h=tick.price_change_24h,
        price_change_percentage_24h=tick.price_change_percentage_24h,
        last_updated=tick.as_of,
    )


MARKET_FIELDS = (
    "current_price",
    "market_cap",
    "total_volume_24h",
    "high_24h",
    "low_24h",
    "price_change_24h",
    "price_change_percentage_24h",
    "last_updated",
)


def with_live_market(stored: Asset, live: Asset | None) -> Asset:
    """The stored asset (catalogue fields as the store has them) with the market figures
    of `live` when those are newer: the store keeps only snapshots of a moving price."""
    if live is None or live.last_updated <= stored.last_updated:
        return stored
    return replace(stored, **{field: getattr(live, field) for field in MARKET_FIELDS})


def list_assets(assets: Iterable[Asset], *, active_only: bool, limit: int | None) -> AssetListing:
    """Assets by market-cap rank (ties by id), filtered and cut to a valid limit.

    total_count and active_count count the whole catalogue, so a client can tell how
    many assets exist beyond the page and how many of them can be traded.
    """
    page_size = validate_list_limit(limit)
    everything = sorted(assets, key=lambda a: (a.market_cap_rank, a.asset_id))
    active = [a for a in everything if a.is_active]
    shown = active if active_only else everything
    return AssetListing(
        assets=tuple(shown[:page_size]),
        total_count=len(everything),
        active_count=len(active),
    )


# The date the seed figures below describe (approximately, from public market data).
CATALOGUE_AS_OF = datetime(2024, 6, 1, tzinfo=UTC)


def _listing(
    asset_id: str,
    name: str,
    category: str,
    rank: int,
    price: str,
    supply: str,
    volume_24h: str,
    *,
    is_active: bool = True,
) -> Asset:
    start_price = quantize_price(Decimal(price))
    circulating_supply = Decimal(supply)
    return Asset(
        asset_id=asset_id,
        name=name,
        category=category,
        market_cap_rank=rank,
        current_price=start_price,
        market_cap=quantize_usd(start_price * circulating_supply),
        total_volume_24h=quantize_usd(Decimal(volume_24h)),
        high_24h=start_price,
        low_24h=start_price,
        price_change_24h=quantize_price_change(Decimal(0)),
        price_change_percentage_24h=quantize_percentage(Decimal(0)),
        circulating_supply=circulating_supply,
        is_active=is_active,
        last_updated=CATALOGUE_AS_OF,
    )


STABLECOIN = "stablecoin"

# The assets a fresh platform lists. FTT (FTX Token) is kept but inactive: the exchange
# behind it collapsed, so it is shown for history and refused for trading.
SEED_CATALOGUE: tuple[Asset, ...] = (
    _listing("BTC", "Bitcoin", "layer-1", 1, "67700", "19706000", "25000000000"),
    _listing("ETH", "Ethereum", "layer-1", 2, "3780", "120140000", "15000000000"),
    _listing("USDT", "Tether", STABLECOIN, 3, "1.00", "111300000000", "45000000000"),
    _listing("BNB", "BNB", "exchange", 4, "595", "147580000", "1500000000"),
    _listing("SOL", "Solana", "layer-1", 5, "166.2", "460000000", "2500000000"),
    _listing("USDC", "USDC", STABLECOIN, 6, "1.00", "32500000000", "6000000000"),
    _listing("XRP", "XRP", "payments", 7, "0.5192", "55400000000", "1100000000"),
    _listing("DOGE", "Dogecoin", "meme", 8, "0.1604", "144800000000", "1000000000"),
    _listing("TON", "Toncoin", "layer-1", 9, "6.42", "3470000000", "250000000"),
    _listing("ADA", "Cardano", "layer-1", 10, "0.4483", "35500000000", "300000000"),
    _listing("SHIB", "Shiba Inu", "meme", 11, "0.00002470", "589280000000000", "400000000"),
    _listing("AVAX", "Avalanche", "layer-1", 12, "35.91", "393000000", "350000000"),
    _listing("TRX", "TRON", "layer-1", 13, "0.1162", "87400000000", "300000000"),
    _listing("DOT", "Polkadot", "layer-1", 14, "7.12", "1440000000", "200000000"),
    _listing("BCH", "Bitcoin Cash", "payments", 15, "470.3", "19720000", "350000000"),
    _listing("LINK", "Chainlink", "oracle", 16, "18.21", "587100000", "400000000"),
    _listing("NEAR", "NEAR Protocol", "layer-1", 17, "7.18", "1080000000", "400000000"),
    _listing("POL", "Polygon Ecosystem Token", "layer-2", 18, "0.7104", "9280000000", "300000000"),
    _listing("LTC", "Litecoin", "payments", 19, "83.52", "74600000", "350000000"),
    _listing("UNI", "Uniswap", "defi", 20, "10.08", "600000000", "200000000"),
    _listing("DAI", "Dai", STABLECOIN, 22, "1.00", "5300000000", "250000000"),
    _listing("XLM", "Stellar", "payments", 28, "0.1081", "29000000000", "60000000"),
    _listing("ATOM", "Cosmos Hub", "layer-1", 30, "8.49", "390900000", "150000000"),
    _listing("AAVE", "Aave", "defi", 45, "89.6", "14800000", "150000000"),
    _listing("FTT", "FTX Token", "exchange", 190, "1.09", "328900000", "20000000", is_active=False),
)
