"""What an operator sees of one request under `./dev up`: its trace across every
process (`./dev trace`), the trace id in each process's log lines, and the metrics
page of every process (printed at start)."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from devstack.engines import ROOT
from devstack.stack import ORDER_PROCESSES_VARIABLE, SPECS, with_processes
from tests.stack.up_process import start_up, stop_up, wait_up
from tests.support import stack_ports, unique

PASSWORD = "Correct-Horse-42!"


def _trace_command(printed: str) -> list[str]:
    """The `VARIABLE=value ./dev trace REQUEST_ID` line that ./dev up printed."""
    for line in printed.splitlines():
        words = shlex.split(line)
        if words[1:] == ["./dev", "trace", "REQUEST_ID"]:
            return words
    raise AssertionError(f"./dev up printed no ./dev trace command:\n{printed}")


def _trace(request_id: str, command: list[str]) -> str:
    """The waterfall of ./dev trace run as printed (python -m devstack.trace is what
    ./dev runs), in an environment without the stack's own variables."""
    name, _, value = command[0].partition("=")
    environ = {k: v for k, v in os.environ.items() if k not in ("DATA_DIR", "TRACES_FILE")}
    done = subprocess.run(
        [sys.executable, "-m", "devstack.trace", request_id],
        cwd=ROOT,
        env={**environ, name: value},
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout


def _order_through_bridge(bridge: str) -> str:
    name = unique()
    with httpx.Client(base_url=bridge, timeout=30) as http:
        registered = http.post(
            "/api/v1/auth/register",
            json={
                "username": name,
                "email": f"{name}@example.org",
                "password": PASSWORD,
                "first_name": "ada",
                "last_name": "lovelace",
            },
        )
        assert registered.status_code == 201, registered.text
        login = http.post("/api/v1/auth/login", json={"username": name, "password": PASSWORD})
        auth = {"Authorization": f"Bearer {login.json()['access_token']}"}
        deposit = http.post(
            "/api/v1/balance/deposit",
            json={"amount": 1000},
            headers={**auth, "Idempotency-Key": unique("dep")},
        )
        assert deposit.status_code == 201, deposit.text
        order = http.post(
            "/api/v1/orders",
            json={"order_type": "market_buy", "asset_id": "BTC", "quantity": "0.001"},
            headers=auth,
        )
        assert order.status_code == 201, order.text
        return order.headers["X-Request-ID"]


@pytest.mark.slow
def test_one_order_is_one_trace_across_processes_and_logs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ports = stack_ports()
    # Debug lines include each process's per-call line, where the trace id must be.
    ports["LOG_LEVEL"] = "DEBUG"
    for variable in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SDK_DISABLED", "TRACES_FILE"):
        monkeypatch.delenv(variable, raising=False)
    stack = start_up(tmp_path, ports)
    try:
        printed = wait_up(stack)
        spans_file = tmp_path / "traces" / "spans.jsonl"
        assert str(spans_file) in printed
        # The data folder is not the default one: the printed command names it.
        command = _trace_command(printed)
        request_id = _order_through_bridge(f"http://127.0.0.1:{ports['BRIDGE_PORT']}")

        wanted = (
            "POST /api/v1/orders",
            "/trading.v1.OrderService/PlaceOrder",
            # No GetQuotes: svc_order prices with its price stream's last quote.
            "DynamoDB.BatchWriteItem",
            "MGET",  # the revocation check and the quote cache in Redis
        )
        deadline = time.monotonic() + 20
        waterfall = ""
        while time.monotonic() < deadline:
            waterfall = _trace(request_id, command)
            if all(name in waterfall for name in wanted):
                break
            time.sleep(0.2)
        assert all(name in waterfall for name in wanted), waterfall
        header = waterfall.splitlines()[0].split()
        assert header[0] == "trace"
        assert header[3] == request_id
        trace_id = header[1]
        assert "trace " not in "\n".join(waterfall.splitlines()[1:]), "more than one trace"
        # The bridge's client span and svc_order's server span: one hop, one trace
        # (and svc_user's when svc_order fetched the signing keys for this request).
        processes = {line.split()[2] for line in waterfall.splitlines()[2:]}
        assert {"rest_bridge", "svc_order"} <= processes <= {"rest_bridge", "svc_order", "svc_user"}

        spans = [json.loads(line) for line in spans_file.read_text().splitlines()]
        mine = [s for s in spans if s["context"]["trace_id"] == f"0x{trace_id}"]
        assert all(s["attributes"].get("request.id") == request_id for s in mine)

        for process in ("rest_bridge", "svc_order"):
            # svc_order runs as several processes (svc_order.log, svc_order-2.log, ...).
            logs = (tmp_path / "logs").glob(f"{process}*.log")
            lines = [line for log in logs for line in log.read_text().splitlines()]
            records = [json.loads(line) for line in lines if line.startswith("{")]
            assert any(r.get("trace_id") == trace_id for r in records), process

        families = {
            "svc_user": "grpc_server_handled_total",
            "svc_inventory": "price_streams_active",
            "svc_order": "orders_total",
            "rest_bridge": "bridge_http_requests_total",
        }
        counted: dict[str, list[bool]] = {}
        for spec in with_processes(list(SPECS), int(ports[ORDER_PROCESSES_VARIABLE])):
            port = ports[spec.metrics_port_variable or spec.port_variable]
            url = f"http://127.0.0.1:{port}/metrics"
            assert f"{spec.name:14} " in printed
            assert f"metrics {url}" in printed, spec.name
            page = httpx.get(url, timeout=10)
            assert page.status_code == 200, spec.name
            # A sample of the family, with labels or without.
            found = re.search(rf"\n{families[spec.runs]}[{{ ]", page.text) is not None
            counted.setdefault(spec.runs, []).append(found)
        # Every process serves its page; of svc_order's processes, the one the order
        # was balanced to counts it.
        assert len(counted["svc_order"]) == 2
        assert all(any(found) for found in counted.values()), counted
    finally:
        code, survivors = stop_up(stack)
    assert code == 0
    assert survivors == []
