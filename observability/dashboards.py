"""The Grafana dashboards, written as data: `python -m observability.dashboards` writes
`observability/dashboards/*.json` (a test fails when they are stale).

One dashboard per process (rate, errors, duration of what it serves; its outgoing
calls, store and Redis calls) and one for the business. Queries assume Prometheus
scrapes each process under the job of its name (`observability/prometheus.yml`).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE / "dashboards"
RATE = "[5m]"
SERVER_ERRORS = 'grpc_code=~"UNKNOWN|INTERNAL|UNAVAILABLE|DEADLINE_EXCEEDED|DATA_LOSS"'


@dataclass(frozen=True)
class Panel:
    title: str
    queries: tuple[tuple[str, str], ...]  # (PromQL, legend)
    unit: str = "short"
    kind: str = "timeseries"


def _panel(panel: Panel, panel_id: int) -> dict[str, Any]:
    width = 12
    return {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {
            "h": 8,
            "w": width,
            "x": (panel_id - 1) % 2 * width,
            "y": (panel_id - 1) // 2 * 8,
        },
        "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
        "targets": [
            {"refId": chr(ord("A") + i), "expr": expr, "legendFormat": legend}
            for i, (expr, legend) in enumerate(panel.queries)
        ],
    }


def dashboard(uid: str, title: str, panels: list[Panel]) -> dict[str, Any]:
    return {
        "uid": uid,
        "title": title,
        "tags": ["trading-platform"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "type": "datasource",
                    "query": "prometheus",
                    "label": "Prometheus",
                }
            ]
        },
        "panels": [_panel(panel, i) for i, panel in enumerate(panels, start=1)],
    }


def _plumbing(job: str) -> list[Panel]:
    """Outgoing calls, store and Redis calls of one process."""
    sel = f'job="{job}"'
    return [
        Panel(
            "Outgoing calls by target and code",
            (
                (
                    "sum by (grpc_service, grpc_code) "
                    f"(rate(grpc_client_handled_total{{{sel}}}{RATE}))",
                    "{{grpc_service}} {{grpc_code}}",
                ),
            ),
            "reqps",
        ),
        Panel(
            "Outgoing call p99",
            (
                (
                    "histogram_quantile(0.99, sum by (grpc_service, le) "
                    f"(rate(grpc_client_handling_seconds_bucket{{{sel}}}{RATE})))",
                    "{{grpc_service}}",
                ),
            ),
            "s",
        ),
        Panel(
            "DynamoDB calls by operation and outcome",
            (
                (
                    f"sum by (operation, outcome) (rate(dynamodb_requests_total{{{sel}}}{RATE}))",
                    "{{operation}} {{outcome}}",
                ),
            ),
            "reqps",
        ),
        Panel(
            "DynamoDB p99 by operation",
            (
                (
                    "histogram_quantile(0.99, sum by (operation, le) "
                    f"(rate(dynamodb_request_duration_seconds_bucket{{{sel}}}{RATE})))",
                    "{{operation}}",
                ),
            ),
            "s",
        ),
        Panel(
            "Redis commands by command and outcome",
            (
                (
                    f"sum by (command, outcome) (rate(redis_commands_total{{{sel}}}{RATE}))",
                    "{{command}} {{outcome}}",
                ),
            ),
            "ops",
        ),
        Panel(
            "Redis p99 by command",
            (
                (
                    "histogram_quantile(0.99, sum by (command, le) "
                    f"(rate(redis_command_duration_seconds_bucket{{{sel}}}{RATE})))",
                    "{{command}}",
                ),
            ),
            "s",
        ),
    ]


def service_dashboard(job: str, grpc_service: str) -> dict[str, Any]:
    sel = f'job="{job}", grpc_service="{grpc_service}"'
    panels = [
        Panel(
            "Rate by method",
            (
                (
                    f"sum by (grpc_method) (rate(grpc_server_handled_total{{{sel}}}{RATE}))",
                    "{{grpc_method}}",
                ),
            ),
            "reqps",
        ),
        Panel(
            "Errors: server-side failures / all (ratio)",
            (
                (
                    f"sum(rate(grpc_server_handled_total{{{sel}, {SERVER_ERRORS}}}{RATE})) / "
                    f"sum(rate(grpc_server_handled_total{{{sel}}}{RATE}))",
                    "error ratio",
                ),
            ),
            "percentunit",
        ),
        Panel(
            "Answers by code",
            (
                (
                    f"sum by (grpc_code) (rate(grpc_server_handled_total{{{sel}}}{RATE}))",
                    "{{grpc_code}}",
                ),
            ),
            "reqps",
        ),
        Panel(
            "Refusals by reason",
            (
                (
                    f"sum by (reason) (rate(grpc_server_refusals_total{{{sel}}}{RATE}))",
                    "{{reason}}",
                ),
            ),
            "reqps",
        ),
        Panel(
            "Duration p50 / p99 by method",
            tuple(
                (
                    f"histogram_quantile({q}, sum by (grpc_method, le) "
                    f"(rate(grpc_server_handling_seconds_bucket{{{sel}}}{RATE})))",
                    f"p{round(q * 100)} {{{{grpc_method}}}}",
                )
                for q in (0.5, 0.99)
            ),
            "s",
        ),
        Panel(
            "In flight",
            (
                (
                    f"sum by (grpc_method) (grpc_server_in_flight_requests{{{sel}}})",
                    "{{grpc_method}}",
                ),
            ),
        ),
    ]
    name = job.replace("_", " ")
    return dashboard(f"tp-{job}", f"Trading platform: {name}", panels + _plumbing(job))


def bridge_dashboard() -> dict[str, Any]:
    sel = 'job="rest_bridge"'
    panels = [
        Panel(
            "Rate by route",
            (
                (
                    f"sum by (method, route) (rate(bridge_http_requests_total{{{sel}}}{RATE}))",
                    "{{method}} {{route}}",
                ),
            ),
            "reqps",
        ),
        Panel(
            "Errors: 5xx / all (ratio)",
            (
                (
                    f'sum(rate(bridge_http_requests_total{{{sel}, status=~"5.."}}{RATE})) / '
                    f"sum(rate(bridge_http_requests_total{{{sel}}}{RATE}))",
                    "5xx ratio",
                ),
            ),
            "percentunit",
        ),
        Panel(
            "Answers by status",
            (
                (
                    f"sum by (status) (rate(bridge_http_requests_total{{{sel}}}{RATE}))",
                    "{{status}}",
                ),
            ),
            "reqps",
        ),
        Panel(
            "Duration p50 / p99 by route",
            tuple(
                (
                    f"histogram_quantile({q}, sum by (route, le) "
                    f"(rate(bridge_http_request_duration_seconds_bucket{{{sel}}}{RATE})))",
                    f"p{round(q * 100)} {{{{route}}}}",
                )
                for q in (0.5, 0.99)
            ),
            "s",
        ),
        Panel(
            "Rate-limit refusals",
            (
                (
                    f"sum by (scope) (rate(bridge_rate_limit_rejections_total{{{sel}}}{RATE}))",
                    "429 {{scope}}",
                ),
            ),
            "reqps",
        ),
        Panel(
            "Redis errors by purpose",
            (
                (
                    f"sum by (purpose) (rate(bridge_redis_errors_total{{{sel}}}{RATE}))",
                    "{{purpose}}",
                ),
            ),
            "ops",
        ),
    ]
    return dashboard(
        "tp-rest_bridge", "Trading platform: rest bridge", panels + _plumbing("rest_bridge")
    )


def business_dashboard() -> dict[str, Any]:
    panels = [
        Panel(
            "Orders by type and outcome",
            (
                (
                    f"sum by (order_type, outcome) (rate(orders_total{RATE}))",
                    "{{order_type}} {{outcome}}",
                ),
            ),
            "reqps",
        ),
        Panel(
            "Traded value (USD per second)",
            (
                (
                    f"sum by (order_type) (rate(orders_traded_value_usd_total{RATE}))",
                    "{{order_type}}",
                ),
            ),
            "currencyUSD",
        ),
        Panel(
            "Deposits and withdrawals (count per second)",
            ((f"sum by (kind) (rate(cash_operations_total{RATE}))", "{{kind}}"),),
            "reqps",
        ),
        Panel(
            "Deposits and withdrawals (USD per second)",
            ((f"sum by (kind) (rate(cash_operations_value_usd_total{RATE}))", "{{kind}}"),),
            "currencyUSD",
        ),
        Panel(
            "Refusals by reason",
            (
                (
                    f"sum by (grpc_method, reason) (rate(grpc_server_refusals_total{RATE}))",
                    "{{grpc_method}} {{reason}}",
                ),
            ),
            "reqps",
        ),
        Panel(
            "Idempotent replays",
            ((f"sum by (kind) (rate(idempotent_replays_total{RATE}))", "{{kind}}"),),
            "reqps",
        ),
        Panel(
            "Users active: logins and token refreshes (per second)",
            (
                (
                    "sum by (grpc_method) (rate(grpc_server_handled_total{"
                    'grpc_service="trading.v1.UserService", grpc_method=~"Login|RefreshToken", '
                    f'grpc_code="OK"}}{RATE}))',
                    "{{grpc_method}}",
                ),
            ),
            "reqps",
        ),
        Panel(
            "Login failures, throttle blocks, tokens revoked",
            (
                (
                    'sum(rate(grpc_server_refusals_total{grpc_method="Login"}' + RATE + "))",
                    "login failures",
                ),
                (
                    # Every password check meets the throttle (Login, ChangePassword,
                    # CloseAccount), so its blocks are counted over every method.
                    'sum(rate(grpc_server_refusals_total{reason="AUTH_004"}' + RATE + "))",
                    "throttle blocks",
                ),
                (f"sum by (kind) (rate(tokens_revoked_total{RATE}))", "revoked {{kind}}"),
            ),
            "ops",
        ),
        Panel(
            "Quote age: priced orders p99, newest price",
            (
                (
                    "histogram_quantile(0.99, sum by (le) "
                    f"(rate(order_quote_age_seconds_bucket{RATE})))",
                    "order quote p99",
                ),
                ("time() - max(price_updated_timestamp_seconds)", "newest price"),
            ),
            "s",
        ),
        Panel(
            "Price cache hit ratio",
            (
                (
                    f'sum(rate(price_cache_lookups_total{{result="hit"}}{RATE})) / '
                    f"sum(rate(price_cache_lookups_total{RATE}))",
                    "hit ratio",
                ),
            ),
            "percentunit",
        ),
        Panel(
            "Active streams",
            (
                ("sum(price_streams_active)", "price streams"),
                ("sum(order_streams_active)", "order streams"),
            ),
        ),
    ]
    return dashboard("tp-business", "Trading platform: business", panels)


def all_dashboards() -> dict[str, dict[str, Any]]:
    return {
        "svc_user.json": service_dashboard("svc_user", "trading.v1.UserService"),
        "svc_inventory.json": service_dashboard("svc_inventory", "trading.v1.InventoryService"),
        "svc_order.json": service_dashboard("svc_order", "trading.v1.OrderService"),
        "rest_bridge.json": bridge_dashboard(),
        "business.json": business_dashboard(),
    }


def rendered(board: dict[str, Any]) -> str:
    return json.dumps(board, indent=2, sort_keys=True) + "\n"


def main() -> int:
    OUT.mkdir(exist_ok=True)
    for name, board in all_dashboards().items():
        (OUT / name).write_text(rendered(board), encoding="utf-8")
        print(f"wrote {OUT / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
