"""One endpoint per route: HTTP request -> request message -> gRPC call -> HTTP answer.

The bridge forwards the caller's Authorization and never decides who the caller is;
it only refuses, early, a protected route called without a well-formed bearer token.
Calls go over grpc.aio channels (`channels.BridgeChannels`), awaited on the event loop
(`calls.py`).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any

import grpc
from google.protobuf.message import Message
from starlette.requests import Request
from starlette.responses import Response

from common import idempotency
from common.authorization import TokenTooLarge, parse_bearer
from common.client_address import CLIENT_ADDRESS_HEADER
from common.context import REQUEST_ID_HEADER
from common.errors import Unauthenticated
from rest_bridge.calls import open_stream, unary_call
from rest_bridge.channels import ChannelSource
from rest_bridge.config import BridgeSettings
from rest_bridge.errors import ApiError, error_response, from_rpc_error, unauthenticated
from rest_bridge.json_render import ExactJSONResponse
from rest_bridge.media import require_json
from rest_bridge.metrics import BridgeMetrics
from rest_bridge.middleware import request_info
from rest_bridge.paths import path_values
from rest_bridge.routes import Route
from rest_bridge.sse import EventStreamResponse
from rest_bridge.stream_places import StreamPlaces
from rest_bridge.subjects import is_verified_user
from rest_bridge.transcode import BadInput, build_request, response_json

TIMEOUT_HEADER = "x-request-timeout"

Endpoint = Callable[[Request], Awaitable[Response]]
Subjects = Callable[[str], Awaitable[str]]  # token -> subject (subjects.TokenSubjects)


def _serializers(route: Route) -> dict[str, Any]:
    return {
        "request_serializer": lambda message: message.SerializeToString(),
        "response_deserializer": route.response_class().FromString,
    }


class Dispatcher:
    def __init__(
        self,
        settings: BridgeSettings,
        channels: ChannelSource,
        *,
        metrics: BridgeMetrics,
        subjects: Subjects,
    ) -> None:
        self._settings = settings
        self._channels = channels
        self._metrics = metrics
        self._subjects = subjects
        self.stream_places = StreamPlaces(
            settings.bridge_max_streams,
            settings.bridge_max_streams_per_client,
            retry_after=settings.bridge_unavailable_retry_after_seconds,
        )

    def timeout_of(self, request: Request) -> float:
        """The client's X-Request-Timeout up to the maximum, else the default."""
        raw = request.headers.get(TIMEOUT_HEADER)
        settings = self._settings
        try:
            wanted = float(raw) if raw is not None else math.nan
        except ValueError:
            wanted = math.nan
        if not math.isfinite(wanted) or wanted <= 0:
            return settings.bridge_default_timeout_seconds
        return min(wanted, settings.bridge_max_timeout_seconds)

    @staticmethod
    def _forwarded_token(route: Route, request: Request) -> str | None:
        """The bearer token to forward, read by the platform's one parser. A protected
        route refuses an unusable header with 401; a public one forwards nothing then,
        except that a header too large to forward is 431 there."""
        headers = request.headers.getlist("authorization")
        try:
            if len(headers) > 1:
                raise Unauthenticated("more than one Authorization header", reason="TOKEN_INVALID")
            return parse_bearer(headers[0] if headers else None)
        except TokenTooLarge as error:
            if route.public:
                raise ApiError(
                    431, "HEADER_TOO_LARGE", "the Authorization header is too large"
                ) from None
            raise unauthenticated(error.message, error.reason) from None
        except Unauthenticated as error:
            if route.public:
                return None
            raise unauthenticated(error.message, error.reason) from None

    def _metadata(self, request: Request, token: str | None) -> list[tuple[str, str]]:
        info = request_info(request.scope)
        # The client's address, for svc_user's login throttle (believed only from a
        # trusted peer: common/client_address.py).
        metadata = [(REQUEST_ID_HEADER, info.request_id), (CLIENT_ADDRESS_HEADER, info.client_ip)]
        if token is not None:
            metadata.append(("authorization", f"Bearer {token}"))
        key = request.headers.get(idempotency.HTTP_HEADER)
        if key is not None:
            # Checked here too, so a key too large to forward never becomes metadata.
            if not idempotency.is_valid_key(key):
                raise ApiError(
                    422,
                    "INVALID_ARGUMENT",
                    f"{idempotency.HTTP_HEADER} must be {idempotency.DESCRIPTION}",
                    violations=((idempotency.HTTP_HEADER, idempotency.DESCRIPTION),),
                )
            metadata.append((idempotency.METADATA_KEY, key))
        return metadata

    def endpoint_by_method(self, routes: Sequence[Route]) -> Endpoint:
        """One endpoint for the routes of one path, chosen by the request's method
        (HEAD is GET without a body)."""
        handlers = {route.http_method: self.endpoint(route) for route in routes}

        async def by_method(request: Request) -> Response:
            method = "GET" if request.method == "HEAD" else request.method
            return await handlers[method](request)

        return by_method

    def _invoker(self, route: Route) -> Callable[[], Any]:
        """The route's multicallable, made on first use: the channels open with the app
        (on the loop that serves), after the endpoints are built. None when the route's
        service has no channel."""
        made: list[Any] = []

        def invoke() -> Any:
            if made:
                return made[0]
            channel = self._channels.get(route.service)
            if channel is None:
                return None
            if route.server_streaming:
                made.append(channel.unary_stream(route.grpc_path, **_serializers(route)))
            else:
                made.append(channel.unary_unary(route.grpc_path, **_serializers(route)))
            return made[0]

        return invoke

    def endpoint(self, route: Route) -> Endpoint:
        invoker = self._invoker(route)

        async def handle(request: Request) -> Response:
            request_id = request_info(request.scope).request_id
            try:
                token = self._forwarded_token(route, request)
                metadata = self._metadata(request, token)
                body = await request.body() if route.body else b""
                if route.body:
                    require_json(request.headers.get("content-type"), body)
                message = build_request(
                    route,
                    path_params=path_values(route.path, request.scope),
                    query=request.query_params.multi_items(),
                    body=body,
                )
                invoke = invoker()
                if invoke is None:
                    raise ApiError(
                        503,
                        "SERVICE_NOT_CONFIGURED",
                        f"{route.service} is not configured on this bridge",
                        retry_after=self._settings.bridge_unavailable_retry_after_seconds,
                    )
                timeout = self.timeout_of(request)
                if route.server_streaming:
                    client = await self._stream_client(request, token)
                    return await self._stream(
                        route, invoke, message, metadata, request_id, timeout, client
                    )
                answer = await unary_call(invoke, message, timeout=timeout, metadata=metadata)
            except BadInput as bad:
                error = ApiError(422, "INVALID_ARGUMENT", str(bad), bad.violations)
                return error_response(error, request_id)
            except ApiError as error:
                return error_response(error, request_id)
            except grpc.RpcError as failure:
                retry_after = self._settings.bridge_unavailable_retry_after_seconds
                refusal = from_rpc_error(failure, retry_after)
                if route.public and refusal.status == 401:
                    # No access token was checked (a refresh token or a password
                    # was refused): no invalid_token challenge.
                    challenge = {**refusal.headers, "WWW-Authenticate": "Bearer"}
                    refusal = replace(refusal, headers=challenge)
                return error_response(refusal, request_id)
            return ExactJSONResponse(response_json(route, answer), status_code=route.success_status)

        return handle

    async def _stream_client(self, request: Request, token: str | None) -> str:
        """Whose share of the stream places a stream spends: the verified user of its
        bearer token, else the client address the rate limiter uses (a token that
        cannot be verified names no one: anyone could vary it)."""
        if token is not None:
            subject = await self._subjects(token)
            if is_verified_user(subject):
                return subject
        return f"ip:{request_info(request.scope).client_ip}"

    async def _stream(
        self,
        route: Route,
        invoke: Any,
        message: Message,
        metadata: list[tuple[str, str]],
        request_id: str,
        timeout: float,
        client: str,
    ) -> Response:
        settings = self._settings
        release = self.stream_places.take(client)
        try:
            stream = open_stream(
                invoke, message, timeout=settings.bridge_stream_max_seconds, metadata=metadata
            )
        except BaseException:
            release()
            raise
        first: Message | None = None
        # The first message is an awaited answer (the current prices, "subscribed"):
        # a stalled service gets the dependency budget that every unary call of the
        # channels has (DEPENDENCY_BUDGET_SECONDS), then 503, not an empty stream.
        budget = settings.dependency_budget_seconds
        try:
            # An error (service down, too many streams) is an HTTP error while the
            # status line is still unsent; after that it can only be an error event.
            first = await stream.first(min(timeout, budget))
        except TimeoutError:
            if budget < timeout:
                stream.cancel()
                release()
                raise ApiError(
                    503,
                    "UNAVAILABLE",
                    "the service did not answer within its budget; try again shortly",
                    retry_after=settings.bridge_unavailable_retry_after_seconds,
                ) from None
            first = None
        except BaseException:
            stream.cancel()
            release()
            raise

        return EventStreamResponse(
            stream,
            first,
            to_json=lambda item: response_json(route, item),
            request_id=request_id,
            retry_after=settings.bridge_unavailable_retry_after_seconds,
            on_close=release,
            event_name=route.sse_event,
        )
