"""istio/smoke.py, the cluster's smoke test, passes against the real platform here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.e2e.conftest import Bridge

SMOKE = Path(__file__).resolve().parents[2] / "istio" / "smoke.py"


def test_the_cluster_smoke_test_passes_against_a_real_bridge(bridge: Bridge) -> None:
    run = subprocess.run(
        [sys.executable, str(SMOKE), bridge.url],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "smoke: 0 of 8 checks failed" in run.stdout


def test_the_smoke_test_fails_when_the_edge_breaks_a_check(bridge: Bridge) -> None:
    """A smoke test that cannot fail proves nothing: against a bridge without svc_order
    the deposit and the buy fail, and so does the run."""
    from tests.e2e.conftest import serve

    without_orders = serve(bridge.settings.model_copy(update={"order_service_addr": None}))
    try:
        run = subprocess.run(
            [sys.executable, str(SMOKE), without_orders.url],
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
    finally:
        without_orders.stop()
    assert run.returncode == 1
    assert "FAIL deposit" in run.stdout
