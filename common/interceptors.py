"""The one server interceptor every service runs.

For each call of any kind (unary, or streaming either way), in this order: take or
make the request id, decide the client's address (common/client_address), note the
deadline, verify the caller (unless the contract marks the RPC public; a streaming
request before its first message is read), run the handler, turn typed errors into
statuses with details (an unexpected exception becomes INTERNAL, logged, with no stack
trace sent), and write one access log line; a call the contract marks `audit_event`
also writes its one audit record (common/audit).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import grpc

from common import audit
from common.authorization import parse_bearer
from common.client_address import client_address
from common.context import (
    REQUEST_ID_HEADER,
    client_address_var,
    deadline_var,
    identity_var,
    request_id_var,
    sane_request_id,
)
from common.errors import DomainError
from common.grpc_errors import internal_status, to_grpc_status
from common.methods import policy_for
from common.metrics import count_refusal
from common.settings import Network
from common.telemetry import annotate_request
from common.tokens import AccessTokenVerifier

log = logging.getLogger("rpc")

NO_DEADLINE_SECONDS = 365 * 24 * 3600.0

Behavior = Callable[[Any, grpc.ServicerContext], Any]


class ServiceInterceptor(grpc.ServerInterceptor):
    """`trusted_peers`: on plaintext, the peers whose `x-client-address` is believed
    (the bridge); `mtls`: the server is on mTLS, where the caller's certificate decides
    instead (common/client_address)."""

    def __init__(
        self,
        verifier: AccessTokenVerifier,
        trusted_peers: Sequence[Network] = (),
        *,
        mtls: bool = False,
    ) -> None:
        self._verifier = verifier
        self._trusted_peers = trusted_peers
        self._mtls = mtls

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method: str = handler_call_details.method
        policy = policy_for(method)
        event = policy.audit_event if policy is not None else ""
        # Health and reflection lie outside our contracts and stay open to probes.
        needs_auth = policy is not None and not policy.public
        # Every kind of RPC passes through the same checks: a streaming request is
        # authenticated before its first message is read, a streaming answer before its
        # first message is sent.
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._wrap_unary(method, needs_auth, handler.unary_unary, event),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._wrap_stream(method, needs_auth, handler.unary_stream),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(
                self._wrap_unary(method, needs_auth, handler.stream_unary, event),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_stream is not None:
            return grpc.stream_stream_rpc_method_handler(
                self._wrap_stream(method, needs_auth, handler.stream_stream),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        # A handler of no known kind is never served unchecked.
        return grpc.unary_unary_rpc_method_handler(_refuse_unknown_kind)

    def _enter(self, needs_auth: bool, context: grpc.ServicerContext) -> None:
        metadata = {k: v for k, v in context.invocation_metadata() if isinstance(v, str)}
        request_id = sane_request_id(metadata.get(REQUEST_ID_HEADER))
        request_id_var.set(request_id)
        identity_var.set(None)
        audit.begin_call()
        client_address_var.set(client_address(context, self._trusted_peers, mtls=self._mtls))
        annotate_request(request_id)
        context.set_trailing_metadata(((REQUEST_ID_HEADER, request_id),))
        remaining = context.time_remaining()
        # A call without a deadline reports about 9.2e18 s remaining; that means none.
        has_deadline = remaining is not None and remaining < NO_DEADLINE_SECONDS
        deadline_var.set(time.monotonic() + remaining if has_deadline else None)
        identity_var.set(
            self._verifier.verify(parse_bearer(metadata.get("authorization")))
            if needs_auth
            else None
        )

    def _fail(self, context: grpc.ServicerContext, method: str, error: Exception) -> None:
        if isinstance(error, DomainError):
            status = to_grpc_status(error)
            count_refusal(method, error.reason)
            log.info(
                "rpc refused",
                extra={"method": method, "code": status.code.name, "reason": error.reason},
            )
        else:
            log.exception("rpc failed", extra={"method": method})
            status = internal_status(request_id_var.get())
        context.abort_with_status(status)

    def _wrap_unary(
        self, method: str, needs_auth: bool, behavior: Behavior, event: str = ""
    ) -> Behavior:
        # request is one message (unary) or an iterator of them (client streaming).
        def wrapped(request: Any, context: grpc.ServicerContext) -> Any:
            started = time.perf_counter()
            try:
                self._enter(needs_auth, context)
                response = behavior(request, context)
            except Exception as error:
                if event:
                    audit.record_call(event, method, request, None, reason=_reason(error))
                if _is_abort(error, context):
                    raise
                self._fail(context, method, error)
                raise  # unreachable: abort_with_status raises
            if event:
                audit.record_call(event, method, request, response)
            log.debug(
                "rpc ok",
                extra={"method": method, "ms": round((time.perf_counter() - started) * 1000, 2)},
            )
            return response

        return wrapped

    def _wrap_stream(self, method: str, needs_auth: bool, behavior: Behavior) -> Behavior:
        def wrapped(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            try:
                self._enter(needs_auth, context)
                yield from behavior(request, context)
            except Exception as error:
                if _is_abort(error, context):
                    raise
                self._fail(context, method, error)
                raise

        return wrapped


def _reason(error: Exception) -> str:
    if isinstance(error, DomainError):
        return error.reason
    return "INTERNAL"


def _refuse_unknown_kind(_request: Any, context: grpc.ServicerContext) -> None:
    context.abort(grpc.StatusCode.UNIMPLEMENTED, "unsupported kind of RPC")


def _is_abort(error: Exception, context: grpc.ServicerContext) -> bool:
    # context.abort() raises a bare Exception after setting the status; let it through.
    code = context.code() if hasattr(context, "code") else None
    return type(error) is Exception and code not in (None, grpc.StatusCode.OK)
