"""HTTP at the bridge's edge (shared/API.md, "JSON and HTTP at the edge"): header sizes,
path variables, 405s, the one Authorization parser, slow clients, and requests that
change nothing."""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Callable
from typing import Any

import grpc
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from trading.v1 import order_pb2, order_pb2_grpc

from tests.e2e.conftest import Account, Bridge, Stack
from tests.support import dial

PROTECTED = "/api/v1/balance"
PUBLIC = "/api/v1/inventory/assets?limit=1"


# --- 5. header sizes are the bridge's decision ----------------------------------------


@pytest.mark.parametrize("size", [4097, 5000, 9000, 12000, 15000])
def test_an_authorization_too_large_to_forward_is_401_or_431_every_time(
    http: httpx.Client, size: int
) -> None:
    headers = {"Authorization": "Bearer " + "a" * size}
    for _ in range(3):
        protected = http.get(PROTECTED, headers=headers)
        assert protected.status_code == 401, protected.text
        assert protected.json()["code"] == "TOKEN_TOO_LARGE"
        assert "metadata" not in protected.text
        public = http.get(PUBLIC, headers=headers)
        assert public.status_code == 431, public.text
        assert public.json()["code"] == "HEADER_TOO_LARGE"


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer " + "a" * 17_000},
        {"X-Filler": "x" * 17_000},
        {f"X-Filler-{i}": "x" * 1000 for i in range(20)},
    ],
)
def test_a_header_block_over_the_limit_is_431(http: httpx.Client, headers: dict[str, str]) -> None:
    for path in (PROTECTED, PUBLIC):
        response = http.get(path, headers=headers)
        assert response.status_code == 431, response.text
        assert response.json()["code"] == "HEADERS_TOO_LARGE"
        assert "RESOURCE_EXHAUSTED" not in response.text


def test_other_forwarded_headers_are_bounded(http: httpx.Client, account: Account) -> None:
    long_id = http.get(PUBLIC, headers={"X-Request-ID": "r" * 10_000})
    assert long_id.status_code == 200
    assert len(long_id.headers["X-Request-ID"]) <= 128
    key = http.post(
        "/api/v1/balance/deposit",
        json={"amount": "1"},
        headers={**account.auth, "Idempotency-Key": "k" * 10_000},
    )
    assert key.status_code == 422
    assert key.json()["violations"][0]["field"] == "Idempotency-Key"


# --- 6. a path variable is one segment; the bridge never redirects --------------------


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/v1/inventory/assets/BTC%2FETH", "asset_id"),
        ("/api/v1/inventory/assets/%2f", "asset_id"),
        ("/api/v1/orders/%2F", "order_id"),
        ("/api/v1/orders/abc%2Fdef", "order_id"),
        ("/api/v1/balance/asset/BTC%2F..", "asset_id"),
        ("/api/v1/assets/BTC%2Fx/transactions", "asset_id"),
    ],
)
def test_an_encoded_slash_in_a_path_variable_is_422(
    http: httpx.Client, account: Account, path: str, field: str
) -> None:
    response = http.get(path, headers={**account.auth, "Host": "evil.example"})
    assert response.status_code == 422, response.text
    assert [v["field"] for v in response.json()["violations"]] == [field]
    assert "Location" not in response.headers


@pytest.mark.parametrize(
    "path", ["/api/v1/orders/", "/api/v1/balance/", "/api/v1/inventory/assets/"]
)
def test_a_trailing_slash_is_not_redirected(
    http: httpx.Client, account: Account, path: str
) -> None:
    response = http.get(path, headers={**account.auth, "Host": "evil.example"})
    assert response.status_code == 404
    assert "Location" not in response.headers


def test_an_encoded_character_in_a_variable_is_decoded_as_a_whole(http: httpx.Client) -> None:
    assert http.get("/api/v1/inventory/assets/%42TC").status_code == 200


# --- 7. 405 lists every method of the path --------------------------------------------


def test_every_405_lists_every_method_of_its_path(http: httpx.Client) -> None:
    paths: dict[str, Any] = http.get("/openapi.json").json()["paths"]
    checked = 0
    for template, operations in paths.items():
        if not template.startswith("/api/"):
            continue
        path = template.replace("{asset_id}", "BTC").replace("{order_id}", "x")
        methods = {method.upper() for method in operations}
        if "GET" in methods:
            methods.add("HEAD")
        unused = next(m for m in ("PATCH", "PUT", "DELETE", "POST") if m not in methods)
        response = http.request(unused, path)
        assert response.status_code == 405, (unused, path)
        allowed = {m.strip() for m in response.headers["Allow"].split(",")}
        assert allowed == methods, (path, allowed)
        checked += 1
    assert checked >= 15
    orders = http.put("/api/v1/orders")
    assert {m.strip() for m in orders.headers["Allow"].split(",")} == {"GET", "HEAD", "POST"}


# --- 8. one parser of Authorization for the bridge and every service ------------------


@pytest.mark.parametrize(
    "template",
    ["Bearer {}", "bearer {}", "BEARER {}", "Bearer  {}", "Bearer    {}"],
)
def test_the_bridge_and_the_services_accept_the_same_headers(
    http: httpx.Client, stack: Stack, account: Account, template: str
) -> None:
    header = template.format(account.access_token)
    assert http.get(PROTECTED, headers={"Authorization": header}).status_code == 200
    with dial(stack.pki, stack.order.port, "svc_order", "rest_bridge") as channel:
        order_pb2_grpc.OrderServiceStub(channel).GetBalance(
            order_pb2.GetBalanceRequest(), metadata=(("authorization", header.strip()),), timeout=10
        )


@pytest.mark.parametrize(
    "template", ["Bearer{}", "Basic {}", "Bearer {}!", "Bearer {} extra", "Token {}"]
)
def test_the_bridge_and_the_services_refuse_the_same_headers(
    http: httpx.Client, stack: Stack, account: Account, template: str
) -> None:
    header = template.format(account.access_token)
    assert http.get(PROTECTED, headers={"Authorization": header}).status_code == 401
    with (
        dial(stack.pki, stack.order.port, "svc_order", "rest_bridge") as channel,
        pytest.raises(grpc.RpcError) as refused,
    ):
        order_pb2_grpc.OrderServiceStub(channel).GetBalance(
            order_pb2.GetBalanceRequest(), metadata=(("authorization", header),), timeout=10
        )
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_two_authorization_headers_are_refused(http: httpx.Client, account: Account) -> None:
    headers = [("Authorization", f"Bearer {account.access_token}")] * 2
    assert http.get(PROTECTED, headers=headers).status_code == 401


# --- 9. slow clients are cut off ------------------------------------------------------


def _closed_within(sock: socket.socket, seconds: float) -> bytes:
    """What the server sent before it closed the connection (raises if it did not)."""
    sock.settimeout(seconds)
    received = b""
    while chunk := sock.recv(4096):
        received += chunk
    return received


def test_headers_sent_byte_by_byte_are_cut_off(start_bridge: Callable[..., Bridge]) -> None:
    bridge = start_bridge(bridge_header_timeout_seconds=1.0)
    port = int(bridge.url.rsplit(":", 1)[1])
    request = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200
    clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(5)]
    started = time.monotonic()
    cut = set()
    try:
        for byte in request:
            for index, client in enumerate(clients):
                if index in cut:
                    continue
                try:
                    client.send(bytes([byte]))
                except OSError:
                    cut.add(index)
            if len(cut) == len(clients) or time.monotonic() - started > 15:
                break
            time.sleep(0.05)
        answers = [_closed_within(client, 15) for client in clients]
    finally:
        for client in clients:
            client.close()
    for answer in answers:
        assert answer == b"" or answer.startswith(b"HTTP/1.1 408"), answer[:80]
    assert any(answer.startswith(b"HTTP/1.1 408") for answer in answers)
    with bridge.client() as http:
        assert http.get("/health").status_code == 200  # the bridge is fine


def test_a_silent_connection_and_an_idle_one_are_closed(
    start_bridge: Callable[..., Bridge],
) -> None:
    bridge = start_bridge(bridge_header_timeout_seconds=1.0, bridge_idle_timeout_seconds=1)
    port = int(bridge.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as silent:
        assert _closed_within(silent, 15) == b""
    with socket.create_connection(("127.0.0.1", port)) as idle:
        idle.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = _closed_within(idle, 15)
    assert answer.startswith(b"HTTP/1.1 200")


def test_a_body_that_stalls_is_408(start_bridge: Callable[..., Bridge]) -> None:
    bridge = start_bridge(bridge_body_timeout_seconds=1.0)
    port = int(bridge.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as client:
        client.sendall(
            b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
            b'{"username": "'
        )
        answer = _closed_within(client, 15)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:80]
    assert b'"REQUEST_TIMEOUT"' in answer


# --- 10. an update that changes nothing says so and changes nothing -------------------


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"first_name": None},
        {"nickname": "ignored"},
        {"first_name": "Ada", "last_name": "lovelace"},
    ],
)
def test_an_empty_profile_update_changes_nothing(
    http: httpx.Client, account: Account, body: dict[str, Any]
) -> None:
    before = http.get("/api/v1/auth/profile", headers=account.auth).json()
    response = http.put("/api/v1/auth/profile", json=body, headers=account.auth)
    assert response.status_code == 200, response.text
    assert response.json()["message"] == "Nothing to update"
    assert response.json()["user"] == before
    after = http.get("/api/v1/auth/profile", headers=account.auth).json()
    assert after["updated_at"] == before["updated_at"]


def test_a_real_profile_change_moves_updated_at(http: httpx.Client, account: Account) -> None:
    before = http.get("/api/v1/auth/profile", headers=account.auth).json()
    response = http.put("/api/v1/auth/profile", json={"first_name": "grace"}, headers=account.auth)
    assert response.json()["message"] == "Profile updated successfully"
    assert response.json()["user"]["updated_at"] != before["updated_at"]


def test_headers_that_trickle_in_past_the_limit_are_431(
    start_bridge: Callable[..., Bridge],
) -> None:
    bridge = start_bridge(bridge_max_header_bytes=4096)
    answer = _trickled_headers(int(bridge.url.rsplit(":", 1)[1]))
    assert answer.startswith(b"HTTP/1.1 431"), answer[:80]
    assert b'"HEADERS_TOO_LARGE"' in answer


# --- the protocol's own refusals are answered like every other error ------------------

_ENVELOPE = (
    "x-content-type-options",
    "referrer-policy",
    "x-frame-options",
    "content-security-policy",
    "cache-control",
)


def _raw_answer(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in lines:
        name, _, value = line.partition(":")
        assert name.lower() not in headers, f"{name} twice"
        headers[name.lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


def _slow_headers(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port)) as client:
        client.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: a")
        return _closed_within(client, 15)


def _trickled_headers(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port)) as client:
        client.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        try:
            for index in range(20):
                client.sendall(b"X-Filler-%d: %s\r\n" % (index, b"x" * 500))
                time.sleep(0.01)
        except OSError:
            pass  # closed by the server, as it should be
        return _closed_within(client, 15)


def _malformed_request(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port)) as client:
        client.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n")
        return _closed_within(client, 15)


def _unmatched_answers(http: httpx.Client) -> dict[tuple[str, str], float]:
    """(method, status) -> count of the bridge's answers to requests that matched no
    route, as its /metrics page says."""
    page = http.get("/metrics").text
    return {
        (sample.labels["method"], sample.labels["status"]): sample.value
        for family in text_string_to_metric_families(page)
        if family.name == "bridge_http_requests"
        for sample in family.samples
        if sample.name == "bridge_http_requests_total" and sample.labels["route"] == "unmatched"
    }


@pytest.mark.parametrize("parser", ["httptools", "h11"])
def test_the_protocols_own_refusals_carry_the_envelope_of_every_answer(
    start_bridge: Callable[..., Bridge], parser: str, caplog: pytest.LogCaptureFixture
) -> None:
    """... and are counted and logged as every answer is: route "unmatched" in
    bridge_http_requests_total, and one access line with the answer's request id."""
    caplog.set_level(logging.DEBUG, logger="rest_bridge.middleware")
    bridge = start_bridge(
        bridge_http_parser=parser, bridge_header_timeout_seconds=1.0, bridge_max_header_bytes=4096
    )
    port = int(bridge.url.rsplit(":", 1)[1])
    with bridge.client() as http:
        usual = http.get(PROTECTED)  # a 401 written by the app
        before = _unmatched_answers(http)
    assert usual.status_code == 401
    request_ids = []
    for send, status, code in (
        (_slow_headers, 408, "REQUEST_TIMEOUT"),
        (_trickled_headers, 431, "HEADERS_TOO_LARGE"),
        (_malformed_request, 400, "MALFORMED_REQUEST"),
    ):
        got, headers, body = _raw_answer(send(port))
        assert got == status, body
        assert headers["content-type"] == "application/json"
        assert headers["connection"] == "close"
        assert int(headers["content-length"]) == len(body)
        assert headers["date"].endswith(" GMT")
        for name in _ENVELOPE:
            assert headers[name] == usual.headers[name], name
        document = json.loads(body)
        assert document == {
            "detail": document["detail"],
            "code": code,
            "request_id": headers["x-request-id"],
        }
        # Rendered as every other answer (no spaces after separators).
        assert body == json.dumps(document, separators=(",", ":")).encode()
        assert usual.content == json.dumps(usual.json(), separators=(",", ":")).encode()
        request_ids.append((headers["x-request-id"], status))
    with bridge.client() as http:
        after = _unmatched_answers(http)
    for counted in ("408", "431", "400"):
        key = ("unread", counted)
        assert after.get(key, 0) == before.get(key, 0) + 1, (counted, before, after)
    logged = {
        (getattr(record, "request_id", None), getattr(record, "status", None)): vars(record)
        for record in caplog.records
        if record.getMessage() == "http answered"
    }
    for request_id, status in request_ids:
        line = logged.get((request_id, status))
        assert line is not None, (request_id, status)
        assert (line["method"], line["route"]) == ("unread", "unmatched")
    # The app's own answers are logged by the same line.
    assert (usual.headers["x-request-id"], 401) in logged
