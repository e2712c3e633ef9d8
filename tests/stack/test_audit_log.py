"""The audit log under `./dev up`: each security event of a user's day is one record in
`logs/audit.log` with who, what, when, the request id and the client address; the
revocation list's actions too; and no log line of any process holds a password, a token
or a password hash."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.stack.up_process import start_up, stop_up, wait_up
from tests.support import stack_ports, unique

PASSWORD = "Correct-Horse-42!"
NEW_PASSWORD = "Battery-Staple-77?"


class Caller:
    """HTTP through the bridge, each request with a request id of its own."""

    def __init__(self, base: str) -> None:
        self.http = httpx.Client(base_url=base, timeout=30)
        self.token = ""
        self.sent: list[str] = []

    def call(
        self, method: str, path: str, expect: int, headers: dict[str, str] | None = None, **kw: Any
    ) -> tuple[str, Any]:
        request_id = unique("req")
        self.sent.append(request_id)
        headers = {"X-Request-ID": request_id, **(headers or {})}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        response = self.http.request(method, path, headers=headers, **kw)
        assert response.status_code == expect, (path, response.status_code, response.text)
        return request_id, response.json()


def _records(log_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (log_dir / "audit.log").read_text().splitlines()]


@pytest.mark.slow
def test_each_security_event_is_one_record_and_no_log_holds_a_secret(tmp_path: Path) -> None:
    ports = stack_ports()
    name = unique("audited")
    secrets: list[str] = [PASSWORD, NEW_PASSWORD]
    tokens: list[str] = []
    expected: dict[str, tuple[str, str, str]] = {}  # request id -> (event, outcome, reason)

    stack = start_up(tmp_path, ports)
    try:
        wait_up(stack)
        caller = Caller(f"http://127.0.0.1:{ports['BRIDGE_PORT']}")
        caller.call(
            "POST",
            "/api/v1/auth/register",
            201,
            json={
                "username": name,
                "email": f"{name}@example.org",
                "password": PASSWORD,
                "first_name": "Ada",
                "last_name": "Lovelace",
            },
        )
        login = {"username": name, "password": PASSWORD}
        wrong = {"username": name, "password": PASSWORD + "x"}
        secrets.append(wrong["password"])
        rid, _ = caller.call("POST", "/api/v1/auth/login", 401, json=wrong)
        expected[rid] = ("login", "failure", "INVALID_CREDENTIALS")
        rid, first = caller.call("POST", "/api/v1/auth/login", 200, json=login)
        expected[rid] = ("login", "success", "")
        rid, second = caller.call(
            "POST", "/api/v1/auth/refresh", 200, json={"refresh_token": first["refresh_token"]}
        )
        expected[rid] = ("refresh", "success", "")
        rid, _ = caller.call(
            "POST", "/api/v1/auth/refresh", 401, json={"refresh_token": first["refresh_token"]}
        )
        expected[rid] = ("refresh", "failure", "REFRESH_TOKEN_REUSED")
        reuse_request = rid
        tokens += [first["access_token"], first["refresh_token"]]
        tokens += [second["access_token"], second["refresh_token"]]

        rid, third = caller.call("POST", "/api/v1/auth/login", 200, json=login)
        expected[rid] = ("login", "success", "")
        rid, other = caller.call("POST", "/api/v1/auth/login", 200, json=login)
        expected[rid] = ("login", "success", "")
        tokens += [third["access_token"], third["refresh_token"]]
        tokens += [other["access_token"], other["refresh_token"]]
        caller.token = third["access_token"]
        rid, _ = caller.call(
            "PUT", "/api/v1/auth/profile", 200, json={"email": f"new-{name}@example.org"}
        )
        expected[rid] = ("profile_update", "success", "")
        email_change = rid
        rid, _ = caller.call(
            "POST",
            "/api/v1/auth/password",
            200,
            json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        )
        expected[rid] = ("password_change", "success", "")
        password_change = rid
        rid, deposit = caller.call("POST", "/api/v1/balance/deposit", 201, json={"amount": "1000"})
        expected[rid] = ("deposit", "success", "")
        rid, _ = caller.call("POST", "/api/v1/balance/withdraw", 201, json={"amount": "100"})
        expected[rid] = ("withdrawal", "success", "")
        rid, order = caller.call(
            "POST",
            "/api/v1/orders",
            201,
            json={"order_type": "market_buy", "asset_id": "BTC", "quantity": "0.001"},
        )
        expected[rid] = ("order_placed", "success", "")
        order_request = rid
        rid, resting = caller.call(
            "POST",
            "/api/v1/orders",
            201,
            json={
                "order_type": "limit_buy",
                "asset_id": "BTC",
                "quantity": "0.001",
                "price": "1.00",
            },
        )
        expected[rid] = ("order_placed", "success", "")
        resting_id = resting["data"]["order_id"]
        rid, _ = caller.call("DELETE", f"/api/v1/orders/{resting_id}", 200)
        expected[rid] = ("order_cancelled", "success", "")
        cancel_request = rid
        rid, _ = caller.call("DELETE", f"/api/v1/orders/{resting_id}", 409)
        expected[rid] = ("order_cancelled", "failure", "ORDER_NOT_CANCELLABLE")
        rid, _ = caller.call("POST", "/api/v1/balance/withdraw", 422, json={"amount": "1000000"})
        expected[rid] = ("withdrawal", "failure", "INSUFFICIENT_FUNDS")
        rid, _ = caller.call("POST", "/api/v1/auth/logout", 200, json={})
        expected[rid] = ("logout", "success", "")
        logout = rid
        # An unaudited call writes no record.
        caller.token = ""
        rid, _ = caller.call("GET", "/api/v1/inventory/assets", 200)
        expected[rid] = ("", "", "")
    finally:
        stop_up(stack)

    records = _records(tmp_path / "logs")
    calls = {r["request_id"]: r for r in records if r["event"] != "revocation"}
    for request_id, (event, outcome, reason) in expected.items():
        mine = [r for r in records if r["request_id"] == request_id and r["event"] == event]
        if not event:
            assert not [r for r in records if r["request_id"] == request_id]
            continue
        assert len(mine) == 1, (event, request_id, mine)
        [found] = mine
        assert (found["outcome"], found.get("reason", "")) == (outcome, reason), found
        assert found["client_address"] == "127.0.0.1"
        assert found["ts"]
        assert found["service"] in ("svc_user", "svc_order")
        assert found.get("user_id") or event == "login"
    user_id = calls[logout]["user_id"]
    logins = [rid for rid, e in expected.items() if e[0] == "login"]
    assert calls[logins[0]]["username"] == name
    assert all(calls[rid]["user_id"] == user_id for rid in logins[1:])
    assert calls[email_change]["changed_fields"] == ["email"]
    assert calls[order_request]["order_id"] == order["data"]["order_id"]
    assert calls[order_request]["asset_id"] == "BTC"
    assert calls[cancel_request]["order_id"] == resting_id
    assert calls[cancel_request]["status"] == "cancelled"
    deposits = [r for r in records if r["event"] == "deposit"]
    assert deposits[0]["transaction_id"] == deposit["transaction_id"]

    # The revocation list's actions: the reused family, the other session on a
    # password change, the token and session on logout; each once, with its request.
    revocations = [r for r in records if r["event"] == "revocation"]
    by_request = {
        rid: [r["kind"] for r in revocations if r["request_id"] == rid]
        for rid in (reuse_request, password_change, logout)
    }
    assert by_request[reuse_request] == ["session"]
    assert by_request[password_change].count("session") >= 1
    assert sorted(by_request[logout]) == ["session", "token"]
    assert all(r["subject_id"] and r["expires_at"] for r in revocations)

    # No secret in any line of any process's log, the audit log included.
    lines = [
        line
        for path in sorted((tmp_path / "logs").glob("*"))
        if path.is_file()
        for line in path.read_text(errors="replace").splitlines()
    ]
    assert len(lines) > len(records)
    for secret in secrets + tokens + [token.rsplit(".", 1)[-1] for token in tokens]:
        leaked = [line for line in lines if secret in line]
        assert leaked == [], f"a secret is in the logs: {leaked[:2]}"
    assert not [line for line in lines if "$argon2" in line]
