"""Cookie mode of the token routes, for browsers: the refresh token never reaches script.

A client that sends ``X-Auth-Cookie: 1`` on login or refresh gets the access token in the
body as usual, but the refresh token moves out of the body into a cookie that script
cannot read (``HttpOnly``), that no other site can make the browser send
(``SameSite=Strict``), that travels only to the refresh route (``Path``) and only over TLS
when the bridge is reached over TLS (``Secure``). Refresh reads the cookie only when the
request carries that same header: a cross-site form cannot set a custom header, and a
cross-origin script needs a CORS preflight that only configured origins pass, so the
cookie alone never refreshes anything (CSRF). Logout clears the cookie whatever the
answer. A refused refresh leaves the cookie alone: its answer may arrive after a newer
login in the same browser has set a fresh cookie, which clearing would throw away (a
spent cookie costs one more 401 at most).

Which routes issue, refresh or clear the cookie is the contract's word: the method
option `session_cookie` (protos/trading/v1/options.proto), read from the route table.
Clients without the header see the JSON API of shared/API.md unchanged. The layer sits
inside the envelope and the guard, so request ids, rate limits and the login throttle
apply as to every other call.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

import jwt
from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from trading.v1.options_pb2 import (
    SESSION_COOKIE_CLEAR,
    SESSION_COOKIE_ISSUE,
    SESSION_COOKIE_REFRESH,
)

from rest_bridge.errors import ApiError, error_response
from rest_bridge.json_render import render_json
from rest_bridge.middleware import request_info
from rest_bridge.routes import Route, discover_routes

MODE_HEADER = "x-auth-cookie"
MODE_HEADER_NAME = "X-Auth-Cookie"  # as the docs and clients spell it
COOKIE_NAME = "trading_refresh"


def refresh_path(routes: Sequence[Route]) -> str:
    """The path of the one route that refreshes from the cookie: the only path the
    browser sends the cookie to."""
    paths = [route.path for route in routes if route.session_cookie == SESSION_COOKIE_REFRESH]
    if len(paths) != 1:
        raise ValueError(f"exactly one route must refresh the session cookie, not {paths}")
    return paths[0]


COOKIE_PATH = refresh_path(discover_routes())
_MAX_BODY = 64 * 1024  # a refresh body is a few hundred bytes; the guard caps the rest


def set_cookie_header(token: str, *, secure: bool, now: float | None = None) -> str:
    """The Set-Cookie value carrying ``token``; it lives as long as the token itself
    (its ``exp``; a token without one makes a session cookie)."""
    parts = [f"{COOKIE_NAME}={token}", f"Path={COOKIE_PATH}", "HttpOnly", "SameSite=Strict"]
    expires = _expiry(token)
    if expires is not None:
        parts.append(f"Max-Age={max(0, int(expires - (now or time.time())))}")
    if secure:
        parts.append("Secure")
    return "; ".join(parts)


def clear_cookie_header(*, secure: bool) -> str:
    parts = [f"{COOKIE_NAME}=", f"Path={COOKIE_PATH}", "HttpOnly", "SameSite=Strict", "Max-Age=0"]
    if secure:
        parts.append("Secure")
    return "; ".join(parts)


def _expiry(token: str) -> float | None:
    # Read, not trusted: svc_user verifies the token when it comes back; the bridge
    # only needs to know how long the browser should keep it.
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    exp = claims.get("exp")
    return float(exp) if isinstance(exp, int | float) else None


def _cookie(headers: Headers) -> str | None:
    # Read as browsers write it (Starlette's parser): the standard library's
    # SimpleCookie drops every cookie of a header after one it finds malformed, so
    # another cookie of the same site (a JSON value, a space) would lose the session.
    cookies = cookie_parser("; ".join(headers.getlist("cookie")))
    return cookies.get(COOKIE_NAME) or None


class CookieAuthMiddleware:
    def __init__(self, app: ASGIApp, *, routes: Sequence[Route]) -> None:
        self._app = app
        # (method, path) -> what the route does to the cookie; routes without the
        # option are not here. The cookie's path must be the refreshing route's.
        if refresh_path(routes) != COOKIE_PATH:
            raise ValueError("the refresh route is not at the cookie's path")
        self._modes = {
            (route.http_method, route.path): route.session_cookie
            for route in routes
            if route.session_cookie
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        mode = None
        if scope["type"] == "http":
            mode = self._modes.get((scope["method"], scope.get("path", "")))
        if mode is None:
            await self._app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        cookie_mode = headers.get(MODE_HEADER) == "1"
        secure = scope.get("scheme") == "https"
        if mode == SESSION_COOKIE_CLEAR:
            await self._app(scope, receive, _clearing(send, secure))
        elif mode == SESSION_COOKIE_ISSUE and cookie_mode:
            await self._app(scope, receive, _moving_token(send, secure))
        elif mode == SESSION_COOKIE_REFRESH and cookie_mode:
            await self._refresh(scope, receive, send, headers, secure)
        elif mode == SESSION_COOKIE_REFRESH and _cookie(headers) is not None:
            await self._refresh_without_mode(scope, receive, send)
        else:
            await self._app(scope, receive, send)

    async def _refresh(
        self, scope: Scope, receive: Receive, send: Send, headers: Headers, secure: bool
    ) -> None:
        body = await _read_body(receive)
        token = _cookie(headers)
        document = _tokenless(body)
        if document is not None:
            if token is None:
                error = ApiError(
                    401, "REFRESH_COOKIE_MISSING", "no session to refresh; sign in again"
                )
                await _refuse(error, scope, receive, send)
                return
            document["refresh_token"] = token
            # The request the route reads (json.dumps: a NaN the client sent stays for
            # the route to refuse with 422).
            body = json.dumps(document).encode()
        # Anything else (an explicit token, a malformed body) goes on unchanged, so the
        # route answers it exactly as it would without cookie mode.
        moving = _moving_token(send, secure)
        await self._app(_with_body(scope, body), _replaying(body, receive), moving)

    async def _refresh_without_mode(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A refresh that carries the cookie but not the mode header: the cookie is not
        read (CSRF, see the module docs). Without a token in the body either, the answer
        says which of the two is missing rather than calling an absent token malformed."""
        body = await _read_body(receive)
        if _tokenless(body) is not None:
            error = ApiError(
                401,
                "TOKEN_MISSING",
                f"a refresh token is required: send refresh_token in the body, or the "
                f"{MODE_HEADER_NAME}: 1 header to refresh from the session cookie",
            )
            await _refuse(error, scope, receive, send)
            return
        await self._app(_with_body(scope, body), _replaying(body, receive), send)


def _tokenless(body: bytes) -> dict[str, Any] | None:
    """The body's JSON object when it is one without a refresh token (an empty body
    counts as `{}`); None for anything else, which the route answers itself."""
    try:
        document = json.loads(body) if body.strip() else {}
    except ValueError:
        return None
    if isinstance(document, dict) and not document.get("refresh_token"):
        return document
    return None


async def _refuse(error: ApiError, scope: Scope, receive: Receive, send: Send) -> None:
    response = error_response(error, request_info(scope).request_id)
    await response(scope, receive, send)


def _with_body(scope: Scope, body: bytes) -> Scope:
    """The scope of a request whose (re-read) body is `body`, as JSON."""
    scope = dict(scope)
    scope["headers"] = [
        (name, value)
        for name, value in scope["headers"]
        if name not in (b"content-length", b"content-type")
    ] + [(b"content-length", str(len(body)).encode()), (b"content-type", b"application/json")]
    return scope


def _replaying(body: bytes, receive: Receive) -> Receive:
    """A receive that gives `body` once, then whatever the client sends next."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > _MAX_BODY:
            break
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _clearing(send: Send, secure: bool) -> Send:
    async def clearing_send(message: Message) -> None:
        if message["type"] == "http.response.start":
            MutableHeaders(scope=message).append("Set-Cookie", clear_cookie_header(secure=secure))
        await send(message)

    return clearing_send


def _moving_token(send: Send, secure: bool) -> Send:
    """Holds back the (small) token response and moves refresh_token into the cookie
    on success; any other answer passes unchanged."""
    start: dict[str, Any] = {}
    chunks: list[bytes] = []

    async def moving_send(message: Message) -> None:
        if message["type"] == "http.response.start":
            start.update(message)
            return
        if message["type"] != "http.response.body":
            await send(message)
            return
        chunks.append(message.get("body", b""))
        if message.get("more_body", False):
            return
        body = b"".join(chunks)
        out = MutableHeaders(scope=start)
        status = int(start["status"])
        if status == 200:
            document = json.loads(body)
            token = document.pop("refresh_token", "")
            body = render_json(document)
            if token:
                out.append("Set-Cookie", set_cookie_header(token, secure=secure))
        out["content-length"] = str(len(body))
        await send(start)
        await send({"type": "http.response.body", "body": body, "more_body": False})

    return moving_send
