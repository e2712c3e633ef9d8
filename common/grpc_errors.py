"""Domain errors as gRPC statuses with google.rpc details.

ErrorInfo carries the stable reason (and Retry-After, when there is one), BadRequest
the fields at fault. Clients and the REST bridge read these, never message text.
"""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from common.errors import DomainError, ErrorKind

ERROR_DOMAIN = "trading.v1"

# Sent with every status a service chose: gRPC clients do not retry it within the call
# (gRFC A6: a negative pushback means "do not retry"). A service that answers
# UNAVAILABLE itself already waited for its dependency up to its budget; trying again
# at once would spend the caller's deadline on the same hung dependency. UNAVAILABLE
# from the transport (connection refused while a service restarts) carries no
# pushback and is still retried.
NO_RETRY = ("grpc-retry-pushback-ms", "-1")

_CODES: dict[ErrorKind, int] = {
    ErrorKind.INVALID_ARGUMENT: code_pb2.INVALID_ARGUMENT,
    ErrorKind.FAILED_PRECONDITION: code_pb2.FAILED_PRECONDITION,
    ErrorKind.OUT_OF_RANGE: code_pb2.OUT_OF_RANGE,
    ErrorKind.NOT_FOUND: code_pb2.NOT_FOUND,
    ErrorKind.ALREADY_EXISTS: code_pb2.ALREADY_EXISTS,
    ErrorKind.ABORTED: code_pb2.ABORTED,
    ErrorKind.UNAUTHENTICATED: code_pb2.UNAUTHENTICATED,
    ErrorKind.PERMISSION_DENIED: code_pb2.PERMISSION_DENIED,
    ErrorKind.RESOURCE_EXHAUSTED: code_pb2.RESOURCE_EXHAUSTED,
    ErrorKind.UNAVAILABLE: code_pb2.UNAVAILABLE,
    ErrorKind.DEADLINE_EXCEEDED: code_pb2.DEADLINE_EXCEEDED,
    ErrorKind.INTERNAL: code_pb2.INTERNAL,
}


def _packed(message: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)  # type: ignore[arg-type]
    return packed


def to_grpc_status(error: DomainError) -> grpc.Status:
    metadata = {}
    if error.retry_after_seconds is not None:
        metadata["retry_after_seconds"] = str(error.retry_after_seconds)
    details = [
        _packed(
            error_details_pb2.ErrorInfo(reason=error.reason, domain=ERROR_DOMAIN, metadata=metadata)
        )
    ]
    if error.violations:
        details.append(
            _packed(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(
                            field=v.field, description=v.description
                        )
                        for v in error.violations
                    ]
                )
            )
        )
    status = status_pb2.Status(code=_CODES[error.kind], message=error.message, details=details)
    return _final(rpc_status.to_status(status))


def internal_status(request_id: str | None) -> grpc.Status:
    status = status_pb2.Status(
        code=code_pb2.INTERNAL,
        message=f"internal error (request id {request_id})",
        details=[_packed(error_details_pb2.ErrorInfo(reason="INTERNAL", domain=ERROR_DOMAIN))],
    )
    return _final(rpc_status.to_status(status))


def _final(status: grpc.Status) -> grpc.Status:
    """The status with NO_RETRY added to its trailing metadata."""
    final: grpc.Status = status._replace(  # type: ignore[attr-defined]
        trailing_metadata=(*status.trailing_metadata, NO_RETRY)
    )
    return final


def error_info(error: grpc.RpcError) -> error_details_pb2.ErrorInfo | None:
    """The ErrorInfo detail of a failed call, if the server sent one."""
    status = rpc_status.from_call(error)
    if status is None:
        return None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info
    return None


def field_violations(error: grpc.RpcError) -> list[tuple[str, str]]:
    status = rpc_status.from_call(error)
    found: list[tuple[str, str]] = []
    if status is None:
        return found
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
            found.extend((v.field, v.description) for v in bad_request.field_violations)
    return found
