"""The README's table "When a part fails", row by row, against real processes.

One local stack (devstack.LocalStack: dynalite, Redis, every service and the bridge as
child processes on free ports, engines in memory) is supervised as `./dev up` does it.
Each test breaks one part (SIGKILL, SIGSTOP, SIGTERM), checks what a client of the
REST surface sees and what is kept, lets the part recover (SIGCONT, or the supervisor's
restart) and checks the platform is whole again. The supervisor is held while a test
looks at the gap, so a restart cannot hide it. `-s` prints the measured times.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from devstack.stack import LocalStack
from devstack.supervisor import Supervisor

PASSWORD = "Correct-Horse-42!"
# The client's patience for every request here, as X-Request-Timeout: a hung
# dependency must answer well before it.
CLIENT_TIMEOUT_SECONDS = 5.0
# svc_order's default: how old a quote from its price stream may be to price an order.
STREAMED_QUOTE_MAX_AGE_SECONDS = 2.0
RECOVERY_SECONDS = 60.0


@dataclass
class Platform:
    stack: LocalStack
    http: httpx.Client
    console: list[str]
    hold: threading.Event  # set: the supervisor leaves dead processes alone
    token: str = ""
    ended_token: str = ""
    username: str = ""
    orders: list[str] = field(default_factory=list)

    def auth(self, token: str | None = None) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {token or self.token}",
            "X-Request-Timeout": str(CLIENT_TIMEOUT_SECONDS),
        }

    def pid(self, name: str) -> int:
        return self.stack.children()[name].pid

    def signal(self, name: str, number: signal.Signals) -> None:
        os.kill(self.pid(name), number)

    def processes_of(self, service: str) -> list[str]:
        """The names of the processes that run `service` (svc_order runs several)."""
        return [spec.name for spec in self.stack.specs if spec.runs == service]

    def timed(self, method: str, path: str, **kwargs: object) -> tuple[httpx.Response, float]:
        started = time.monotonic()
        response = self.http.request(method, path, **kwargs)  # type: ignore[arg-type]
        return response, time.monotonic() - started

    def buy(self) -> httpx.Response:
        return self.http.post(
            "/api/v1/orders",
            json={"order_type": "market_buy", "asset_id": "BTC", "quantity": "0.001"},
            headers={**self.auth(), "Idempotency-Key": uuid.uuid4().hex},
        )

    def login(self) -> httpx.Response:
        return self.http.post(
            "/api/v1/auth/login",
            json={"username": self.username, "password": PASSWORD},
            headers={"X-Request-Timeout": str(CLIENT_TIMEOUT_SECONDS)},
        )

    def buy_when_back(self) -> httpx.Response:
        """A buy, tried until the platform answers something else than 503."""
        deadline = time.monotonic() + RECOVERY_SECONDS
        while True:
            answer = self.buy()
            if answer.status_code != 503 or time.monotonic() > deadline:
                return answer
            time.sleep(0.2)

    def wait_whole(self) -> None:
        """Until every process serves again (one of two svc_order processes down leaves
        /health at 200), /health is 200 and the account answers again."""
        deadline = time.monotonic() + RECOVERY_SECONDS
        while time.monotonic() < deadline:
            try:
                every = all(self.stack.is_ready(name) for name in self.stack.children())
                healthy = every and self.http.get("/health").status_code == 200
                if healthy and self.http.get("/api/v1/balance", headers=self.auth()).is_success:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError("the platform did not recover:\n" + "\n".join(self.console))


def _figure(what: str, seconds: float) -> None:
    print(f"\nFIGURE {what}: {seconds:.2f} s")


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    saved = dict(os.environ)
    # Engines of its own: never the session's Redis or dynalite.
    for name in ("REDIS_URL", "DYNAMODB_ENDPOINT", "TABLE_PREFIX"):
        os.environ.pop(name, None)
    logs = Path(tmp_path_factory.mktemp("faults")) / "logs"
    # svc_order as `./dev up` runs it on a multi-core machine: two processes.
    stack = LocalStack(data_dir=None, log_dir=logs, fixed_ports=False, order_processes=2)
    stop, hold = threading.Event(), threading.Event()
    console: list[str] = []
    thread = None
    try:
        stack.start()
        supervisor = Supervisor(stack, report=console.append)

        def supervise() -> None:
            while not stop.wait(0.2):
                if not hold.is_set():
                    supervisor.check()

        thread = threading.Thread(target=supervise, name="supervisor", daemon=True)
        thread.start()
        http = httpx.Client(base_url=f"http://127.0.0.1:{stack.port('rest_bridge')}", timeout=30)
        platform = Platform(stack, http, console, hold)
        _open_account(platform)
        yield platform
        http.close()
    finally:
        stop.set()
        if thread is not None:
            thread.join()
        for process in stack.children().values():
            if process.poll() is None:
                os.kill(process.pid, signal.SIGCONT)
        stack.stop()
        os.environ.clear()
        os.environ.update(saved)


def _open_account(platform: Platform) -> None:
    http = platform.http
    platform.username = f"faults_{uuid.uuid4().hex[:10]}"
    registered = http.post(
        "/api/v1/auth/register",
        json={
            "username": platform.username,
            "email": f"{platform.username}@example.org",
            "password": PASSWORD,
            "first_name": "ada",
            "last_name": "lovelace",
        },
    )
    assert registered.status_code == 201, registered.text
    platform.token = platform.login().json()["access_token"]
    platform.ended_token = platform.login().json()["access_token"]
    assert http.post("/api/v1/auth/logout", headers=platform.auth(platform.ended_token)).is_success
    deposit = http.post(
        "/api/v1/balance/deposit",
        json={"amount": 5000},
        headers={**platform.auth(), "Idempotency-Key": uuid.uuid4().hex},
    )
    assert deposit.status_code in (200, 201), deposit.text
    bought = platform.buy()
    assert bought.status_code == 201, bought.text
    platform.orders.append(bought.json()["data"]["order_id"])


@pytest.fixture
def healthy(platform: Platform) -> Iterator[Platform]:
    """The platform, whole before the test, and whole again after it."""
    platform.wait_whole()
    yield platform
    platform.hold.clear()
    platform.wait_whole()


def _assert_503(response: httpx.Response, code: str | None = None) -> None:
    assert response.status_code == 503, response.text
    assert int(response.headers["Retry-After"]) >= 1
    if code is not None:
        assert response.json()["code"] == code, response.text


def _assert_kept(platform: Platform) -> None:
    """What a client relies on after any recovery: its orders, its session, and the
    session it ended staying ended."""
    http = platform.http
    # Every page: how many orders the stalled-quotes test places depends on how fast
    # the platform answers, past one page of 50 on a quick run.
    ids: set[str] = set()
    token = ""
    while True:
        listed = http.get(
            "/api/v1/orders", params={"limit": 100, "page_token": token}, headers=platform.auth()
        )
        assert listed.status_code == 200, listed.text
        page = listed.json()
        ids |= {order["order_id"] for order in page["data"]}
        token = page.get("next_page_token", "")
        if not page.get("has_more"):
            break
    assert set(platform.orders) <= ids
    assert http.get("/api/v1/auth/profile", headers=platform.auth()).status_code == 200
    ended = http.get("/api/v1/auth/profile", headers=platform.auth(platform.ended_token))
    assert ended.status_code == 401


def test_redis_stalled(healthy: Platform) -> None:
    platform = healthy
    platform.signal("redis", signal.SIGSTOP)
    try:
        balance, waited = platform.timed("GET", "/api/v1/balance", headers=platform.auth())
        login, login_waited = platform.timed(
            "POST",
            "/api/v1/auth/login",
            json={"username": platform.username, "password": PASSWORD},
        )
        health = platform.http.get("/health")
    finally:
        platform.signal("redis", signal.SIGCONT)
    _figure("Redis stalled: GET /balance -> 503", waited)
    _figure("Redis stalled: login -> 503", login_waited)
    _assert_503(balance, "REVOCATION_UNAVAILABLE")
    _assert_503(login, "LOGIN_UNAVAILABLE")
    assert waited < CLIENT_TIMEOUT_SECONDS
    assert health.status_code == 503
    assert health.json()["dependencies"]["redis"] == "down"
    platform.wait_whole()
    _assert_kept(platform)


def test_redis_killed_and_restarted_empty(healthy: Platform) -> None:
    platform = healthy
    platform.hold.set()
    platform.signal("redis", signal.SIGKILL)
    platform.stack.children()["redis"].wait()
    balance = platform.http.get("/api/v1/balance", headers=platform.auth())
    login = platform.login()
    health = platform.http.get("/health")
    _assert_503(balance, "REVOCATION_UNAVAILABLE")
    _assert_503(login, "LOGIN_UNAVAILABLE")
    assert health.json()["dependencies"]["redis"] == "down"
    platform.hold.clear()  # the supervisor starts an empty Redis (in memory here)
    platform.wait_whole()
    _assert_kept(platform)  # the ended session stays ended: restored from the record


def test_svc_inventory_killed(healthy: Platform) -> None:
    platform = healthy
    platform.hold.set()
    platform.signal("svc_inventory", signal.SIGKILL)
    platform.stack.children()["svc_inventory"].wait()
    order = platform.buy()
    assets = platform.http.get("/api/v1/inventory/assets")
    balance = platform.http.get("/api/v1/balance", headers=platform.auth())
    health = platform.http.get("/health")
    _assert_503(order, "QUOTES_UNAVAILABLE")
    _assert_503(assets)
    assert balance.status_code == 200
    assert health.json()["dependencies"]["svc_inventory"] == "down"
    platform.hold.clear()
    platform.wait_whole()
    again = platform.buy_when_back()
    assert again.status_code == 201, again.text
    platform.orders.append(again.json()["data"]["order_id"])
    _assert_kept(platform)


def test_svc_inventory_stalled(healthy: Platform) -> None:
    platform = healthy
    platform.signal("svc_inventory", signal.SIGSTOP)
    try:
        # svc_order prices orders with its price stream's last quote while that is at
        # most STREAMED_QUOTE_MAX_AGE_SECONDS (2) old; the stalled stream delivers no
        # newer one, so within that and one dependency budget orders stop at 503.
        deadline = time.monotonic() + STREAMED_QUOTE_MAX_AGE_SECONDS + CLIENT_TIMEOUT_SECONDS
        while True:
            started = time.monotonic()
            order = platform.buy()
            waited = time.monotonic() - started
            if order.status_code != 201 or started > deadline:
                break
            platform.orders.append(order.json()["data"]["order_id"])
        # Routes svc_inventory serves itself: the bridge's own call has the same
        # dependency budget as the services' calls.
        assets, assets_waited = platform.timed(
            "GET", "/api/v1/inventory/assets", headers={"X-Request-Timeout": "5"}
        )
        quote, quote_waited = platform.timed(
            "GET", "/api/v1/inventory/assets/BTC", headers={"X-Request-Timeout": "5"}
        )
        prices, prices_waited = platform.timed(
            "GET", "/api/v1/stream/prices?symbols=btc", headers={"X-Request-Timeout": "5"}
        )
        balance = platform.http.get("/api/v1/balance", headers=platform.auth())
    finally:
        platform.signal("svc_inventory", signal.SIGCONT)
    _figure("svc_inventory stalled: POST /orders -> 503", waited)
    _figure("svc_inventory stalled: GET /stream/prices -> 503", prices_waited)
    _figure("svc_inventory stalled: GET /inventory/assets -> 503", assets_waited)
    _figure("svc_inventory stalled: GET /inventory/assets/BTC -> 503", quote_waited)
    _assert_503(order, "QUOTES_UNAVAILABLE")
    assert waited < CLIENT_TIMEOUT_SECONDS
    for answer, spent in ((assets, assets_waited), (quote, quote_waited), (prices, prices_waited)):
        _assert_503(answer, "UNAVAILABLE")
        assert spent < CLIENT_TIMEOUT_SECONDS
    assert balance.status_code == 200
    platform.wait_whole()
    again = platform.buy_when_back()
    assert again.status_code == 201, again.text
    platform.orders.append(again.json()["data"]["order_id"])
    _assert_kept(platform)


def test_svc_user_killed(healthy: Platform) -> None:
    platform = healthy
    platform.hold.set()
    platform.signal("svc_user", signal.SIGKILL)
    platform.stack.children()["svc_user"].wait()
    login = platform.login()
    profile = platform.http.get("/api/v1/auth/profile", headers=platform.auth())
    balance = platform.http.get("/api/v1/balance", headers=platform.auth())
    ended = platform.http.get("/api/v1/balance", headers=platform.auth(platform.ended_token))
    order = platform.buy()
    health = platform.http.get("/health")
    _assert_503(login)
    _assert_503(profile)
    # Trading goes on: svc_order holds svc_user's public keys and checks Redis.
    assert balance.status_code == 200
    assert ended.status_code == 401
    assert order.status_code == 201, order.text
    platform.orders.append(order.json()["data"]["order_id"])
    assert health.json()["dependencies"]["svc_user"] == "down"
    platform.hold.clear()
    platform.wait_whole()
    assert platform.login().status_code == 200
    _assert_kept(platform)


def test_svc_order_killed(healthy: Platform) -> None:
    platform = healthy
    platform.hold.set()
    names = platform.processes_of("svc_order")
    assert len(names) == 2
    for name in names:
        platform.signal(name, signal.SIGKILL)
    for name in names:
        platform.stack.children()[name].wait()
    balance = platform.http.get("/api/v1/balance", headers=platform.auth())
    profile = platform.http.get("/api/v1/auth/profile", headers=platform.auth())
    health = platform.http.get("/health")
    _assert_503(balance)
    assert profile.status_code == 200
    assert health.json()["dependencies"]["svc_order"] == "down"
    platform.hold.clear()
    platform.wait_whole()
    _assert_kept(platform)


def test_one_of_two_svc_order_processes_killed(healthy: Platform) -> None:
    platform = healthy
    platform.hold.set()
    first, second = platform.processes_of("svc_order")
    platform.signal(second, signal.SIGKILL)
    platform.stack.children()[second].wait()
    # The other process takes every call: no order, read or health check sees the gap.
    for _ in range(6):
        order = platform.buy()
        assert order.status_code == 201, order.text
        platform.orders.append(order.json()["data"]["order_id"])
        balance = platform.http.get("/api/v1/balance", headers=platform.auth())
        assert balance.status_code == 200, balance.text
    assert platform.http.get("/health").json()["dependencies"]["svc_order"] == "up"
    assert platform.stack.children()[first].poll() is None
    platform.hold.clear()
    platform.wait_whole()
    _assert_kept(platform)


def test_svc_order_sigterm(healthy: Platform) -> None:
    platform = healthy
    platform.hold.set()
    names = platform.processes_of("svc_order")
    processes = [platform.stack.children()[name] for name in names]
    for name in names:
        platform.signal(name, signal.SIGTERM)
    codes = [process.wait(timeout=30) for process in processes]
    balance = platform.http.get("/api/v1/balance", headers=platform.auth())
    assert codes == [0, 0]
    _assert_503(balance)
    platform.hold.clear()
    platform.wait_whole()
    _assert_kept(platform)
