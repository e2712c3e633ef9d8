"""The contracts: generated code is fresh, buf lint passes, every REST route is declared."""

from __future__ import annotations

import filecmp
import subprocess
import sys
from pathlib import Path

from google.api import annotations_pb2
from trading.v1 import inventory_pb2, order_pb2, user_pb2

ROOT = Path(__file__).resolve().parents[2]
PROTOS_SCRIPT = ROOT / "scripts" / "protos.py"

# Every route of shared/API.md served from the contracts (the bridge's own routes,
# /health, /metrics and the docs, are not RPCs).
API_ROUTES = {
    ("post", "/api/v1/auth/register"),
    ("post", "/api/v1/auth/login"),
    ("post", "/api/v1/auth/refresh"),
    ("post", "/api/v1/auth/logout"),
    ("get", "/api/v1/auth/profile"),
    ("put", "/api/v1/auth/profile"),
    ("post", "/api/v1/auth/password"),
    ("get", "/api/v1/auth/export"),
    ("post", "/api/v1/auth/account/close"),
    ("get", "/api/v1/inventory/assets"),
    ("get", "/api/v1/inventory/assets/{asset_id}"),
    ("get", "/api/v1/stream/prices"),
    ("post", "/api/v1/orders"),
    ("get", "/api/v1/orders"),
    ("get", "/api/v1/orders/{order_id}"),
    ("delete", "/api/v1/orders/{order_id}"),
    ("get", "/api/v1/stream/orders"),
    ("get", "/api/v1/balance"),
    ("post", "/api/v1/balance/deposit"),
    ("post", "/api/v1/balance/withdraw"),
    ("get", "/api/v1/balance/transactions"),
    ("get", "/api/v1/portfolio"),
    ("get", "/api/v1/balance/asset/{asset_id}"),
    ("get", "/api/v1/assets/{asset_id}/transactions"),
}


def _differences(left: Path, right: Path) -> list[str]:
    comparison = filecmp.dircmp(left, right, ignore=["__pycache__"])
    found = [f"{left}: {name}" for name in comparison.left_only + comparison.right_only]
    found += [f"changed: {name}" for name in comparison.diff_files]
    for sub in comparison.common_dirs:
        found += _differences(left / sub, right / sub)
    return found


def test_generated_code_is_fresh(tmp_path: Path) -> None:
    fresh = tmp_path / "generated"
    subprocess.run(
        [sys.executable, str(PROTOS_SCRIPT), "gen", "--out", str(fresh)],
        check=True,
        capture_output=True,
    )
    stale = _differences(ROOT / "generated", fresh)
    assert stale == [], f"generated/ is stale; run `python scripts/protos.py gen`: {stale}"


def test_buf_lint_passes() -> None:
    result = subprocess.run(
        [sys.executable, str(PROTOS_SCRIPT), "lint"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_buf_breaking_against_the_previous_commit() -> None:
    result = subprocess.run(
        [sys.executable, str(PROTOS_SCRIPT), "breaking"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_route_of_the_api_is_declared_once() -> None:
    declared: list[tuple[str, str]] = []
    for module in (user_pb2, inventory_pb2, order_pb2):
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                options = method.GetOptions()
                if not options.HasExtension(annotations_pb2.http):
                    continue
                rule = options.Extensions[annotations_pb2.http]
                verb = rule.WhichOneof("pattern")
                declared.append((verb, getattr(rule, verb)))
    assert len(declared) == len(set(declared)), "a route is declared twice"
    assert set(declared) == API_ROUTES
