"""observability/: the dashboards are fresh, every metric a dashboard or an alert uses is
one the code exports, every alert has a unit test, and promtool accepts the rules, their
tests and the scrape configuration."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY, CollectorRegistry

import common.metrics
import svc_inventory.metrics
import svc_order.metrics
import svc_user.metrics
from devstack.engines import ROOT
from observability.dashboards import OUT, all_dashboards, rendered
from rest_bridge.metrics import BridgeMetrics

HERE = ROOT / "observability"
# Imported for the families they register in the default registry.
MODULES = (common.metrics, svc_order.metrics, svc_inventory.metrics, svc_user.metrics)
PROMQL_WORDS = {"bool", "and", "or", "unless", "offset", "inf", "nan"}
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")


def metric_names(expr: str) -> set[str]:
    """The series names a PromQL expression selects (functions and keywords left out)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = _GROUPING.sub(" ", text)
    names = set()
    for match in re.finditer(r"(?<![\w.])[A-Za-z_:][A-Za-z0-9_:]*", text):
        if text[match.end() :].lstrip().startswith("("):
            continue  # a function or an aggregation
        if match.group(0).lower() not in PROMQL_WORDS:
            names.add(match.group(0))
    return names


def exported_names() -> set[str]:
    """Every series name the processes' registries can expose."""
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_count", "_sum", "_created"),
        "gauge": ("",),
        "summary": ("_count", "_sum", "_created"),
    }
    names: set[str] = set()
    registries: list[CollectorRegistry] = [REGISTRY, BridgeMetrics().registry]
    for registry in registries:
        for family in registry.collect():
            names.update(family.name + suffix for suffix in suffixes.get(family.type, ("",)))
    return names


def _expressions(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "expr" and isinstance(value, str):
                yield value
            else:
                yield from _expressions(value)
    elif isinstance(node, list):
        for item in node:
            yield from _expressions(item)


def _rules() -> list[dict[str, Any]]:
    document = yaml.safe_load((HERE / "alerts.yml").read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_the_extraction_finds_metrics_not_functions_labels_or_keywords() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (job, le) (rate(a_seconds_bucket{x="y{z}"}[5m])))'
        " / ignoring (le) b_total > bool 0 and time() - c_timestamp_seconds offset 5m"
    )
    assert metric_names(expr) == {"a_seconds_bucket", "b_total", "c_timestamp_seconds"}


def test_the_dashboards_are_fresh() -> None:
    boards = all_dashboards()
    assert sorted(boards) == sorted(p.name for p in OUT.glob("*.json"))
    for name, board in boards.items():
        assert (OUT / name).read_text() == rendered(board), (
            f"{name} is stale: run python -m observability.dashboards"
        )


def test_every_metric_a_dashboard_or_an_alert_uses_exists_in_the_code() -> None:
    exported = exported_names()
    used: dict[str, set[str]] = {}
    for path in sorted(OUT.glob("*.json")):
        for expr in _expressions(yaml.safe_load(path.read_text())):
            for name in metric_names(expr):
                used.setdefault(name, set()).add(path.name)
    for rule in _rules():
        for name in metric_names(rule["expr"]):
            used.setdefault(name, set()).add(f"alerts.yml:{rule['alert']}")
    assert len(used) > 15  # the extraction found the queries
    missing = {name: sorted(where) for name, where in used.items() if name not in exported}
    assert missing == {}


def test_every_alert_has_a_unit_test() -> None:
    tests = yaml.safe_load((HERE / "alerts_test.yml").read_text())["tests"]
    tested = {case["alertname"] for test in tests for case in test["alert_rule_test"]}
    firing = {
        case["alertname"]
        for test in tests
        for case in test["alert_rule_test"]
        if case.get("exp_alerts")
    }
    alerts = {rule["alert"] for rule in _rules()}
    assert tested == alerts
    assert firing == alerts, "every alert needs a case where it fires"


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip(
            "promtool is not installed (Debian package `prometheus`; ./dev test installs "
            "it when apt can reach its archive): the promtool checks did not run"
        )
    return found


@pytest.mark.parametrize(
    "arguments",
    [
        ("check", "rules", "alerts.yml"),
        ("test", "rules", "alerts_test.yml"),
        ("check", "config", "prometheus.yml"),
    ],
    ids=["check-rules", "test-rules", "check-config"],
)
def test_promtool_accepts(arguments: tuple[str, ...]) -> None:
    done = subprocess.run(
        [_promtool(), *arguments],
        cwd=HERE,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
