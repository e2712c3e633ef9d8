"""The previous platform's clients: asset objects keep the old field names with the old
JSON types next to the new ones (shared/API.md, "JSON and HTTP at the edge")."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import httpx

OLD_DETAIL_FIELDS = (
    "price_change_percentage_7d",
    "price_change_percentage_30d",
    "total_supply",
    "max_supply",
    "ath",
    "ath_change_percentage",
    "ath_date",
    "atl",
    "atl_change_percentage",
    "atl_date",
)


def exact(response: httpx.Response) -> Any:
    """The body with JSON numbers as Decimals, so that their digits can be compared."""
    assert response.status_code == 200, response.text
    return json.loads(response.content, parse_float=Decimal, parse_int=Decimal)


def assert_old_shape(asset: dict[str, Any]) -> None:
    assert isinstance(asset["current_price"], str)  # new clients: the exact decimal text
    assert isinstance(asset["price_usd"], Decimal)  # old clients: a number, same digits
    assert asset["price_usd"] == Decimal(asset["current_price"])
    assert str(asset["price_usd"]) == asset["current_price"]
    assert isinstance(asset["price_change_percentage_24h"], Decimal)
    assert asset["symbol"] == asset["asset_id"]
    assert asset["description"] is None
    assert asset["image"] is None  # nothing that points the browser elsewhere
    assert asset["availability_status"] == ("available" if asset["is_active"] else "unavailable")
    for name in OLD_DETAIL_FIELDS:
        assert name in asset, name
        assert asset[name] is None, name


def test_the_asset_list_has_the_old_names_and_types(http: httpx.Client) -> None:
    listed = exact(http.get("/api/v1/inventory/assets?active_only=false"))
    assert listed["data"]
    for asset in listed["data"]:
        assert_old_shape(asset)
    assert any(asset["availability_status"] == "unavailable" for asset in listed["data"])


def test_the_asset_detail_has_the_old_names_and_types(http: httpx.Client) -> None:
    for asset_id in ("BTC", "eth", "FTT"):
        detail = exact(http.get(f"/api/v1/inventory/assets/{asset_id}"))["data"]
        assert_old_shape(detail)


def test_old_clients_arithmetic_works_on_the_numbers(http: httpx.Client) -> None:
    # What the old web app does: price_usd.toFixed(2), change.toFixed(2) -> plain floats.
    for asset in http.get("/api/v1/inventory/assets").json()["data"]:
        assert isinstance(asset["price_usd"], float | int)
        assert isinstance(asset["price_change_percentage_24h"], float | int)
        assert f"{asset['price_usd']:.2f}"
