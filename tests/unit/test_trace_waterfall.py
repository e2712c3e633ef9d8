"""`./dev trace` (devstack/trace.py) on spans written the way the processes write them
(common.telemetry.file_exporter, one `ReadableSpan.to_json` a line): which file it
reads, which trace a request id names, the waterfall's tree and outcomes, lines cut
by a crash, and what it says when there is nothing to show."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from common.telemetry import REQUEST_ID_ATTRIBUTE, file_exporter
from devstack import trace
from devstack.engines import ROOT


def tracer_of(service: str, path: Path) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(file_exporter(path)))
    return provider


@pytest.fixture
def spans(tmp_path: Path) -> Path:
    """Two requests: `req-1` (bridge -> svc_order -> a failed store call), then
    `req-2`, a 404."""
    path = tmp_path / "traces" / "spans.jsonl"
    bridge = tracer_of("rest_bridge", path).get_tracer("bridge")
    orders = tracer_of("svc_order", path).get_tracer("orders")
    with bridge.start_as_current_span("POST /api/v1/orders", kind=SpanKind.SERVER) as http:
        http.set_attribute(REQUEST_ID_ATTRIBUTE, "req-1")
        http.set_attribute("http.response.status_code", 201)
        with orders.start_as_current_span("PlaceOrder", kind=SpanKind.SERVER) as rpc:
            rpc.set_attribute("rpc.grpc.status_code", 99)
            with orders.start_as_current_span("DynamoDB.UpdateItem") as store:
                store.set_status(Status(StatusCode.ERROR, "ConditionalCheckFailed"))
    with bridge.start_as_current_span("GET /api/v1/orders/x") as missing:
        missing.set_attribute(REQUEST_ID_ATTRIBUTE, "req-2")
        missing.set_attribute("http.status_code", 404)
    return path


def test_the_spans_file_is_traces_file_else_the_one_under_the_data_folder(tmp_path: Path) -> None:
    assert trace.spans_file({"TRACES_FILE": "/srv/spans.jsonl"}) == Path("/srv/spans.jsonl")
    assert trace.spans_file({"DATA_DIR": str(tmp_path)}) == tmp_path / "traces" / "spans.jsonl"
    assert trace.spans_file({}) == (ROOT / ".data").resolve() / "traces" / "spans.jsonl"


def test_the_printed_command_names_what_the_next_shell_needs(tmp_path: Path) -> None:
    data = tmp_path / "my data"
    default = trace.default_traces_file(data)
    assert trace.trace_command(data, default) == f"DATA_DIR='{data}' ./dev trace REQUEST_ID"
    elsewhere = tmp_path / "spans.jsonl"
    assert trace.trace_command(data, elsewhere) == f"TRACES_FILE={elsewhere} ./dev trace REQUEST_ID"


def test_a_spans_file_past_its_limit_is_kept_once_as_the_previous_one(tmp_path: Path) -> None:
    path = tmp_path / "spans.jsonl"
    trace.rotate(path, limit=10)  # no file yet: nothing to do
    path.write_text("0123456789")
    trace.rotate(path, limit=10)
    assert path.read_text() == "0123456789"
    path.write_text("0123456789A")
    trace.rotate(path, limit=10)
    assert not path.exists()
    assert (tmp_path / "spans.jsonl.1").read_text() == "0123456789A"


def test_a_request_id_names_its_trace_and_without_one_the_last_request(spans: Path) -> None:
    rows = trace.read_spans(spans.read_text().splitlines())
    assert len(rows) == 4
    first = rows[0].trace_id
    assert trace.traces_of(rows, "req-1") == [first]
    [last] = trace.traces_of(rows, None)
    assert last != first
    assert trace.traces_of(rows, "req-unknown") == []
    assert trace.traces_of([], None) == []


def test_the_waterfall_nests_each_span_under_its_parent_with_its_outcome(spans: Path) -> None:
    rows = trace.read_spans(spans.read_text().splitlines())
    [trace_id] = trace.traces_of(rows, "req-1")
    lines = trace.waterfall(rows, trace_id)
    assert lines[0].startswith(f"trace {trace_id}  request req-1  ")
    assert lines[0].endswith("  3 spans")
    body = lines[2:]
    assert [line.split()[2] for line in body] == ["rest_bridge", "svc_order", "svc_order"]
    http, rpc, store = body
    assert "POST /api/v1/orders" in http
    assert " 201 " in http
    assert "  PlaceOrder" in rpc
    # A code gRPC does not know is printed as the number.
    assert " 99 " in rpc
    assert "    DynamoDB.UpdateItem" in store
    assert " ERROR " in store
    assert all(line.endswith("|") and "█" in line for line in body)
    assert trace.waterfall(rows, "0" * 32) == []


def test_an_orphan_span_is_a_root_and_a_named_grpc_code_is_printed_by_name(
    spans: Path,
) -> None:
    rows = [r for r in trace.read_spans(spans.read_text().splitlines()) if r.name != "PlaceOrder"]
    [trace_id] = trace.traces_of(rows, "req-1")
    store = next(r for r in rows if r.name == "DynamoDB.UpdateItem")
    store.attributes["rpc.grpc.status_code"] = grpc.StatusCode.ABORTED.value[0]
    lines = trace.waterfall(rows, trace_id)[2:]
    # Its parent was not exported: it starts a tree of its own, at depth 0.
    assert any(" DynamoDB.UpdateItem" in line and " ABORTED " in line for line in lines)


def test_lines_cut_by_a_crash_and_blank_lines_are_skipped(spans: Path) -> None:
    whole = spans.read_text().splitlines()
    damaged = ["", whole[0][:40], '{"name": "no context"}', *whole[1:], "   "]
    assert [r.name for r in trace.read_spans(damaged)] == [
        r.name for r in trace.read_spans(whole[1:])
    ]


def test_dev_trace_prints_the_requests_waterfall(
    spans: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert trace.main(["req-2", "--file", str(spans)]) == 0
    printed = capsys.readouterr().out
    assert "request req-2" in printed
    assert " 404 " in printed
    assert trace.main(["--file", str(spans)]) == 0
    assert "request req-2" in capsys.readouterr().out


def test_dev_trace_says_what_is_missing(
    spans: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert trace.main(["--file", str(tmp_path / "absent.jsonl")]) == 1
    assert "no spans file at" in capsys.readouterr().err
    assert trace.main(["req-unknown", "--file", str(spans)]) == 1
    assert "no spans of request req-unknown in" in capsys.readouterr().err
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert trace.main(["--file", str(empty)]) == 1
    assert "no spans of any request" in capsys.readouterr().err
