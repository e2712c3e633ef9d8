"""The ASGI layers around the routes.

Outermost, the envelope: request id, client IP, route template, security headers,
metrics, and a JSON 500 instead of any unexpected exception. Inside CORS, the guard:
the body size limit and the rate limits, so that their refusals carry CORS headers.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from redis.exceptions import RedisError
from starlette.datastructures import Headers, MutableHeaders
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common.authorization import parse_bearer
from common.breaker import CircuitBreaker
from common.context import REQUEST_ID_HEADER, request_id_var, sane_request_id
from common.errors import Unauthenticated
from common.settings import Network
from common.telemetry import annotate_request
from rest_bridge.errors import ApiError, error_response
from rest_bridge.metrics import UNMATCHED_ROUTE, BridgeMetrics
from rest_bridge.ratelimit import Bucket, RateLimiter, RedisOutage

log = logging.getLogger(__name__)

SCOPE_KEY = "bridge"
DOCS_PATH = "/docs"
_API_CSP = "default-src 'none'; frame-ancestors 'none'"
# The docs page is one self-contained document: its own inline styles, nothing else.
_DOCS_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"


# A response with a policy of its own (the web app's) keeps it.
_KEPT_IF_SET = frozenset({"Content-Security-Policy"})


def envelope_headers(request_id: str, route: str, private: bool) -> list[tuple[str, str]]:
    """The headers every response of the bridge carries: its request id and the
    security headers (`Cache-Control: no-store` when `private`: a request with
    credentials or to a protected route). The one list, for the envelope below and for
    the refusals the HTTP protocol writes itself (`http_server.py`)."""
    headers = [
        ("X-Request-ID", request_id),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "no-referrer"),
        ("X-Frame-Options", "DENY"),
        ("Content-Security-Policy", _DOCS_CSP if route == DOCS_PATH else _API_CSP),
    ]
    if private:
        headers.append(("Cache-Control", "no-store"))
    return headers


def note_answer(
    metrics: BridgeMetrics, request_id: str, method: str, route: str, status: int, seconds: float
) -> None:
    """The one record of an answered request: its count and time in `metrics`, and the
    access log line (debug; with its request id). For the envelope below and for the
    refusals the HTTP protocol writes itself (`http_server.py`)."""
    metrics.observe(method, route, status, seconds)
    log.debug(
        "http answered",
        extra={
            "request_id": request_id,
            "method": method,
            "route": route,
            "status": status,
            "ms": round(seconds * 1000, 2),
        },
    )


@dataclass
class RequestInfo:
    request_id: str
    client_ip: str
    route: str  # the template, or "unmatched"
    rate_headers: dict[str, str] = field(default_factory=dict)


def request_info(scope: Scope) -> RequestInfo:
    info: RequestInfo = scope[SCOPE_KEY]
    return info


def bearer_token(authorization: str | None) -> str | None:
    """The token of a usable bearer header (common.authorization's rules), else None."""
    try:
        return parse_bearer(authorization)
    except Unauthenticated:
        return None


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def client_ip(scope: Scope, trusted: Sequence[Network]) -> str:
    """The peer, or, when the peer is a trusted proxy, the nearest address in
    X-Forwarded-For that is not one of ours."""
    peer = scope.get("client")
    direct = str(peer[0]) if peer else "unknown"

    def is_trusted(text: str) -> bool:
        address = _address(text)
        return address is not None and any(address in network for network in trusted)

    if not trusted or not is_trusted(direct):
        return direct
    forwarded = Headers(scope=scope).get("x-forwarded-for", "")
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not is_trusted(hop):
            return hop if _address(hop) is not None else direct
    return hops[0] if hops else direct


def route_template(routes: Sequence[BaseRoute], scope: Scope) -> str:
    partial = None
    for route in routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return str(getattr(route, "path", UNMATCHED_ROUTE))
        if match is Match.PARTIAL and partial is None:
            partial = str(getattr(route, "path", UNMATCHED_ROUTE))
    return partial or UNMATCHED_ROUTE


class EnvelopeMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        routes: Sequence[BaseRoute],
        protected: Callable[[str, str], bool],
        trusted_proxies: Sequence[Network],
        metrics: BridgeMetrics,
        max_header_bytes: int,
    ) -> None:
        self._app = app
        self._max_header_bytes = max_header_bytes
        self._routes = routes
        self._protected = protected
        self._trusted = trusted_proxies
        self._metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = Headers(scope=scope)
        header_bytes = sum(len(name) + len(value) + 4 for name, value in scope["headers"])
        info = RequestInfo(
            request_id=sane_request_id(headers.get(REQUEST_ID_HEADER)),
            client_ip=client_ip(scope, self._trusted),
            route=route_template(self._routes, scope),
        )
        scope[SCOPE_KEY] = info
        annotate_request(info.request_id)
        method = scope["method"]
        private = "authorization" in headers or self._protected(method, info.route)
        response_started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
                out = MutableHeaders(scope=message)
                for name, value in envelope_headers(info.request_id, info.route, private):
                    if name in _KEPT_IF_SET:
                        out.setdefault(name, value)
                    else:
                        out[name] = value
                for name, value in info.rate_headers.items():
                    out.setdefault(name, value)
                elapsed = time.perf_counter() - started
                note_answer(
                    self._metrics, info.request_id, method, info.route, message["status"], elapsed
                )
            await send(message)

        token = request_id_var.set(info.request_id)
        try:
            if header_bytes > self._max_header_bytes:
                # The protocol refuses a block that trickles in past the limit; one
                # that arrived in a single read is refused here, the same way.
                detail = f"request headers over {self._max_header_bytes} bytes"
                error = ApiError(431, "HEADERS_TOO_LARGE", detail)
                await error_response(error, info.request_id)(scope, receive, send_with_headers)
                return
            await self._app(scope, receive, send_with_headers)
        except Exception:
            log.exception("unhandled error", extra={"route": info.route})
            if not response_started:
                error = ApiError(500, "INTERNAL", "internal error")
                await error_response(error, info.request_id)(scope, receive, send_with_headers)
        finally:
            request_id_var.reset(token)


class BodyTooLarge(Exception):
    pass


class BodyTooSlow(Exception):
    pass


UserSubject = Callable[[str], Any]  # async: token -> bucket subject


class GuardMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        body_timeout: float,
        limiter: RateLimiter,
        ip_limit: tuple[float, int],
        user_limit: tuple[float, int],
        user_subject: UserSubject,
        metrics: BridgeMetrics,
        outage: RedisOutage,
        breaker: CircuitBreaker,
    ) -> None:
        self._app = app
        self._max_body = max_body_bytes
        self._body_timeout = body_timeout
        self._limiter = limiter
        self._ip_limit = ip_limit
        self._user_limit = user_limit
        self._user_subject = user_subject
        self._metrics = metrics
        self._outage = outage
        self._breaker = breaker

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        info = request_info(scope)
        headers = Headers(scope=scope)
        # Limits first: an oversized request spends a token too, and its 413 carries
        # the rate-limit headers like every other answer.
        refusal = await self._rate_limit(info, headers)
        if refusal is not None:
            await error_response(refusal, info.request_id)(scope, receive, send)
            return
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self._max_body:
            await self._too_large(info)(scope, receive, send)
            return
        received = 0
        started = False
        body_done = False

        async def counting_receive() -> Message:
            nonlocal received, body_done
            if body_done:  # only the disconnect is left to wait for, however long
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self._body_timeout)
            except TimeoutError:
                raise BodyTooSlow from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self._max_body:
                    raise BodyTooLarge
                body_done = not message.get("more_body", False)
            return message

        async def noting_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self._app(scope, counting_receive, noting_send)
        except BodyTooLarge:
            if started:
                raise
            await self._too_large(info)(scope, receive, send)
        except BodyTooSlow:
            if started:
                raise
            detail = f"the request body paused over {self._body_timeout:g} s"
            response = error_response(ApiError(408, "REQUEST_TIMEOUT", detail), info.request_id)
            response.headers["Connection"] = "close"
            await response(scope, receive, send)

    def _too_large(self, info: RequestInfo) -> Any:
        error = ApiError(413, "BODY_TOO_LARGE", f"request body over {self._max_body} bytes")
        response = error_response(error, info.request_id)
        # The rest of the body is not read: the connection is not reused.
        response.headers["Connection"] = "close"
        return response

    async def _rate_limit(self, info: RequestInfo, headers: Headers) -> ApiError | None:
        if not self._breaker.allows():
            # Redis failed a moment ago: fail open at once instead of waiting for its
            # timeout again; one request probes it after RATE_LIMIT_PROBE_SECONDS.
            return None
        buckets = [Bucket("ip", info.client_ip, *self._ip_limit)]
        token = bearer_token(headers.get("authorization"))
        try:
            if token is not None:
                subject = await self._user_subject(token)
                buckets.append(Bucket("user", subject, *self._user_limit))
            decision = await self._limiter.spend(buckets)
        except (RedisError, OSError) as error:
            # Fail open: the services still verify every call; see the module docs.
            self._breaker.record(succeeded=False)
            self._metrics.redis_errors.labels("ratelimit").inc()
            self._outage.noted("ratelimit", error)
            return None
        except BaseException:
            # Cancelled (the client left): says nothing about Redis.
            self._breaker.abandon()
            raise
        self._breaker.record(succeeded=True)
        info.rate_headers = decision.headers()
        if decision.allowed:
            return None
        self._metrics.rate_limited.labels(decision.refused_by or "ip").inc()
        return ApiError(
            429,
            "RATE_LIMITED",
            "too many requests; slow down",
            retry_after=decision.retry_after_seconds,
        )
