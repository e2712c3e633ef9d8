"""The metrics of svc_inventory, svc_user and the bridge after what a user does: quotes
from the cache, a price stream open and closed, a failed login, a logout; the bridge's
/metrics page carries the process-wide families too."""

from __future__ import annotations

import time
from collections.abc import Generator

import httpx
from prometheus_client import REGISTRY
from trading.v1 import inventory_pb2, inventory_pb2_grpc

from tests.e2e.conftest import Account, Stack, wait_until
from tests.e2e.test_stream import read_events
from tests.support import dial


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_quotes_come_from_the_cache_and_prices_are_fresh(stack: Stack) -> None:
    hits = sample("price_cache_lookups_total", result="hit")
    with dial(stack.pki, stack.inventory.port, "svc_inventory", "svc_order") as channel:
        inventory_pb2_grpc.InventoryServiceStub(channel).GetQuotes(
            inventory_pb2.GetQuotesRequest(asset_ids=["BTC", "ETH"]), timeout=10
        )
    assert sample("price_cache_lookups_total", result="hit") >= hits + 2
    assert time.time() - sample("price_updated_timestamp_seconds") < 10


def test_an_open_price_stream_is_counted_until_it_ends(http: httpx.Client) -> None:
    before = sample("price_streams_active")
    with http.stream("GET", "/api/v1/stream/prices?symbols=btc") as response:
        lines: Generator[str] = response.iter_lines()  # type: ignore[assignment]
        read_events(lines, 1)
        assert sample("price_streams_active") == before + 1
        lines.close()
    wait_until(lambda: sample("price_streams_active") == before, "the stream is no longer counted")


def test_a_failed_login_and_a_logout_are_counted(http: httpx.Client, account: Account) -> None:
    login = {"grpc_service": "trading.v1.UserService", "grpc_method": "Login"}
    failures = sample("grpc_server_refusals_total", **login, reason="INVALID_CREDENTIALS")
    tokens = sample("tokens_revoked_total", kind="token")
    sessions = sample("tokens_revoked_total", kind="session")
    wrong = http.post(
        "/api/v1/auth/login", json={"username": account.username, "password": "Wrong-Horse-42!"}
    )
    assert wrong.status_code == 401
    assert http.post("/api/v1/auth/logout", headers=account.auth).status_code in (200, 204)
    assert sample("grpc_server_refusals_total", **login, reason="INVALID_CREDENTIALS") == (
        failures + 1
    )
    assert sample("tokens_revoked_total", kind="token") == tokens + 1
    assert sample("tokens_revoked_total", kind="session") == sessions + 1


def test_the_bridge_page_has_its_calls_and_redis_commands(http: httpx.Client) -> None:
    http.get("/api/v1/inventory/assets")
    page = http.get("/metrics").text
    for family in (
        "bridge_http_requests_total",
        "grpc_client_handled_total",
        "grpc_client_handling_seconds_bucket",
        "redis_commands_total",
    ):
        assert f"\n{family}{{" in page, family
