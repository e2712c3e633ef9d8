"""Request bodies and query strings as proto3 JSON (shared/API.md, "JSON and HTTP at the
edge"): a field given twice is 422 naming it, numbers are judged from their text and
never expanded, types follow the mapping, only JSON in UTF-8 is read, and unknown
fields and parameters are ignored."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from rest_bridge.json_text import JsonNumber, read_json
from tests.e2e.conftest import Account, new_registration

JSON = {"Content-Type": "application/json"}


def post_raw(
    http: httpx.Client, path: str, content: bytes, headers: dict[str, str] | None = None
) -> httpx.Response:
    return http.post(path, content=content, headers={**JSON, **(headers or {})})


def violated(response: httpx.Response) -> list[str]:
    assert response.status_code == 422, response.text
    return [v["field"] for v in response.json()["violations"]]


def orders_of(http: httpx.Client, account: Account) -> list[dict[str, Any]]:
    listed = http.get("/api/v1/orders", headers=account.auth)
    assert listed.status_code == 200
    data: list[dict[str, Any]] = listed.json()["data"]
    return data


def funded(http: httpx.Client, account: Account) -> Account:
    deposit = http.post("/api/v1/balance/deposit", json={"amount": "5000"}, headers=account.auth)
    assert deposit.status_code == 201, deposit.text
    return account


# --- 1. one field, two spellings or a repeated key ------------------------------------


def test_both_spellings_of_an_order_field_are_422_and_nothing_trades(
    http: httpx.Client, account: Account
) -> None:
    funded(http, account)
    body = (
        b'{"order_type":"market_buy","orderType":"market_sell","asset_id":"ETH","quantity":"0.001"}'
    )
    response = post_raw(http, "/api/v1/orders", body, account.auth)
    assert violated(response) == ["order_type"]
    assert orders_of(http, account) == []


@pytest.mark.parametrize(
    ("path", "content", "field"),
    [
        ("/api/v1/balance/deposit", b'{"amount": "1", "amount": "2"}', "amount"),
        ("/api/v1/balance/deposit", b'{"amount": 1, "amount": 1}', "amount"),
        (
            "/api/v1/orders",
            b'{"asset_id":"BTC","assetId":"ETH","order_type":"market_buy"}',
            "asset_id",
        ),
        (
            "/api/v1/orders",
            b'{"quantity":"1","order_type":"market_buy","quantity":"1"}',
            "quantity",
        ),
    ],
)
def test_any_field_given_twice_is_422_naming_it(
    http: httpx.Client, account: Account, path: str, content: bytes, field: str
) -> None:
    assert violated(post_raw(http, path, content, account.auth)) == [field]
    assert orders_of(http, account) == []
    balance = http.get("/api/v1/balance", headers=account.auth).json()
    assert balance["current_balance"] == "0.00"


def test_twice_on_public_routes_and_in_the_query(http: httpx.Client, account: Account) -> None:
    registration = new_registration()
    content = json.dumps(registration)[:-1] + ', "firstName": "grace"}'
    assert violated(post_raw(http, "/api/v1/auth/register", content.encode())) == ["first_name"]
    twice = http.get("/api/v1/orders?asset_id=BTC&assetId=ETH", headers=account.auth)
    assert violated(twice) == ["asset_id"]
    repeated = http.get("/api/v1/inventory/assets?limit=5&limit=6")
    assert violated(repeated) == ["limit"]


def test_the_lower_camel_name_alone_is_accepted(http: httpx.Client, account: Account) -> None:
    funded(http, account)
    response = http.post(
        "/api/v1/orders",
        json={"orderType": "market_buy", "assetId": "BTC", "quantity": "0.001"},
        headers=account.auth,
    )
    assert response.status_code == 201, response.text
    assert response.json()["data"]["order_type"] == "market_buy"


# --- 2. numbers decided from their text, never expanded -------------------------------


def test_a_number_keeps_its_text() -> None:
    value = read_json(b'{"amount": 1e5000000}')
    assert value == [("amount", "1e5000000")]
    assert isinstance(value[0][1], JsonNumber)


@pytest.mark.parametrize(
    "number",
    [
        b"1e5000000",
        b"1E2",
        b"-1e-7",
        b"10.5e0",
        b"1" * 31,
        b"0." + b"1" * 31,
        b"9" * 100_000,
    ],
)
def test_a_number_that_is_not_a_plain_bounded_decimal_is_422(
    http: httpx.Client, account: Account, number: bytes
) -> None:
    response = post_raw(
        http, "/api/v1/balance/deposit", b'{"amount": ' + number + b"}", account.auth
    )
    assert violated(response) == ["amount"]
    assert "RESOURCE_EXHAUSTED" not in response.text
    order = b'{"order_type":"market_buy","asset_id":"BTC","quantity":' + number + b"}"
    assert violated(post_raw(http, "/api/v1/orders", order, account.auth)) == ["quantity"]
    assert http.get("/health").status_code == 200


def test_a_plain_number_is_taken_exactly(http: httpx.Client, account: Account) -> None:
    response = post_raw(http, "/api/v1/balance/deposit", b'{"amount": 0.10}', account.auth)
    assert response.status_code == 201, response.text
    assert response.json()["current_balance"] == "0.10"


@pytest.mark.parametrize(
    "query", ["limit=1e2", "limit=99999999999999999999999", "limit=2147483648", "limit=1.0"]
)
def test_integer_query_values_are_whole_bounded_numbers(http: httpx.Client, query: str) -> None:
    assert violated(http.get(f"/api/v1/inventory/assets?{query}")) == ["limit"]


def test_deep_nesting_is_422(http: httpx.Client) -> None:
    content = b'{"username": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    assert violated(post_raw(http, "/api/v1/auth/login", content)) in (["body"], ["username"])


# --- 3. types follow the proto3 JSON mapping ------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("username", 12345678),
        ("first_name", True),
        ("email", ["a@example.org"]),
        ("password", {"x": 1}),
        ("phone", 5551234567),
        ("marketing_emails_consent", "yes"),
        ("marketing_emails_consent", 1),
    ],
)
def test_a_value_of_the_wrong_json_type_is_422(
    http: httpx.Client, field: str, value: object
) -> None:
    response = http.post("/api/v1/auth/register", json=new_registration(**{field: value}))
    assert violated(response) == [field]


def test_a_number_for_a_text_field_is_refused_but_not_for_a_decimal_one(
    http: httpx.Client, account: Account
) -> None:
    response = http.post(
        "/api/v1/orders",
        json={"order_type": "market_buy", "asset_id": 1234, "quantity": 0.001},
        headers=account.auth,
    )
    assert violated(response) == ["asset_id"]


# --- 4. application/json in UTF-8 only ------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/jsonp",
        "application/json; charset=latin-1",
        "application/json; charset=utf-16",
        "application/json; foo=bar",
    ],
)
def test_a_body_that_is_not_json_in_utf8_is_415(http: httpx.Client, content_type: str) -> None:
    body = json.dumps(new_registration()).encode()
    for path in ("/api/v1/auth/register", "/api/v1/auth/login"):
        response = http.post(path, content=body, headers={"Content-Type": content_type})
        assert response.status_code == 415, (path, content_type, response.text)
        assert response.json()["code"] == "UNSUPPORTED_MEDIA_TYPE"


def test_a_body_without_content_type_is_415(http: httpx.Client) -> None:
    body = json.dumps(new_registration()).encode()
    response = http.post("/api/v1/auth/register", content=body)
    assert response.status_code == 415


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "Application/JSON; charset=UTF-8", 'application/json;charset="utf-8"'],
)
def test_json_in_utf8_is_read(http: httpx.Client, content_type: str) -> None:
    body = json.dumps(new_registration()).encode()
    response = http.post(
        "/api/v1/auth/register", content=body, headers={"Content-Type": content_type}
    )
    assert response.status_code == 201, response.text


def test_bytes_that_are_not_utf8_are_422(http: httpx.Client) -> None:
    body = json.dumps(new_registration()).encode("utf-16")
    assert violated(post_raw(http, "/api/v1/auth/register", body)) == ["body"]


def test_a_route_with_an_optional_body_needs_no_content_type(
    http: httpx.Client, account: Account
) -> None:
    assert http.post("/api/v1/auth/logout", headers=account.auth).status_code == 200


# --- 16. unknown fields and parameters are ignored ------------------------------------


def test_old_clients_extra_fields_are_ignored(http: httpx.Client, account: Account) -> None:
    deposit = http.post(
        "/api/v1/balance/deposit",
        json={"amount": 5000, "description": "Manual deposit"},
        headers=account.auth,
    )
    assert deposit.status_code == 201, deposit.text
    withdraw = http.post(
        "/api/v1/balance/withdraw",
        json={"amount": 100, "description": "Manual withdrawal", "meta": {"a": [1, {"b": None}]}},
        headers=account.auth,
    )
    assert withdraw.status_code == 201, withdraw.text
    assert withdraw.json()["current_balance"] == "4900.00"
    logout = http.post(
        "/api/v1/auth/logout", json={"access_token": account.access_token}, headers=account.auth
    )
    assert logout.status_code == 200, logout.text
    assert http.get("/api/v1/auth/profile", headers=account.auth).status_code == 401


def test_unknown_query_parameters_are_ignored(http: httpx.Client, account: Account) -> None:
    assert http.get("/api/v1/inventory/assets?_=1733000000000").status_code == 200
    assert http.get("/api/v1/orders?_=1&x=y", headers=account.auth).status_code == 200
    assert http.get("/api/v1/balance?_=1", headers=account.auth).status_code == 200
    assert http.get("/api/v1/auth/profile?_=1", headers=account.auth).status_code == 200


# --- 11. limit=0 is out of range on every list ----------------------------------------

LISTS = (
    "/api/v1/inventory/assets",
    "/api/v1/orders",
    "/api/v1/balance/transactions",
    "/api/v1/assets/BTC/transactions",
)


@pytest.mark.parametrize("path", LISTS)
@pytest.mark.parametrize("limit", ["0", "-1", "251"])
def test_a_limit_out_of_range_is_422_on_every_list(
    http: httpx.Client, account: Account, path: str, limit: str
) -> None:
    response = http.get(path, params={"limit": limit}, headers=account.auth)
    assert violated(response) == ["limit"]


@pytest.mark.parametrize("path", LISTS)
def test_no_limit_is_the_default_and_one_is_one(
    http: httpx.Client, account: Account, path: str
) -> None:
    assert http.get(path, headers=account.auth).status_code == 200
    assert http.get(path, params={"limit": "1"}, headers=account.auth).status_code == 200
