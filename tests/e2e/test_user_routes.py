"""The user routes of shared/API.md through the bridge: success codes, bodies, errors."""

from __future__ import annotations

import httpx
import pytest

from rest_bridge.routes import discover_routes
from tests.e2e.conftest import Account, new_registration, sign_up

PROTECTED = [r for r in discover_routes() if not r.public]
PUBLIC_GETS = [
    r for r in discover_routes() if r.public and r.http_method == "GET" and not r.server_streaming
]


def concrete(path: str) -> str:
    return path.replace("{asset_id}", "BTC").replace(
        "{order_id}", "00000000-0000-0000-0000-000000000000"
    )


def call(client: httpx.Client, method: str, path: str, **kwargs: object) -> httpx.Response:
    if method in ("POST", "PUT"):
        kwargs.setdefault("json", {})
    return client.request(method, concrete(path), **kwargs)  # type: ignore[arg-type]


def assert_unauthenticated(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["request_id"] == response.headers["X-Request-ID"]


def test_register_answers_201_with_the_message(http: httpx.Client) -> None:
    response = http.post("/api/v1/auth/register", json=new_registration())
    assert response.status_code == 201
    body = response.json()
    assert body["message"] == "User registered successfully"


def test_register_a_taken_username_is_409(http: httpx.Client, account: Account) -> None:
    response = http.post("/api/v1/auth/register", json=new_registration(username=account.username))
    assert response.status_code == 409
    assert set(response.json()) == {"detail", "code", "request_id"}


def test_register_breaking_the_rules_is_422_naming_the_fields(http: httpx.Client) -> None:
    response = http.post(
        "/api/v1/auth/register", json=new_registration(password="short", email="not-an-email")
    )
    assert response.status_code == 422
    fields = {v["field"] for v in response.json()["violations"]}
    assert {"password", "email"} <= fields


def test_login_answers_the_token_pair(http: httpx.Client) -> None:
    body = new_registration()
    assert http.post("/api/v1/auth/register", json=body).status_code == 201
    response = http.post(
        "/api/v1/auth/login", json={"username": body["username"], "password": body["password"]}
    )
    assert response.status_code == 200
    tokens = response.json()
    assert set(tokens) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert tokens["token_type"] == "bearer"
    assert tokens["expires_in"] == 3600


def test_wrong_password_and_unknown_user_get_the_same_401(
    http: httpx.Client, account: Account
) -> None:
    wrong = http.post(
        "/api/v1/auth/login", json={"username": account.username, "password": "Wrong-Pass-123!"}
    )
    unknown = http.post(
        "/api/v1/auth/login", json={"username": "nobody_at_all_x", "password": "Wrong-Pass-123!"}
    )
    for response in (wrong, unknown):
        assert_unauthenticated(response)
    assert wrong.json()["code"] == unknown.json()["code"]
    assert wrong.json()["detail"] == unknown.json()["detail"]


def test_refresh_gives_a_new_pair_and_spends_the_old_token(
    http: httpx.Client, account: Account
) -> None:
    first = http.post("/api/v1/auth/refresh", json={"refresh_token": account.refresh_token})
    assert first.status_code == 200
    pair = first.json()
    assert pair["refresh_token"] != account.refresh_token
    assert pair["token_type"] == "bearer"
    again = http.post("/api/v1/auth/refresh", json={"refresh_token": account.refresh_token})
    assert_unauthenticated(again)


def test_logout_then_the_token_is_refused_on_every_protected_route(
    http: httpx.Client, account: Account
) -> None:
    response = http.post("/api/v1/auth/logout", headers=account.auth)
    assert response.status_code == 200
    assert response.json() == {"message": "Logged out successfully"}
    for route in PROTECTED:
        assert_unauthenticated(call(http, route.http_method, route.path, headers=account.auth))


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Basic dXNlcjpwYXNz", "Bearer two words", "Bearer not.a.token"],
)
def test_a_missing_malformed_or_invalid_bearer_is_401_on_every_protected_route(
    http: httpx.Client, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    for route in PROTECTED:
        assert_unauthenticated(call(http, route.http_method, route.path, headers=headers))


def test_public_routes_work_without_a_token(http: httpx.Client) -> None:
    for route in PUBLIC_GETS:
        response = call(http, route.http_method, route.path)
        assert response.status_code == 200, (route.path, response.text)
    register = http.post("/api/v1/auth/register", json=new_registration())
    assert register.status_code == 201


def test_profile_is_the_bare_profile_object(http: httpx.Client, account: Account) -> None:
    response = http.get("/api/v1/auth/profile", headers=account.auth)
    assert response.status_code == 200
    profile = response.json()
    assert profile["username"] == account.username
    assert profile["first_name"] == "Ada"
    for name in ("email", "last_name", "phone", "date_of_birth", "marketing_emails_consent"):
        assert name in profile
    assert profile["created_at"].endswith("Z")
    assert response.headers["Cache-Control"] == "no-store"


def test_profile_update_answers_the_user(http: httpx.Client, account: Account) -> None:
    response = http.put("/api/v1/auth/profile", json={"first_name": "grace"}, headers=account.auth)
    assert response.status_code == 200
    body = response.json()
    assert body["message"] == "Profile updated successfully"
    assert body["user"]["first_name"] == "Grace"


def test_profile_update_to_a_taken_email_is_409(http: httpx.Client, account: Account) -> None:
    other = sign_up(http)
    response = http.put("/api/v1/auth/profile", json={"email": other.email}, headers=account.auth)
    assert response.status_code == 409


def test_profile_update_with_markup_is_422(http: httpx.Client, account: Account) -> None:
    response = http.put(
        "/api/v1/auth/profile", json={"last_name": "<script>x"}, headers=account.auth
    )
    assert response.status_code == 422
    assert [v["field"] for v in response.json()["violations"]] == ["last_name"]


def test_password_change_and_a_wrong_current_password(http: httpx.Client, account: Account) -> None:
    wrong = http.post(
        "/api/v1/auth/password",
        json={"current_password": "Not-The-One-42!", "new_password": "Another-Horse-43!"},
        headers=account.auth,
    )
    assert_unauthenticated(wrong)
    weak = http.post(
        "/api/v1/auth/password",
        json={"current_password": account.password, "new_password": "weak"},
        headers=account.auth,
    )
    assert weak.status_code == 422
    changed = http.post(
        "/api/v1/auth/password",
        json={"current_password": account.password, "new_password": "Another-Horse-43!"},
        headers=account.auth,
    )
    assert changed.status_code == 200
    login = http.post(
        "/api/v1/auth/login",
        json={"username": account.username, "password": "Another-Horse-43!"},
    )
    assert login.status_code == 200
