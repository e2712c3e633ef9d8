"""What the bridge does for the browser app: cookie-mode tokens and the served app."""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from trading.v1 import options_pb2

from rest_bridge.cookie_auth import COOKIE_NAME, COOKIE_PATH, CookieAuthMiddleware
from rest_bridge.routes import discover_routes
from rest_bridge.webapp import accepts_gzip
from tests.e2e.conftest import Bridge, new_registration

COOKIE_MODE = {"X-Auth-Cookie": "1"}
REFRESH = "/api/v1/auth/refresh"


def register(http: httpx.Client) -> dict[str, str]:
    body = new_registration()
    assert http.post("/api/v1/auth/register", json=body).status_code == 201
    return {"username": body["username"], "password": body["password"]}


def set_cookie(response: httpx.Response) -> str:
    values = [v for v in response.headers.get_list("set-cookie") if v.startswith(COOKIE_NAME)]
    assert len(values) == 1, response.headers
    return values[0]


def cookie_value(header: str) -> str:
    return header.split(";", 1)[0].split("=", 1)[1]


def refresh_with(http: httpx.Client, token: str, **headers: str) -> httpx.Response:
    return http.post(REFRESH, headers={**headers, "Cookie": f"{COOKIE_NAME}={token}"}, content=b"")


def assert_rendered_like_every_answer(response: httpx.Response) -> None:
    # Cookie mode rewrites the token answer; it stays compact JSON like every other.
    compact = json.dumps(response.json(), separators=(",", ":"), ensure_ascii=False)
    assert response.content == compact.encode()


def test_cookie_login_moves_the_refresh_token_into_a_strict_http_only_cookie(
    http: httpx.Client,
) -> None:
    response = http.post("/api/v1/auth/login", json=register(http), headers=COOKIE_MODE)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["access_token"]
    assert "refresh_token" not in body
    assert_rendered_like_every_answer(response)
    header = set_cookie(response)
    attributes = {part.strip().split("=")[0].lower(): part for part in header.split(";")}
    assert f"Path={COOKIE_PATH}" in header
    assert {"httponly", "samesite", "max-age"} <= set(attributes)
    assert "SameSite=Strict" in header
    assert "secure" not in attributes  # plain HTTP here; over TLS it is Secure
    max_age = int(attributes["max-age"].split("=")[1])
    assert 29 * 86400 < max_age <= 30 * 86400  # the refresh token's own lifetime
    assert cookie_value(header)


def test_login_without_cookie_mode_is_unchanged(http: httpx.Client) -> None:
    response = http.post("/api/v1/auth/login", json=register(http))
    assert response.status_code == 200
    assert response.json()["refresh_token"]
    assert "set-cookie" not in response.headers


def test_cookie_refresh_rotates_the_cookie_and_a_spent_one_is_refused(
    http: httpx.Client,
) -> None:
    login = http.post("/api/v1/auth/login", json=register(http), headers=COOKIE_MODE)
    first = cookie_value(set_cookie(login))
    refreshed = refresh_with(http, first, **COOKIE_MODE)
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["access_token"]
    assert "refresh_token" not in refreshed.json()
    assert_rendered_like_every_answer(refreshed)
    second = cookie_value(set_cookie(refreshed))
    assert second
    assert second != first
    profile = http.get(
        "/api/v1/auth/profile",
        headers={"Authorization": f"Bearer {refreshed.json()['access_token']}"},
    )
    assert profile.status_code == 200
    # Reuse of the spent cookie: refused and the family revoked. The cookie is left
    # alone: a late refusal must not clear the cookie of a newer login.
    reused = refresh_with(http, first, **COOKIE_MODE)
    assert reused.status_code == 401
    assert "set-cookie" not in reused.headers
    assert refresh_with(http, second, **COOKIE_MODE).status_code == 401


def test_the_cookie_alone_refreshes_nothing(http: httpx.Client) -> None:
    """CSRF: a cross-site form can send the cookie but not the custom header."""
    login = http.post("/api/v1/auth/login", json=register(http), headers=COOKIE_MODE)
    token = cookie_value(set_cookie(login))
    forged = http.post(
        REFRESH,
        headers={"Cookie": f"{COOKIE_NAME}={token}"},
        content=b"refresh_token=x",
    )
    assert forged.status_code in (401, 415, 422)
    forged_json = refresh_with(http, token)
    assert forged_json.status_code in (401, 415, 422)
    assert "access_token" not in forged_json.text
    # The cookie is still good for the app itself.
    assert refresh_with(http, token, **COOKIE_MODE).status_code == 200


def test_the_cookie_routes_are_the_contracts() -> None:
    # The bridge names no route: the session_cookie method option marks them, and a
    # route table without exactly one refreshing route is refused at start.
    routes = discover_routes()
    marked = {route.full_name: route.session_cookie for route in routes if route.session_cookie}
    assert marked == {
        "trading.v1.UserService.Login": options_pb2.SESSION_COOKIE_ISSUE,
        "trading.v1.UserService.RefreshToken": options_pb2.SESSION_COOKIE_REFRESH,
        "trading.v1.UserService.Logout": options_pb2.SESSION_COOKIE_CLEAR,
    }
    assert next(r.path for r in routes if r.method == "RefreshToken") == COOKIE_PATH
    unmarked = [replace(route, session_cookie=0) for route in routes]
    with pytest.raises(ValueError, match="exactly one route must refresh"):
        CookieAuthMiddleware(lambda *_: None, routes=unmarked)  # type: ignore[arg-type]


def test_cookie_refresh_without_a_cookie_is_401(http: httpx.Client) -> None:
    response = http.post(REFRESH, headers=COOKIE_MODE, content=b"")
    assert response.status_code == 401
    assert response.json()["code"] == "REFRESH_COOKIE_MISSING"
    assert response.json()["request_id"] == response.headers["X-Request-ID"]


@pytest.mark.parametrize("body", [b"", b"{}", b'{"refresh_token": ""}', b'{"refresh_token": null}'])
def test_a_refresh_with_the_cookie_but_not_the_header_says_what_is_missing(
    http: httpx.Client, body: bytes
) -> None:
    """The cookie is read only with the mode header (CSRF); without it and without a
    token in the body, the answer names both ways to give one, not "malformed token"."""
    login = http.post("/api/v1/auth/login", json=register(http), headers=COOKIE_MODE)
    token = cookie_value(set_cookie(login))
    response = refresh_with_body(http, token, body, **{"Content-Type": "application/json"})
    assert response.status_code == 401, response.text
    refusal = response.json()
    assert refusal["code"] == "TOKEN_MISSING"
    assert "refresh_token" in refusal["detail"]
    assert "X-Auth-Cookie: 1" in refusal["detail"]
    assert refusal["request_id"] == response.headers["X-Request-ID"]
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert "set-cookie" not in response.headers
    # Nothing was spent: the app's own refresh still works.
    assert refresh_with(http, token, **COOKIE_MODE).status_code == 200


@pytest.mark.parametrize("body", [b"", b"{}", b'{"refresh_token": ""}'])
def test_a_refresh_without_any_token_says_it_is_missing(http: httpx.Client, body: bytes) -> None:
    response = http.post(REFRESH, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 401, response.text
    assert response.json()["code"] == "TOKEN_MISSING"
    assert response.json()["detail"] == "a refresh token is required"


def test_a_malformed_refresh_token_is_still_called_malformed(http: httpx.Client) -> None:
    response = http.post(REFRESH, json={"refresh_token": "not-a-jwt"})
    assert response.status_code == 401
    assert response.json()["code"] == "TOKEN_INVALID"


def test_the_session_cookie_is_found_beside_other_cookies_of_the_site(
    http: httpx.Client,
) -> None:
    """Another app on the same site may set cookies that are not RFC 6265 tokens (JSON,
    spaces, non-ASCII); browsers send them before ours, and they must not hide it."""
    login = http.post("/api/v1/auth/login", json=register(http), headers=COOKIE_MODE)
    token = cookie_value(set_cookie(login))
    others = 'theme={"dark":true}; greeting=hello world; city=Zürich'
    cookie = f"{others}; {COOKIE_NAME}={token}".encode()
    headers = {b"X-Auth-Cookie": b"1", b"Cookie": cookie}
    refreshed = http.post(REFRESH, headers=headers, content=b"")
    assert refreshed.status_code == 200, refreshed.text
    assert cookie_value(set_cookie(refreshed)) != token


def test_a_malformed_refresh_body_is_answered_as_without_cookie_mode(
    http: httpx.Client,
) -> None:
    login = http.post("/api/v1/auth/login", json=register(http), headers=COOKIE_MODE)
    token = cookie_value(set_cookie(login))
    headers = {"Content-Type": "application/json", "Cookie": f"{COOKIE_NAME}={token}"}
    answers = [
        http.post(REFRESH, headers={**headers, **mode}, content=b'{"refresh_token": ')
        for mode in (COOKIE_MODE, {})
    ]
    assert [a.status_code for a in answers] == [422, 422]
    assert [a.json()["violations"][0]["field"] for a in answers] == ["body", "body"]
    # The cookie was not spent by either.
    assert refresh_with(http, token, **COOKIE_MODE).status_code == 200


def refresh_with_body(
    http: httpx.Client, token: str, body: bytes, **headers: str
) -> httpx.Response:
    cookie = {"Cookie": f"{COOKIE_NAME}={token}"}
    return http.post(REFRESH, headers={**headers, **cookie}, content=body)


def test_logout_clears_the_cookie_and_ends_its_family(http: httpx.Client) -> None:
    login = http.post("/api/v1/auth/login", json=register(http), headers=COOKIE_MODE)
    token = cookie_value(set_cookie(login))
    access = login.json()["access_token"]
    logout = http.post("/api/v1/auth/logout", headers={"Authorization": f"Bearer {access}"})
    assert logout.status_code == 200
    cleared = set_cookie(logout)
    assert "Max-Age=0" in cleared
    assert f"Path={COOKIE_PATH}" in cleared
    assert refresh_with(http, token, **COOKIE_MODE).status_code == 401


# The served app ----------------------------------------------------------------------

STYLE_HASH = "sha256-441zG27rExd4/il+NvIqyL8zFx5XmyNQtE381kSkUJk="
INDEX = (
    '<!doctype html><html><head><meta property="csp-nonce" nonce="__CSP_NONCE__">'
    '<script type="module" src="/assets/index-abc123.js"></script></head>'
    '<body><div id="root"></div></body></html>'
)


MARKET_JS = "export const rows = [" + ",".join(f"'asset-{i}'" for i in range(200)) + "];"


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dist")
    (root / "assets").mkdir()
    (root / "index.html").write_text(INDEX)
    (root / "assets" / "index-abc123.js").write_text("console.log('app')")
    # A file with the build's gzip copy beside it.
    (root / "assets" / "Market-def456.js").write_text(MARKET_JS)
    (root / "assets" / "Market-def456.js.gz").write_bytes(gzip.compress(MARKET_JS.encode(), 9))
    (root / "favicon.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    hashes = {"style-src": [STYLE_HASH, "sha256-x' 'unsafe-inline", 7]}
    (root / "csp-hashes.json").write_text(json.dumps(hashes))
    (root.parent / "secret.txt").write_text("not served")
    return root


@pytest.fixture(scope="module")
def web(start_bridge: Callable[..., Bridge], dist: Path) -> httpx.Client:
    return start_bridge(web_dist_dir=dist).client()


def nonce_of(response: httpx.Response) -> str:
    match = re.search(r"'nonce-([^']+)'", response.headers["Content-Security-Policy"])
    assert match
    return match.group(1)


def test_index_is_no_store_with_a_fresh_nonce_each_time(web: httpx.Client) -> None:
    first, second = web.get("/"), web.get("/")
    assert first.status_code == 200
    assert first.headers["content-type"].startswith("text/html")
    assert first.headers["Cache-Control"] == "no-store"
    policy = first.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert "unsafe-eval" not in policy
    assert "frame-ancestors 'none'" in policy
    # The build's constant <style> hashes are allowed; a malformed entry is dropped.
    assert f"'{STYLE_HASH}'" in policy
    assert policy.count("sha256-") == 1
    assert nonce_of(first) != nonce_of(second)
    assert f'nonce="{nonce_of(first)}"' in first.text
    assert "__CSP_NONCE__" not in first.text


@pytest.mark.parametrize("path", ["/market", "/assets-of-mine", "/orders/abc", "/trade/BTC"])
def test_app_paths_fall_back_to_the_index(web: httpx.Client, path: str) -> None:
    response = web.get(path)
    assert response.status_code == 200
    assert '<div id="root">' in response.text
    assert response.headers["Cache-Control"] == "no-store"


def test_hashed_assets_are_cached_for_a_year(web: httpx.Client) -> None:
    response = web.get("/assets/index-abc123.js")
    assert response.status_code == 200
    assert response.text == "console.log('app')"
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert web.get("/favicon.svg").headers["Cache-Control"] == "no-cache"


def vary(response: httpx.Response) -> list[str]:
    return [name.strip() for name in response.headers.get("Vary", "").split(",")]


def test_assets_travel_gzipped_to_clients_that_accept_it(web: httpx.Client) -> None:
    path = "/assets/Market-def456.js"
    packed = web.get(path, headers={"Accept-Encoding": "br;q=1, gzip;q=0.8"})
    assert packed.status_code == 200
    assert packed.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in vary(packed)
    assert packed.headers["content-type"].startswith("text/javascript")
    assert packed.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert int(packed.headers["content-length"]) < len(MARKET_JS) / 3
    assert packed.text == MARKET_JS  # httpx decodes it: the same file
    for refuses in ("identity", "gzip;q=0, *", "br"):
        plain = web.get(path, headers={"Accept-Encoding": refuses})
        assert "Content-Encoding" not in plain.headers, refuses
        assert "Accept-Encoding" in vary(plain)
        assert int(plain.headers["content-length"]) == len(MARKET_JS)
        assert plain.text == MARKET_JS


@pytest.mark.parametrize(
    ("header", "gzip_ok"),
    [
        ("gzip", True),
        ("gzip, deflate, br", True),
        ("GZIP;Q=0.5", True),
        ("*", True),
        ("br, *;q=0.1", True),
        ("", False),
        ("identity", False),
        ("gzip;q=0", False),
        ("gzip;q=0, *", False),
        ("*;q=0", False),
        ("gzip;q=nonsense", False),
    ],
)
def test_accept_encoding_allows_gzip(header: str, gzip_ok: bool) -> None:
    assert accepts_gzip(header) is gzip_ok


@pytest.mark.parametrize(
    "path",
    ["/assets/index-old999.js", "/missing.png", "/..%2fsecret.txt", "/assets/..%2f..%2fsecret.txt"],
)
def test_missing_files_and_escapes_are_404(web: httpx.Client, path: str) -> None:
    response = web.get(path)
    assert response.status_code == 404
    assert "not served" not in response.text


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/nothing"),
        ("POST", "/api/v1/nothing"),
        ("GET", "/healthz"),
        ("GET", "/docsx"),
    ],
)
def test_the_bridge_paths_stay_json_404(web: httpx.Client, method: str, path: str) -> None:
    response = web.request(method, path)
    assert response.status_code == 404
    assert response.json()["code"] == "NOT_FOUND"


def test_the_bridge_routes_keep_working_beside_the_app(web: httpx.Client) -> None:
    assert web.get("/docs").status_code == 200
    assert web.get("/openapi.json").json()["openapi"].startswith("3")
    assert web.get("/metrics").status_code == 200
    assert web.get("/health").status_code in (200, 503)
    assets = web.get("/api/v1/inventory/assets")
    assert assets.status_code == 200
    assert assets.headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"


def test_without_a_build_the_root_says_how_to_build(
    start_bridge: Callable[..., Bridge], tmp_path: Path
) -> None:
    response = start_bridge(web_dist_dir=tmp_path / "none").client().get("/")
    assert response.status_code == 404
    assert "./dev up" in response.json()["detail"]
