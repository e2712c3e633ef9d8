"""gRPC statuses as HTTP answers, exactly as shared/API.md maps them.

The body is always `{"detail", "code", "request_id"}` (plus `violations` on a 422).
The code is the ErrorInfo reason the service sent, else the status name; the detail
of a 5xx without ErrorInfo is a fixed text, so no transport or stack detail leaks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import grpc

from common.authorization import INVALID_TOKEN_REASONS
from common.grpc_errors import error_info, field_violations
from rest_bridge.calls import BudgetSpent
from rest_bridge.json_render import ExactJSONResponse

_T = TypeVar("_T")

HTTP_STATUS: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.INVALID_ARGUMENT: 422,
    grpc.StatusCode.FAILED_PRECONDITION: 422,
    grpc.StatusCode.OUT_OF_RANGE: 422,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.DATA_LOSS: 500,
}

_FIXED_DETAIL = {
    499: "request cancelled",
    500: "internal error",
    501: "not implemented",
    503: "service unavailable, try again shortly",
    504: "the service did not answer in time",
}

# Statuses a client may retry after a pause: they get a Retry-After even when the
# service named none.
_RETRY_AFTER_BY_DEFAULT = frozenset({429, 503})


def http_status(code: grpc.StatusCode) -> int:
    return HTTP_STATUS.get(code, 500)


@dataclass(frozen=True)
class ApiError(Exception):
    status: int
    code: str
    detail: str
    violations: Sequence[tuple[str, str]] = ()
    retry_after: int | None = None
    headers: dict[str, str] = field(default_factory=dict)


def unauthenticated(detail: str, code: str = "UNAUTHENTICATED") -> ApiError:
    return ApiError(401, code, detail)


# A failed call's error with its status: grpc.aio's (the bridge's channels), or a sync
# call's (which is the call itself).
_CALL_ERRORS = (grpc.aio.AioRpcError, grpc.Call)


def _details(read: Callable[[grpc.RpcError], _T], error: grpc.RpcError) -> _T | None:
    """google.rpc details of a failed call; None when absent or inconsistent."""
    if not isinstance(error, _CALL_ERRORS):
        return None
    try:
        return read(error)
    except ValueError:  # a status proto that contradicts the call's code
        return None


def from_rpc_error(error: grpc.RpcError, default_retry_after: int) -> ApiError:
    if isinstance(error, BudgetSpent):
        # A hung dependency is unavailable; the client still has time to retry. A
        # change it was asked for may or may not have happened: the Idempotency-Key
        # makes the retry safe.
        return ApiError(
            503,
            "UNAVAILABLE",
            "the service did not answer within its budget; try again shortly",
            retry_after=default_retry_after,
        )
    call = error if isinstance(error, _CALL_ERRORS) else None
    code = call.code() if call is not None else grpc.StatusCode.UNKNOWN
    status = http_status(code)
    info = _details(error_info, error)
    reason = info.reason if info is not None and info.reason else code.name
    detail = (call.details() if call is not None else None) or code.name.lower()
    if info is None and status in _FIXED_DETAIL:
        detail = _FIXED_DETAIL[status]
    retry_after: int | None = None
    if info is not None and "retry_after_seconds" in info.metadata:
        try:
            retry_after = max(0, int(info.metadata["retry_after_seconds"]))
        except ValueError:
            retry_after = None
    if retry_after is None and status in _RETRY_AFTER_BY_DEFAULT:
        retry_after = default_retry_after
    violations = (_details(field_violations, error) or []) if status == 422 else []
    return ApiError(status, reason, detail, violations, retry_after)


def bearer_challenge(error: ApiError) -> str:
    """The WWW-Authenticate of a 401 (RFC 6750 §3): `error="invalid_token"` when the
    access token presented cannot be used, no error code when none was presented or the
    refusal is about credentials (the dispatcher sets a bare `Bearer` on public routes,
    where no access token is checked: a refused refresh token or password)."""
    if error.code not in INVALID_TOKEN_REASONS:
        return "Bearer"
    # The description is our own fixed text per reason: never the client's input.
    description = error.code.lower().replace("_", " ")
    return f'Bearer error="invalid_token", error_description="{description}"'


def error_headers(error: ApiError) -> dict[str, str]:
    headers = dict(error.headers)
    if error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    if error.status == 401:
        headers.setdefault("WWW-Authenticate", bearer_challenge(error))
    return headers


def error_body(error: ApiError, request_id: str) -> dict[str, Any]:
    body: dict[str, Any] = {"detail": error.detail, "code": error.code, "request_id": request_id}
    if error.status == 422:
        body["violations"] = [
            {"field": name, "description": description} for name, description in error.violations
        ]
    return body


def error_response(error: ApiError, request_id: str) -> ExactJSONResponse:
    """The error as an answer, rendered like every JSON answer (`json_render.py`)."""
    return ExactJSONResponse(
        error_body(error, request_id), status_code=error.status, headers=error_headers(error)
    )
