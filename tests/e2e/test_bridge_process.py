"""The bridge as it runs in production, `python -m rest_bridge` (its own process, its
event loop, tracing on), calling over grpc.aio: this session's svc_user and svc_order,
and a scripted svc_inventory that records what each call brings.

Checked from outside, as an operator would: open streams add no thread to the bridge's
process; the request id and the trace context reach the service for unary calls and
streams, under the bridge's own spans; a hung service costs its budget, 503, while the
client's own short timeout is still 504.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
import psutil
import pytest

from devstack.engines import free_port, wait_for_port
from rest_bridge.config import BridgeSettings
from tests.e2e.conftest import Stack, wait_until
from tests.support import Pki

ROOT = Path(__file__).resolve().parents[2]
INVENTORY = "trading.v1.InventoryService"
BUDGET_SECONDS = 0.5
STREAMS = 6


@dataclass
class Inventory:
    """ListAssets answers an empty page, or hangs when the request id starts with
    `hang-`; StreamPrices sends an empty message every 0.2 s while the caller stays
    (the first after 1 s when the request id starts with `slow-`).
    The metadata of every call is kept by its request id."""

    seen: dict[str, dict[str, str]] = field(default_factory=dict)
    release: threading.Event = field(default_factory=threading.Event)

    def _record(self, context: grpc.ServicerContext) -> str:
        metadata = {key: str(value) for key, value in context.invocation_metadata()}
        request_id = metadata.get("x-request-id", "")
        self.seen[request_id] = metadata
        return request_id

    def list_assets(self, _request: bytes, context: grpc.ServicerContext) -> bytes:
        if self._record(context).startswith("hang-"):
            self.release.wait(10)
        return b""

    def stream_prices(self, _request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
        if self._record(context).startswith("slow-"):
            time.sleep(1.0)  # the first message comes after the client's own timeout
        for _ in range(600):
            if not context.is_active() or self.release.is_set():
                return
            yield b""
            time.sleep(0.2)


def _credentials(pki: Pki) -> grpc.ServerCredentials | None:
    if pki is None:
        return None
    own = pki["svc_inventory"]
    return grpc.ssl_server_credentials(
        [(own.key_file.read_bytes(), own.cert_file.read_bytes())],
        root_certificates=own.ca_file.read_bytes(),
        require_client_auth=True,
    )


@pytest.fixture(scope="module")
def inventory(stack: Stack) -> Iterator[tuple[Inventory, int]]:
    fake = Inventory()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=STREAMS + 8))
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {
        "ListAssets": grpc.unary_unary_rpc_method_handler(fake.list_assets),
        "StreamPrices": grpc.unary_stream_rpc_method_handler(fake.stream_prices),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(INVENTORY, handlers),))
    credentials = _credentials(stack.pki)
    if credentials is None:
        port = server.add_insecure_port("127.0.0.1:0")
    else:
        port = server.add_secure_port("127.0.0.1:0", credentials)
    server.start()
    yield fake, port
    fake.release.set()
    server.stop(0).wait()


def _environment(settings: BridgeSettings, traces: Path) -> dict[str, str]:
    names = (
        "redis_url",
        "user_service_addr",
        "inventory_service_addr",
        "order_service_addr",
        "rate_limit_key_prefix",
        "rate_limit_ip_per_second",
        "rate_limit_ip_burst",
        "tls_ca_file",
        "tls_cert_file",
        "tls_key_file",
    )
    values = settings.model_dump()
    environment = {
        **os.environ,
        **{name.upper(): str(values[name]) for name in names if values.get(name) is not None},
        "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'generated'}",
        "BRIDGE_PORT": str(settings.bridge_port),
        "DEPENDENCY_BUDGET_SECONDS": str(BUDGET_SECONDS),
        "BRIDGE_MAX_STREAMS": str(STREAMS + 2),
        "BRIDGE_MAX_STREAMS_PER_CLIENT": str(STREAMS + 2),
        "TRACES_FILE": str(traces),
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "LOG_LEVEL": "WARNING",
    }
    environment.pop("OTEL_SDK_DISABLED", None)
    return environment


@dataclass
class Process:
    url: str
    process: subprocess.Popen[bytes]
    traces: Path

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)

    def threads(self) -> int:
        return int(psutil.Process(self.process.pid).num_threads())

    def spans(self) -> list[dict[str, Any]]:
        if not self.traces.exists():
            return []
        lines = self.traces.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]


@pytest.fixture(scope="module")
def bridge_process(
    bridge_settings: Callable[..., BridgeSettings],
    inventory: tuple[Inventory, int],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Process]:
    folder = tmp_path_factory.mktemp("bridge-process")
    settings = bridge_settings(
        inventory_service_addr=f"127.0.0.1:{inventory[1]}", bridge_port=free_port()
    )
    with (folder / "bridge.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "rest_bridge"],
            cwd=ROOT,
            env=_environment(settings, folder / "spans.jsonl"),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(settings.bridge_port, process, timeout=60)
        yield Process(f"http://127.0.0.1:{settings.bridge_port}", process, folder / "spans.jsonl")
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _first_event(lines: Iterator[str]) -> str:
    for line in lines:
        if line.startswith("event: "):
            return line.removeprefix("event: ")
    raise AssertionError("the stream ended before its first event")


def _open_stream(streams: ExitStack, client: httpx.Client, request_id: str) -> Iterator[str]:
    """A price stream open until `streams` closes, its first event read. Keep the lines
    it returns: dropping them closes the connection."""
    response = streams.enter_context(
        client.stream("GET", "/api/v1/stream/prices", headers={"X-Request-ID": request_id})
    )
    assert response.status_code == 200
    lines = response.iter_lines()
    assert _first_event(lines) == "price"
    return lines


def test_open_streams_hold_no_thread_of_the_bridge(bridge_process: Process) -> None:
    with bridge_process.client() as client, ExitStack() as streams:
        # The first stream and call start what the process starts once (gRPC's own
        # threads); the streams after it are what is counted.
        assert client.get("/api/v1/inventory/assets").status_code == 200
        held = [_open_stream(streams, client, "threads-0")]
        time.sleep(0.5)
        before = bridge_process.threads()
        for number in range(1, STREAMS + 1):
            held.append(_open_stream(streams, client, f"threads-{number}"))
        time.sleep(0.5)
        during = bridge_process.threads()
        # Every stream is still open and sending.
        assert all(_first_event(lines) == "price" for lines in held)
    # One thread per stream would be STREAMS more; gRPC may add one of its own.
    assert during - before <= 1, (before, during)


def _traceparent(fake: Inventory, request_id: str) -> tuple[str, str]:
    """(trace id, parent span id) the service got with the call of `request_id`."""
    version, trace_id, parent_id, _flags = fake.seen[request_id]["traceparent"].split("-")
    assert version == "00"
    return trace_id, parent_id


def _span_ids(span: dict[str, Any]) -> tuple[str, str]:
    context = span["context"]
    return context["trace_id"].removeprefix("0x"), context["span_id"].removeprefix("0x")


def test_the_request_id_and_trace_reach_the_service_over_aio(
    bridge_process: Process, inventory: tuple[Inventory, int]
) -> None:
    fake, _ = inventory
    with bridge_process.client() as client:
        answer = client.get("/api/v1/inventory/assets", headers={"X-Request-ID": "aio-unary-1"})
        assert answer.status_code == 200
        with ExitStack() as streams:
            assert _first_event(_open_stream(streams, client, "aio-stream-1")) == "price"
    unary_trace, unary_parent = _traceparent(fake, "aio-unary-1")
    stream_trace, _ = _traceparent(fake, "aio-stream-1")
    assert unary_trace != stream_trace  # a trace per request

    def spans_of(request_id: str) -> list[dict[str, Any]]:
        spans = bridge_process.spans()
        return [s for s in spans if s["attributes"].get("request.id") == request_id]

    wait_until(lambda: len(spans_of("aio-unary-1")) >= 2, "the unary request's spans", 10)
    # The unary call's client span is the parent the service was given.
    client_span = next(
        s for s in spans_of("aio-unary-1") if s["name"] == f"/{INVENTORY}/ListAssets"
    )
    assert _span_ids(client_span) == (unary_trace, unary_parent)
    assert client_span["kind"] == "SpanKind.CLIENT"
    # A stream has no client span; its call carries the HTTP request's trace.
    wait_until(lambda: bool(spans_of("aio-stream-1")), "the stream request's span", 10)
    assert {_span_ids(s)[0] for s in spans_of("aio-stream-1")} == {stream_trace}


def test_a_hung_service_costs_its_budget_not_the_clients_time(bridge_process: Process) -> None:
    with bridge_process.client() as client:
        started = time.monotonic()
        hung = client.get(
            "/api/v1/inventory/assets",
            headers={"X-Request-ID": "hang-1", "X-Request-Timeout": "20"},
        )
        waited = time.monotonic() - started
        assert hung.status_code == 503
        assert hung.json()["code"] == "UNAVAILABLE"
        assert hung.headers["Retry-After"]
        assert waited < 10  # the 0.5 s budget, with room for a busy machine
        # The client's own deadline, shorter than the budget, is the client's: 504.
        own = client.get(
            "/api/v1/inventory/assets",
            headers={"X-Request-ID": "hang-2", "X-Request-Timeout": "0.2"},
        )
        assert own.status_code == 504


def test_a_stream_slower_than_the_clients_timeout_still_streams(bridge_process: Process) -> None:
    # The first message is awaited for the client's X-Request-Timeout when that is
    # shorter than the budget; then the stream goes on and that message comes first.
    with bridge_process.client() as client, ExitStack() as streams:
        response = streams.enter_context(
            client.stream(
                "GET",
                "/api/v1/stream/prices",
                headers={"X-Request-ID": "slow-1", "X-Request-Timeout": "0.2"},
            )
        )
        assert response.status_code == 200
        lines = response.iter_lines()
        assert [_first_event(lines) for _ in range(3)] == ["price"] * 3
