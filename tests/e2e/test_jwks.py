"""GET /.well-known/jwks.json: what the mesh's RequestAuthentication verifies tokens with."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import jwt

from tests.e2e.conftest import Account, Bridge, dead_address


def test_the_key_set_verifies_a_real_access_token(http: httpx.Client, account: Account) -> None:
    response = http.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/jwk-set+json"
    assert "max-age=" in response.headers["cache-control"]
    keys = jwt.PyJWKSet.from_dict(response.json())
    kid = jwt.get_unverified_header(account.access_token)["kid"]
    key = keys[kid]
    assert (key.key_type, key.algorithm_name) == ("OKP", "EdDSA")
    claims = jwt.decode(
        account.access_token,
        key=key,
        algorithms=["EdDSA"],
        audience="trading-api",
        issuer="trading-platform",
    )
    assert claims["sub"]
    for member in response.json()["keys"]:
        assert set(member) == {"kty", "crv", "x", "kid", "alg", "use"}
        assert "d" not in member  # never the private part


def test_no_key_set_when_svc_user_is_down_or_absent(start_bridge: Callable[..., Bridge]) -> None:
    down = start_bridge(user_service_addr=dead_address())
    with down.client() as client:
        response = client.get("/.well-known/jwks.json")
    assert response.status_code == 503
    assert "Retry-After" in response.headers
    absent = start_bridge(user_service_addr=None)
    with absent.client() as client:
        response = client.get("/.well-known/jwks.json")
    assert response.status_code == 503
    assert response.json()["code"] == "SERVICE_NOT_CONFIGURED"
