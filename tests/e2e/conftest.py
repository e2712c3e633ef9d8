"""The REST bridge served for real (uvicorn on an ephemeral loopback port, in a thread)
in front of svc_user, svc_inventory and svc_order started in this process.

svc_order runs as two servers on their own ports and one table, as `./dev up` runs it
with ORDER_PROCESSES=2: the bridge and svc_user reach them through the comma-separated
address, balanced round robin, so every route's answer, race, key and fault here holds
with an account served by two processes at once (only the account's version condition
referees between them; the per-process user locks do not).

`start_bridge(**overrides)` starts more bridges with other settings (small limits, a
dead Redis, a missing service); each gets its own Redis key prefix, so their buckets
and login counters never meet.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from common.dynamo import ensure_table, make_client
from common.server import RunningServer
from rest_bridge.__main__ import open_channels
from rest_bridge.app import create_app
from rest_bridge.channels import BridgeChannels
from rest_bridge.config import BridgeSettings
from rest_bridge.http_server import http_server
from svc_order.config import OrderSettings
from svc_order.domain import AppliedOperation, OperationKind
from svc_order.domain.records import order_id_of
from svc_order.service import WriteHook, WriteStage
from svc_user.config import UserSettings
from tests.support import Pki, dial, tls_settings, unique
from tests.user_service import STRONG_PASSWORD

START_TIMEOUT = 30.0
# The services trust the bridge on loopback to pass on its client's address, as under
# `./dev up`.
LOOPBACK = [ipaddress.ip_network("127.0.0.1/32")]
# Generous limits for the shared bridge: tests of the limits start their own bridge.
UNLIMITED = {
    "rate_limit_ip_per_second": 100_000.0,
    "rate_limit_ip_burst": 100_000,
    "rate_limit_user_per_second": 100_000.0,
    "rate_limit_user_burst": 100_000,
}


def wait_until(condition: Callable[[], bool], what: str, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {timeout}s: {what}")
        time.sleep(0.02)


def grpc_serving(port: int, pki: Pki = None, name: str = "svc_user") -> bool:
    """Whether the service `name` on `port` reports SERVING (asked as the operator)."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with dial(pki, port, name, "operator") as channel:
        try:
            answer = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=1
            )
        except grpc.RpcError:
            return False
    return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)


def dead_address() -> str:
    """A loopback port nothing listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{probe.getsockname()[1]}"


# svc_order's servers in the session's stack (ORDER_PROCESSES of `./dev up`).
ORDER_SERVERS = 2


def addresses(*ports: int) -> str:
    """The address of a service served on `ports` (several: balanced round robin)."""
    return ",".join(f"127.0.0.1:{port}" for port in ports)


class WrittenOrders:
    """The ids of the orders one svc_order server wrote (its account write won): its
    write hook, so that a test can tell which process served a request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids: set[str] = set()

    def __call__(self, stage: WriteStage, operation: AppliedOperation) -> None:
        if stage is WriteStage.AFTER_ACCOUNT_WRITE and operation.kind in (
            OperationKind.BUY,
            OperationKind.SELL,
        ):
            with self._lock:
                self._ids.add(order_id_of(operation))

    def __contains__(self, order_id: object) -> bool:
        with self._lock:
            return order_id in self._ids


def build_orders(
    settings: OrderSettings, pki: Pki, hooks: Sequence[WriteHook | None]
) -> tuple[Any, ...]:
    """One svc_order server per hook (each on its own port, all on `settings`' table),
    once each reports SERVING; the caller shuts them down."""
    from svc_order.__main__ import build as build_order

    orders: list[Any] = []
    try:
        for hook in hooks:
            orders.append(build_order(settings, write_hook=hook))
        for order in orders:
            wait_until(
                lambda order=order: grpc_serving(order.port, pki, "svc_order"),  # type: ignore[misc]
                "svc_order reports SERVING",
            )
    except BaseException:
        for order in orders:
            order.shutdown()
        raise
    return tuple(orders)


@dataclass
class Stack:
    user: RunningServer
    inventory: Any  # svc_inventory.__main__.InventoryServer
    orders: tuple[Any, ...]  # svc_order.__main__.OrderServer, each on its own port
    written: tuple[WrittenOrders, ...]  # what each of `orders` wrote, in that order
    pki: Pki = None  # the certificates when the run is on mTLS

    @property
    def order(self) -> Any:
        """The first svc_order server (a test that dials one process)."""
        return self.orders[0]

    @property
    def order_address(self) -> str:
        """Every svc_order server, as its clients are given them."""
        return addresses(*(order.port for order in self.orders))


@pytest.fixture(scope="session")
def stack(
    user_server: RunningServer,
    user_settings: UserSettings,
    dynamodb_endpoint: str,
    redis_url: str,
    table_prefix: str,
    wire_pki: Pki,
) -> Iterator[Stack]:
    from svc_inventory.__main__ import build as build_inventory
    from svc_user.__main__ import build as build_user
    from tests.integration.inventory_fixtures import STREAMS, inventory_settings
    from tests.integration.order_fixtures import order_settings

    inventory = build_inventory(
        inventory_settings(
            dynamodb_endpoint,
            redis_url,
            table_prefix,
            # Slower than the integration suite's ticks: this machine is shared.
            price_tick_seconds=0.25,
            # Each svc_order server holds one price stream of its own (its quotes), as
            # each process does under `./dev up`: the browsers' places come on top.
            max_price_streams=STREAMS + ORDER_SERVERS,
            user_service_addr=f"127.0.0.1:{user_server.port}",
            client_address_trusted_peers=LOOPBACK,
            **tls_settings(wire_pki, "svc_inventory"),
        )
    )
    settings = order_settings(
        dynamodb_endpoint=dynamodb_endpoint,
        redis_url=redis_url,
        table_prefix=table_prefix,
        user_port=user_server.port,
        inventory_port=inventory.port,
        client_address_trusted_peers=LOOPBACK,
        **tls_settings(wire_pki, "svc_order"),
    )
    ensure_table(
        make_client(dynamodb_endpoint, settings.aws_region), table_prefix + settings.trading_table
    )
    written = tuple(WrittenOrders() for _ in range(ORDER_SERVERS))
    orders = build_orders(settings, wire_pki, written)
    wait_until(
        lambda: grpc_serving(inventory.port, wire_pki, "svc_inventory"),
        "svc_inventory reports SERVING",
    )
    # The bridge's svc_user reaches svc_order (data export, account closing); the
    # session's first svc_user, which svc_order and svc_inventory ask for keys, shares
    # its table and signing key.
    user = build_user(
        user_settings.model_copy(
            update={
                "order_service_addr": addresses(*(order.port for order in orders)),
                "client_address_trusted_peers": LOOPBACK,
            }
        )
    )
    wait_until(lambda: grpc_serving(user.port, wire_pki, "svc_user"), "svc_user reports SERVING")
    yield Stack(user, inventory, orders, written, wire_pki)
    user.shutdown()
    # shutdown, not only the server: svc_order's price trigger and sweep stop too.
    for order in orders:
        order.shutdown()
    inventory.shutdown()


@dataclass
class Bridge:
    url: str
    settings: BridgeSettings
    app: FastAPI
    server: uvicorn.Server
    thread: threading.Thread
    # grpc.aio channels, opened and closed on the bridge's loop by the app's lifespan.
    channels: BridgeChannels

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kwargs)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


def serve(settings: BridgeSettings) -> Bridge:
    channels = open_channels(settings)
    app = create_app(settings, channels)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = http_server(app, settings)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [listener]}, name="bridge", daemon=True
    )
    thread.start()
    wait_until(lambda: server.started, "the bridge is listening")
    return Bridge(f"http://127.0.0.1:{port}", settings, app, server, thread, channels)


@pytest.fixture(scope="session")
def bridge_settings(stack: Stack, redis_url: str) -> Callable[..., BridgeSettings]:
    """Settings of a bridge in front of this session's services; keyword arguments
    override any of them."""

    def make(**overrides: Any) -> BridgeSettings:
        fields: dict[str, Any] = {
            "redis_url": redis_url,
            "user_service_addr": f"127.0.0.1:{stack.user.port}",
            "inventory_service_addr": f"127.0.0.1:{stack.inventory.port}",
            "order_service_addr": stack.order_address,
            "rate_limit_key_prefix": f"test-{uuid.uuid4().hex[:8]}",
            "cors_allow_origins": ["https://app.example.org"],
            "shutdown_grace_seconds": 0,
            **UNLIMITED,
            **tls_settings(stack.pki, "rest_bridge"),
        }
        fields.update(overrides)
        return BridgeSettings(**fields)

    return make


def _bridges(bridge_settings: Callable[..., BridgeSettings]) -> Iterator[Callable[..., Bridge]]:
    """A function that starts a bridge; every bridge it started stops when the
    generator ends."""
    started: list[Bridge] = []

    def start(**overrides: Any) -> Bridge:
        bridge = serve(bridge_settings(**overrides))
        started.append(bridge)
        return bridge

    yield start
    for bridge in started:
        bridge.stop()


@pytest.fixture(scope="module")
def start_bridge(bridge_settings: Callable[..., BridgeSettings]) -> Iterator[Callable[..., Bridge]]:
    """Starts bridges that stop at the end of the module."""
    yield from _bridges(bridge_settings)


@pytest.fixture(scope="session")
def start_session_bridge(
    bridge_settings: Callable[..., BridgeSettings],
) -> Iterator[Callable[..., Bridge]]:
    """Starts bridges that serve the whole session (the shared `bridge`, the web app's)."""
    yield from _bridges(bridge_settings)


@pytest.fixture(scope="session")
def bridge(start_session_bridge: Callable[..., Bridge]) -> Bridge:
    return start_session_bridge()


@pytest.fixture
def http(bridge: Bridge) -> Iterator[httpx.Client]:
    with bridge.client() as client:
        yield client


@dataclass
class Account:
    username: str
    password: str
    email: str
    access_token: str
    refresh_token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


def new_registration(**overrides: Any) -> dict[str, Any]:
    name = unique()
    body: dict[str, Any] = {
        "username": name,
        "email": f"{name}@example.org",
        "password": STRONG_PASSWORD,
        "first_name": "ada",
        "last_name": "lovelace",
    }
    body.update(overrides)
    return body


def sign_up(client: httpx.Client, **overrides: Any) -> Account:
    body = new_registration(**overrides)
    registered = client.post("/api/v1/auth/register", json=body)
    assert registered.status_code == 201, registered.text
    login = client.post(
        "/api/v1/auth/login", json={"username": body["username"], "password": body["password"]}
    )
    assert login.status_code == 200, login.text
    tokens = login.json()
    return Account(
        body["username"],
        body["password"],
        body["email"],
        tokens["access_token"],
        tokens["refresh_token"],
    )


@pytest.fixture
def account(http: httpx.Client) -> Account:
    return sign_up(http)
