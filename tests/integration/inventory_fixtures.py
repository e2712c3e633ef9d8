"""svc_inventory started for real, in this process, on an ephemeral port.

Its quote cache gets a Redis database of its own, so that a test may FLUSHDB it
without touching the revocation lists other services keep in database 0.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit, urlunsplit

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from trading.v1 import inventory_pb2_grpc

from svc_inventory.__main__ import InventoryServer, build
from svc_inventory.config import InventorySettings
from tests.support import PATIENT_STORE

INVENTORY_REDIS_DB = 3
# Fast and lively prices keep the suite short while every code path stays the same.
FAST_TICK_SECONDS = 0.05
LIVELY_VOLATILITY = 20.0
WORKERS = 8
STREAMS = 4


def wait_until(condition: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {timeout}s: {what or condition}")
        time.sleep(0.02)


def redis_database(url: str, database: int) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


def inventory_settings(
    dynamodb_endpoint: str, redis_url: str, table_prefix: str, /, **overrides: object
) -> InventorySettings:
    fields: dict[str, object] = {
        "grpc_host": "127.0.0.1",
        "inventory_grpc_port": 0,
        "redis_url": redis_database(redis_url, INVENTORY_REDIS_DB),
        "dynamodb_endpoint": dynamodb_endpoint,
        "table_prefix": table_prefix,
        "price_source": "simulated",
        "price_tick_seconds": FAST_TICK_SECONDS,
        "market_volatility": LIVELY_VOLATILITY,
        "grpc_max_workers": WORKERS,
        "max_price_streams": STREAMS,
        "shutdown_drain_seconds": 0,
        "shutdown_grace_seconds": 0,
        **PATIENT_STORE,
    }
    fields.update(overrides)
    return InventorySettings(**fields)  # type: ignore[arg-type]


def serving(channel: grpc.Channel, service: str = "") -> bool:
    stub = health_pb2_grpc.HealthStub(channel)
    try:
        response = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=1)
    except grpc.RpcError:
        return False
    return bool(response.status == health_pb2.HealthCheckResponse.SERVING)


@pytest.fixture(scope="session")
def inventory_settings_fast(
    dynamodb_endpoint: str, redis_url: str, table_prefix: str
) -> InventorySettings:
    return inventory_settings(dynamodb_endpoint, redis_url, table_prefix)


@pytest.fixture(scope="session")
def inventory_server(inventory_settings_fast: InventorySettings) -> Iterator[InventoryServer]:
    running = build(inventory_settings_fast)
    yield running
    running.shutdown()


@pytest.fixture(scope="session")
def inventory_channel(inventory_server: InventoryServer) -> Iterator[grpc.Channel]:
    channel = grpc.insecure_channel(f"127.0.0.1:{inventory_server.port}")
    wait_until(lambda: serving(channel), what="svc_inventory reports SERVING")
    yield channel
    channel.close()


@pytest.fixture(scope="session")
def inventory(inventory_channel: grpc.Channel) -> inventory_pb2_grpc.InventoryServiceStub:
    return inventory_pb2_grpc.InventoryServiceStub(inventory_channel)
