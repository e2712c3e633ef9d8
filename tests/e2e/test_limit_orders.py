"""Limit orders over HTTP through the bridge, on a market whose prices the test scripts:
a limit order rests, fills and is cancelled; GET /api/v1/stream/orders delivers each
user's own order events, and ends when the session does."""

from __future__ import annotations

import json
import queue
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal

import httpx
import pytest

from common.dynamo import ensure_table, make_client
from common.server import RunningServer
from tests.e2e.conftest import (
    ORDER_SERVERS,
    Account,
    Bridge,
    addresses,
    build_orders,
    grpc_serving,
    sign_up,
    wait_until,
)
from tests.integration.scripted_market import ScriptedMarket
from tests.support import Pki, tls_settings

EVENT_TIMEOUT = 20.0


@dataclass
class ScriptedStack:
    market: ScriptedMarket
    bridge: Bridge

    def move(self, http: httpx.Client, asset_id: str, price: str) -> None:
        """Moves the price and waits until the bridge quotes it."""
        self.market.move(asset_id, price)

        def quoted() -> bool:
            asset = http.get(f"/api/v1/inventory/assets/{asset_id}").json()["data"]
            return Decimal(asset["current_price"]) == Decimal(price)

        wait_until(quoted, f"{asset_id} quoted at {price}")


@pytest.fixture(scope="module")
def scripted(
    user_server: RunningServer,
    dynamodb_endpoint: str,
    redis_url: str,
    start_bridge: Callable[..., Bridge],
    wire_pki: Pki,
) -> Iterator[ScriptedStack]:
    from svc_inventory.__main__ import build as build_inventory
    from tests.integration.inventory_fixtures import inventory_settings
    from tests.integration.order_fixtures import order_settings

    prefix = f"e2elim{uuid.uuid4().hex[:6]}-"
    market = ScriptedMarket()
    inventory = build_inventory(
        inventory_settings(
            dynamodb_endpoint,
            redis_url,
            prefix,
            price_tick_seconds=0.1,
            **tls_settings(wire_pki, "svc_inventory"),
        ),
        source=market.source,
    )
    settings = order_settings(
        dynamodb_endpoint=dynamodb_endpoint,
        redis_url=redis_url,
        table_prefix=prefix,
        user_port=user_server.port,
        inventory_port=inventory.port,
        order_sweep_seconds=0.2,
        **tls_settings(wire_pki, "svc_order"),
    )
    ensure_table(make_client(dynamodb_endpoint, settings.aws_region), prefix + "trading")
    # Two, like the session's: each runs its price trigger and expiry sweep, and a
    # user's order events reach their stream whichever process wrote them.
    orders = build_orders(settings, wire_pki, [None] * ORDER_SERVERS)
    wait_until(
        lambda: grpc_serving(inventory.port, wire_pki, "svc_inventory"),
        "svc_inventory reports SERVING",
    )
    bridge = start_bridge(
        inventory_service_addr=f"127.0.0.1:{inventory.port}",
        order_service_addr=addresses(*(order.port for order in orders)),
    )
    yield ScriptedStack(market, bridge)
    for order in orders:
        order.shutdown()
    inventory.shutdown()


@pytest.fixture
def client(scripted: ScriptedStack) -> Iterator[httpx.Client]:
    with scripted.bridge.client() as http:
        yield http


def funded(http: httpx.Client, amount: str = "1000") -> Account:
    account = sign_up(http)
    deposited = http.post(
        "/api/v1/balance/deposit",
        json={"amount": amount},
        headers={**account.auth, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert deposited.status_code == 201, deposited.text
    return account


def place(http: httpx.Client, account: Account, **body: str) -> dict[str, object]:
    response = http.post("/api/v1/orders", json=body, headers=account.auth)
    assert response.status_code == 201, response.text
    data: dict[str, object] = response.json()["data"]
    return data


def order_status(http: httpx.Client, account: Account, order_id: object) -> str:
    return str(
        http.get(f"/api/v1/orders/{order_id}", headers=account.auth).json()["data"]["status"]
    )


def test_a_limit_order_rests_fills_at_the_quote_and_another_is_cancelled(
    scripted: ScriptedStack, client: httpx.Client
) -> None:
    scripted.move(client, "BTC", "100.00")
    ada = funded(client)
    resting = place(client, ada, order_type="limit_buy", asset_id="BTC", quantity="2", price="90")
    assert (resting["status"], resting["time_in_force"], resting["limit_price"]) == (
        "pending",
        "gtc",
        "90",
    )
    balance = client.get("/api/v1/balance", headers=ada.auth).json()
    assert (balance["current_balance"], balance["available_balance"], balance["held_balance"]) == (
        "1000.00",
        "820.00",
        "180.00",
    )
    open_orders = client.get("/api/v1/orders?status=open", headers=ada.auth).json()["data"]
    assert [o["order_id"] for o in open_orders] == [resting["order_id"]]

    scripted.move(client, "BTC", "88.40")
    wait_until(lambda: order_status(client, ada, resting["order_id"]) == "completed", "the fill")
    filled = client.get(f"/api/v1/orders/{resting['order_id']}", headers=ada.auth).json()["data"]
    assert (filled["price"], filled["total_amount"]) == ("88.40", "176.80")
    assert filled["filled_at"]
    portfolio = client.get("/api/v1/portfolio", headers=ada.auth).json()
    assert (portfolio["cash_balance"], portfolio["held_cash"]) == ("823.20", "0.00")

    other = place(client, ada, order_type="limit_sell", asset_id="BTC", quantity="1", price="120")
    cancelled = client.delete(f"/api/v1/orders/{other['order_id']}", headers=ada.auth)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["data"]["status"] == "cancelled"
    again = client.delete(f"/api/v1/orders/{other['order_id']}", headers=ada.auth)
    assert (again.status_code, again.json()["code"]) == (409, "ORDER_NOT_CANCELLABLE")
    filled_again = client.delete(f"/api/v1/orders/{resting['order_id']}", headers=ada.auth)
    assert filled_again.status_code == 409
    assert "completed" in filled_again.json()["detail"]
    grace = funded(client)
    foreign = client.delete(f"/api/v1/orders/{other['order_id']}", headers=grace.auth)
    assert (foreign.status_code, foreign.json()["code"]) == (404, "ORDER_NOT_FOUND")
    assert client.delete("/api/v1/orders/not-an-id", headers=ada.auth).status_code == 422
    assert client.delete(f"/api/v1/orders/{other['order_id']}").status_code == 401


class EventReader:
    """Reads one SSE response on a thread of its own; events arrive in `events`."""

    def __init__(self, bridge: Bridge, account: Account) -> None:
        self.events: queue.Queue[tuple[str, dict[str, object]] | None] = queue.Queue()
        self._client = bridge.client()
        self._account = account
        self.status = 0
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            with self._client.stream(
                "GET", "/api/v1/stream/orders", headers=self._account.auth
            ) as response:
                self.status = response.status_code
                name = ""
                for line in response.iter_lines():
                    if line.startswith("event: "):
                        name = line.removeprefix("event: ")
                    elif line.startswith("data: "):
                        self.events.put((name, json.loads(line.removeprefix("data: "))))
        except httpx.HTTPError:
            pass  # closed by the test
        self.events.put(None)  # the stream ended

    def next(self) -> tuple[str, dict[str, object]] | None:
        return self.events.get(timeout=EVENT_TIMEOUT)

    def until(self, wanted: Callable[[dict[str, object]], bool]) -> list[dict[str, object]]:
        """Every order update up to and including the first that `wanted` accepts."""
        seen: list[dict[str, object]] = []
        while True:
            item = self.next()
            assert item is not None, f"the stream ended before the event; saw {seen}"
            name, data = item
            assert name == "order"
            seen.append(data)
            if wanted(data):
                return seen

    def close(self) -> None:
        self._client.close()


def test_the_order_stream_delivers_each_users_own_fill_and_ends_at_logout(
    scripted: ScriptedStack, client: httpx.Client
) -> None:
    scripted.move(client, "ETH", "50.00")
    ada, grace = funded(client), funded(client)
    ada_events, grace_events = (
        EventReader(scripted.bridge, ada),
        EventReader(scripted.bridge, grace),
    )
    try:
        for reader in (ada_events, grace_events):
            reader.until(lambda data: data["event"] == "subscribed")
            assert reader.status == 200
        ada_order = place(
            client, ada, order_type="limit_buy", asset_id="ETH", quantity="1", price="45"
        )
        grace_order = place(
            client, grace, order_type="limit_buy", asset_id="ETH", quantity="1", price="40"
        )
        scripted.move(client, "ETH", "44.00")
        seen = ada_events.until(lambda data: data["event"] == "filled")
        assert [(d["event"], d["order"]["order_id"]) for d in seen] == [  # type: ignore[index]
            ("placed", ada_order["order_id"]),
            ("filled", ada_order["order_id"]),
        ]
        assert seen[-1]["order"]["price"] == "44.00"  # type: ignore[index]
        cancelled = client.delete(f"/api/v1/orders/{grace_order['order_id']}", headers=grace.auth)
        assert cancelled.status_code == 200
        theirs = grace_events.until(lambda data: data["event"] == "cancelled")
        # Grace saw her own order only: nothing of Ada's.
        assert {d["order"]["order_id"] for d in theirs} == {grace_order["order_id"]}  # type: ignore[index]

        logout = client.post("/api/v1/auth/logout", headers=ada.auth)
        assert logout.status_code == 200
        while (item := ada_events.next()) is not None:
            name, data = item
            assert name == "error", (name, data)
            assert data["code"] == "SESSION_ENDED"
    finally:
        ada_events.close()
        grace_events.close()


def test_the_order_stream_needs_a_token(client: httpx.Client) -> None:
    response = client.get("/api/v1/stream/orders")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
