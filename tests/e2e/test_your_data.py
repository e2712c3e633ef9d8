"""Your data through the bridge: the export holds everything kept about the caller, and
closing an account (current password, nothing left in it) ends every session, frees the
username and email, erases the personal fields and keeps the financial records."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import jwt

from common.dynamo import Table, make_client
from common.server import RunningServer
from svc_order.store import DynamoTradingStore
from svc_user.__main__ import build as build_user
from svc_user.config import UserSettings
from svc_user.store import DynamoUserStore
from tests.e2e.conftest import (
    Account,
    Bridge,
    dead_address,
    grpc_serving,
    sign_up,
    wait_until,
)
from tests.support import Pki


def _user_id(account: Account) -> str:
    return str(jwt.decode(account.access_token, options={"verify_signature": False})["sub"])


def _trade(http: httpx.Client, account: Account) -> dict[str, Any]:
    deposit = http.post("/api/v1/balance/deposit", json={"amount": "1000"}, headers=account.auth)
    assert deposit.status_code == 201, deposit.text
    order = http.post(
        "/api/v1/orders",
        json={"order_type": "market_buy", "asset_id": "BTC", "quantity": "0.002"},
        headers=account.auth,
    )
    assert order.status_code == 201, order.text
    data: dict[str, Any] = order.json()["data"]
    return data


def test_the_export_holds_everything_kept_about_the_caller(
    http: httpx.Client, account: Account
) -> None:
    order = _trade(http, account)
    second = http.post(
        "/api/v1/auth/login", json={"username": account.username, "password": account.password}
    )
    assert second.status_code == 200

    response = http.get("/api/v1/auth/export", headers=account.auth)
    assert response.status_code == 200, response.text
    document = response.json()
    profile = http.get("/api/v1/auth/profile", headers=account.auth).json()
    assert document["profile"] == profile
    assert len(document["sessions"]) == 2
    assert all(not s["revoked"] and s["session_id"] for s in document["sessions"])
    trading = document["trading"]
    balance = http.get("/api/v1/balance", headers=account.auth).json()
    assert trading["cash_balance"] == balance["current_balance"]
    assert [h["asset_id"] for h in trading["holdings"]] == ["BTC"]
    assert trading["holdings"][0]["quantity"] == "0.00200000"
    ledger = http.get("/api/v1/balance/transactions", headers=account.auth).json()
    assert trading["ledger"] == list(reversed(ledger["transactions"]))
    assert trading["orders"] == [order]
    trades = http.get("/api/v1/assets/BTC/transactions", headers=account.auth).json()
    assert trading["trades"] == trades["data"]
    assert "closed_at" not in trading
    # Nothing secret in it.
    text = response.text
    assert account.password not in text
    assert "argon2" not in text
    assert account.refresh_token not in text


def test_closing_refuses_a_wrong_password_and_an_account_not_empty(
    http: httpx.Client, account: Account
) -> None:
    _trade(http, account)
    wrong = http.post(
        "/api/v1/auth/account/close",
        json={"current_password": account.password + "x"},
        headers=account.auth,
    )
    assert wrong.status_code == 401
    assert wrong.json()["code"] == "WRONG_PASSWORD"
    refused = http.post(
        "/api/v1/auth/account/close",
        json={"current_password": account.password},
        headers=account.auth,
    )
    assert refused.status_code == 409, refused.text
    body = refused.json()
    assert body["code"] == "ACCOUNT_NOT_EMPTY"
    cash = http.get("/api/v1/balance", headers=account.auth).json()["current_balance"]
    assert f"withdraw {cash} USD" in body["detail"]
    assert "sell 0.00200000 BTC" in body["detail"]
    # Nothing changed: the account still works.
    assert http.get("/api/v1/auth/profile", headers=account.auth).status_code == 200
    assert http.get("/api/v1/balance", headers=account.auth).status_code == 200


def test_closing_an_emptied_account_erases_the_person_and_keeps_the_books(
    http: httpx.Client, account: Account, user_settings: UserSettings, dynamodb_endpoint: str
) -> None:
    _trade(http, account)
    other_session = sign_in(http, account)
    sold = http.post(
        "/api/v1/orders",
        json={"order_type": "market_sell", "asset_id": "BTC", "quantity": "0.002"},
        headers=account.auth,
    )
    assert sold.status_code == 201
    cash = http.get("/api/v1/balance", headers=account.auth).json()["current_balance"]
    assert (
        http.post(
            "/api/v1/balance/withdraw", json={"amount": cash}, headers=account.auth
        ).status_code
        == 201
    )
    user_id = _user_id(account)

    closed = http.post(
        "/api/v1/auth/account/close",
        json={"current_password": account.password},
        headers=account.auth,
    )
    assert closed.status_code == 200, closed.text

    # Every session ends: both access tokens and both refresh tokens.
    for token in (account.access_token, other_session["access_token"]):
        auth = {"Authorization": f"Bearer {token}"}
        assert http.get("/api/v1/auth/profile", headers=auth).status_code == 401
        assert http.get("/api/v1/balance", headers=auth).status_code == 401
    for refresh in (account.refresh_token, other_session["refresh_token"]):
        again = http.post("/api/v1/auth/refresh", json={"refresh_token": refresh})
        assert again.status_code == 401
    login = {"username": account.username, "password": account.password}
    assert http.post("/api/v1/auth/login", json=login).status_code == 401

    # The username and email are free for someone else.
    newcomer = sign_up(http, username=account.username, email=account.email)
    assert newcomer.username == account.username

    # The person is erased; the books are kept, closed, and still balance.
    client = make_client(dynamodb_endpoint, "us-east-1")
    users = DynamoUserStore(Table(client, user_settings.table_prefix + user_settings.users_table))
    erased = users.get_user(user_id)
    assert erased is not None
    assert erased.closed_at is not None
    personal = (erased.username, erased.email, erased.first_name, erased.last_name)
    assert set(personal) == {"(erased)"}
    assert (erased.phone, erased.date_of_birth, erased.password_hash) == (None, None, "(erased)")
    trading = Table(client, user_settings.table_prefix + "trading")
    books = DynamoTradingStore(trading).books(user_id)
    assert books.account is not None
    assert books.account.closed_at is not None
    assert [e.transaction_type.value for e in books.cash_entries] == [
        "DEPOSIT",
        "BUY",
        "SELL",
        "WITHDRAWAL",
    ]
    assert len(books.orders_by_id) == 2


def sign_in(http: httpx.Client, account: Account) -> dict[str, Any]:
    response = http.post(
        "/api/v1/auth/login", json={"username": account.username, "password": account.password}
    )
    assert response.status_code == 200
    tokens: dict[str, Any] = response.json()
    return tokens


def test_without_the_order_service_the_export_and_closing_answer_503(
    start_bridge: Callable[..., Bridge],
    user_server: RunningServer,
    user_settings: UserSettings,
    wire_pki: Pki,
) -> None:
    # The session's first svc_user has no ORDER_SERVICE_ADDR.
    unconfigured = start_bridge(user_service_addr=f"127.0.0.1:{user_server.port}")
    with unconfigured.client() as client:
        account = sign_up(client)
        for method, path, body in (
            ("GET", "/api/v1/auth/export", None),
            ("POST", "/api/v1/auth/account/close", {"current_password": account.password}),
        ):
            response = client.request(method, path, json=body, headers=account.auth)
            assert response.status_code == 503, response.text
            assert response.json()["code"] == "SERVICE_NOT_CONFIGURED"
            assert response.headers["Retry-After"] == "1"
        assert client.get("/api/v1/auth/profile", headers=account.auth).status_code == 200

    # One whose svc_order is down says so, and closes nothing.
    lost = build_user(user_settings.model_copy(update={"order_service_addr": dead_address()}))
    try:
        wait_until(
            lambda: grpc_serving(lost.port, wire_pki, "svc_user"), "svc_user reports SERVING"
        )
        cut_off = start_bridge(user_service_addr=f"127.0.0.1:{lost.port}")
        with cut_off.client() as client:
            account = sign_up(client)
            closing = client.post(
                "/api/v1/auth/account/close",
                json={"current_password": account.password},
                headers=account.auth,
            )
            assert closing.status_code == 503, closing.text
            assert closing.json()["code"] == "ORDER_SERVICE_UNAVAILABLE"
            assert client.get("/api/v1/auth/profile", headers=account.auth).status_code == 200
    finally:
        lost.shutdown()
