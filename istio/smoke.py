"""Smoke test of a running platform through its HTTP edge: register, deposit, buy.

    python istio/smoke.py http://127.0.0.1:8080        # or any bridge / gateway URL

`istio/cluster.sh smoke` runs it inside the cluster against the Istio gateway; the test
suite runs it against a local bridge. Standard library only, so that it runs in the
platform's image and anywhere else. Exit 0 when every check passed, 1 otherwise.

Before the checks it waits (bounded) until the edge is healthy and accepts a fresh
token: in the mesh, istiod fetches the bridge's JWKS some seconds after the bridge is up.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
import uuid
from decimal import Decimal
from typing import Any

READY_TIMEOUT_SECONDS = 180.0
REQUEST_TIMEOUT_SECONDS = 15.0


class Edge:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        """(status, JSON body or None); a connection failure is status 0."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 (the URL is the operator's)
            self.base_url + path, data=data, method=method, headers=dict(headers or {})
        )
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_SECONDS) as answer:  # noqa: S310
                return answer.status, _json(answer.read())
        except urllib.error.HTTPError as error:
            return error.code, _json(error.read())
        except OSError:
            return 0, None


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


def wait_until(what: str, ready: Any) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while not ready():
        if time.monotonic() > deadline:
            raise SystemExit(f"smoke: not ready within {READY_TIMEOUT_SECONDS:.0f} s: {what}")
        time.sleep(1)


def run(base_url: str) -> list[str]:
    """The failed checks (empty: all passed)."""
    edge = Edge(base_url)
    failures: list[str] = []

    def check(name: str, ok: bool, detail: Any = "") -> None:
        print(f"{'ok  ' if ok else 'FAIL'} {name}" + ("" if ok else f": {detail}"))
        if not ok:
            failures.append(name)

    wait_until("GET /health answers 200", lambda: edge.call("GET", "/health")[0] == 200)
    name = f"smoke_{uuid.uuid4().hex[:12]}"
    password = "Smoke-Test-" + uuid.uuid4().hex[:12] + "!"
    status, body = edge.call(
        "POST",
        "/api/v1/auth/register",
        {
            "username": name,
            "email": f"{name}@example.org",
            "password": password,
            "first_name": "smoke",
            "last_name": "test",
        },
    )
    check("register", status == 201, (status, body))
    status, body = edge.call("POST", "/api/v1/auth/login", {"username": name, "password": password})
    check("login", status == 200 and "access_token" in (body or {}), (status, body))
    if failures:
        return failures
    auth = {"Authorization": f"Bearer {body['access_token']}"}
    wait_until(
        "the edge accepts a fresh token",
        lambda: edge.call("GET", "/api/v1/auth/profile", headers=auth)[0] == 200,
    )
    status, body = edge.call("GET", "/.well-known/jwks.json")
    check("jwks", status == 200 and bool((body or {}).get("keys")), (status, body))
    status, body = edge.call(
        "POST",
        "/api/v1/balance/deposit",
        {"amount": "1000.00"},
        {**auth, "Idempotency-Key": f"smoke-deposit-{name}"},
    )
    check("deposit", status in (200, 201), (status, body))
    status, body = edge.call(
        "POST",
        "/api/v1/orders",
        {"order_type": "market_buy", "asset_id": "BTC", "quantity": "0.001"},
        {**auth, "Idempotency-Key": f"smoke-buy-{name}"},
    )
    check("buy", status in (200, 201), (status, body))
    status, body = edge.call("GET", "/api/v1/balance/asset/BTC", headers=auth)
    held = Decimal(str((body or {}).get("data", body or {}).get("quantity", "0") or "0"))
    check("holding", status == 200 and held == Decimal("0.001"), (status, body))
    status, body = edge.call("GET", "/api/v1/orders?limit=10", headers=auth)
    check("orders", status == 200 and "BTC" in json.dumps(body), (status, body))
    forged = auth["Authorization"][:-8] + "AAAAAAAA"
    status, body = edge.call("GET", "/api/v1/auth/profile", headers={"Authorization": forged})
    check("forged token refused", status == 401, (status, body))
    print(f"smoke: {len(failures)} of 8 checks failed against {base_url}")
    return failures


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    return 1 if run(argv[1]) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
