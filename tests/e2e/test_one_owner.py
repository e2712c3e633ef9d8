"""Each rule has one owner: what /openapi.json states about a value (from the contract's
options and common/idempotency.py) is exactly what the services accept over HTTP."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.e2e.conftest import Account

ASSET_ID_PROBES = [
    "BTC",
    "btc",
    "Eth",
    "ABCDEFGHIJ",
    "ABCDEFGHIJK",
    " btc",
    "btc ",
    "B TC",
    "BTC!",
    "BTC-USD",
    "\uff22\uff34\uff23",  # full-width letters
    "\u0663",  # an Arabic-Indic digit
]
# Refusals of a well-formed id that names nothing; not a format refusal.
_UNKNOWN = {"UNKNOWN_ASSET", "UNKNOWN_SYMBOLS"}


def _pattern_of(schema: dict[str, Any], spec: dict[str, Any]) -> str | None:
    if "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    if schema.get("type") == "array":
        return _pattern_of(schema["items"], spec)
    pattern: str | None = schema.get("pattern")
    return pattern


def _stated(spec: dict[str, Any], path: str, method: str, name: str) -> str:
    operation = spec["paths"][path][method]
    for parameter in operation["parameters"]:
        if parameter["name"] == name:
            pattern = _pattern_of(parameter["schema"], spec)
            assert pattern is not None, (path, name)
            return pattern
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    if "$ref" in body:
        body = spec["components"]["schemas"][body["$ref"].rsplit("/", 1)[-1]]
    pattern = _pattern_of(body["properties"][name], spec)
    assert pattern is not None, (path, name)
    return pattern


def _format_refused(response: httpx.Response, name: str) -> bool:
    if response.status_code != 422:
        return False
    body = response.json()
    return body["code"] not in _UNKNOWN and name in [v["field"] for v in body["violations"]]


@pytest.fixture(scope="module")
def spec(bridge: Any) -> dict[str, Any]:
    with bridge.client() as client:
        document: dict[str, Any] = client.get("/openapi.json").json()
    return document


@pytest.mark.parametrize(
    ("path", "method", "name"),
    [
        ("/api/v1/inventory/assets/{asset_id}", "get", "asset_id"),
        ("/api/v1/balance/asset/{asset_id}", "get", "asset_id"),
        ("/api/v1/assets/{asset_id}/transactions", "get", "asset_id"),
        ("/api/v1/orders", "get", "asset_id"),
        ("/api/v1/orders", "post", "asset_id"),
        ("/api/v1/stream/prices", "get", "symbols"),
    ],
)
def test_asset_ids_are_accepted_exactly_as_openapi_states(
    http: httpx.Client, account: Account, spec: dict[str, Any], path: str, method: str, name: str
) -> None:
    pattern = _stated(spec, path, method, name)
    disagreements = []
    for probe in ASSET_ID_PROBES:
        expected = re.search(pattern, probe) is not None
        if "{" in path:
            url = path.replace("{" + name + "}", quote(probe, safe=""))
            response = http.get(url, headers=account.auth)
        elif method == "post":
            order = {"order_type": "market_buy", name: probe, "quantity": "0.001"}
            response = http.post(path, json=order, headers=account.auth)
        elif path.startswith("/api/v1/stream/"):
            with http.stream("GET", path, params={name: probe}) as streamed:
                if streamed.status_code != 200:
                    streamed.read()
                response = streamed
        else:
            response = http.get(path, params={name: probe}, headers=account.auth)
        if _format_refused(response, name) == expected:
            disagreements.append((probe, response.status_code, response.text[:120]))
    assert disagreements == [], f"OpenAPI says {pattern!r}"


@pytest.mark.parametrize(
    "key", ["k" * 128, "k" * 129, "key-1", "a b", "~!@#$%^&*()", "", "k" * 1000]
)
def test_idempotency_keys_are_accepted_exactly_as_openapi_states(
    http: httpx.Client, account: Account, spec: dict[str, Any], key: str
) -> None:
    operation = spec["paths"]["/api/v1/balance/deposit"]["post"]
    [stated] = [p for p in operation["parameters"] if p["name"] == "Idempotency-Key"]
    schema = stated["schema"]
    expected = re.search(schema["pattern"], key) is not None and len(key) <= schema["maxLength"]
    response = http.post(
        "/api/v1/balance/deposit",
        json={"amount": "1"},
        headers={**account.auth, "Idempotency-Key": key},
    )
    assert (response.status_code == 201) == expected, response.text
    if not expected:
        assert _format_refused(response, "Idempotency-Key")


_BOUNDED_QUERIES = [
    ("/api/v1/orders", "limit"),
    ("/api/v1/orders", "offset"),
    ("/api/v1/balance/transactions", "limit"),
    ("/api/v1/assets/BTC/transactions", "limit"),
    ("/api/v1/inventory/assets", "limit"),
]


@pytest.mark.parametrize(("path", "name"), _BOUNDED_QUERIES)
def test_integer_ranges_are_accepted_exactly_as_openapi_states(
    http: httpx.Client, account: Account, spec: dict[str, Any], path: str, name: str
) -> None:
    """Each value just inside and outside the stated range, and numbers no int32 holds
    (which the bridge refuses before any service): accepted exactly when in range, and
    every refusal names the stated range, never the int32 one."""
    documented = "/api/v1/assets/{asset_id}/transactions" if "BTC" in path else path
    [stated] = [p for p in spec["paths"][documented]["get"]["parameters"] if p["name"] == name]
    low, high = stated["schema"]["minimum"], stated["schema"]["maximum"]
    assert (low, high) != (-(2**31), 2**31 - 1), "the contract states no range"
    wanted = f"must be between {low} and {high}"
    probes = [low - 1, low, high, high + 1, 2**31, -(2**31) - 1, 10**20 - 1, -(10**19)]
    disagreements: list[tuple[int, int, object]] = []
    for probe in probes:
        response = http.get(path, params={name: str(probe)}, headers=account.auth)
        accepted = response.status_code == 200
        if accepted != (low <= probe <= high):
            disagreements.append((probe, response.status_code, response.text[:160]))
        elif not accepted:
            body = response.json()
            descriptions = [v["description"] for v in body["violations"] if v["field"] == name]
            if descriptions != [wanted]:
                disagreements.append((probe, response.status_code, descriptions))
    assert disagreements == [], f"OpenAPI says {low}..{high}"
