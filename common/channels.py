"""The one way a process (a service or the bridge) opens a channel to another.

Every outgoing call gets a deadline, the request id, the W3C trace context
(`traceparent`) and, when there is one, the caller's Authorization. The deadline of an
awaited answer is the least of: the default, what is left of the caller's own deadline
less a reserve (`RESERVE_FRACTION` of it, kept so the caller can still answer with its
own reason, e.g. QUOTES_UNAVAILABLE, before its caller gives up), and the dependency
budget (`DEPENDENCY_BUDGET_SECONDS`). The budget comes with the `CallPolicy` every
channel is made with, so no call site can leave it out. Retries live in the channel's
service config, and only for RPCs the contract marks retryable (reads and calls that
carry an idempotency key); in the mesh, Istio retries instead and `retries=False`
turns these off.

Two kinds of channel, one policy and one set of rules: `make_channel` (grpc's sync
channels, the services' threads) and `make_aio_channel` (grpc.aio, for a process that
calls from an event loop: the REST bridge). Both compute every call's deadline and
metadata with `Propagation.outgoing`, have the same options, retry and balancing
config and credentials, and the same tracing (a client span per unary call) and client
metrics.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import grpc

from common.context import REQUEST_ID_HEADER, identity_var, request_id_var, time_remaining
from common.methods import retryable_methods
from common.metrics import ClientMetrics, aio_client_metrics, metrics_enabled
from common.settings import CommonSettings
from common.telemetry import aio_client_tracing, trace_headers, traced_channel
from common.tls import WireTls, callee_of, server_name, wire_tls

# Part of the caller's remaining time an outgoing call leaves unused: a callee that
# spent its own dependency's budget still answers (with its reason) before its caller
# cuts it off. A fraction, so it scales from a 5 s client deadline down to a 1.5 s budget.
RESERVE_FRACTION = 0.2


@dataclass(frozen=True)
class CallPolicy:
    """How the calls of one channel are bounded (seconds): `default_deadline` when the
    caller has no deadline of its own, `budget` at most for an awaited answer (a
    server stream lives for the timeout its caller gives), gRPC `retries` on or off,
    and mTLS material."""

    default_deadline: float
    budget: float
    retries: bool = True
    tls: WireTls | None = None

    @classmethod
    def of(cls, settings: CommonSettings, *, default_deadline: float | None = None) -> CallPolicy:
        """The policy of every channel of a process, from its settings
        (DEFAULT_DEADLINE_SECONDS, DEPENDENCY_BUDGET_SECONDS, GRPC_CLIENT_RETRIES, TLS_*)."""
        return cls(
            default_deadline=default_deadline or settings.default_deadline_seconds,
            budget=settings.dependency_budget_seconds,
            retries=settings.grpc_client_retries,
            tls=wire_tls(settings),
        )


class _CallDetails(NamedTuple):
    method: str
    timeout: float | None
    metadata: Sequence[tuple[str, str | bytes]] | None
    credentials: grpc.CallCredentials | None
    wait_for_ready: bool | None
    compression: grpc.Compression | None


def _retry_config(services: Sequence[str]) -> dict[str, Any]:
    names = [
        {"service": service, "method": method}
        for service in services
        for method in retryable_methods(service)
    ]
    return {
        "methodConfig": [
            {
                "name": names,
                "retryPolicy": {
                    "maxAttempts": 3,
                    "initialBackoff": "0.05s",
                    "maxBackoff": "0.5s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ]
    }


def channel_target(address: str) -> tuple[str, bool]:
    """The gRPC target of `address`, and whether it names several processes.

    `host:port` is used as it is; `ip:port,ip:port,...` (IPv4 literals: several
    processes of one service, as `./dev up` runs svc_order) becomes gRPC's `ipv4:`
    target, whose calls the channel spreads round robin over the processes that answer.
    """
    parts = [part.strip() for part in address.split(",") if part.strip()]
    if len(parts) <= 1:
        return address, False
    return "ipv4:" + ",".join(parts), True


Metadata = list[tuple[str, str | bytes]]


class Propagation:
    """What every outgoing call carries, by the rules of the module docs: its deadline
    (the default, the caller's remaining time less the reserve, the budget) and its
    metadata (request id, W3C trace context, the caller's Authorization). One
    computation for the sync and the grpc.aio interceptors."""

    def __init__(self, default_deadline: float, budget: float) -> None:
        self._default_deadline = default_deadline
        self._budget = budget

    def outgoing(
        self,
        timeout: float | None,
        metadata: Iterable[Any] | None,
        *,
        budgeted: bool,
    ) -> tuple[float, Metadata]:
        """(timeout in seconds, metadata) of a call given the caller's `timeout` (None:
        none given) and `metadata`; `budgeted` for an awaited answer, not for a server
        stream. What the caller set itself is kept. `metadata`: (key, value) pairs (a
        sequence, or grpc.aio's Metadata)."""
        outgoing: Metadata = list(metadata or ())
        keys = {key for key, _ in outgoing}
        request_id = request_id_var.get()
        if request_id and REQUEST_ID_HEADER not in keys:
            outgoing.append((REQUEST_ID_HEADER, request_id))
        # Usually set already by the tracing interceptor's client span; server
        # streams have none, so their trace is carried here.
        outgoing.extend((k, v) for k, v in trace_headers().items() if k not in keys)
        identity = identity_var.get()
        if identity is not None and "authorization" not in keys:
            outgoing.append(("authorization", f"Bearer {identity.raw_token}"))
        if timeout is None:
            # What is left of the caller's time less its reserve, but never more than
            # the default: no inner call should outlast it, and a huge value overflows
            # gRPC's timer.
            remaining = time_remaining()
            timeout = self._default_deadline
            if remaining is not None:
                kept = remaining * (1 - RESERVE_FRACTION) if budgeted else remaining
                timeout = max(min(kept, self._default_deadline), 0.001)
        if budgeted:
            # The dependency's own budget inside the caller's deadline: a hung service
            # costs this much, and the caller still has time to answer 503 itself. A
            # server stream is not an answer awaited but a feed whose lifetime the
            # caller chose (its timeout), so the budget does not cut it.
            timeout = min(timeout, self._budget)
        return timeout, outgoing


class _PropagatingInterceptor(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
):
    def __init__(self, propagation: Propagation) -> None:
        self._propagation = propagation

    def _details(self, details: grpc.ClientCallDetails, *, budgeted: bool) -> _CallDetails:
        timeout, metadata = self._propagation.outgoing(
            details.timeout, details.metadata, budgeted=budgeted
        )
        return _CallDetails(
            details.method,
            timeout,
            metadata,
            details.credentials,
            getattr(details, "wait_for_ready", None),
            getattr(details, "compression", None),
        )

    def intercept_unary_unary(
        self, continuation: Callable[..., Any], details: grpc.ClientCallDetails, request: Any
    ) -> Any:
        return continuation(self._details(details, budgeted=True), request)

    def intercept_unary_stream(
        self, continuation: Callable[..., Any], details: grpc.ClientCallDetails, request: Any
    ) -> Any:
        return continuation(self._details(details, budgeted=False), request)


class _AioPropagation:
    """The sync interceptor's rules on grpc.aio (which takes one interceptor per kind of
    RPC: an object of two kinds would serve only the first)."""

    def __init__(self, propagation: Propagation) -> None:
        self._propagation = propagation

    def _details(
        self, details: grpc.aio.ClientCallDetails, *, budgeted: bool
    ) -> grpc.aio.ClientCallDetails:
        timeout, metadata = self._propagation.outgoing(
            details.timeout, details.metadata, budgeted=budgeted
        )
        return grpc.aio.ClientCallDetails(
            details.method,
            timeout,
            grpc.aio.Metadata(*metadata),
            details.credentials,
            details.wait_for_ready,
        )


class _AioUnaryPropagation(_AioPropagation, grpc.aio.UnaryUnaryClientInterceptor):
    """Innermost of a channel's unary interceptors, it holds the RPC itself: the call
    is awaited here, so cancelling the caller's task (an HTTP request's) lands on this
    await and cancels the RPC. Outer interceptors await only the call's status (the
    tracing one does), which alone would leave the RPC running to its deadline."""

    async def intercept_unary_unary(
        self, continuation: Callable[..., Any], details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        call = await continuation(self._details(details, budgeted=True), request)
        try:
            await call
        except asyncio.CancelledError:
            call.cancel()
            raise
        except grpc.RpcError:
            pass  # whoever awaits the call gets its error
        return call


class _AioStreamPropagation(_AioPropagation, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(
        self, continuation: Callable[..., Any], details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        return await continuation(self._details(details, budgeted=False), request)


def _channel_options(
    target: str, services: Sequence[str], policy: CallPolicy
) -> tuple[str, list[tuple[str, Any]]]:
    """The gRPC target and the options of a channel to `target` serving `services`:
    keepalive and reconnect back-off, the retry service config, round robin over
    several addresses, and the server name mTLS checks."""
    options: list[tuple[str, Any]] = [
        ("grpc.enable_retries", 1 if policy.retries else 0),
        ("grpc.keepalive_time_ms", 30_000),
        # A dependency that comes back (a restart) is reached again within a second;
        # gRPC's default reconnect back-off grows to two minutes.
        ("grpc.initial_reconnect_backoff_ms", 200),
        ("grpc.max_reconnect_backoff_ms", 1_000),
    ]
    target, several = channel_target(target)
    config: dict[str, Any] = _retry_config(services) if policy.retries else {}
    if several:
        # Per call, not per connection: each process gets its share of one client's load,
        # and a process that is down (connection refused) is skipped until it is back.
        config["loadBalancingConfig"] = [{"round_robin": {}}]
    if config:
        options.append(("grpc.service_config", json.dumps(config)))
    if policy.tls is not None:
        # The server must prove it is the process that serves these services.
        callee = callee_of(services)
        if callee is not None:
            options.append(("grpc.ssl_target_name_override", server_name(callee)))
    return target, options


def make_channel(target: str, *, services: Sequence[str], policy: CallPolicy) -> grpc.Channel:
    """A channel to `target` serving `services`, whose calls are bounded by `policy`
    (see the module docs). gRPC's retries all happen inside that one deadline, so they
    never outlive it; a status the server chose (it carries `grpc-retry-pushback-ms: -1`,
    see common/grpc_errors.py) is not retried."""
    target, options = _channel_options(target, services, policy)
    if policy.tls is None:
        channel = grpc.insecure_channel(target, options=options)
    else:
        channel = grpc.secure_channel(target, policy.tls.channel_credentials(), options=options)
    # Tracing outermost: its client span covers the retries and carries `traceparent`.
    return traced_channel(
        grpc.intercept_channel(
            channel,
            _PropagatingInterceptor(Propagation(policy.default_deadline, policy.budget)),
            *([ClientMetrics()] if metrics_enabled() else []),
        )
    )


def make_aio_channel(
    target: str, *, services: Sequence[str], policy: CallPolicy
) -> grpc.aio.Channel:
    """`make_channel` on grpc.aio: the same options, retries, balancing, credentials,
    deadlines, metadata, tracing and metrics. grpc.aio binds a channel to the event loop
    running when it is made, so make it on the loop that will call through it (and
    close it there: `await channel.close()`)."""
    target, options = _channel_options(target, services, policy)
    # Tracing outermost (its client span covers the retries and carries `traceparent`),
    # the propagation innermost (it holds the RPC: see _AioUnaryPropagation).
    # grpc.aio keeps the order within each kind of RPC (unary, server stream).
    propagation = Propagation(policy.default_deadline, policy.budget)
    interceptors: list[grpc.aio.ClientInterceptor] = [
        *aio_client_tracing(),
        *(aio_client_metrics() if metrics_enabled() else []),
        _AioUnaryPropagation(propagation),
        _AioStreamPropagation(propagation),
    ]
    if policy.tls is None:
        return grpc.aio.insecure_channel(target, options=options, interceptors=interceptors)
    return grpc.aio.secure_channel(
        target, policy.tls.channel_credentials(), options=options, interceptors=interceptors
    )
