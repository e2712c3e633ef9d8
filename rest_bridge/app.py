"""create_app: the routes of the contracts, the operations routes and the layers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio as aioredis
from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from trading.v1 import inventory_pb2, order_pb2, user_pb2

from common.breaker import CircuitBreaker
from common.redis_clients import async_redis_client
from common.telemetry import trace_http_app
from rest_bridge.channels import BridgeChannels
from rest_bridge.config import BridgeSettings
from rest_bridge.cookie_auth import CookieAuthMiddleware
from rest_bridge.dispatch import Dispatcher
from rest_bridge.errors import ApiError, error_response
from rest_bridge.health import health_report
from rest_bridge.jwks import JWKS_PATH, jwks_endpoint
from rest_bridge.metrics import BridgeMetrics
from rest_bridge.middleware import DOCS_PATH, EnvelopeMiddleware, GuardMiddleware, request_info
from rest_bridge.openapi import build_openapi, docs_page
from rest_bridge.paths import SegmentRoute
from rest_bridge.ratelimit import RateLimiter, RedisOutage
from rest_bridge.routes import Route as ContractRoute
from rest_bridge.routes import discover_routes
from rest_bridge.subjects import TokenSubjects
from rest_bridge.webapp import mount_web_app

USER_SERVICE = user_pb2.DESCRIPTOR.services_by_name["UserService"].full_name
INVENTORY_SERVICE = inventory_pb2.DESCRIPTOR.services_by_name["InventoryService"].full_name
ORDER_SERVICE = order_pb2.DESCRIPTOR.services_by_name["OrderService"].full_name
# Dependency names of GET /health, by gRPC service.
DEPENDENCIES = {
    "svc_user": USER_SERVICE,
    "svc_inventory": INVENTORY_SERVICE,
    "svc_order": ORDER_SERVICE,
}
_CORS_HEADERS = [
    "Authorization",
    "Content-Type",
    "Idempotency-Key",
    "X-Request-ID",
    "X-Request-Timeout",
]
_EXPOSED_HEADERS = [
    "X-Request-ID",
    "Retry-After",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
]


def redis_for_bridge(url: str, timeout_seconds: float) -> aioredis.Redis:
    # Short timeouts, no retries: a dead Redis must cost a request milliseconds.
    return async_redis_client(url, timeout_seconds)


def create_app(settings: BridgeSettings, channels: BridgeChannels) -> FastAPI:
    """The bridge over the given channels (by full gRPC service name), which it opens
    at its startup and closes at its shutdown; a service without a channel answers 503
    on its routes."""
    routes = discover_routes()
    metrics = BridgeMetrics()
    outage = RedisOutage()
    redis = redis_for_bridge(settings.redis_url, settings.redis_timeout_seconds)
    prefix = settings.rate_limit_key_prefix
    # One cache of token subjects for the rate limits and the stream places.
    subjects = TokenSubjects(
        (lambda: channels.get(USER_SERVICE)) if channels.configured(USER_SERVICE) else None,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        fetch_timeout=settings.bridge_default_timeout_seconds,
    )
    dispatcher = Dispatcher(settings, channels, metrics=metrics, subjects=subjects)
    spec = build_openapi(routes)
    docs = docs_page(spec)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # grpc.aio channels belong to the loop that serves: made here, closed here.
        channels.open()
        try:
            yield
        finally:
            await channels.close()
            await redis.aclose()

    app = FastAPI(
        title=spec["info"]["title"],
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    # The HTTP protocol counts its own refusals here too (http_server.bridge_metrics).
    app.state.metrics = metrics
    # The bridge never redirects (a redirect could change the resource or echo Host).
    app.router.redirect_slashes = False
    # One route per path, so that a 405 lists every method of the path in Allow.
    by_path: dict[str, list[ContractRoute]] = {}
    for route in routes:
        by_path.setdefault(route.path, []).append(route)
    for path, group in by_path.items():
        app.router.routes.append(
            SegmentRoute(
                path,
                dispatcher.endpoint_by_method(group),
                methods=[route.http_method for route in group],
                name=" ".join(route.full_name for route in group),
                include_in_schema=False,
            )
        )

    async def health(_: Request) -> Response:
        services = {name: (full, channels.get(full)) for name, full in DEPENDENCIES.items()}
        status, body = await health_report(services, redis, settings.health_timeout_seconds)
        return JSONResponse(body, status_code=status)

    async def metrics_page(_: Request) -> Response:
        return Response(metrics.exposition(), media_type=metrics.content_type)

    async def openapi(_: Request) -> Response:
        return JSONResponse(spec)

    async def docs_html(_: Request) -> Response:
        return HTMLResponse(docs)

    for path, endpoint in (
        ("/health", health),
        ("/metrics", metrics_page),
        ("/openapi.json", openapi),
        (DOCS_PATH, docs_html),
        (
            JWKS_PATH,
            jwks_endpoint(
                lambda: channels.get(USER_SERVICE),
                timeout=settings.bridge_default_timeout_seconds,
                retry_after=settings.bridge_unavailable_retry_after_seconds,
            ),
        ),
    ):
        app.router.add_route(path, endpoint, methods=["GET"], include_in_schema=False)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        codes = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}
        error = ApiError(exc.status_code, codes.get(exc.status_code, "HTTP_ERROR"), str(exc.detail))
        response = error_response(error, request_info(request.scope).request_id)
        response.headers.update(exc.headers or {})
        return response

    # Last: its fallback answers every path the routes above leave (the web app).
    mount_web_app(app, settings.web_dist_dir)
    app.add_exception_handler(HTTPException, http_error)

    protected = {(r.http_method, r.path) for r in routes if not r.public}
    # Innermost: browsers' refresh token in an HttpOnly cookie (rest_bridge/cookie_auth.py).
    app.add_middleware(CookieAuthMiddleware, routes=routes)
    app.add_middleware(
        GuardMiddleware,
        max_body_bytes=settings.bridge_max_body_bytes,
        body_timeout=settings.bridge_body_timeout_seconds,
        limiter=RateLimiter(redis, prefix),
        ip_limit=(settings.rate_limit_ip_per_second, settings.rate_limit_ip_burst),
        user_limit=(settings.rate_limit_user_per_second, settings.rate_limit_user_burst),
        user_subject=subjects,
        metrics=metrics,
        outage=outage,
        breaker=CircuitBreaker(settings.rate_limit_probe_seconds),
    )
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_allow_origins,
        allow_credentials=settings.cors_allow_credentials,
        allow_methods=sorted({r.http_method for r in routes} | {"GET"}),
        allow_headers=_CORS_HEADERS,
        expose_headers=_EXPOSED_HEADERS,
        max_age=600,
    )
    app.add_middleware(
        EnvelopeMiddleware,
        routes=app.router.routes,
        protected=lambda method, path: (method, path) in protected,
        trusted_proxies=settings.trusted_proxies,
        metrics=metrics,
        max_header_bytes=settings.bridge_max_header_bytes,
    )
    trace_http_app(app)
    return app
