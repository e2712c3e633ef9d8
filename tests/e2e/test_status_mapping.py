"""gRPC status -> HTTP, one case per code (the mapping itself), and real ones end to end."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import grpc
import httpx
import pytest

from common.errors import DomainError, ErrorKind, FieldViolation, Unavailable
from common.grpc_errors import to_grpc_status
from rest_bridge.errors import error_body, error_headers, from_rpc_error, http_status
from tests.e2e.conftest import Account, Bridge, dead_address

EXPECTED = {
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


class FailedCall(grpc.RpcError, grpc.Call):
    """A finished call that failed, as the channel hands it to the bridge."""

    def __init__(self, code: grpc.StatusCode, details: str, trailers: tuple[Any, ...] = ()) -> None:
        self._code, self._details, self._trailers = code, details, trailers

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self) -> tuple[Any, ...]:
        return self._trailers

    def initial_metadata(self) -> tuple[Any, ...]:
        return ()

    def is_active(self) -> bool:
        return False

    def time_remaining(self) -> float:
        return 0.0

    def cancel(self) -> bool:
        return False

    def add_callback(self, callback: Callable[[], None]) -> bool:
        return False


def from_domain(error: DomainError) -> FailedCall:
    status = to_grpc_status(error)
    return FailedCall(status.code, status.details, tuple(status.trailing_metadata))


@pytest.mark.parametrize(("code", "status"), list(EXPECTED.items()), ids=lambda v: str(v))
def test_every_grpc_code_maps_as_api_md_says(code: grpc.StatusCode, status: int) -> None:
    assert http_status(code) == status
    if code is grpc.StatusCode.OK:
        return
    error = from_rpc_error(FailedCall(code, "server text"), default_retry_after=1)
    assert error.status == status
    assert error.code == code.name  # no ErrorInfo: the status name
    if status >= 500:
        assert "server text" not in error.detail  # no transport detail leaks
    headers = error_headers(error)
    assert ("Retry-After" in headers) == (status in (429, 503))
    assert ("WWW-Authenticate" in headers) == (status == 401)


def test_error_info_gives_the_code_and_retry_after() -> None:
    failed = from_domain(Unavailable("price too old", reason="STALE_QUOTE", retry_after_seconds=7))
    error = from_rpc_error(failed, default_retry_after=1)
    assert (error.status, error.code, error.retry_after) == (503, "STALE_QUOTE", 7)
    assert error_headers(error)["Retry-After"] == "7"


def test_bad_request_details_become_violations() -> None:
    class Invalid(DomainError):
        kind = ErrorKind.INVALID_ARGUMENT

    failed = from_domain(
        Invalid(
            "bad",
            reason="VALIDATION_FAILED",
            violations=(FieldViolation("amount", "at most 2 decimals"),),
        )
    )
    error = from_rpc_error(failed, default_retry_after=1)
    body = error_body(error, "rid-1")
    assert body == {
        "detail": "bad",
        "code": "VALIDATION_FAILED",
        "request_id": "rid-1",
        "violations": [{"field": "amount", "description": "at most 2 decimals"}],
    }


def test_a_real_404_409_and_422(http: httpx.Client, account: Account) -> None:
    assert http.get("/api/v1/inventory/assets/NOPE").status_code == 404
    assert http.get("/api/v1/inventory/assets/bad-id!").status_code == 422
    again = {"username": account.username, "email": "x" + account.email, "password": "x"}
    assert http.post("/api/v1/auth/register", json=again).status_code in (409, 422)


def test_a_service_that_is_down_answers_503_fast(start_bridge: Callable[..., Bridge]) -> None:
    bridge = start_bridge(order_service_addr=dead_address())
    with bridge.client() as client:
        started = time.monotonic()
        response = client.get("/api/v1/balance", headers={"Authorization": "Bearer a.b.c"})
        elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) >= 1
    assert response.json()["code"] == "UNAVAILABLE"
    assert elapsed < 3


def test_a_service_without_an_address_answers_503(start_bridge: Callable[..., Bridge]) -> None:
    bridge = start_bridge(inventory_service_addr=None)
    with bridge.client() as client:
        response = client.get("/api/v1/inventory/assets")
    assert response.status_code == 503
    assert response.json()["code"] == "SERVICE_NOT_CONFIGURED"
    assert "Retry-After" in response.headers


def test_a_call_past_its_deadline_is_504(http: httpx.Client, account: Account) -> None:
    # Verifying a password takes far longer than a millisecond.
    response = http.post(
        "/api/v1/auth/login",
        json={"username": account.username, "password": account.password},
        headers={"X-Request-Timeout": "0.001"},
    )
    assert response.status_code == 504
    assert response.json()["code"] == "DEADLINE_EXCEEDED"
