"""Rate limits (the bridge's) and the login throttle (svc_user's, through the bridge)
against the real Redis, and a Redis that is down."""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest

from common.server import RunningServer
from svc_user.__main__ import build as build_user
from svc_user.config import UserSettings
from tests.e2e.conftest import Bridge, dead_address, sign_up

RATE_HEADERS = ("Limit", "Remaining", "Reset")


def assert_rate_headers(response: httpx.Response) -> None:
    for name in RATE_HEADERS:
        assert response.headers[f"RateLimit-{name}"] == response.headers[f"X-RateLimit-{name}"]


def test_the_ip_bucket_refuses_with_429_and_retry_after(
    start_bridge: Callable[..., Bridge],
) -> None:
    bridge = start_bridge(rate_limit_ip_per_second=0.5, rate_limit_ip_burst=3)
    with bridge.client() as client:
        answers = [client.get("/api/v1/inventory/assets?limit=1") for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["RateLimit-Remaining"] for a in answers] == ["2", "1", "0", "0"]
    for answer in answers:
        assert_rate_headers(answer)
        assert answer.headers["RateLimit-Limit"] == "3"
    refused = answers[-1]
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.json()["code"] == "RATE_LIMITED"
    assert refused.json()["request_id"] == refused.headers["X-Request-ID"]


def test_the_user_bucket_follows_the_user_not_the_ip(start_bridge: Callable[..., Bridge]) -> None:
    bridge = start_bridge(rate_limit_user_per_second=0.5, rate_limit_user_burst=2)
    with bridge.client() as client:
        first = sign_up(client)
        second = sign_up(client)
        mine = [client.get("/api/v1/balance", headers=first.auth) for _ in range(3)]
        theirs = client.get("/api/v1/balance", headers=second.auth)
        metrics = client.get("/metrics").text
    assert [a.status_code for a in mine] == [200, 200, 429]
    assert theirs.status_code == 200
    assert 'bridge_rate_limit_rejections_total{scope="user"} 1.0' in metrics


def test_forwarded_for_counts_only_behind_a_trusted_proxy(
    start_bridge: Callable[..., Bridge],
) -> None:
    trusting = start_bridge(
        rate_limit_ip_per_second=0.5, rate_limit_ip_burst=1, trusted_proxies="127.0.0.1/32"
    )
    distrusting = start_bridge(rate_limit_ip_per_second=0.5, rate_limit_ip_burst=1)
    path = "/api/v1/inventory/assets?limit=1"
    with trusting.client() as client:
        a = client.get(path, headers={"X-Forwarded-For": "203.0.113.1"})
        b = client.get(path, headers={"X-Forwarded-For": "203.0.113.2"})
    with distrusting.client() as client:
        c = client.get(path, headers={"X-Forwarded-For": "203.0.113.1"})
        d = client.get(path, headers={"X-Forwarded-For": "203.0.113.2"})
    assert (a.status_code, b.status_code) == (200, 200)  # two clients behind our proxy
    assert (c.status_code, d.status_code) == (200, 429)  # one untrusted peer, spoofing


def login(client: httpx.Client, username: str, password: str, ip: str) -> httpx.Response:
    return client.post(
        "/api/v1/auth/login",
        json={"username": username, "password": password},
        headers={"X-Forwarded-For": ip},
    )


@pytest.fixture(scope="module")
def throttled(
    user_settings: UserSettings, start_bridge: Callable[..., Bridge]
) -> Iterator[Callable[..., Bridge]]:
    """A bridge (trusting 127.0.0.1 as its proxy) in front of an svc_user of its own,
    which trusts the bridge's client address and throttles with the given settings
    (keys of its own, so tests never share counts)."""
    servers: list[RunningServer] = []

    def start(bridge_redis_url: str | None = None, **user_overrides: object) -> Bridge:
        settings = user_settings.model_copy(
            update={
                "login_throttle_key_prefix": f"login-{uuid.uuid4().hex[:8]}",
                "client_address_trusted_peers": [ipaddress.ip_network("127.0.0.1/32")],
                **user_overrides,
            }
        )
        server = build_user(settings)
        servers.append(server)
        bridge_overrides: dict[str, object] = {"trusted_proxies": "127.0.0.1"}
        if bridge_redis_url:
            bridge_overrides["redis_url"] = bridge_redis_url
        return start_bridge(user_service_addr=f"127.0.0.1:{server.port}", **bridge_overrides)

    yield start
    for server in servers:
        server.shutdown()


def test_five_failed_logins_for_a_username_block_it(throttled: Callable[..., Bridge]) -> None:
    bridge = throttled(login_max_failures=5)
    with bridge.client() as client:
        account = sign_up(client)
        failures = [
            login(client, account.username, "Wrong-Pass-123!", f"198.51.100.{i}") for i in range(5)
        ]
        blocked = login(client, account.username, account.password, "198.51.100.99")
        other = sign_up(client)
        unaffected = login(client, other.username, other.password, "198.51.100.99")
    assert [f.status_code for f in failures] == [401] * 5
    assert blocked.status_code == 403
    assert blocked.json()["code"] == "AUTH_004"
    assert 295 <= int(blocked.headers["Retry-After"]) <= 300
    assert unaffected.status_code == 200


def test_five_failed_logins_from_an_ip_block_it(throttled: Callable[..., Bridge]) -> None:
    bridge = throttled(login_max_failures=5)
    with bridge.client() as client:
        account = sign_up(client)
        for i in range(5):
            response = login(client, f"nobody_{i}_zz", "Wrong-Pass-123!", "192.0.2.7")
            assert response.status_code == 401
        blocked = login(client, account.username, account.password, "192.0.2.7")
        elsewhere = login(client, account.username, account.password, "192.0.2.8")
    assert blocked.status_code == 403
    assert blocked.json()["code"] == "AUTH_004"
    assert elsewhere.status_code == 200


def test_422_logins_are_not_counted_and_the_numbers_are_settings(
    throttled: Callable[..., Bridge],
) -> None:
    bridge = throttled(login_max_failures=2, login_block_seconds=60)
    with bridge.client() as client:
        account = sign_up(client)
        for _ in range(4):
            bad = client.post("/api/v1/auth/login", json={"username": account.username})
            assert bad.status_code == 422
        still_open = login(client, account.username, account.password, "192.0.2.20")
        for i in range(2):
            login(client, account.username, "Wrong-Pass-123!", f"192.0.2.{30 + i}")
        blocked = login(client, account.username, account.password, "192.0.2.40")
    assert still_open.status_code == 200
    assert blocked.status_code == 403
    assert 55 <= int(blocked.headers["Retry-After"]) <= 60


def test_redis_down_rate_limits_fail_open_and_login_fails_closed(
    throttled: Callable[..., Bridge],
) -> None:
    dead_redis = f"redis://{dead_address()}/0"
    bridge = throttled(
        bridge_redis_url=dead_redis,
        redis_url=dead_redis,
    )
    with bridge.client() as client:
        reads = [client.get("/api/v1/inventory/assets?limit=1") for _ in range(3)]
        registered = client.post(
            "/api/v1/auth/register",
            json={
                "username": "redis_down_user",
                "email": "redis_down_user@example.org",
                "password": "Correct-Horse-42!",
                "first_name": "a",
                "last_name": "b",
            },
        )
        login_answer = login(client, "redis_down_user", "Correct-Horse-42!", "192.0.2.50")
        health = client.get("/health")
        metrics = client.get("/metrics").text
    assert [r.status_code for r in reads] == [200, 200, 200]
    assert "RateLimit-Limit" not in reads[0].headers
    assert registered.status_code in (201, 409)
    assert login_answer.status_code == 503
    assert login_answer.json()["code"] == "LOGIN_UNAVAILABLE"
    assert "Retry-After" in login_answer.headers
    assert health.status_code == 503
    assert health.json()["status"] == "degraded"
    assert health.json()["dependencies"]["redis"] == "down"
    assert 'bridge_redis_errors_total{purpose="ratelimit"}' in metrics


# The routes that check a current password besides login, with a body that passes
# validation whatever that password is (only the password decides).
PASSWORD_ROUTES = {
    "/api/v1/auth/password": {"new_password": "Another-Horse-43!"},
    "/api/v1/auth/account/close": {},
}


@pytest.mark.parametrize("path", sorted(PASSWORD_ROUTES))
def test_wrong_current_passwords_meet_the_login_throttle(
    path: str, throttled: Callable[..., Bridge]
) -> None:
    bridge = throttled(login_max_failures=3, login_block_seconds=60)
    with bridge.client() as client:
        account = sign_up(client)

        def attempt(password: str, ip: str) -> httpx.Response:
            return client.post(
                path,
                json={"current_password": password, **PASSWORD_ROUTES[path]},
                headers={**account.auth, "X-Forwarded-For": ip},
            )

        failures = [attempt("Wrong-Pass-123!", f"198.51.100.{i}") for i in range(3)]
        blocked = attempt(account.password, "198.51.100.98")
        login_blocked = login(client, account.username, account.password, "198.51.100.99")
        profile = client.get("/api/v1/auth/profile", headers=account.auth)
    assert [f.status_code for f in failures] == [401] * 3
    assert [f.json()["code"] for f in failures] == ["WRONG_PASSWORD"] * 3
    for refused in (blocked, login_blocked):
        assert refused.status_code == 403
        assert refused.json()["code"] == "AUTH_004"
        assert 55 <= int(refused.headers["Retry-After"]) <= 60
    assert profile.status_code == 200  # neither changed nor closed
