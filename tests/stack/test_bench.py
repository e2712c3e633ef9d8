"""`./dev bench` runs end to end on a tiny count: every path is measured without an
error and the table with the ratios is written (figures are not judged here: a timed
assertion does not belong in a test)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from devstack.engines import ROOT


@pytest.mark.slow
def test_the_benchmark_runs_every_path_and_writes_its_table(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DYNAMODB_ENDPOINT")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "generated")])
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--c1", "8", "--c16", "4", "--write-results", str(results)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    table = results.read_text()
    rows = [line.split("|")[1:-1] for line in table.splitlines() if line.startswith("| ")]
    measured = [r for r in rows if len(r) == 7 and r[1].strip() in ("1", "16")]
    paths = {r[0].strip() for r in measured}
    assert {"store alone", "gRPC PlaceOrder", "REST POST /api/v1/orders"} <= paths
    assert all(r[6].strip() == "0" for r in measured), table
    assert "gRPC p50 / store p50, c=1" in table
    assert "CPU milliseconds per order, by process:" in table
