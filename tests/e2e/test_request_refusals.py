"""What a request body refers to, and the exact form of its values: an order naming an
asset that does not exist is 422 on its field (the route exists); a date of birth is
exactly YYYY-MM-DD."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.conftest import Account, new_registration


@pytest.mark.parametrize("order_type", ["market_buy", "market_sell"])
@pytest.mark.parametrize("asset_id", ["NOPE", "ZZZZZZZZZZ", "btcx"])
def test_an_order_for_an_unknown_asset_is_422_naming_it(
    http: httpx.Client, account: Account, order_type: str, asset_id: str
) -> None:
    http.post("/api/v1/balance/deposit", json={"amount": "100"}, headers=account.auth)
    response = http.post(
        "/api/v1/orders",
        json={"order_type": order_type, "asset_id": asset_id, "quantity": "1"},
        headers=account.auth,
    )
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "UNKNOWN_ASSET"
    assert [v["field"] for v in response.json()["violations"]] == ["asset_id"]


def test_an_unknown_asset_in_the_path_stays_404(http: httpx.Client, account: Account) -> None:
    assert http.get("/api/v1/inventory/assets/NOPE").status_code == 404
    assert http.get("/api/v1/assets/NOPE/transactions", headers=account.auth).status_code == 404


@pytest.mark.parametrize(
    "birth",
    [
        "2000W011",
        "2000-W01-1",
        "20000101",
        "2000-1-1",
        "2000-01-01T00:00:00",
        "2000-01-01 ",
        " 2000-01-01",
        "\uff12\uff10\uff10\uff10-01-01",
        "2000-02-30",
        "+2000-01-01",
    ],
)
def test_a_date_of_birth_not_exactly_yyyy_mm_dd_is_422(
    http: httpx.Client, account: Account, birth: str
) -> None:
    register = http.post("/api/v1/auth/register", json=new_registration(date_of_birth=birth))
    assert register.status_code == 422, register.text
    assert [v["field"] for v in register.json()["violations"]] == ["date_of_birth"]
    update = http.put("/api/v1/auth/profile", json={"date_of_birth": birth}, headers=account.auth)
    assert update.status_code == 422
    assert [v["field"] for v in update.json()["violations"]] == ["date_of_birth"]


def test_a_date_of_birth_as_yyyy_mm_dd_is_stored_as_given(http: httpx.Client) -> None:
    body = new_registration(date_of_birth="2000-01-03")
    assert http.post("/api/v1/auth/register", json=body).status_code == 201
    login = http.post(
        "/api/v1/auth/login", json={"username": body["username"], "password": body["password"]}
    )
    token = login.json()["access_token"]
    profile = http.get("/api/v1/auth/profile", headers={"Authorization": f"Bearer {token}"})
    assert profile.json()["date_of_birth"] == "2000-01-03"
