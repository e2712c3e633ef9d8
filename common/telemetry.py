"""Tracing with OpenTelemetry: one trace per request, across every process.

`configure_tracing(service)` is called once by each composition root. It installs the
SDK's tracer provider and instruments what the process calls (DynamoDB through
botocore, Redis); the gRPC server interceptor (`server_tracing`) and the client
interceptor the channel factory adds (`traced_channel`) carry W3C `traceparent` on
every hop, and the bridge adds the ASGI span (`trace_http_app`).

Where spans go, by the standard OpenTelemetry variables first:
- `OTEL_SDK_DISABLED=true`: nowhere, and no span is made (the bench's "off").
- `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`): OTLP, over
  `OTEL_EXPORTER_OTLP_PROTOCOL` (`http/protobuf`, the default, or `grpc`).
- else `TRACES_FILE` (`./dev up` sets it under its data folder): one JSON object per
  span per line, which `./dev trace REQUEST_ID` reads.
- else spans are made (log lines carry their ids) but not exported.
Sampling is the SDK's: `OTEL_TRACES_SAMPLER` (default `parentbased_always_on`) and
`OTEL_TRACES_SAMPLER_ARG`, e.g. `parentbased_traceidratio` and `0.1`.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, cast

import grpc
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.instrumentation.botocore import BotocoreInstrumentor
from opentelemetry.instrumentation.grpc import (
    aio_client_interceptors,
    client_interceptor,
    filters,
    server_interceptor,
)
from opentelemetry.instrumentation.grpc.grpcext import intercept_channel
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
)

from common.context import request_id_var
from common.private_files import private_folder

log = logging.getLogger(__name__)

# The attribute that names the request (the X-Request-ID / x-request-id value).
REQUEST_ID_ATTRIBUTE = "request.id"
TRACES_FILE_VARIABLE = "TRACES_FILE"

_lock = threading.Lock()
_provider: TracerProvider | None = None


def tracing_disabled() -> bool:
    return os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


class _RequestIdStamp(SpanProcessor):
    """Every span started inside a request carries its id (the spans of DynamoDB,
    Redis and outgoing calls too), so a request's spans are found by that id alone."""

    def on_start(
        self,
        span: Span,
        parent_context: otel_context.Context | None = None,  # noqa: ARG002
    ) -> None:
        request_id = request_id_var.get()
        if request_id:
            span.set_attribute(REQUEST_ID_ATTRIBUTE, request_id)


def _one_line(span: ReadableSpan) -> str:
    return str(span.to_json(indent=None)) + "\n"


class _BatchAppender:
    """The text sink of the spans file: what `ConsoleSpanExporter` writes of one batch
    is kept until its `flush` (once per batch) and appended in one write(2) on an
    O_APPEND descriptor. One system call per batch instead of one per span (issue
    #13), and since each write lands whole at the end of the file, the lines of
    processes sharing it never interleave."""

    def __init__(self, path: Path) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        self._parts: list[str] = []

    def write(self, text: str) -> int:
        self._parts.append(text)
        return len(text)

    def flush(self) -> None:
        data = "".join(self._parts).encode()
        self._parts.clear()
        while data:
            data = data[os.write(self._fd, data) :]


class _SpanResource(Resource):
    """The process's resource, whose JSON `ReadableSpan.to_json` asks for with every span
    (indented, so by json's pure-Python encoder, then parsed back): a resource never
    changes, so its JSON is made once (issue #13)."""

    def __init__(self, resource: Resource) -> None:
        super().__init__(resource.attributes, resource.schema_url)
        self._json: dict[int | None, str] = {}

    def to_json(self, indent: int | None = 4) -> str:
        if indent not in self._json:
            self._json[indent] = super().to_json(indent)
        return self._json[indent]


def process_resource(service_name: str) -> Resource:
    """The resource of this process's spans (`service.name` and the SDK's defaults, and
    `OTEL_RESOURCE_ATTRIBUTES`), its JSON made once."""
    return _SpanResource(Resource.create({"service.name": service_name}))


def file_exporter(path: Path) -> SpanExporter:
    """Spans as JSON lines appended to `path` (each line one `ReadableSpan.to_json`),
    each exported batch in one write, so processes can share the file."""
    private_folder(path.parent)  # a folder made for spans is the owner's alone
    out = cast(IO[str], _BatchAppender(path))
    return ConsoleSpanExporter(out=out, formatter=_one_line)


def _otlp_exporter() -> SpanExporter | None:
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    if not endpoint:
        return None
    protocol = os.environ.get(
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
    )
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter as GrpcExporter,
        )

        return GrpcExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter as HttpExporter,
    )

    return HttpExporter()


def configure_tracing(
    service_name: str, *, traces_file: Path | None = None
) -> TracerProvider | None:
    """Install this process's tracer provider (once; later calls return the first).

    `traces_file` overrides `TRACES_FILE`; OTLP wins over both. Returns None when the
    SDK is disabled. The exporter runs on a background thread (BatchSpanProcessor)."""
    global _provider
    if tracing_disabled():
        return None
    with _lock:
        if _provider is not None:
            return _provider
        provider = TracerProvider(resource=process_resource(service_name))
        provider.add_span_processor(_RequestIdStamp())
        exporter = _otlp_exporter()
        if exporter is None:
            file_name = traces_file or os.environ.get(TRACES_FILE_VARIABLE)
            if file_name:
                exporter = file_exporter(Path(file_name))
        if exporter is not None:
            provider.add_span_processor(BatchSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        BotocoreInstrumentor().instrument(tracer_provider=provider)  # type: ignore[no-untyped-call]
        RedisInstrumentor().instrument(tracer_provider=provider)
        _provider = provider
        log.info("tracing on", extra={"exporter": type(exporter).__name__ if exporter else None})
        return provider


def annotate_request(request_id: str) -> None:
    """Name the request on the current span (the HTTP or gRPC server span, which
    starts before the request id is known)."""
    trace.get_current_span().set_attribute(REQUEST_ID_ATTRIBUTE, request_id)


def trace_headers() -> dict[str, str]:
    """The W3C trace context of the current span as gRPC metadata (`traceparent`,
    `tracestate`), by the globally configured propagator."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def current_ids() -> tuple[str, str] | None:
    """(trace_id, span_id) in hex of the current span, if there is one."""
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return None
    return format(span_context.trace_id, "032x"), format(span_context.span_id, "016x")


@contextmanager
def untraced() -> Iterator[None]:
    """No spans inside: background work (the price ticker) is not a request."""
    with suppress_instrumentation():
        yield


# Probes and reflection are not requests of ours: no spans for them.
_NOT_PROBES = filters.negate(
    filters.any_of(filters.health_check(), filters.service_prefix("grpc.reflection"))
)


def server_tracing() -> grpc.ServerInterceptor:
    """The gRPC server interceptor that continues the caller's trace (outermost)."""
    interceptor: grpc.ServerInterceptor = server_interceptor(filter_=_NOT_PROBES)  # type: ignore[no-untyped-call]
    return interceptor


def _unary(client_info: Any) -> bool:
    return not getattr(client_info, "is_server_stream", False)


def traced_channel(channel: grpc.Channel) -> grpc.Channel:
    """`channel` with a client span per unary call. Server streams get no client span:
    the instrumentation hands back a plain generator, which would take `cancel()` from
    the caller; `trace_headers` still carries their trace to the server."""
    untyped_client = client_interceptor(  # type: ignore[no-untyped-call]
        filter_=filters.all_of(_NOT_PROBES, _unary)
    )
    traced: grpc.Channel = intercept_channel(channel, untyped_client)  # type: ignore[no-untyped-call]
    return traced


def aio_client_tracing() -> list[grpc.aio.ClientInterceptor]:
    """`traced_channel` for grpc.aio channels (OpenTelemetry's aio client interceptor,
    to be the outermost): a client span per unary call, probes left out. Only the
    unary-unary one: server streams get no client span, as on the sync channels (their
    trace travels in `trace_headers`)."""
    interceptors: list[Any] = aio_client_interceptors(filter_=_NOT_PROBES)  # type: ignore[no-untyped-call]
    return [i for i in interceptors if isinstance(i, grpc.aio.UnaryUnaryClientInterceptor)]


def trace_http_app(app: Any) -> None:
    """The FastAPI app with one server span per HTTP request (outermost layer); the
    probes and metrics pages are left out, and so are per-message send/receive spans."""
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(
        app, excluded_urls="/health,/metrics", exclude_spans=["receive", "send"]
    )
