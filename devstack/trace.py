"""`./dev trace [REQUEST_ID]`: one request's spans as a waterfall in the terminal.

Reads the spans file the local stack's processes write (`TRACES_FILE`, by default
`<data folder>/traces/spans.jsonl`: one `ReadableSpan.to_json` object per line) and
prints every trace that carries the request id (`request.id` attribute), as a tree:
offset from the trace's start and duration in milliseconds, the process, the span
name, its status, and a bar on the trace's time line. Without an id, the last request.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import grpc

from common.telemetry import REQUEST_ID_ATTRIBUTE
from devstack.engines import ROOT

BAR_WIDTH = 32
ROTATE_BYTES = 64 * 1024 * 1024


def default_traces_file(data_dir: Path) -> Path:
    return data_dir / "traces" / "spans.jsonl"


def spans_file(environ: Mapping[str, str]) -> Path:
    """The file `./dev trace` reads: TRACES_FILE, else the one under DATA_DIR (else
    the checkout's `.data`), as `./dev up` chooses it with the same variables."""
    data_dir = Path(environ.get("DATA_DIR", ROOT / ".data")).resolve()
    return Path(environ.get("TRACES_FILE") or default_traces_file(data_dir))


def trace_command(data_dir: Path, traces_file: Path) -> str:
    """The `./dev trace` command line that reads `traces_file`, for `./dev up` to print:
    the data folder may have come from `--data-dir` or a DATA_DIR that the next shell
    does not have."""
    if traces_file == default_traces_file(data_dir):
        setting = f"DATA_DIR={shlex.quote(str(data_dir))}"
    else:
        setting = f"TRACES_FILE={shlex.quote(str(traces_file))}"
    return f"{setting} ./dev trace REQUEST_ID"


def rotate(path: Path, limit: int = ROTATE_BYTES) -> None:
    """Keep one previous file when the current one grew past `limit` bytes."""
    if path.is_file() and path.stat().st_size > limit:
        path.replace(path.with_suffix(path.suffix + ".1"))


@dataclass
class SpanRow:
    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    kind: str
    service: str
    start: datetime
    end: datetime
    status: str
    attributes: dict[str, object]
    children: list[SpanRow] = field(default_factory=list)

    @property
    def outcome(self) -> str:
        """The HTTP status or gRPC code when the span has one, else the span status."""
        http_status = self.attributes.get("http.response.status_code") or self.attributes.get(
            "http.status_code"
        )
        if http_status is not None:
            return str(http_status)
        code = self.attributes.get("rpc.grpc.status_code")
        if isinstance(code, int):
            return next((c.name for c in grpc.StatusCode if c.value[0] == code), str(code))
        return {"UNSET": "ok"}.get(self.status, self.status)

    @property
    def ms(self) -> float:
        return (self.end - self.start).total_seconds() * 1000


def _row(raw: dict[str, object]) -> SpanRow:
    context = raw["context"]
    assert isinstance(context, dict)
    status = raw.get("status") or {}
    assert isinstance(status, dict)
    resource = raw.get("resource") or {}
    assert isinstance(resource, dict)
    attributes = raw.get("attributes") or {}
    assert isinstance(attributes, dict)
    parent = raw.get("parent_id")
    return SpanRow(
        trace_id=str(context["trace_id"]).removeprefix("0x"),
        span_id=str(context["span_id"]).removeprefix("0x"),
        parent_id=str(parent).removeprefix("0x") if parent else None,
        name=str(raw["name"]),
        kind=str(raw.get("kind", "")).removeprefix("SpanKind."),
        service=str(resource.get("attributes", {}).get("service.name", "?")),
        start=datetime.fromisoformat(str(raw["start_time"])),
        end=datetime.fromisoformat(str(raw["end_time"])),
        status=str(status.get("status_code", "UNSET")),
        attributes=attributes,
    )


def read_spans(lines: Iterable[str]) -> list[SpanRow]:
    rows = []
    for line in lines:
        line = line.strip()
        if not line:
            continue
        try:
            rows.append(_row(json.loads(line)))
        except (ValueError, KeyError, AssertionError):
            continue  # a line cut by a crash is skipped, not fatal
    return rows


def traces_of(rows: list[SpanRow], request_id: str | None) -> list[str]:
    """Trace ids carrying the request id in the order first seen; the last request's
    trace when no id is given."""
    tagged = [r for r in rows if r.attributes.get(REQUEST_ID_ATTRIBUTE) is not None]
    if request_id is None:
        return [tagged[-1].trace_id] if tagged else []
    found = [r.trace_id for r in tagged if r.attributes.get(REQUEST_ID_ATTRIBUTE) == request_id]
    return list(dict.fromkeys(found))


def _walk(row: SpanRow, depth: int) -> Iterator[tuple[int, SpanRow]]:
    yield depth, row
    for child in sorted(row.children, key=lambda r: r.start):
        yield from _walk(child, depth + 1)


def waterfall(rows: list[SpanRow], trace_id: str) -> list[str]:
    spans = [r for r in rows if r.trace_id == trace_id]
    if not spans:
        return []
    by_id = {r.span_id: r for r in spans}
    roots = []
    for row in spans:
        parent = by_id.get(row.parent_id) if row.parent_id else None
        if parent is None:
            roots.append(row)  # a root, or a parent not (yet) exported
        else:
            parent.children.append(row)
    start = min(r.start for r in spans)
    end = max(r.end for r in spans)
    total_ms = max((end - start).total_seconds() * 1000, 0.001)
    request_ids = {str(r.attributes.get(REQUEST_ID_ATTRIBUTE)) for r in spans} - {"None"}
    lines = [
        f"trace {trace_id}  request {', '.join(sorted(request_ids)) or '-'}  "
        f"{total_ms:.1f} ms  {len(spans)} spans",
        f"{'start ms':>9} {'dur ms':>8}  {'process':<14} {'span':<58} {'status':<18} time line",
    ]
    for root in sorted(roots, key=lambda r: r.start):
        for depth, row in _walk(root, 0):
            offset = (row.start - start).total_seconds() * 1000
            first = min(int(offset / total_ms * BAR_WIDTH), BAR_WIDTH - 1)
            width = max(1, round(row.ms / total_ms * BAR_WIDTH))
            bar = " " * first + "█" * min(width, BAR_WIDTH - first)
            label = ("  " * depth + row.name)[:58]
            lines.append(
                f"{offset:9.1f} {row.ms:8.1f}  {row.service:<14} {label:<58} "
                f"{row.outcome:<18} |{bar:<{BAR_WIDTH}}|"
            )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print one request's spans as a waterfall.")
    parser.add_argument("request_id", nargs="?", help="X-Request-ID; default: the last request")
    parser.add_argument("--file", type=Path, help="spans file (default: the local stack's)")
    args = parser.parse_args(argv)
    path: Path = args.file or spans_file(os.environ)
    if not path.is_file():
        print(
            f"no spans file at {path}: is ./dev up running (without OTLP)? With another"
            " data folder, give its DATA_DIR (./dev up prints the command).",
            file=sys.stderr,
        )
        return 1
    with path.open(encoding="utf-8") as spans:
        rows = read_spans(spans)
    trace_ids = traces_of(rows, args.request_id)
    if not trace_ids:
        what = f"request {args.request_id}" if args.request_id else "any request"
        print(f"no spans of {what} in {path} (spans are written within ~5 s)", file=sys.stderr)
        return 1
    for trace_id in trace_ids:
        print("\n".join(waterfall(rows, trace_id)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
