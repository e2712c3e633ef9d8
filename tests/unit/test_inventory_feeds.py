"""Price sources: the seeded simulated market and the CoinGecko adapter (offline)."""

from __future__ import annotations

import json
import logging
import socket
import threading
import urllib.parse
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from svc_inventory.domain import SEED_CATALOGUE, MarketTick
from svc_inventory.feeds import (
    CoinGeckoMarkets,
    PriceFeedError,
    PriceSource,
    SimulatedMarket,
    fetch_with_urllib,
    parse_market_row,
    parse_markets,
)

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "coingecko_markets.json"
START = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
STABLECOINS = [a.asset_id for a in SEED_CATALOGUE if a.category == "stablecoin"]
START_PRICES = {a.asset_id: a.current_price for a in SEED_CATALOGUE}


def _prices(ticks: Mapping[str, MarketTick]) -> dict[str, Decimal]:
    return {asset_id: tick.price for asset_id, tick in ticks.items()}


def _walk(market: SimulatedMarket, steps: int, every: timedelta) -> list[dict[str, Decimal]]:
    return [_prices(market.snapshot(START + every * i)) for i in range(steps)]


# ---------------------------------------------------------------- simulated market


def test_both_sources_satisfy_the_port() -> None:
    sources: list[PriceSource] = [
        SimulatedMarket(SEED_CATALOGUE, seed=1),
        CoinGeckoMarkets(fetch=RecordingFetch(b"[]")),
    ]
    assert len(sources) == 2


def test_first_snapshot_quotes_the_catalogue_prices_for_every_asset() -> None:
    ticks = SimulatedMarket(SEED_CATALOGUE, seed=7).snapshot(START)
    assert _prices(ticks) == START_PRICES
    assert all(t.as_of == START for t in ticks.values())
    assert all(t.price_change_24h == 0 for t in ticks.values())


def test_same_seed_and_times_give_the_same_prices() -> None:
    first = _walk(SimulatedMarket(SEED_CATALOGUE, seed=42), 200, timedelta(seconds=1))
    second = _walk(SimulatedMarket(SEED_CATALOGUE, seed=42), 200, timedelta(seconds=1))
    assert first == second
    assert first[-1] != first[0]


def test_a_different_seed_gives_different_prices() -> None:
    first = _walk(SimulatedMarket(SEED_CATALOGUE, seed=1), 50, timedelta(seconds=1))
    second = _walk(SimulatedMarket(SEED_CATALOGUE, seed=2), 50, timedelta(seconds=1))
    assert first[-1]["BTC"] != second[-1]["BTC"]
    assert first[-1] != second[-1]


def test_catalogue_order_does_not_change_the_prices() -> None:
    forward = _walk(SimulatedMarket(SEED_CATALOGUE, seed=3), 20, timedelta(seconds=5))
    backward = _walk(SimulatedMarket(reversed(SEED_CATALOGUE), seed=3), 20, timedelta(seconds=5))
    assert forward == backward


# Pure but long (10,000 ticks of every asset): under the pipeline's branch coverage
# on a busy machine it can outlast the suite's 300 s per-test cap.
LONG_RUN = pytest.mark.timeout(900)


def test_adding_an_asset_leaves_the_others_paths_alone() -> None:
    without_ftt = [a for a in SEED_CATALOGUE if a.asset_id != "FTT"]
    full = _walk(SimulatedMarket(SEED_CATALOGUE, seed=9), 30, timedelta(seconds=1))
    fewer = _walk(SimulatedMarket(without_ftt, seed=9), 30, timedelta(seconds=1))
    assert [{k: v for k, v in p.items() if k != "FTT"} for p in full] == fewer


@LONG_RUN
def test_prices_stay_positive_and_consistent_over_ten_thousand_ticks() -> None:
    market = SimulatedMarket(SEED_CATALOGUE, seed=2024)
    for i in range(10_000):
        for tick in market.snapshot(START + timedelta(seconds=i)).values():
            assert tick.price > 0
            assert tick.low_24h <= tick.price <= tick.high_24h
            assert tick.total_volume_24h > 0


def test_prices_stay_positive_even_under_absurd_volatility() -> None:
    market = SimulatedMarket(SEED_CATALOGUE, seed=5, volatility=200.0, tick_seconds=86_400)
    for day in range(2_000):
        ticks = market.snapshot(START + timedelta(days=day))
        assert all(t.price > 0 for t in ticks.values())


@LONG_RUN
@pytest.mark.parametrize("volatility", [1.0, 50.0])
def test_stablecoins_stay_within_a_tenth_of_a_percent_of_one_dollar(volatility: float) -> None:
    pegged = [a for a in SEED_CATALOGUE if a.asset_id in STABLECOINS]
    market = SimulatedMarket(pegged, seed=11, volatility=volatility)
    seen: set[Decimal] = set()
    for i in range(10_000):
        ticks = market.snapshot(START + timedelta(seconds=i))
        for asset_id in STABLECOINS:
            price = ticks[asset_id].price
            seen.add(price)
            assert Decimal("0.999") <= price <= Decimal("1.001")
    assert len(seen) > 1, "a stablecoin should still wobble"


def test_change_is_relative_to_the_start_price_during_the_first_day() -> None:
    market = SimulatedMarket(SEED_CATALOGUE, seed=8, volatility=20.0)
    history = _walk(market, 120, timedelta(minutes=1))
    ticks = market.snapshot(START + timedelta(minutes=119))
    for asset_id, tick in ticks.items():
        start = START_PRICES[asset_id]
        assert tick.price_change_24h == tick.price - start
        expected_pct = ((tick.price - start) / start * 100).quantize(Decimal("0.01"))
        assert tick.price_change_percentage_24h == expected_pct
        path = [prices[asset_id] for prices in history]
        assert tick.high_24h == max(path)
        assert tick.low_24h == min(path)


def test_high_low_and_change_cover_only_the_last_day() -> None:
    market = SimulatedMarket(SEED_CATALOGUE, seed=13, volatility=5.0, tick_seconds=3600)
    history = _walk(market, 72, timedelta(hours=1))
    btc = [prices["BTC"] for prices in history]
    last = market.snapshot(START + timedelta(hours=71))["BTC"]
    day = btc[-24:]
    assert last.high_24h == max(day)
    assert last.low_24h == min(day)
    assert last.price_change_24h == btc[-1] - btc[-24]


def test_prices_move_only_on_whole_ticks_and_never_stamp_the_future() -> None:
    market = SimulatedMarket(SEED_CATALOGUE, seed=4, tick_seconds=10)
    first = market.snapshot(START)
    assert market.snapshot(START + timedelta(seconds=9.9)) == first
    moved = market.snapshot(START + timedelta(seconds=25))
    assert moved["BTC"].as_of == START + timedelta(seconds=20)
    assert moved != first


def test_an_earlier_time_changes_nothing() -> None:
    market = SimulatedMarket(SEED_CATALOGUE, seed=4)
    later = market.snapshot(START + timedelta(minutes=5))
    assert market.snapshot(START) == later


def test_a_late_snapshot_catches_up_in_one_step() -> None:
    market = SimulatedMarket(SEED_CATALOGUE, seed=4, start=START)
    ticks = market.snapshot(START + timedelta(days=30))
    assert ticks["ETH"].as_of == START + timedelta(days=30)
    assert ticks["ETH"].price != START_PRICES["ETH"]


def test_the_market_refuses_naive_times_and_bad_settings() -> None:
    with pytest.raises(ValueError, match="timezone"):
        SimulatedMarket(SEED_CATALOGUE, seed=1).snapshot(datetime(2024, 6, 1))
    with pytest.raises(ValueError, match="tick_seconds"):
        SimulatedMarket(SEED_CATALOGUE, seed=1, tick_seconds=0)
    with pytest.raises(ValueError, match="volatility"):
        SimulatedMarket(SEED_CATALOGUE, seed=1, volatility=float("nan"))


# ---------------------------------------------------------------- CoinGecko parsing


@pytest.fixture(scope="module")
def recorded() -> list[dict[str, object]]:
    payload: list[dict[str, object]] = json.loads(FIXTURE.read_text())
    return payload


def test_recorded_response_parses_into_upper_case_ticks(recorded: list[dict[str, object]]) -> None:
    parsed = parse_markets(recorded)
    assert parsed.rejected == ()
    ticks = {t.asset_id: t for t in parsed.ticks}
    assert len(ticks) == len(recorded) >= 20
    assert {"BTC", "ETH", "USDT", "SOL", "SHIB", "MATIC", "DAI"} <= set(ticks)
    btc = ticks["BTC"]
    assert btc.price == Decimal("67712.40")
    assert btc.high_24h == Decimal("68456.12")
    assert btc.low_24h == Decimal("67245.87")
    assert btc.price_change_percentage_24h == Decimal("-0.42")
    assert btc.total_volume_24h == Decimal("24986350112.00")
    assert btc.as_of == datetime(2024, 6, 1, 12, 1, 7, 131_000, tzinfo=UTC)
    # 2.47e-05 in the JSON: no float error, no exponent in the string.
    assert ticks["SHIB"].price == Decimal("0.00002470")
    assert format(ticks["SHIB"].price, "f") == "0.00002470"
    assert ticks["USDC"].price == Decimal("0.999941")
    for tick in ticks.values():
        assert isinstance(tick.price, Decimal)
        assert isinstance(tick.price_change_24h, Decimal)
        assert tick.low_24h <= tick.price <= tick.high_24h


def _row(**changes: object) -> dict[str, object]:
    row: dict[str, object] = {
        "id": "bitcoin",
        "symbol": "btc",
        "name": "Bitcoin",
        "current_price": 67712.4,
        "high_24h": 68456.12,
        "low_24h": 67245.87,
        "price_change_24h": -286.48,
        "price_change_percentage_24h": -0.4213,
        "total_volume": 24986350112,
        "max_supply": None,
        "roi": None,
        "last_updated": "2024-06-01T12:01:07.131Z",
    }
    row.update(changes)
    return {k: v for k, v in row.items() if v is not _MISSING}


_MISSING = object()


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"current_price": None}, "current_price is missing"),
        ({"current_price": _MISSING}, "current_price is missing"),
        ({"current_price": "67712.4"}, "current_price is not a number"),
        ({"current_price": True}, "current_price is not a number"),
        ({"current_price": 0}, "current_price must be positive"),
        ({"current_price": -1.5}, "current_price must be positive"),
        ({"current_price": float("nan")}, "current_price is not finite"),
        ({"high_24h": float("inf")}, "high_24h is not finite"),
        ({"total_volume": -5}, "total_volume must not be negative"),
        ({"symbol": None}, "symbol is missing"),
        ({"symbol": "btc-usd"}, "not a valid asset id"),
        ({"symbol": "averyverylongsymbol"}, "not a valid asset id"),
        ({"last_updated": None}, "last_updated is missing"),
        ({"last_updated": "yesterday"}, "not an ISO 8601 time"),
        ({"last_updated": "2024-06-01T12:01:07"}, "no time zone"),
    ],
)
def test_malformed_rows_are_refused_with_a_reason(changes: dict[str, object], reason: str) -> None:
    good = _row(id="ethereum", symbol="eth")
    parsed = parse_markets([good, _row(**changes)])
    assert [t.asset_id for t in parsed.ticks] == ["ETH"]
    assert len(parsed.rejected) == 1
    refused = parsed.rejected[0]
    assert (refused.index, refused.coin_id) == (1, "bitcoin")
    assert reason in refused.reason


def test_rows_that_are_not_objects_and_duplicate_symbols_are_refused() -> None:
    parsed = parse_markets([_row(), "bitcoin", _row(id="bitcoin-on-another-chain")])
    assert [t.asset_id for t in parsed.ticks] == ["BTC"]
    assert [(r.index, r.reason) for r in parsed.rejected] == [
        (1, "row is not an object"),
        (2, "duplicate symbol BTC"),
    ]


def test_null_optional_fields_fall_back_sensibly() -> None:
    tick = parse_market_row(
        _row(high_24h=None, low_24h=None, price_change_24h=None, total_volume=None)
    )
    assert tick.high_24h == tick.low_24h == tick.price == Decimal("67712.40")
    assert tick.price_change_24h == 0
    assert tick.total_volume_24h == 0


def test_a_stale_24h_range_is_widened_to_contain_the_price() -> None:
    tick = parse_market_row(_row(current_price=70000, high_24h=69000.5, low_24h=71000))
    assert tick.high_24h == tick.low_24h == tick.price == Decimal("70000.00")


def test_a_payload_that_is_not_a_list_is_a_feed_error() -> None:
    error_body = {"status": {"error_code": 429, "error_message": "rate limited"}}
    with pytest.raises(PriceFeedError, match="not a list"):
        parse_markets(error_body)


# ---------------------------------------------------------------- CoinGecko fetching


class RecordingFetch:
    def __init__(self, body: bytes) -> None:
        self.body = body
        self.calls: list[tuple[str, dict[str, str], float]] = []

    def __call__(self, url: str, headers: Mapping[str, str], timeout: float) -> bytes:
        self.calls.append((url, dict(headers), timeout))
        return self.body


def test_the_adapter_asks_for_usd_markets_at_the_injected_url() -> None:
    fetch = RecordingFetch(FIXTURE.read_bytes())
    feed = CoinGeckoMarkets(base_url="http://127.0.0.1:9/api/v3/", timeout_seconds=2.5, fetch=fetch)
    ticks = feed.snapshot(datetime(2024, 6, 1, 13, tzinfo=UTC))
    assert ticks["ETH"].price == Decimal("3781.06")
    [(url, headers, timeout)] = fetch.calls
    parts = urllib.parse.urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == (
        "http",
        "127.0.0.1:9",
        "/api/v3/coins/markets",
    )
    query = urllib.parse.parse_qs(parts.query)
    assert query["vs_currency"] == ["usd"]
    assert query["order"] == ["market_cap_desc"]
    assert query["per_page"] == ["250"]
    assert timeout == 2.5
    assert headers["Accept"] == "application/json"
    assert "x-cg-demo-api-key" not in headers


def test_the_adapter_sends_the_api_key_when_given() -> None:
    fetch = RecordingFetch(b"[]")
    CoinGeckoMarkets(api_key="demo-key", fetch=fetch).snapshot(START)
    assert fetch.calls[0][1]["x-cg-demo-api-key"] == "demo-key"


def test_a_price_stamped_after_now_is_restamped_to_now() -> None:
    fetch = RecordingFetch(FIXTURE.read_bytes())
    before_recording = datetime(2024, 6, 1, 12, 0, 30, tzinfo=UTC)
    ticks = CoinGeckoMarkets(fetch=fetch).snapshot(before_recording)
    assert max(t.as_of for t in ticks.values()) == before_recording


def test_malformed_rows_are_logged_and_left_out(caplog: pytest.LogCaptureFixture) -> None:
    body = json.dumps([_row(), _row(id="broken", symbol="eth", current_price=None)]).encode()
    with caplog.at_level(logging.WARNING, logger="svc_inventory.feeds"):
        ticks = CoinGeckoMarkets(fetch=RecordingFetch(body)).snapshot(START)
    assert set(ticks) == {"BTC"}
    [record] = caplog.records
    assert record.__dict__["coin_id"] == "broken"
    assert "current_price" in record.__dict__["reason"]


def test_an_answer_that_is_not_json_is_a_feed_error() -> None:
    feed = CoinGeckoMarkets(fetch=RecordingFetch(b"<html>Bad gateway</html>"))
    with pytest.raises(PriceFeedError, match="not JSON"):
        feed.snapshot(START)


@pytest.mark.parametrize("base_url", ["file:///etc/passwd", "ftp://example.com", "api/v3"])
def test_only_http_base_urls_are_accepted(base_url: str) -> None:
    with pytest.raises(ValueError, match="http"):
        CoinGeckoMarkets(base_url=base_url)


# The standard-library fetch, against a server on loopback (never the internet).


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.startswith("/api/v3/coins/markets"):
            body = FIXTURE.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            self.send_error(503, "unavailable")

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output quiet."""


@pytest.fixture
def loopback_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_the_standard_library_fetch_reads_real_http(loopback_url: str) -> None:
    feed = CoinGeckoMarkets(base_url=f"{loopback_url}/api/v3")
    ticks = feed.snapshot(datetime(2024, 6, 2, tzinfo=UTC))
    assert ticks["BTC"].price == Decimal("67712.40")


def test_an_http_error_is_a_feed_error(loopback_url: str) -> None:
    with pytest.raises(PriceFeedError, match="HTTP 503"):
        fetch_with_urllib(f"{loopback_url}/elsewhere", {}, 5.0)


def test_a_silent_server_times_out_as_a_feed_error() -> None:
    # Connections queue in the backlog but are never answered.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        with pytest.raises(PriceFeedError, match="unreachable"):
            fetch_with_urllib(f"http://127.0.0.1:{port}/", {}, 0.2)


def test_a_closed_port_is_a_feed_error() -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    with pytest.raises(PriceFeedError, match="unreachable"):
        fetch_with_urllib(f"http://127.0.0.1:{port}/", {}, 2.0)
