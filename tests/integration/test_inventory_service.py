"""svc_inventory over real gRPC, with real dynalite and Redis and a fast simulated market."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import grpc
import pytest
import redis
from trading.v1 import inventory_pb2, inventory_pb2_grpc

from common.grpc_errors import error_info, field_violations
from devstack.engines import ROOT, free_port
from svc_inventory.__main__ import InventoryServer, build
from svc_inventory.cache import RedisQuoteCache, cache_client
from svc_inventory.config import InventorySettings
from svc_inventory.domain import SEED_CATALOGUE, Quote
from svc_inventory.server import SERVICE_NAME
from tests.integration.inventory_fixtures import (
    STREAMS,
    WORKERS,
    inventory_settings,
    serving,
    wait_until,
)
from tests.support import unique

Stub = inventory_pb2_grpc.InventoryServiceStub


def _refusal(call: object) -> tuple[grpc.StatusCode, str, list[tuple[str, str]]]:
    with pytest.raises(grpc.RpcError) as raised:
        call()  # type: ignore[operator]
    error = raised.value
    info = error_info(error)
    return error.code(), info.reason if info else "", field_violations(error)


def _quotes(inventory: Stub, *ids: str) -> dict[str, inventory_pb2.Quote]:
    response = inventory.GetQuotes(inventory_pb2.GetQuotesRequest(asset_ids=ids), timeout=5)
    return {q.asset_id: q for q in response.quotes}


def _is_plain_decimal(text: str) -> bool:
    return "E" not in text.upper() and Decimal(text).is_finite()


# ---------------------------------------------------------------- ListAssets


def test_list_assets_gives_active_assets_by_market_cap_rank(inventory: Stub) -> None:
    response = inventory.ListAssets(inventory_pb2.ListAssetsRequest(), timeout=5)
    ranks = [a.market_cap_rank for a in response.data]
    assert len(response.data) >= 20
    assert ranks == sorted(ranks)
    assert response.data[0].asset_id == "BTC"
    assert all(a.is_active for a in response.data)
    assert "FTT" not in {a.asset_id for a in response.data}
    assert (response.total_count, response.active_count) == (len(SEED_CATALOGUE), 24)
    btc = response.data[0]
    for text in (btc.current_price, btc.market_cap, btc.high_24h, btc.circulating_supply):
        assert _is_plain_decimal(text)
    assert btc.last_updated.ToDatetime(tzinfo=UTC) > datetime(2024, 6, 1, tzinfo=UTC)


def test_list_assets_with_active_only_false_includes_the_inactive_ftt(inventory: Stub) -> None:
    response = inventory.ListAssets(
        inventory_pb2.ListAssetsRequest(active_only=False, limit=250), timeout=5
    )
    by_id = {a.asset_id: a for a in response.data}
    assert len(by_id) == len(SEED_CATALOGUE)
    assert by_id["FTT"].is_active is False
    assert response.data[-1].asset_id == "FTT"


def test_list_assets_limit_rules(inventory: Stub) -> None:
    unset = inventory.ListAssets(inventory_pb2.ListAssetsRequest(), timeout=5)
    assert len(unset.data) == 24  # the default of 50 holds every active asset
    top = inventory.ListAssets(inventory_pb2.ListAssetsRequest(limit=3), timeout=5)
    assert [a.asset_id for a in top.data] == ["BTC", "ETH", "USDT"]
    for limit in (0, 251, -1):
        code, reason, violations = _refusal(
            lambda limit=limit: inventory.ListAssets(
                inventory_pb2.ListAssetsRequest(limit=limit), timeout=5
            )
        )
        assert code == grpc.StatusCode.INVALID_ARGUMENT
        assert reason == "INVALID_LIMIT"
        assert [field for field, _ in violations] == ["limit"]


# ---------------------------------------------------------------- GetAsset


def test_get_asset_upper_cases_the_id(inventory: Stub) -> None:
    asset = inventory.GetAsset(inventory_pb2.GetAssetRequest(asset_id="btc"), timeout=5).data
    assert (asset.asset_id, asset.name, asset.category) == ("BTC", "Bitcoin", "layer-1")
    assert Decimal(asset.low_24h) <= Decimal(asset.current_price) <= Decimal(asset.high_24h)


def test_get_asset_refuses_a_malformed_id(inventory: Stub) -> None:
    code, reason, violations = _refusal(
        lambda: inventory.GetAsset(inventory_pb2.GetAssetRequest(asset_id="BAD-ID!"), timeout=5)
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert reason == "INVALID_ASSET_ID"
    assert [field for field, _ in violations] == ["asset_id"]


def test_get_asset_answers_not_found_for_an_unknown_id(inventory: Stub) -> None:
    code, reason, _ = _refusal(
        lambda: inventory.GetAsset(inventory_pb2.GetAssetRequest(asset_id="ZZZZ"), timeout=5)
    )
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "ASSET_NOT_FOUND")


# ---------------------------------------------------------------- GetQuotes


def test_get_quotes_answers_many_ids_at_once_and_leaves_unknown_ones_out(
    inventory: Stub,
) -> None:
    response = inventory.GetQuotes(
        inventory_pb2.GetQuotesRequest(asset_ids=["eth", "ZZZZ", "BTC", "FTT", "btc"]), timeout=5
    )
    assert [q.asset_id for q in response.quotes] == ["ETH", "BTC", "FTT"]
    by_id = {q.asset_id: q for q in response.quotes}
    assert by_id["ETH"].asset_name == "Ethereum"
    assert (by_id["BTC"].is_active, by_id["FTT"].is_active) == (True, False)
    assert all(_is_plain_decimal(q.price) and Decimal(q.price) > 0 for q in response.quotes)


def test_get_quotes_refuses_a_malformed_id(inventory: Stub) -> None:
    code, _, violations = _refusal(
        lambda: inventory.GetQuotes(
            inventory_pb2.GetQuotesRequest(asset_ids=["BTC", "no way"]), timeout=5
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert [field for field, _ in violations] == ["asset_ids"]


def test_quotes_move_and_their_as_of_advances(inventory: Stub) -> None:
    first = _quotes(inventory, "BTC")["BTC"]
    seen: list[inventory_pb2.Quote] = []

    def moved() -> bool:
        seen.append(_quotes(inventory, "BTC")["BTC"])
        return seen[-1].price != first.price

    wait_until(moved, what="BTC price moves")
    later = seen[-1]
    assert later.as_of.ToDatetime() > first.as_of.ToDatetime()
    # as_of is when the price was observed: never ahead of the clock, never far behind.
    age = datetime.now(UTC) - later.as_of.ToDatetime(tzinfo=UTC)
    assert 0 <= age.total_seconds() < 5


def test_quotes_are_cached_in_redis_with_a_ttl(
    inventory: Stub, inventory_settings_fast: InventorySettings
) -> None:
    _quotes(inventory, "BTC")
    cache = redis.Redis.from_url(inventory_settings_fast.redis_url)
    table = inventory_settings_fast.table_prefix + inventory_settings_fast.assets_table
    key = f"quote:{table}:BTC"
    wait_until(lambda: cache.exists(key) == 1, what="BTC quote cached")
    ttl = cache.ttl(key)
    assert 0 < ttl <= inventory_settings_fast.price_cache_ttl_seconds


def test_quotes_survive_a_flushed_cache(
    inventory: Stub, inventory_settings_fast: InventorySettings
) -> None:
    ids = [a.asset_id for a in SEED_CATALOGUE]
    redis.Redis.from_url(inventory_settings_fast.redis_url).flushdb()
    assert set(_quotes(inventory, *ids)) == set(ids)


def test_quotes_come_from_the_store_when_redis_is_down(
    dynamodb_endpoint: str, redis_url: str, table_prefix: str
) -> None:
    settings = inventory_settings(
        dynamodb_endpoint,
        redis_url,
        table_prefix + "noredis-",
        redis_url=f"redis://127.0.0.1:{free_port()}/0",
    )
    running = build(settings)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            wait_until(lambda: serving(channel), what="SERVING")
            inventory = Stub(channel)
            first = _quotes(inventory, "BTC", "ETH")
            assert set(first) == {"BTC", "ETH"}
            wait_until(
                lambda: (
                    _quotes(inventory, "BTC")["BTC"].as_of.ToDatetime()
                    > first["BTC"].as_of.ToDatetime()
                ),
                what="store-backed quotes advance",
            )
    finally:
        running.shutdown()


# ---------------------------------------------------------------- StreamPrices


def _collect(stream: Iterator[inventory_pb2.StreamPricesResponse], count: int) -> list[str]:
    seen: list[str] = []
    for message in stream:
        seen.append(message.quote.asset_id)
        if len(seen) >= count:
            break
    return seen


def _cancel(server: InventoryServer, streams: Sequence[grpc.RpcContext]) -> None:
    """Cancel the streams and wait until the server has let go of every one of them."""
    for stream in streams:
        stream.cancel()
    wait_until(
        lambda: server.streams is not None and server.streams.subscriber_count == 0,
        what="every cancelled stream unsubscribes",
    )


def test_stream_prices_sends_changes_of_the_chosen_symbols_until_cancelled(
    inventory: Stub, inventory_server: InventoryServer
) -> None:
    stream = inventory.StreamPrices(
        inventory_pb2.StreamPricesRequest(symbols=["btc", "ETH"]), timeout=30
    )
    seen = _collect(stream, 12)
    _cancel(inventory_server, [stream])
    assert set(seen) == {"BTC", "ETH"}


def test_a_stream_message_carries_a_full_quote(
    inventory: Stub, inventory_server: InventoryServer
) -> None:
    stream = inventory.StreamPrices(inventory_pb2.StreamPricesRequest(symbols=["SOL"]), timeout=30)
    message = next(iter(stream))
    _cancel(inventory_server, [stream])
    assert message.quote.asset_id == "SOL"
    assert message.quote.asset_name == "Solana"
    assert message.quote.as_of.seconds > 0
    assert _is_plain_decimal(message.quote.price)
    assert _is_plain_decimal(message.price_change_percentage_24h)


def test_stream_prices_refuses_a_malformed_symbol(inventory: Stub) -> None:
    code, _, violations = _refusal(
        lambda: list(
            inventory.StreamPrices(
                inventory_pb2.StreamPricesRequest(symbols=["BTC", "$$$"]), timeout=5
            )
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert [field for field, _ in violations] == ["symbols"]


def test_cancelled_streams_give_their_threads_back(
    inventory: Stub, inventory_server: InventoryServer
) -> None:
    # More streams than worker threads, a few at a time: each cancel must free a worker.
    for _ in range(3 * WORKERS // STREAMS):
        streams = [
            inventory.StreamPrices(inventory_pb2.StreamPricesRequest(), timeout=30)
            for _ in range(STREAMS)
        ]
        for stream in streams:
            next(iter(stream))
        _cancel(inventory_server, streams)
    assert inventory.GetAsset(inventory_pb2.GetAssetRequest(asset_id="ETH"), timeout=5).data.name


def test_streams_beyond_the_limit_are_refused(
    inventory: Stub, inventory_server: InventoryServer
) -> None:
    streams = [
        inventory.StreamPrices(inventory_pb2.StreamPricesRequest(), timeout=30)
        for _ in range(STREAMS)
    ]
    try:
        for stream in streams:
            next(iter(stream))
        code, reason, _ = _refusal(
            lambda: next(iter(inventory.StreamPrices(inventory_pb2.StreamPricesRequest())))
        )
        assert (code, reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "TOO_MANY_STREAMS")
    finally:
        _cancel(inventory_server, streams)


def _how_it_ends(stream: Iterator[inventory_pb2.StreamPricesResponse]) -> grpc.StatusCode:
    try:
        for _ in stream:
            pass
    except grpc.RpcError as error:
        code: grpc.StatusCode = error.code()
        return code
    return grpc.StatusCode.OK


def test_shutdown_stops_the_ticker_and_ends_open_streams_cleanly(
    dynamodb_endpoint: str, redis_url: str, table_prefix: str
) -> None:
    grace = 5.0
    running = build(
        inventory_settings(
            dynamodb_endpoint, redis_url, table_prefix + "stop-", shutdown_grace_seconds=grace
        )
    )
    with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        stream = Stub(channel).StreamPrices(inventory_pb2.StreamPricesRequest(), timeout=30)
        next(iter(stream))
        started = time.monotonic()
        running.shutdown()
        # Ended by the service, not cut off when the grace period runs out.
        assert _how_it_ends(stream) == grpc.StatusCode.OK
    assert time.monotonic() - started < grace - 1
    assert running.ticker is not None
    assert not running.ticker.running


# ---------------------------------------------------------------- the process


def test_python_m_svc_inventory_seeds_serves_and_stops_on_sigterm(
    dynamodb_endpoint: str, redis_url: str, table_prefix: str
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'generated'}",
        "INVENTORY_GRPC_PORT": str(port),
        "REDIS_URL": redis_url,
        "DYNAMODB_ENDPOINT": dynamodb_endpoint,
        "TABLE_PREFIX": table_prefix + "process-",
        "SHUTDOWN_DRAIN_SECONDS": "0",
        "SHUTDOWN_GRACE_SECONDS": "1",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "svc_inventory"], cwd=ROOT, env=env, stderr=subprocess.PIPE
    )
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            wait_until(
                lambda: process.poll() is not None or serving(channel, SERVICE_NAME),
                timeout=30,
                what="python -m svc_inventory reports SERVING",
            )
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            listing = Stub(channel).ListAssets(inventory_pb2.ListAssetsRequest(), timeout=5)
            assert listing.total_count == len(SEED_CATALOGUE)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


def test_the_cache_never_goes_back_in_time(redis_url: str) -> None:
    cache = RedisQuoteCache(cache_client(redis_url), namespace=unique("ns"), ttl_seconds=30)
    now = datetime.now(UTC)
    newer = Quote("BTC", "Bitcoin", Decimal("101.00"), now, True)
    older = Quote("BTC", "Bitcoin", Decimal("99.00"), now - timedelta(seconds=1), True)
    cache.put_many([newer])
    cache.put_many([older])  # a slow tick or a second replica arriving late
    assert cache.get_many(["BTC"])["BTC"] == newer
    later = Quote("BTC", "Bitcoin", Decimal("102.00"), now + timedelta(seconds=1), True)
    cache.put_many([later])
    assert cache.get_many(["BTC"])["BTC"] == later
