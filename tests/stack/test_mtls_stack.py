"""`./dev up --mtls`: the dev CA and certificates appear under the data folder, the
printed grpcurl line (with its certificate flags) works while plaintext is refused,
and an order through the bridge crosses every hop on mTLS."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import httpx
import pytest

from devstack.engines import ROOT
from tests.stack.test_observability import _order_through_bridge
from tests.stack.up_process import start_up, stop_up, wait_up
from tests.support import stack_ports


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.slow
def test_up_with_mtls_prints_a_working_grpcurl_line_and_trades(tmp_path: Path) -> None:
    ports = stack_ports()
    stack = start_up(tmp_path, ports, "--mtls")
    try:
        printed = wait_up(stack)
        pki = tmp_path / "pki"
        assert {"ca.pem", "svc_order.pem", "rest_bridge.pem", "operator-key.pem"} <= {
            p.name for p in pki.iterdir()
        }
        user = f"127.0.0.1:{ports['USER_GRPC_PORT']}"
        lines = [line.strip() for line in printed.splitlines() if "grpcurl" in line]
        listing = next(line for line in lines if line.endswith(f"{user} list"))
        for flag in ("-cacert", "-cert", "-key"):
            assert f" {flag} {pki}" in listing
        listed = _run(shlex.split(listing))
        assert listed.returncode == 0, listed.stderr
        assert "trading.v1.UserService" in listed.stdout
        plaintext = _run([str(ROOT / ".venv" / "bin" / "grpcurl"), "-plaintext", user, "list"])
        assert plaintext.returncode != 0

        request_id = _order_through_bridge(f"http://127.0.0.1:{ports['BRIDGE_PORT']}")
        assert request_id
        health = httpx.get(f"http://127.0.0.1:{ports['BRIDGE_PORT']}/health", timeout=10)
        assert health.json()["status"] == "healthy"
    finally:
        code, survivors = stop_up(stack)
    assert code == 0
    assert survivors == []
