"""GET /.well-known/jwks.json: svc_user's public keys as a JSON Web Key Set (RFC 7517).

The keys are svc_user's answer to GetJwks, mapped to JSON by protobuf's own mapping
(the Jwk message's fields are the RFC's member names). The mesh's RequestAuthentication
fetches this URL to verify access tokens at the edge; the services still verify every
token themselves. Errors are the bridge's usual envelope: 503 when svc_user is not
configured or down.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from google.protobuf import json_format
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from trading.v1 import user_pb2, user_pb2_grpc

from rest_bridge.calls import unary_call
from rest_bridge.errors import ApiError, error_response, from_rpc_error
from rest_bridge.middleware import request_info

JWKS_PATH = "/.well-known/jwks.json"
# Verifiers may keep the keys this long; svc_user adds a new key before it signs with it.
CACHE_SECONDS = 300


def jwks_endpoint(
    user_channel: Callable[[], grpc.aio.Channel | None], *, timeout: float, retry_after: int
) -> Callable[[Request], Awaitable[Response]]:
    """The endpoint; `user_channel` gives svc_user's channel (None: not configured)."""

    async def jwks(request: Request) -> Response:
        request_id = request_info(request.scope).request_id
        channel = user_channel()
        if channel is None:
            error = ApiError(
                503,
                "SERVICE_NOT_CONFIGURED",
                "trading.v1.UserService is not configured on this bridge",
                retry_after=retry_after,
            )
            return error_response(error, request_id)
        try:
            answer: Any = await unary_call(
                user_pb2_grpc.UserServiceStub(channel).GetJwks,
                user_pb2.GetJwksRequest(),
                timeout=timeout,
                metadata=(),
            )
        except grpc.RpcError as failure:
            return error_response(from_rpc_error(failure, retry_after), request_id)
        body = json_format.MessageToDict(
            answer,
            preserving_proto_field_name=True,
            always_print_fields_with_no_presence=True,
        )
        return JSONResponse(
            body,
            media_type="application/jwk-set+json",
            headers={"Cache-Control": f"public, max-age={CACHE_SECONDS}"},
        )

    return jwks
