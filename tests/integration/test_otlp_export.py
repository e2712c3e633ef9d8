"""Spans reach an OTLP collector (README, "Observe it"): a process started with
`OTEL_EXPORTER_OTLP_ENDPOINT` sends its spans there, over http/protobuf (the default)
and over grpc (`OTEL_EXPORTER_OTLP_PROTOCOL=grpc`), and writes no spans file. The
collector here is a real receiver of each protocol on a loopback port; the process
is a real one, as a service is (tracing is configured once per process)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from devstack.engines import ROOT

Received = list[tuple[str, trace_service_pb2.ExportTraceServiceRequest]]

# One traced process: a span inside a request id; the provider exports what is
# buffered when the process exits, as a service's does.
TRACED_PROCESS = """
from opentelemetry import trace
from common.context import request_id_var
from common.telemetry import configure_tracing

provider = configure_tracing("otlp-check")
assert provider is not None
# Configured once per process: a later call gets the same provider.
assert configure_tracing("another-name") is provider
request_id_var.set("req-otlp-1")
with trace.get_tracer("otlp-check").start_as_current_span("PlaceOrder"):
    pass
"""


@pytest.fixture
def http_collector() -> Iterator[tuple[str, Received]]:
    received: Received = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            request = trace_service_pb2.ExportTraceServiceRequest.FromString(body)
            received.append((self.path, request))
            answer = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *_: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    server.server_close()


@pytest.fixture
def grpc_collector() -> Iterator[tuple[str, Received]]:
    received: Received = []

    class Collector(trace_service_pb2_grpc.TraceServiceServicer):
        def Export(  # noqa: N802 (the collector's RPC name)
            self, request: trace_service_pb2.ExportTraceServiceRequest, context: object
        ) -> trace_service_pb2.ExportTraceServiceResponse:
            received.append(("Export", request))
            return trace_service_pb2.ExportTraceServiceResponse()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Collector(), server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"http://127.0.0.1:{port}", received
    server.stop(0)


def run_traced_process(endpoint: str, protocol: str, traces_file: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_") and k != "TRACES_FILE"}
    env.update(
        PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "generated")]),
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL=protocol,
        TRACES_FILE=str(traces_file),
    )
    done = subprocess.run(
        [sys.executable, "-c", TRACED_PROCESS],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def spans_of(received: Received) -> list[tuple[str, str, dict[str, str]]]:
    """(service.name, span name, string attributes) of every span received."""
    spans = []
    for _, request in received:
        for resource_spans in request.resource_spans:
            resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    attributes = {a.key: a.value.string_value for a in span.attributes}
                    spans.append((resource["service.name"], span.name, attributes))
    return spans


def test_spans_go_to_an_otlp_collector_over_http_protobuf_by_default(
    http_collector: tuple[str, Received], tmp_path: Path
) -> None:
    endpoint, received = http_collector
    run_traced_process(endpoint, "http/protobuf", tmp_path / "spans.jsonl")
    assert {path for path, _ in received} == {"/v1/traces"}
    assert spans_of(received) == [("otlp-check", "PlaceOrder", {"request.id": "req-otlp-1"})]
    # OTLP wins over the spans file.
    assert not (tmp_path / "spans.jsonl").exists()


def test_spans_go_to_an_otlp_collector_over_grpc_when_asked(
    grpc_collector: tuple[str, Received], tmp_path: Path
) -> None:
    endpoint, received = grpc_collector
    run_traced_process(endpoint, "grpc", tmp_path / "spans.jsonl")
    assert spans_of(received) == [("otlp-check", "PlaceOrder", {"request.id": "req-otlp-1"})]
    assert not (tmp_path / "spans.jsonl").exists()
