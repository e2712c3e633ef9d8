"""Rate limits and the login throttle against the real Redis, and a Redis that is down."""

from __future__ import annotations

from collections.abc import Callable

import httpx

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


def test_five_failed_logins_for_a_username_block_it(start_bridge: Callable[..., Bridge]) -> None:
    bridge = start_bridge(trusted_proxies="127.0.0.1", login_max_failures=5)
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


def test_five_failed_logins_from_an_ip_block_it(start_bridge: Callable[..., Bridge]) -> None:
    bridge = start_bridge(trusted_proxies="127.0.0.1", login_max_failures=5)
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
    start_bridge: Callable[..., Bridge],
) -> None:
    bridge = start_bridge(login_max_failures=2, login_block_seconds=60)
    with bridge.client() as client:
        account = sign_up(client)
        for _ in range(4):
            bad = client.post("/api/v1/auth/login", json={"username": account.username})
            assert bad.status_code == 422
        still_open = login(client, account.username, account.password, "ignored")
        for _ in range(2):
            login(client, account.username, "Wrong-Pass-123!", "ignored")
        blocked = login(client, account.username, account.password, "ignored")
    assert still_open.status_code == 200
    assert blocked.status_code == 403
    assert 55 <= int(blocked.headers["Retry-After"]) <= 60


def test_redis_down_rate_limits_fail_open_and_login_fails_closed(
    start_bridge: Callable[..., Bridge],
) -> None:
    bridge = start_bridge(
        redis_url=f"redis://{dead_address()}/0",
        rate_limit_ip_per_second=0.5,
        rate_limit_ip_burst=1,
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
        login_answer = login(client, "redis_down_user", "Correct-Horse-42!", "ignored")
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
    assert 'bridge_redis_errors_total{purpose="login_throttle"} 1.0' in metrics
