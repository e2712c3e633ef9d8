"""The audit records of calls through the bridge carry the real client's address: the
one the login throttle counts (common/client_address.py), whichever service writes it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from tests.e2e.conftest import Bridge, sign_up
from tests.support import unique

CLIENT = "203.0.113.9"


def _one(records: list[dict[str, Any]], request_id: str) -> dict[str, Any]:
    found = [r for r in records if r.get("request_id") == request_id]
    assert len(found) == 1, found
    return found[0]


def _calls(client: httpx.Client, forwarded_for: str) -> dict[str, str]:
    """A failed and a good login (svc_user) and a deposit (svc_order), each with a
    request id of its own; returns the event written for each id."""
    account = sign_up(client)
    ids = {unique("bad-login"): "login", unique("login"): "login", unique("deposit"): "deposit"}
    bad, good, deposit = ids
    headers = {"X-Forwarded-For": forwarded_for}
    refused = client.post(
        "/api/v1/auth/login",
        json={"username": account.username, "password": "Wrong-Pass-123!"},
        headers={**headers, "X-Request-ID": bad},
    )
    assert refused.status_code == 401
    logged_in = client.post(
        "/api/v1/auth/login",
        json={"username": account.username, "password": account.password},
        headers={**headers, "X-Request-ID": good},
    )
    assert logged_in.status_code == 200
    deposited = client.post(
        "/api/v1/balance/deposit",
        json={"amount": "25.00"},
        headers={**headers, **account.auth, "X-Request-ID": deposit},
    )
    assert deposited.status_code == 201
    return ids


def test_records_carry_the_address_behind_the_bridges_trusted_proxy(
    start_bridge: Callable[..., Bridge], audit_records: list[dict[str, Any]]
) -> None:
    bridge = start_bridge(trusted_proxies="127.0.0.1/32")
    with bridge.client() as client:
        ids = _calls(client, CLIENT)
    for request_id, event in ids.items():
        record = _one(audit_records, request_id)
        assert (record["event"], record["client_address"]) == (event, CLIENT)
    services = {_one(audit_records, i)["method"].split("/")[1] for i in ids}
    assert services == {"trading.v1.UserService", "trading.v1.OrderService"}


def test_a_forwarded_for_that_the_bridge_does_not_trust_is_not_recorded(
    bridge: Bridge, audit_records: list[dict[str, Any]]
) -> None:
    with bridge.client() as client:
        ids = _calls(client, CLIENT)
    # The bridge's HTTP client is this test, on loopback: that address, not the claim.
    assert {_one(audit_records, i)["client_address"] for i in ids} == {"127.0.0.1"}
