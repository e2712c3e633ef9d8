"""Cash, orders and portfolio through the bridge (needs svc_inventory and svc_order)."""

from __future__ import annotations

import uuid

import httpx

from tests.e2e.conftest import Account, sign_up


def test_a_deposit_accepts_a_json_number_exactly(http: httpx.Client, account: Account) -> None:
    response = http.post(
        "/api/v1/balance/deposit",
        content=b'{"amount": 1000.10}',
        headers={**account.auth, "Content-Type": "application/json"},
    )
    assert response.status_code == 201
    body = response.json()
    assert body["success"] is True
    assert body["current_balance"] == "1000.10"
    balance = http.get("/api/v1/balance", headers=account.auth).json()
    assert balance["current_balance"] == "1000.10"


def test_an_idempotency_key_replays_the_first_result(http: httpx.Client, account: Account) -> None:
    key = {"Idempotency-Key": uuid.uuid4().hex, **account.auth}
    first = http.post("/api/v1/balance/deposit", json={"amount": "50.00"}, headers=key)
    again = http.post("/api/v1/balance/deposit", json={"amount": "50.00"}, headers=key)
    other = http.post("/api/v1/balance/deposit", json={"amount": "60.00"}, headers=key)
    assert first.status_code == again.status_code == 201
    assert first.json()["transaction_id"] == again.json()["transaction_id"]
    assert other.status_code == 409
    balance = http.get("/api/v1/balance", headers=account.auth).json()
    assert balance["current_balance"] == "50.00"


def test_buy_list_get_and_portfolio(http: httpx.Client, account: Account) -> None:
    http.post("/api/v1/balance/deposit", json={"amount": 5000}, headers=account.auth)
    placed = http.post(
        "/api/v1/orders",
        json={"order_type": "market_buy", "asset_id": "BTC", "quantity": 0.001},
        headers=account.auth,
    )
    assert placed.status_code == 201, placed.text
    order = placed.json()["data"]
    assert order["status"] == "completed"
    assert order["quantity"] == "0.00100000"
    listed = http.get("/api/v1/orders?limit=10", headers=account.auth).json()
    assert [o["order_id"] for o in listed["data"]] == [order["order_id"]]
    assert listed["has_more"] is False
    one = http.get(f"/api/v1/orders/{order['order_id']}", headers=account.auth)
    assert one.json()["data"] == order
    portfolio = http.get("/api/v1/portfolio", headers=account.auth).json()
    assert [a["asset_id"] for a in portfolio["assets"]] == ["BTC"]
    holding = http.get("/api/v1/balance/asset/BTC", headers=account.auth)
    assert holding.status_code == 200
    assert holding.json()["quantity"] == "0.00100000"
    history = http.get("/api/v1/assets/BTC/transactions", headers=account.auth).json()
    assert history["data"][0]["order_id"] == order["order_id"]
    cash = http.get("/api/v1/balance/transactions", headers=account.auth).json()
    assert [t["transaction_type"] for t in cash["transactions"]] == ["order_payment", "deposit"]


def test_another_users_order_is_404(http: httpx.Client, account: Account) -> None:
    http.post("/api/v1/balance/deposit", json={"amount": "500"}, headers=account.auth)
    placed = http.post(
        "/api/v1/orders",
        json={"order_type": "market_buy", "asset_id": "ETH", "quantity": "0.01"},
        headers=account.auth,
    ).json()["data"]
    stranger = sign_up(http)
    response = http.get(f"/api/v1/orders/{placed['order_id']}", headers=stranger.auth)
    assert response.status_code == 404


def test_trading_rules_are_422(http: httpx.Client, account: Account) -> None:
    broke = http.post(
        "/api/v1/orders",
        json={"order_type": "market_buy", "asset_id": "BTC", "quantity": "1"},
        headers=account.auth,
    )
    assert broke.status_code == 422
    unknown = http.get("/api/v1/assets/NOPE/transactions", headers=account.auth)
    assert unknown.status_code == 404
    not_held = http.get("/api/v1/balance/asset/ETH", headers=account.auth)
    assert not_held.status_code == 404


def test_the_cash_ledger_keeps_the_old_transaction_types(
    http: httpx.Client, account: Account
) -> None:
    http.post("/api/v1/balance/deposit", json={"amount": 1000}, headers=account.auth)
    http.post("/api/v1/balance/withdraw", json={"amount": 100}, headers=account.auth)
    for order_type in ("market_buy", "market_sell"):
        placed = http.post(
            "/api/v1/orders",
            json={"order_type": order_type, "asset_id": "ETH", "quantity": "0.01"},
            headers=account.auth,
        )
        assert placed.status_code == 201, placed.text
    ledger = http.get("/api/v1/balance/transactions", headers=account.auth).json()
    kinds = [(t["transaction_type"], t["amount"][0] == "-") for t in ledger["transactions"]]
    assert kinds == [
        ("order_sale", False),
        ("order_payment", True),
        ("withdraw", True),
        ("deposit", False),
    ]
