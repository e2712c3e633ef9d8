"""What every answer carries: request id, security headers, CORS, body limits, 422s."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.conftest import Account, Bridge

ALLOWED_ORIGIN = "https://app.example.org"


def test_a_sane_request_id_is_kept_and_echoed_in_errors(http: httpx.Client) -> None:
    response = http.get("/api/v1/inventory/assets/NOPE", headers={"X-Request-ID": "trace-1.a_b"})
    assert response.status_code == 404
    assert response.headers["X-Request-ID"] == "trace-1.a_b"
    assert response.json()["request_id"] == "trace-1.a_b"


@pytest.mark.parametrize("sent", ["bad id with spaces", "x" * 129, "<script>", ""])
def test_an_insane_request_id_is_replaced(http: httpx.Client, sent: str) -> None:
    response = http.get("/api/v1/auth/profile", headers={"X-Request-ID": sent})
    assert response.status_code == 401
    returned = response.headers["X-Request-ID"]
    assert returned != sent
    assert 1 <= len(returned) <= 128
    assert response.json()["request_id"] == returned


def test_every_answer_has_a_request_id(http: httpx.Client) -> None:
    for path in ("/health", "/metrics", "/openapi.json", "/docs", "/nowhere"):
        assert http.get(path).headers.get("X-Request-ID")


def test_security_headers(http: httpx.Client, account: Account) -> None:
    response = http.get("/api/v1/auth/profile", headers=account.auth)
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Cache-Control"] == "no-store"
    docs = http.get("/docs")
    assert docs.status_code == 200
    assert "frame-ancestors 'none'" in docs.headers["Content-Security-Policy"]
    assert "style-src 'unsafe-inline'" in docs.headers["Content-Security-Policy"]
    assert "<script" not in docs.text  # self-contained: nothing to fetch or run


def test_a_body_over_1_mib_is_413_by_its_length(http: httpx.Client) -> None:
    body = b'{"username": "' + b"a" * (1024 * 1024) + b'"}'
    response = http.post(
        "/api/v1/auth/login", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["request_id"] == response.headers["X-Request-ID"]
    assert "RateLimit-Remaining" in response.headers


def test_a_streamed_body_over_1_mib_is_413(http: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"username": "'
        for _ in range(40):
            yield b"a" * 32 * 1024  # 1.25 MiB in all, with no Content-Length
        yield b'"}'

    response = http.post(
        "/api/v1/auth/login", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413


@pytest.mark.parametrize(
    ("content", "field"),
    [(b"{not json", "body"), (b"[1, 2]", "body"), (b'{"username": {"a": 1}}', "username")],
)
def test_malformed_bodies_are_422(http: httpx.Client, content: bytes, field: str) -> None:
    response = http.post(
        "/api/v1/auth/login", content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert [v["field"] for v in response.json()["violations"]] == [field]


def test_bad_query_parameters_are_422(http: httpx.Client) -> None:
    for query, field in (
        ("limit=ten", "limit"),
        ("active_only=maybe", "active_only"),
    ):
        response = http.get(f"/api/v1/inventory/assets?{query}")
        assert response.status_code == 422, query
        assert response.json()["violations"][0]["field"] == field


def test_service_violations_are_passed_on(http: httpx.Client, account: Account) -> None:
    response = http.post("/api/v1/balance/deposit", json={"amount": "1.234"}, headers=account.auth)
    assert response.status_code == 422
    assert [v["field"] for v in response.json()["violations"]] == ["amount"]


def test_unknown_paths_and_methods_get_the_error_shape(http: httpx.Client) -> None:
    missing = http.get("/api/v1/nothing-here")
    assert missing.status_code == 404
    assert set(missing.json()) == {"detail", "code", "request_id"}
    wrong_method = http.delete("/api/v1/balance")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["code"] == "METHOD_NOT_ALLOWED"


def test_cors_preflight_from_an_allowed_origin(bridge: Bridge) -> None:
    with bridge.client() as client:
        response = client.options(
            "/api/v1/orders",
            headers={
                "Origin": ALLOWED_ORIGIN,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "Authorization, Content-Type, Idempotency-Key",
            },
        )
        simple = client.get("/api/v1/inventory/assets", headers={"Origin": ALLOWED_ORIGIN})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert "idempotency-key" in response.headers["Access-Control-Allow-Headers"].lower()
    assert simple.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    assert "X-Request-ID" in simple.headers["Access-Control-Expose-Headers"]


def test_cors_preflight_from_a_refused_origin(bridge: Bridge) -> None:
    with bridge.client() as client:
        response = client.options(
            "/api/v1/orders",
            headers={"Origin": "https://evil.example.com", "Access-Control-Request-Method": "POST"},
        )
        simple = client.get(
            "/api/v1/inventory/assets", headers={"Origin": "https://evil.example.com"}
        )
    assert response.status_code == 400
    assert "Access-Control-Allow-Origin" not in response.headers
    assert "Access-Control-Allow-Origin" not in simple.headers
    assert response.headers.get("X-Request-ID")
