"""Every 401 of the bridge names its challenge as RFC 6750 §3 says: a bearer token that
was presented and cannot be used (malformed, forged, expired, revoked, over the size
limit) gets `error="invalid_token"`; no token at all, or a refusal of credentials rather
than of the token, gets a bare `Bearer` challenge."""

from __future__ import annotations

from pathlib import Path

import httpx
import jwt
import pytest

from svc_user.credentials import load_private_key
from tests.e2e.conftest import sign_up
from tests.user_service import STRONG_PASSWORD

INVALID_TOKEN = 'Bearer error="invalid_token"'
# One protected route of each service behind the bridge.
PROTECTED = ["/api/v1/auth/profile", "/api/v1/balance"]


def _resigned(token: str, key_file: Path, **changes: object) -> str:
    claims = jwt.decode(token, options={"verify_signature": False})
    claims.update(changes)
    kid = jwt.get_unverified_header(token)["kid"]
    key = load_private_key(key_file.read_bytes())
    return jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": kid})


def _challenge(response: httpx.Response) -> str:
    assert response.status_code == 401, response.text
    return response.headers["WWW-Authenticate"]


@pytest.mark.parametrize("path", PROTECTED)
def test_an_unusable_token_is_invalid_token_on_every_service(
    http: httpx.Client, signing_key_file: Path, path: str
) -> None:
    account = sign_up(http)
    expired = _resigned(account.access_token, signing_key_file, iat=1_000_000, exp=1_003_600)
    head, payload, signature = account.access_token.split(".")
    forged = f"{head}.{payload}.{'A' if signature[0] != 'A' else 'B'}{signature[1:]}"
    presented = {
        "TOKEN_EXPIRED": {"Authorization": f"Bearer {expired}"},
        "TOKEN_INVALID": {"Authorization": f"Bearer {forged}"},
        "TOKEN_TOO_LARGE": {"Authorization": "Bearer " + "a" * 5000},
    }
    for code, headers in presented.items():
        answer = http.get(path, headers=headers)
        assert answer.json()["code"] == code, answer.text
        assert _challenge(answer).startswith(INVALID_TOKEN), code
    # Malformed headers the bridge refuses itself.
    for header in ("Bearer !!!", "Basic dXNlcjpwYXNz"):
        answer = http.get(path, headers={"Authorization": header})
        assert _challenge(answer).startswith(INVALID_TOKEN), header


def test_a_revoked_token_is_invalid_token(http: httpx.Client) -> None:
    account = sign_up(http)
    assert http.post("/api/v1/auth/logout", headers=account.auth).status_code == 200
    for path in PROTECTED:
        answer = http.get(path, headers=account.auth)
        assert answer.json()["code"] == "TOKEN_REVOKED", answer.text
        assert _challenge(answer).startswith(INVALID_TOKEN)


def test_no_token_or_refused_credentials_carry_no_error_code(
    http: httpx.Client, signing_key_file: Path
) -> None:
    account = sign_up(http)
    expired_refresh = _resigned(
        account.refresh_token, signing_key_file, iat=1_000_000, exp=1_003_600
    )
    refusals = [
        http.get("/api/v1/balance"),
        http.post(
            "/api/v1/auth/login", json={"username": account.username, "password": "Wrong-Pass-1!"}
        ),
        # Refresh tokens refused on the (public) refresh route: not an access token.
        http.post("/api/v1/auth/refresh", json={"refresh_token": "a.b.c"}),
        http.post("/api/v1/auth/refresh", json={"refresh_token": expired_refresh}),
        http.post(
            "/api/v1/auth/password",
            json={"current_password": "Wrong-Pass-1!", "new_password": STRONG_PASSWORD + "x"},
            headers=account.auth,
        ),
    ]
    codes = [answer.json()["code"] for answer in refusals]
    assert "TOKEN_EXPIRED" in codes  # the expired refresh token, answered like the rest
    for answer in refusals:
        assert _challenge(answer) == "Bearer", answer.text
