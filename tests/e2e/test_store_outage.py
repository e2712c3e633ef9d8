"""The store killed while orders flow through the bridge: every answer is a success or a
503 with Retry-After (never a 500), and /health answers 503 `degraded` naming the store;
a stalled store (SIGSTOP) is a quick 503 too, not a 504 at the end of the deadline.

svc_order runs as two servers (round robin) on a dynalite of this test's own (a real
process), which the test kills.
"""

from __future__ import annotations

import os
import signal
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator

import httpx
import pytest

from common.dynamo import ensure_table, make_client
from devstack.engines import Engine
from tests.e2e.conftest import (
    ORDER_SERVERS,
    Bridge,
    Stack,
    addresses,
    build_orders,
    sign_up,
    wait_until,
)
from tests.support import STORE_DEFAULTS, tls_settings

ORDER = {"order_type": "market_buy", "asset_id": "BTC", "quantity": "0.001"}


@pytest.fixture
def bridge_on_own_store(
    own_store: Engine,
    stack: Stack,
    redis_url: str,
    table_prefix: str,
    start_bridge: Callable[..., Bridge],
) -> Iterator[Bridge]:
    from tests.integration.order_fixtures import order_settings

    settings = order_settings(
        dynamodb_endpoint=own_store.url,
        redis_url=redis_url,
        table_prefix=table_prefix,
        user_port=stack.user.port,
        inventory_port=stack.inventory.port,
        **tls_settings(stack.pki, "svc_order"),
        **STORE_DEFAULTS,
    )
    ensure_table(
        make_client(own_store.url, settings.aws_region), table_prefix + settings.trading_table
    )
    # Two servers on it, like the session's: the store is down for both processes.
    orders = build_orders(settings, stack.pki, [None] * ORDER_SERVERS)
    try:
        yield start_bridge(order_service_addr=addresses(*(order.port for order in orders)))
    finally:
        for order in orders:
            order.shutdown()


def test_orders_answer_503_with_retry_after_once_the_store_is_killed(
    own_store: Engine, bridge_on_own_store: Bridge
) -> None:
    with bridge_on_own_store.client() as http:
        account = sign_up(http)
        deposited = http.post(
            "/api/v1/balance/deposit", json={"amount": 1000}, headers=account.auth
        )
        assert deposited.status_code == 201, deposited.text
        assert http.get("/health").json()["status"] == "healthy"

        answers: Counter[int] = Counter()
        missing_retry_after: list[httpx.Response] = []
        killed = threading.Event()
        after_kill: Counter[int] = Counter()

        def place_orders() -> None:
            # Until 20 orders have been answered after the kill.
            while after_kill.total() < 20:
                was_killed = killed.is_set()
                response = http.post(
                    "/api/v1/orders",
                    json=ORDER,
                    headers={**account.auth, "Idempotency-Key": uuid.uuid4().hex},
                )
                answers[response.status_code] += 1
                if was_killed:
                    after_kill[response.status_code] += 1
                if response.status_code == 503 and "Retry-After" not in response.headers:
                    missing_retry_after.append(response)

        flow = threading.Thread(target=place_orders, name="orders")
        flow.start()
        wait_until(lambda: answers[201] >= 5, "orders flow")
        own_store.process.kill()
        own_store.process.wait()
        killed.set()
        flow.join(timeout=60)
        assert not flow.is_alive()

        assert set(answers) <= {201, 503}, answers
        assert after_kill == {503: 20}
        assert not missing_retry_after
        failed = http.post("/api/v1/orders", json=ORDER, headers=account.auth)
        assert failed.status_code == 503
        assert failed.json()["code"] == "STORE_UNAVAILABLE"
        assert int(failed.headers["Retry-After"]) >= 1

        def degraded() -> bool:
            return http.get("/health").status_code == 503

        wait_until(degraded, "/health turns degraded")
        health = http.get("/health").json()
        assert health["status"] == "degraded"
        assert health["dependencies"]["svc_order"] == "down"
        assert health["causes"] == {"svc_order": ["store"]}


def test_a_stalled_store_is_a_503_with_retry_after_not_a_504(
    own_store: Engine, bridge_on_own_store: Bridge
) -> None:
    with bridge_on_own_store.client() as http:
        account = sign_up(http)
        deposited = http.post("/api/v1/balance/deposit", json={"amount": 100}, headers=account.auth)
        assert deposited.status_code == 201, deposited.text
        os.kill(own_store.process.pid, signal.SIGSTOP)
        try:
            # The client would wait 5 s (the bridge's default deadline) for a 504.
            for answer in (
                http.get("/api/v1/balance", headers=account.auth),
                http.post("/api/v1/orders", json=ORDER, headers=account.auth),
            ):
                assert answer.status_code == 503, answer.text
                assert answer.json()["code"] == "STORE_UNAVAILABLE"
                assert int(answer.headers["Retry-After"]) >= 1
            wait_until(lambda: http.get("/health").status_code == 503, "/health turns degraded")
            assert http.get("/health").json()["causes"] == {"svc_order": ["store"]}
        finally:
            os.kill(own_store.process.pid, signal.SIGCONT)
        wait_until(lambda: http.get("/health").status_code == 200, "/health is healthy again")
        assert http.get("/api/v1/balance", headers=account.auth).json()["current_balance"] == (
            "100.00"
        )
