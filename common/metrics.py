"""Prometheus metrics every process exports, and the hooks that feed them.

Names follow Prometheus conventions: base units in the name (`_seconds`), counters end
in `_total`, gRPC families carry the `grpc_service`, `grpc_method`, `grpc_code` labels
of the widespread go-grpc-prometheus names. Every label takes values from a set the
code bounds (method names of our contracts, error reasons, store operations, Redis
commands), never from a request: no user ids, no raw paths.

Hooks: `ServerMetrics` (server interceptor), `ClientMetrics` and `aio_client_metrics`
(channel interceptors for grpc's sync and grpc.aio channels, added by the channel
factory; one pair of client families), `count_store_calls` (a botocore client, added by
`common.dynamo.make_client`), `count_redis_commands` (a redis-py client, added by
`common.redis_clients`), `count_refusal` (the service interceptor, on a DomainError).
`serve_metrics` starts the scrape endpoint of a gRPC service on its metrics port; the
bridge serves the same registry on its own `/metrics`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import grpc
import redis
from prometheus_client import REGISTRY, Counter, Gauge, Histogram, start_http_server

log = logging.getLogger(__name__)

# From a millisecond (a cache hit) to the 5 s default deadline and past it.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_GRPC = ("grpc_service", "grpc_method")

server_handled = Counter(
    "grpc_server_handled_total",
    "RPCs answered by this process, by service, method and status code.",
    [*_GRPC, "grpc_code"],
)
server_seconds = Histogram(
    "grpc_server_handling_seconds",
    "Time to answer an RPC (to the last message for streams).",
    _GRPC,
    buckets=LATENCY_BUCKETS,
)
server_in_flight = Gauge(
    "grpc_server_in_flight_requests", "RPCs being answered now (open streams too).", _GRPC
)
server_refusals = Counter(
    "grpc_server_refusals_total",
    "Calls refused by a rule (typed errors), by method and the ErrorInfo reason.",
    [*_GRPC, "reason"],
)
client_handled = Counter(
    "grpc_client_handled_total",
    "Calls this process made to other services, by target service, method and code.",
    [*_GRPC, "grpc_code"],
)
client_seconds = Histogram(
    "grpc_client_handling_seconds",
    "Time of a call to another service, as the caller saw it.",
    _GRPC,
    buckets=LATENCY_BUCKETS,
)
store_requests = Counter(
    "dynamodb_requests_total",
    "DynamoDB API calls by operation and outcome (ok, condition_failed, throttled, "
    "client_error, server_error, unavailable).",
    ["operation", "outcome"],
)
store_seconds = Histogram(
    "dynamodb_request_duration_seconds",
    "Time of a DynamoDB API call, retries included.",
    ["operation"],
    buckets=LATENCY_BUCKETS,
)
redis_commands = Counter(
    "redis_commands_total",
    "Redis commands by name and outcome (ok, timeout, unavailable, error); a pipeline "
    "counts once as PIPELINE.",
    ["command", "outcome"],
)
redis_seconds = Histogram(
    "redis_command_duration_seconds",
    "Time of a Redis command or pipeline.",
    ["command"],
    buckets=LATENCY_BUCKETS,
)


def metrics_enabled() -> bool:
    """False when METRICS_ENABLED=false: the plumbing hooks (RPC, outgoing call, store and
    Redis families) are not installed; the benchmark measures their cost that way. The
    handful of business counters still count."""
    return os.environ.get("METRICS_ENABLED", "true").strip().lower() != "false"


def split_method(full_method: str) -> tuple[str, str]:
    """'/trading.v1.OrderService/PlaceOrder' -> ('trading.v1.OrderService', 'PlaceOrder')."""
    service, _, method = full_method.lstrip("/").partition("/")
    return service, method


def count_refusal(full_method: str, reason: str) -> None:
    server_refusals.labels(*split_method(full_method), reason).inc()


def _ours(full_method: str) -> bool:
    # Health and reflection are probes, not traffic; unknown methods never reach here.
    return full_method.lstrip("/").startswith("trading.")


def _code_of(context: grpc.ServicerContext) -> str:
    code = context.code() if hasattr(context, "code") else None
    return "OK" if code is None else str(code.name)


@contextmanager
def _answering(labels: tuple[str, str], context: grpc.ServicerContext) -> Iterator[None]:
    """Counts one RPC: in flight while inside, then handled by code and its duration."""
    started = time.perf_counter()
    in_flight = server_in_flight.labels(*labels)
    in_flight.inc()
    code = "UNKNOWN"
    try:
        yield
        code = _code_of(context)
    except GeneratorExit:
        code = "CANCELLED"  # the client went away from a stream
        raise
    except BaseException:
        code = _code_of(context)
        code = "UNKNOWN" if code == "OK" else code
        raise
    finally:
        in_flight.dec()
        server_handled.labels(*labels, code).inc()
        server_seconds.labels(*labels).observe(time.perf_counter() - started)


class ServerMetrics(grpc.ServerInterceptor):
    """Handled, duration and in-flight per RPC of our contracts."""

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = continuation(handler_call_details)
        full_method: str = handler_call_details.method
        if handler is None or not _ours(full_method):
            return handler
        labels = split_method(full_method)
        if handler.unary_unary is not None:
            unary = handler.unary_unary

            def unary_behavior(request: Any, context: grpc.ServicerContext) -> Any:
                with _answering(labels, context):
                    return unary(request, context)

            return grpc.unary_unary_rpc_method_handler(
                unary_behavior,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            stream = handler.unary_stream

            def stream_behavior(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                with _answering(labels, context):
                    yield from stream(request, context)

            return grpc.unary_stream_rpc_method_handler(
                stream_behavior,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler


def _count_call(labels: tuple[str, str], code: grpc.StatusCode | None, started: float) -> None:
    name = "UNKNOWN" if code is None else str(code.name)
    client_handled.labels(*labels, name).inc()
    client_seconds.labels(*labels).observe(time.perf_counter() - started)


class ClientMetrics(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    """Handled and duration of every outgoing call, by target method and code."""

    def _observe(self, details: grpc.ClientCallDetails, call: Any) -> Any:
        full_method = str(details.method)
        if not _ours(full_method):
            return call
        labels = split_method(full_method)
        started = time.perf_counter()

        def done(finished: Any) -> None:
            _count_call(labels, finished.code(), started)

        call.add_done_callback(done)
        return call

    def intercept_unary_unary(
        self, continuation: Callable[..., Any], details: grpc.ClientCallDetails, request: Any
    ) -> Any:
        return self._observe(details, continuation(details, request))

    def intercept_unary_stream(
        self, continuation: Callable[..., Any], details: grpc.ClientCallDetails, request: Any
    ) -> Any:
        return self._observe(details, continuation(details, request))


def _method_of(details: grpc.aio.ClientCallDetails) -> str:
    method = details.method
    # grpc.aio hands interceptors the method as bytes (grpc/grpc#31092).
    return method.decode() if isinstance(method, bytes) else str(method)


class _AioUnaryMetrics(grpc.aio.UnaryUnaryClientInterceptor):
    """A unary call is counted when its answer (or error) is in."""

    async def intercept_unary_unary(
        self, continuation: Callable[..., Any], details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        full_method = _method_of(details)
        if not _ours(full_method):
            return await continuation(details, request)
        labels = split_method(full_method)
        started = time.perf_counter()
        try:
            call = await continuation(details, request)
        except asyncio.CancelledError:
            _count_call(labels, grpc.StatusCode.CANCELLED, started)
            raise
        _count_call(labels, await call.code(), started)
        return call


class _AioStreamMetrics(grpc.aio.UnaryStreamClientInterceptor):
    """A server stream is counted when it ends, by a task (its status is awaited)."""

    def __init__(self) -> None:
        self._counting: set[asyncio.Task[None]] = set()  # held until done

    async def intercept_unary_stream(
        self, continuation: Callable[..., Any], details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        full_method = _method_of(details)
        call = await continuation(details, request)
        if not _ours(full_method):
            return call
        labels = split_method(full_method)
        started = time.perf_counter()

        async def count(finished: Any) -> None:
            _count_call(labels, await finished.code(), started)

        def done(finished: Any) -> None:
            task = asyncio.get_running_loop().create_task(count(finished))
            self._counting.add(task)
            task.add_done_callback(self._counting.discard)

        call.add_done_callback(done)
        return call


def aio_client_metrics() -> list[grpc.aio.ClientInterceptor]:
    """`ClientMetrics` for grpc.aio channels: the same families and labels, one
    interceptor per kind of RPC (grpc.aio gives an interceptor one kind only)."""
    return [_AioUnaryMetrics(), _AioStreamMetrics()]


# DynamoDB ------------------------------------------------------------------------

_STARTED = "metrics_started"
_OPERATION = "metrics_operation"
_OUTCOME_BY_CODE = {
    "ConditionalCheckFailedException": "condition_failed",
    "TransactionCanceledException": "condition_failed",
    "ProvisionedThroughputExceededException": "throttled",
    "ThrottlingException": "throttled",
    "RequestLimitExceeded": "throttled",
}


def _store_outcome(http_status: int, parsed: dict[str, Any]) -> str:
    if http_status < 300:
        return "ok"
    code = str(parsed.get("Error", {}).get("Code", ""))
    if code in _OUTCOME_BY_CODE:
        return _OUTCOME_BY_CODE[code]
    return "server_error" if http_status >= 500 else "client_error"


def count_store_calls(client: Any) -> Any:
    """Count the calls of a boto3 DynamoDB client through botocore's events (a call
    is counted once, its retries inside it)."""
    if not metrics_enabled():
        return client

    def before(model: Any, context: dict[str, Any], **_: Any) -> None:
        context[_STARTED] = time.perf_counter()
        context[_OPERATION] = str(model.name)

    def observe(context: dict[str, Any], outcome: str) -> None:
        operation = context.get(_OPERATION)
        started = context.get(_STARTED)
        if operation is None or started is None:
            return
        store_requests.labels(operation, outcome).inc()
        store_seconds.labels(operation).observe(time.perf_counter() - started)

    def after(
        http_response: Any, parsed: dict[str, Any], context: dict[str, Any], **_: Any
    ) -> None:
        observe(context, _store_outcome(int(http_response.status_code), parsed))

    def failed(context: dict[str, Any], **_: Any) -> None:
        observe(context, "unavailable")  # no answer: connection refused, timed out

    events = client.meta.events
    events.register("before-call.dynamodb", before)
    events.register("after-call.dynamodb", after)
    events.register("after-call-error.dynamodb", failed)
    return client


# Redis ---------------------------------------------------------------------------

_R = TypeVar("_R")
_C = TypeVar("_C")


def _redis_outcome(error: BaseException | None) -> str:
    if error is None:
        return "ok"
    if isinstance(error, redis.TimeoutError):
        return "timeout"
    if isinstance(error, redis.ConnectionError | OSError):
        return "unavailable"
    return "error"


def _command_name(args: tuple[Any, ...]) -> str:
    name = args[0] if args else "?"
    text = name.decode() if isinstance(name, bytes) else str(name)
    # Commands come from our code, never from a request: a small set.
    return text.split(" ", 1)[0].upper()


def _timed(command: Callable[[tuple[Any, ...]], str], call: Callable[..., _R]) -> Callable[..., _R]:
    def wrapped(*args: Any, **options: Any) -> _R:
        name = command(args)
        started = time.perf_counter()
        error: BaseException | None = None
        try:
            return call(*args, **options)
        except BaseException as raised:
            error = raised
            raise
        finally:
            redis_commands.labels(name, _redis_outcome(error)).inc()
            redis_seconds.labels(name).observe(time.perf_counter() - started)

    return wrapped


def _timed_async(
    command: Callable[[tuple[Any, ...]], str], call: Callable[..., Awaitable[_R]]
) -> Callable[..., Awaitable[_R]]:
    async def wrapped(*args: Any, **options: Any) -> _R:
        name = command(args)
        started = time.perf_counter()
        error: BaseException | None = None
        try:
            return await call(*args, **options)
        except BaseException as raised:
            error = raised
            raise
        finally:
            redis_commands.labels(name, _redis_outcome(error)).inc()
            redis_seconds.labels(name).observe(time.perf_counter() - started)

    return wrapped


def _pipeline_name(_args: tuple[Any, ...]) -> str:
    return "PIPELINE"


def count_redis_commands(client: _C) -> _C:
    """Count the commands (and pipelines) of a redis-py client, sync or asyncio."""
    if not metrics_enabled():
        return client
    patched: Any = client
    timed: Callable[..., Any] = _timed_async if hasattr(patched, "aclose") else _timed
    patched.execute_command = timed(_command_name, patched.execute_command)
    open_pipeline = patched.pipeline

    def pipeline(*args: Any, **options: Any) -> Any:
        opened = open_pipeline(*args, **options)
        opened.execute = timed(_pipeline_name, opened.execute)
        return opened

    patched.pipeline = pipeline
    return client


def serve_metrics(host: str, port: int) -> int:
    """Serve this process's registry at http://host:port/metrics on a daemon thread;
    returns the bound port (0 picks one). A port of -1 serves nothing."""
    if port < 0:
        return -1
    server, _thread = start_http_server(port, addr=host, registry=REGISTRY)
    bound = int(server.server_port)
    log.info("metrics served", extra={"port": bound})
    return bound
