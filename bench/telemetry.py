"""The cost of tracing and metrics on the order path, on against off, in one run.

    ./dev bench --telemetry      (or: python -m bench --telemetry)

Three local stacks on in-memory engines run side by side: "on" as `./dev up` runs
(OpenTelemetry spans of every hop, DynamoDB and Redis call batched to the spans file;
every Prometheus hook), "metrics" with tracing off (`OTEL_SDK_DISABLED=true`), and "off"
with `METRICS_ENABLED=false` too.
PlaceOrder over gRPC and POST /api/v1/orders through the bridge, at concurrency 1 and
16, every worker a user of its own; the stacks take turns in slices, so drift of the
shared machine falls on all alike. It prints orders/s, p50, p99, the services' CPU
milliseconds per order, and the ratios to "off". Counts are bounded; nothing asserts a time.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from bench.harness import Result, cpu_seconds, machine, merged, run_load
from devstack.stack import LocalStack

ROUNDS = 4
WARMUP = 5
# What each stack turns off: nothing, tracing only, both.
SETTINGS = {
    "on": {},
    "metrics": {"OTEL_SDK_DISABLED": "true"},
    "off": {"OTEL_SDK_DISABLED": "true", "METRICS_ENABLED": "false"},
}
SERVICES = ("svc_user", "svc_inventory", "svc_order", "rest_bridge")

Calls = Callable[[int], list[Callable[[], None]]]


def _paths(stack: LocalStack) -> list[tuple[str, Calls]]:
    from bench.__main__ import bridge_calls, grpc_calls, trader_tokens

    tokens = trader_tokens(stack, 16)
    return [
        ("gRPC PlaceOrder", lambda n: grpc_calls(stack, tokens[:n])),
        ("REST POST /api/v1/orders", lambda n: bridge_calls(stack, tokens[:n])),
    ]


def measure(
    stacks: dict[str, LocalStack], per_worker_c1: int, per_worker_c16: int
) -> tuple[dict[tuple[str, str, int], Result], dict[tuple[str, str, int], float]]:
    """Results and the services' CPU milliseconds per order, by (setting, path, c)."""
    paths = {setting: _paths(stack) for setting, stack in stacks.items()}
    pids = {
        setting: [p.pid for name, p in stack.processes.items() if name in SERVICES]
        for setting, stack in stacks.items()
    }
    results: dict[tuple[str, str, int], Result] = {}
    cpu: dict[tuple[str, str, int], float] = {}
    for concurrency, per_worker in ((1, per_worker_c1), (16, per_worker_c16)):
        for index in range(len(paths["on"])):
            path = paths["on"][index][0]
            workers = {s: paths[s][index][1](concurrency) for s in stacks}
            rounds: dict[str, list[Result]] = {s: [] for s in stacks}
            spent = dict.fromkeys(stacks, 0.0)
            for round_index in range(ROUNDS):
                for setting in stacks:
                    warmup = WARMUP if round_index == 0 else 0
                    before = sum(cpu_seconds(pid) for pid in pids[setting])
                    part = run_load(
                        f"{path} [{setting}]",
                        workers[setting],
                        per_worker // ROUNDS,
                        warmup,
                    )
                    spent[setting] += sum(cpu_seconds(pid) for pid in pids[setting]) - before
                    rounds[setting].append(part)
            for setting in stacks:
                result = merged(rounds[setting])
                key = (setting, path, concurrency)
                results[key] = result
                orders = result.calls + result.errors + WARMUP * concurrency
                cpu[key] = spent[setting] * 1000 / orders
                print(
                    f"  {path:26} c={concurrency:<2} {setting:7} {result.per_second:7.1f}/s  "
                    f"p50 {result.p50:6.1f} ms  p99 {result.p99:6.1f} ms  "
                    f"CPU {cpu[key]:5.1f} ms/order  errors {result.errors}"
                )
    return results, cpu


def report(
    results: dict[tuple[str, str, int], Result], cpu: dict[tuple[str, str, int], float]
) -> str:
    lines = [
        f"Machine: {machine()}",
        "",
        "| path | c | telemetry | orders | orders/s | p50 ms | p99 ms | services' CPU ms/order |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (setting, path, concurrency), r in results.items():
        lines.append(
            f"| {path} | {concurrency} | {setting} | {r.calls} | {r.per_second:.1f} | "
            f"{r.p50:.1f} | {r.p99:.1f} | {cpu[(setting, path, concurrency)]:.1f} |"
        )
    lines += [
        "",
        "| path | c | telemetry | p50 / off | orders/s / off | CPU per order / off |",
        "|---|---|---|---|---|---|",
    ]
    for setting, path, concurrency in results:
        if setting == "off":
            continue
        this, off = results[(setting, path, concurrency)], results[("off", path, concurrency)]
        lines.append(
            f"| {path} | {concurrency} | {setting} | {this.p50 / off.p50:.2f} | "
            f"{this.per_second / off.per_second:.2f} | "
            f"{cpu[(setting, path, concurrency)] / cpu[('off', path, concurrency)]:.2f} |"
        )
    return "\n".join(lines)


def main(per_worker_c1: int, per_worker_c16: int, write_results: Path | None) -> int:
    from bench.__main__ import OVERRIDES

    with tempfile.TemporaryDirectory(prefix="bench-telemetry-") as scratch:
        stacks = {
            setting: LocalStack(
                data_dir=None,
                log_dir=Path(scratch) / setting,
                overrides={**OVERRIDES, **turned_off},
                fixed_ports=False,
            )
            for setting, turned_off in SETTINGS.items()
        }
        try:
            for setting, stack in stacks.items():
                print(f"Starting the '{setting}' stack with in-memory engines...")
                # Each stack its own Redis: a start leaves its REDIS_URL in os.environ.
                os.environ.pop("REDIS_URL", None)
                stack.start()
            print("Measuring (bounded counts)...")
            results, cpu = measure(stacks, per_worker_c1, per_worker_c16)
            spans = Path(scratch) / "on" / "traces" / "spans.jsonl"
            print(f"Spans written by the 'on' stack: {len(spans.read_text().splitlines())}")
        finally:
            for stack in stacks.values():
                stack.stop()
    table = report(results, cpu)
    print()
    print(table)
    if write_results:
        write_results.write_text(table + "\n")
    return 0
