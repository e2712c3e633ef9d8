"""GET /health, /metrics, /openapi.json and /docs."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from tests.e2e.conftest import Account, Bridge, dead_address

# Every route of shared/API.md, with whether it needs a token.
API_MD_ROUTES = {
    ("post", "/api/v1/auth/register"): False,
    ("post", "/api/v1/auth/login"): False,
    ("post", "/api/v1/auth/refresh"): False,
    ("post", "/api/v1/auth/logout"): True,
    ("get", "/api/v1/auth/profile"): True,
    ("put", "/api/v1/auth/profile"): True,
    ("post", "/api/v1/auth/password"): True,
    ("get", "/api/v1/auth/export"): True,
    ("post", "/api/v1/auth/account/close"): True,
    ("get", "/api/v1/inventory/assets"): False,
    ("get", "/api/v1/inventory/assets/{asset_id}"): False,
    ("get", "/api/v1/stream/prices"): False,
    ("post", "/api/v1/orders"): True,
    ("get", "/api/v1/orders"): True,
    ("get", "/api/v1/orders/{order_id}"): True,
    ("delete", "/api/v1/orders/{order_id}"): True,
    ("get", "/api/v1/stream/orders"): True,
    ("get", "/api/v1/balance"): True,
    ("post", "/api/v1/balance/deposit"): True,
    ("post", "/api/v1/balance/withdraw"): True,
    ("get", "/api/v1/balance/transactions"): True,
    ("get", "/api/v1/portfolio"): True,
    ("get", "/api/v1/balance/asset/{asset_id}"): True,
    ("get", "/api/v1/assets/{asset_id}/transactions"): True,
    ("get", "/health"): False,
    ("get", "/metrics"): False,
    ("get", "/openapi.json"): False,
    ("get", "/docs"): False,
}


def test_health_reports_every_dependency(http: httpx.Client) -> None:
    response = http.get("/health")
    assert response.status_code == 200
    assert response.json() == {
        "status": "healthy",
        "service": "rest_bridge",
        "dependencies": {
            "svc_user": "up",
            "svc_inventory": "up",
            "svc_order": "up",
            "redis": "up",
        },
    }


def test_health_is_503_when_a_configured_service_is_down(
    start_bridge: Callable[..., Bridge],
) -> None:
    bridge = start_bridge(order_service_addr=dead_address())
    with bridge.client() as client:
        response = client.get("/health")
    assert response.status_code == 503
    assert response.json()["status"] == "degraded"
    assert response.json()["dependencies"]["svc_order"] == "down"


def test_health_is_degraded_without_an_optional_service(
    start_bridge: Callable[..., Bridge],
) -> None:
    bridge = start_bridge(order_service_addr=None)
    with bridge.client() as client:
        response = client.get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "degraded"
    assert response.json()["dependencies"]["svc_order"] == "not_configured"


def test_openapi_lists_every_route_with_schemas_and_security(http: httpx.Client) -> None:
    spec = http.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    listed = {(m, p) for p, ops in spec["paths"].items() for m in ops}
    assert listed == set(API_MD_ROUTES)
    schemas = spec["components"]["schemas"]
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert set(schemas["Error"]["required"]) == {"detail", "code", "request_id"}
    for (method, path), protected in API_MD_ROUTES.items():
        operation = spec["paths"][path][method]
        assert (operation["security"] == [{"bearer": []}]) == protected, (method, path)
        if path.startswith("/api/"):
            success = next(c for c in operation["responses"] if c.startswith("2"))
            assert operation["responses"][success]["content"], (method, path)
            assert operation["responses"]["422"]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/Error"
            }
        if protected:
            assert "401" in operation["responses"]
    register = spec["paths"]["/api/v1/auth/register"]["post"]
    assert "201" in register["responses"]
    body_ref = register["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    body = schemas[body_ref.rsplit("/", 1)[-1]]
    assert {"username", "password", "email"} <= set(body["properties"])
    assert body["additionalProperties"] is False
    profile = spec["paths"]["/api/v1/auth/profile"]["get"]["responses"]["200"]
    assert profile["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/UserProfile"
    }
    order = spec["paths"]["/api/v1/orders/{order_id}"]["get"]
    assert order["parameters"][0]["in"] == "path"
    assets = spec["paths"]["/api/v1/inventory/assets"]["get"]
    assert {p["name"] for p in assets["parameters"] if p["in"] == "query"} == {
        "active_only",
        "limit",
    }


def test_metrics_use_route_templates(http: httpx.Client, account: Account) -> None:
    http.get("/api/v1/orders/11111111-2222-3333-4444-555555555555", headers=account.auth)
    http.get("/api/v1/inventory/assets/ETH")
    # Under /api/ (the web app's fallback answers other unknown paths).
    assert http.get("/api/v1/no/such/path/12345").status_code == 404
    text = http.get("/metrics").text
    assert 'route="/api/v1/orders/{order_id}"' in text
    assert 'route="/api/v1/inventory/assets/{asset_id}",status="200"' in text
    assert 'route="unmatched"' in text
    assert "11111111-2222" not in text
    assert "/no/such/path" not in text
    assert "bridge_http_request_duration_seconds_bucket" in text


def test_docs_lists_the_routes(http: httpx.Client) -> None:
    page = http.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    for _, path in API_MD_ROUTES:
        assert path in page.text
