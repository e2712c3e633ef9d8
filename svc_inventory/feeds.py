"""Where prices come from: the `PriceSource` port, a simulated market and CoinGecko.

The simulated market is the default (seeded, reproducible, offline). The CoinGecko
adapter reads the public `/coins/markets` endpoint; its parsing is pure and tested
against a recorded response, its HTTP call is a thin, injectable function.
"""

from __future__ import annotations

import json
import logging
import math
import random
import urllib.error
import urllib.parse
import urllib.request
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Protocol

from svc_inventory.domain import (
    STABLECOIN,
    Asset,
    InvalidAssetId,
    MarketTick,
    normalize_asset_id,
    quantize_percentage,
    quantize_price,
    quantize_price_change,
    quantize_usd,
)

logger = logging.getLogger(__name__)


class PriceSource(Protocol):
    def snapshot(self, now: datetime) -> dict[str, MarketTick]:
        """The latest tick of every asset the source knows, keyed by asset id."""
        ...


class PriceFeedError(Exception):
    """The source could not give prices now; callers keep their last known ones."""


# ---------------------------------------------------------------- simulated market

# Annualized volatility by category, roughly what these markets showed in 2023-2024.
ANNUAL_VOLATILITY_BY_CATEGORY: Mapping[str, float] = {
    "layer-1": 0.60,
    "layer-2": 0.80,
    "exchange": 0.50,
    "payments": 0.60,
    "meme": 1.00,
    "defi": 0.80,
    "oracle": 0.80,
}
DEFAULT_ANNUAL_VOLATILITY = 0.70

# Stablecoins do not walk: they wobble around their peg (a mean-reverting process)
# and are clamped so that they never leave it by more than 0.1 %.
STABLECOIN_DEVIATION_SD = 0.0002
STABLECOIN_MAX_DEVIATION = 0.001
STABLECOIN_REVERSION_SECONDS = 600.0

# Volume wobbles around the catalogue's figure; it carries no signal in a simulation.
VOLUME_LOG_SD = 0.05

# Bounds of the walk so that a price can always be quoted (floored at 1e-8, see domain)
# and exp() never overflows, whatever volatility a demo asks for.
_MIN_LOG_PRICE = math.log(1e-8)
_MAX_LOG_PRICE = math.log(1e12)

_SECONDS_PER_YEAR = 365.0 * 24 * 3600
_WINDOW = timedelta(hours=24)
_BUCKET = timedelta(hours=1)


@dataclass
class _Bucket:
    start: datetime
    open: Decimal
    high: Decimal
    low: Decimal


class _RollingDay:
    """High, low and opening price over the last 24 hours, at one-hour resolution.

    Until a day has passed, the opening price is the first one observed (the start
    price); afterwards it is the first price of the oldest hour still in the window.
    """

    def __init__(self) -> None:
        self._buckets: deque[_Bucket] = deque()

    def observe(self, moment: datetime, price: Decimal) -> None:
        while self._buckets and self._buckets[0].start <= moment - _WINDOW:
            self._buckets.popleft()
        last = self._buckets[-1] if self._buckets else None
        if last is None or moment >= last.start + _BUCKET:
            self._buckets.append(_Bucket(moment, price, price, price))
            return
        last.high = max(last.high, price)
        last.low = min(last.low, price)

    @property
    def open(self) -> Decimal:
        return self._buckets[0].open

    @property
    def high(self) -> Decimal:
        return max(b.high for b in self._buckets)

    @property
    def low(self) -> Decimal:
        return min(b.low for b in self._buckets)


class _SimulatedAsset:
    """One asset's walk; it has its own generator so adding an asset moves no other."""

    def __init__(self, asset: Asset, seed: int, volatility_scale: float) -> None:
        self.asset_id = asset.asset_id
        # Reproducibility, not secrecy, is the point of this generator. A string seed is
        # hashed with SHA-512 by random.Random: stable across runs and PYTHONHASHSEED.
        self._rng = random.Random(f"{seed}:{asset.asset_id}")  # noqa: S311
        self._pegged = asset.category == STABLECOIN
        self._start_price = float(asset.current_price)
        self._log_price = math.log(self._start_price)
        self._deviation = 0.0
        self._volatility_scale = volatility_scale
        self._annual_volatility = volatility_scale * ANNUAL_VOLATILITY_BY_CATEGORY.get(
            asset.category, DEFAULT_ANNUAL_VOLATILITY
        )
        self._base_volume = asset.total_volume_24h
        self._volume_factor = 1.0
        self._day = _RollingDay()

    def advance(self, seconds: float) -> None:
        if self._pegged:
            # Exact discretization of an Ornstein-Uhlenbeck process over `seconds`.
            keep = math.exp(-seconds / STABLECOIN_REVERSION_SECONDS)
            spread = STABLECOIN_DEVIATION_SD * self._volatility_scale
            noise = spread * math.sqrt(1.0 - keep * keep) * self._rng.gauss(0.0, 1.0)
            deviation = self._deviation * keep + noise
            self._deviation = max(
                -STABLECOIN_MAX_DEVIATION, min(STABLECOIN_MAX_DEVIATION, deviation)
            )
        else:
            # Geometric Brownian motion without drift; one draw covers any number of
            # ticks exactly, so a late caller costs nothing extra.
            years = seconds / _SECONDS_PER_YEAR
            sigma = self._annual_volatility
            step = -0.5 * sigma * sigma * years + sigma * math.sqrt(years) * self._rng.gauss(0, 1)
            self._log_price = max(_MIN_LOG_PRICE, min(_MAX_LOG_PRICE, self._log_price + step))
        self._volume_factor = math.exp(VOLUME_LOG_SD * self._rng.gauss(0.0, 1.0))

    def tick(self, moment: datetime) -> MarketTick:
        raw = (
            self._start_price * (1.0 + self._deviation)
            if self._pegged
            else math.exp(self._log_price)
        )
        price = quantize_price(Decimal(repr(raw)))
        self._day.observe(moment, price)
        opening = self._day.open
        change = price - opening
        volume = self._base_volume * Decimal(repr(self._volume_factor))
        return MarketTick(
            asset_id=self.asset_id,
            price=price,
            high_24h=self._day.high,
            low_24h=self._day.low,
            price_change_24h=quantize_price_change(change),
            price_change_percentage_24h=quantize_percentage(change / opening * 100),
            total_volume_24h=quantize_usd(volume),
            as_of=moment,
        )


class SimulatedMarket:
    """A seeded random market: the same seed and the same `now` values give the same ticks.

    Time is cut into ticks of `tick_seconds`; a snapshot advances every asset by the
    whole ticks elapsed since the previous one (in one exact step), and stamps the ticks
    with the boundary reached, so `as_of` never runs ahead of `now`. The clock starts at
    `start`, or at the first snapshot's `now`, with the catalogue's prices. A `now`
    earlier than the last boundary changes nothing. `volatility` scales every
    category's realistic annual volatility (1.0); demos may want livelier prices.
    """

    def __init__(
        self,
        catalogue: Iterable[Asset],
        seed: int,
        *,
        volatility: float = 1.0,
        tick_seconds: float = 1.0,
        start: datetime | None = None,
    ) -> None:
        if not volatility >= 0 or math.isinf(volatility):
            raise ValueError(f"volatility must be a finite number >= 0, got {volatility}")
        tick = timedelta(seconds=tick_seconds)
        if tick <= timedelta(0):
            raise ValueError(f"tick_seconds must be at least a microsecond, got {tick_seconds}")
        if start is not None:
            _require_aware(start)
        self._tick = tick
        self._start = start
        self._ticks_done = 0
        # Sorted, so the caller's ordering of the catalogue cannot change the result.
        self._assets = [
            _SimulatedAsset(asset, seed, volatility)
            for asset in sorted(catalogue, key=lambda a: a.asset_id)
        ]
        self._latest: dict[str, MarketTick] = {}

    def snapshot(self, now: datetime) -> dict[str, MarketTick]:
        _require_aware(now)
        if self._start is None:
            self._start = now
        if not self._latest:
            self._latest = self._observe(self._start)
        due = (now - self._start) // self._tick
        if due > self._ticks_done:
            elapsed = (self._tick * (due - self._ticks_done)).total_seconds()
            for asset in self._assets:
                asset.advance(elapsed)
            self._ticks_done = due
            self._latest = self._observe(self._start + self._tick * due)
        return dict(self._latest)

    def _observe(self, moment: datetime) -> dict[str, MarketTick]:
        return {asset.asset_id: asset.tick(moment) for asset in self._assets}


def _require_aware(moment: datetime) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"times must be timezone-aware, got {moment!r}")


# ---------------------------------------------------------------- CoinGecko

COINGECKO_BASE_URL = "https://api.coingecko.com/api/v3"
# A payload of 250 coins is ~250 KB; anything far larger is not a markets answer.
MAX_RESPONSE_BYTES = 4 * 1024 * 1024

# (url, headers, timeout in seconds) -> response body.
Fetch = Callable[[str, Mapping[str, str], float], bytes]


class MalformedMarketRow(ValueError):
    """A row of a markets payload that cannot become a tick; the message says why."""


@dataclass(frozen=True)
class RejectedRow:
    index: int
    coin_id: str
    reason: str


@dataclass(frozen=True)
class ParsedMarkets:
    ticks: tuple[MarketTick, ...]
    rejected: tuple[RejectedRow, ...]


def _required_number(row: Mapping[str, object], field: str) -> Decimal:
    number = _optional_number(row, field)
    if number is None:
        raise MalformedMarketRow(f"{field} is missing or null")
    return number


def _optional_number(row: Mapping[str, object], field: str) -> Decimal | None:
    value = row.get(field)
    if value is None:
        return None
    # bool is an int subclass, and a string is not what CoinGecko sends for numbers.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MalformedMarketRow(f"{field} is not a number: {value!r}")
    try:
        # str() first: Decimal(0.1) would keep the float's binary error.
        number = Decimal(str(value))
    except InvalidOperation as error:
        raise MalformedMarketRow(f"{field} is not a number: {value!r}") from error
    if not number.is_finite():
        raise MalformedMarketRow(f"{field} is not finite: {value!r}")
    return number


def _timestamp(row: Mapping[str, object], field: str) -> datetime:
    value = row.get(field)
    if not isinstance(value, str):
        raise MalformedMarketRow(f"{field} is missing or not a string")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as error:
        raise MalformedMarketRow(f"{field} is not an ISO 8601 time: {value!r}") from error
    if moment.tzinfo is None:
        raise MalformedMarketRow(f"{field} has no time zone: {value!r}")
    return moment.astimezone(UTC)


def parse_market_row(row: Mapping[str, object]) -> MarketTick:
    """One `/coins/markets` row as a tick; `MalformedMarketRow` says what is wrong.

    Price and time are required; a missing 24h high/low falls back to the price and a
    missing change or volume to zero, as CoinGecko leaves them null for new listings.
    """
    symbol = row.get("symbol")
    if not isinstance(symbol, str):
        raise MalformedMarketRow("symbol is missing or not a string")
    try:
        asset_id = normalize_asset_id(symbol)
    except InvalidAssetId as error:
        raise MalformedMarketRow(f"symbol {symbol!r} is not a valid asset id") from error
    raw_price = _required_number(row, "current_price")
    if raw_price <= 0:
        raise MalformedMarketRow(f"current_price must be positive, got {raw_price}")
    price = quantize_price(raw_price)
    high = _optional_number(row, "high_24h")
    low = _optional_number(row, "low_24h")
    change = _optional_number(row, "price_change_24h") or Decimal(0)
    change_pct = _optional_number(row, "price_change_percentage_24h") or Decimal(0)
    volume = _optional_number(row, "total_volume") or Decimal(0)
    if volume < 0:
        raise MalformedMarketRow(f"total_volume must not be negative, got {volume}")
    # CoinGecko refreshes price and 24h range at different moments; the range is
    # widened to contain the price so a client never sees low > price or price > high.
    high_24h = max(quantize_price(high), price) if high is not None and high > 0 else price
    low_24h = min(quantize_price(low), price) if low is not None and low > 0 else price
    return MarketTick(
        asset_id=asset_id,
        price=price,
        high_24h=high_24h,
        low_24h=low_24h,
        price_change_24h=quantize_price_change(change),
        price_change_percentage_24h=quantize_percentage(change_pct),
        total_volume_24h=quantize_usd(volume),
        as_of=_timestamp(row, "last_updated"),
    )


def parse_markets(payload: object) -> ParsedMarkets:
    """Every good row of a `/coins/markets` payload, and why each other row was refused.

    The payload comes sorted by market cap, so when two coins share a symbol the first
    (the larger) keeps it and the later one is refused.
    """
    if not isinstance(payload, list):
        raise PriceFeedError(f"markets payload is not a list but {type(payload).__name__}")
    ticks: dict[str, MarketTick] = {}
    rejected: list[RejectedRow] = []
    for index, row in enumerate(payload):
        if not isinstance(row, dict):
            rejected.append(RejectedRow(index, "", "row is not an object"))
            continue
        coin_id = row.get("id")
        coin = coin_id if isinstance(coin_id, str) else ""
        try:
            tick = parse_market_row(row)
        except MalformedMarketRow as error:
            rejected.append(RejectedRow(index, coin, str(error)))
            continue
        if tick.asset_id in ticks:
            rejected.append(RejectedRow(index, coin, f"duplicate symbol {tick.asset_id}"))
            continue
        ticks[tick.asset_id] = tick
    return ParsedMarkets(ticks=tuple(ticks.values()), rejected=tuple(rejected))


def fetch_with_urllib(url: str, headers: Mapping[str, str], timeout_seconds: float) -> bytes:
    """GET `url` with the standard library; every failure becomes `PriceFeedError`."""
    request = urllib.request.Request(url, headers=dict(headers), method="GET")  # noqa: S310 (scheme checked by CoinGeckoMarkets)
    try:
        # Bandit B310 accepted: CoinGeckoMarkets takes only an http(s) base URL.
        with urllib.request.urlopen(request, timeout=timeout_seconds) as response:  # noqa: S310  # nosec B310
            body: bytes = response.read(MAX_RESPONSE_BYTES + 1)
    except urllib.error.HTTPError as error:
        raise PriceFeedError(f"price feed answered HTTP {error.code} for {url}") from error
    except (urllib.error.URLError, OSError) as error:
        # TimeoutError and connection errors are OSErrors; URLError wraps the rest.
        raise PriceFeedError(f"price feed unreachable at {url}: {error}") from error
    if len(body) > MAX_RESPONSE_BYTES:
        raise PriceFeedError(f"price feed answer over {MAX_RESPONSE_BYTES} bytes")
    return body


class CoinGeckoMarkets:
    """Live prices from CoinGecko's `/coins/markets` (US dollars), one request a snapshot.

    Rows it cannot use are logged and left out; a failed request raises
    `PriceFeedError`. An optional demo API key is sent as CoinGecko asks.
    """

    def __init__(
        self,
        *,
        base_url: str = COINGECKO_BASE_URL,
        per_page: int = 250,
        timeout_seconds: float = 5.0,
        api_key: str | None = None,
        fetch: Fetch = fetch_with_urllib,
    ) -> None:
        scheme = urllib.parse.urlsplit(base_url).scheme
        if scheme not in {"http", "https"}:
            raise ValueError(f"base_url must be http or https, got {base_url!r}")
        if not 1 <= per_page <= 250:
            raise ValueError(f"per_page must be between 1 and 250, got {per_page}")
        if not timeout_seconds > 0:
            raise ValueError(f"timeout_seconds must be positive, got {timeout_seconds}")
        self._base_url = base_url.rstrip("/")
        self._per_page = per_page
        self._timeout_seconds = timeout_seconds
        self._api_key = api_key
        self._fetch = fetch

    @property
    def url(self) -> str:
        query = urllib.parse.urlencode(
            {
                "vs_currency": "usd",
                "order": "market_cap_desc",
                "per_page": self._per_page,
                "page": 1,
                "sparkline": "false",
            }
        )
        return f"{self._base_url}/coins/markets?{query}"

    def snapshot(self, now: datetime) -> dict[str, MarketTick]:
        _require_aware(now)
        headers = {"Accept": "application/json", "User-Agent": "trading-platform-inventory"}
        if self._api_key:
            headers["x-cg-demo-api-key"] = self._api_key
        body = self._fetch(self.url, headers, self._timeout_seconds)
        try:
            payload: object = json.loads(body)
        except ValueError as error:
            raise PriceFeedError(f"price feed answer is not JSON: {error}") from error
        parsed = parse_markets(payload)
        for row in parsed.rejected:
            logger.warning(
                "skipped a price feed row",
                extra={"row": row.index, "coin_id": row.coin_id, "reason": row.reason},
            )
        # A clock ahead of ours must not make a price look fresher than the moment we
        # read it: the stale-price rule compares as_of with our clock.
        return {
            tick.asset_id: tick if tick.as_of <= now else replace(tick, as_of=now)
            for tick in parsed.ticks
        }
