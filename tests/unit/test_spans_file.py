"""The spans file as the processes write it (common.telemetry.file_exporter): each
exported batch is appended whole, so exporters sharing the file (one per process)
never cut into each other's lines, and each line is the span's `to_json` with the
process's resource."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from common.telemetry import REQUEST_ID_ATTRIBUTE, file_exporter, process_resource

SPANS_PER_WRITER = 600


def test_the_resource_reads_as_the_sdk_makes_it() -> None:
    made = process_resource("svc_order")
    sdk = Resource.create({"service.name": "svc_order"})
    assert made.attributes == sdk.attributes
    assert made.to_json() == sdk.to_json()
    assert made.to_json(indent=None) == sdk.to_json(indent=None)


def test_exporters_sharing_the_file_write_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "traces" / "spans.jsonl"
    providers = {}
    for service in ("svc_order", "rest_bridge"):
        provider = TracerProvider(resource=process_resource(service))
        # Small batches, exported often: many writes that could meet.
        provider.add_span_processor(
            BatchSpanProcessor(
                file_exporter(path), max_export_batch_size=50, schedule_delay_millis=5
            )
        )
        providers[service] = provider

    def spans_of(service: str) -> None:
        tracer = providers[service].get_tracer("test")
        for number in range(SPANS_PER_WRITER):
            with tracer.start_as_current_span(f"{service}-{number}") as span:
                span.set_attribute(REQUEST_ID_ATTRIBUTE, "x" * 200)

    writers = [threading.Thread(target=spans_of, args=(service,)) for service in providers]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    for provider in providers.values():
        provider.shutdown()

    lines = path.read_text().splitlines()
    spans = [json.loads(line) for line in lines]
    assert len(spans) == 2 * SPANS_PER_WRITER
    for service in providers:
        names = {s["name"] for s in spans if s["resource"]["attributes"]["service.name"] == service}
        assert names == {f"{service}-{number}" for number in range(SPANS_PER_WRITER)}
