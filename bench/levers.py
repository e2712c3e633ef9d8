"""Issue 13's levers, before against after, in one run.

    ./dev bench --levers      (or: python -m bench --levers)

Stacks on in-memory engines run side by side and take turns in slices, so drift of the
shared machine falls on all alike:
- "before": the platform as it was (svc_inventory writes every price tick to the
  store, svc_order asks svc_inventory for every order's quote, the bridge on
  asyncio's own event loop with h11's HTTP parser);
- "after": `./dev up`'s defaults (price snapshots every PRICE_SNAPSHOT_SECONDS,
  quotes from the price stream, the bridge on uvloop and httptools);
- "2 processes": "after" with two svc_order processes (what the second one adds);
- "8 RPC threads": "after" with GRPC_MAX_WORKERS=8 instead of 32 (the stream caps
  below it), fewer threads contending for the GIL in each service;
- with `--baseline REF` (a commit, tag or branch): also that commit's services with
  their own defaults, from a temporary checkout (`git worktree`), on this checkout's
  engines and load. Code changes cannot be switched by a setting; this measures them
  side by side all the same, and the ratios are taken against it.
Measured: market buys (0.001 BTC) over gRPC and through the bridge at concurrency 1
and 16, the portfolio through the bridge at 16, every worker a user of its own; then
the orders/s knee of "after" (a ramp of concurrency 1 to 64 through the bridge).
CPU is summed over every process of the platform (engines included, the load
generator not) per request. Counts are bounded; nothing asserts a time.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from bench.harness import Result, cpu_seconds, machine, merged, run_load
from devstack.engines import ROOT
from devstack.stack import LocalStack

ROUNDS = 3
WARMUP = 5
VARIANTS = {
    "before": {
        "PRICE_SNAPSHOT_SECONDS": "0",
        "BRIDGE_EVENT_LOOP": "asyncio",
        "BRIDGE_HTTP_PARSER": "h11",
        "STREAMED_QUOTE_MAX_AGE_SECONDS": "0",
    },
    "after": {},
    "2 processes": {"ORDER_PROCESSES": "2"},
    "8 RPC threads": {"GRPC_MAX_WORKERS": "8", "MAX_ORDER_STREAMS": "4", "MAX_PRICE_STREAMS": "4"},
}
RAMP = (1, 2, 4, 8, 16, 32, 64)

Calls = Callable[[int], list[Callable[[], None]]]


def portfolio_calls(stack: LocalStack, tokens: list[str]) -> list[Callable[[], None]]:
    import httpx

    base = f"http://127.0.0.1:{stack.port('rest_bridge')}"

    def caller(token: str) -> Callable[[], None]:
        client = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"})

        def read() -> None:
            response = client.get("/api/v1/portfolio", timeout=30)
            if response.status_code != 200:
                raise RuntimeError(f"{response.status_code}: {response.text[:200]}")

        return read

    return [caller(token) for token in tokens]


def _paths(stack: LocalStack, workers: int) -> list[tuple[str, int, Calls]]:
    from bench.__main__ import bridge_calls, grpc_calls, trader_tokens

    tokens = trader_tokens(stack, workers)
    return [
        ("gRPC PlaceOrder", 1, lambda n: grpc_calls(stack, tokens[:n])),
        ("REST POST /api/v1/orders", 1, lambda n: bridge_calls(stack, tokens[:n])),
        ("gRPC PlaceOrder", 16, lambda n: grpc_calls(stack, tokens[:n])),
        ("REST POST /api/v1/orders", 16, lambda n: bridge_calls(stack, tokens[:n])),
        ("REST GET /api/v1/portfolio", 16, lambda n: portfolio_calls(stack, tokens[:n])),
    ]


def platform_pids(stack: LocalStack) -> dict[str, int]:
    return {name: process.pid for name, process in stack.children().items()}


def _spent(pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds each process has used so far (0 for one that is gone)."""
    spent = {}
    for name, pid in pids.items():
        try:
            spent[name] = cpu_seconds(pid)
        except (FileNotFoundError, ProcessLookupError):
            spent[name] = 0.0
    return spent


def _difference(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {name: after[name] - before[name] for name in after}


Key = tuple[str, str, int]


def measure(
    stacks: dict[str, LocalStack], per_worker_c1: int, per_worker_c16: int
) -> tuple[dict[Key, Result], dict[Key, dict[str, float]]]:
    """Results and CPU milliseconds per request of each process of the platform, by
    (variant, path, concurrency)."""
    paths = {variant: _paths(stack, 16) for variant, stack in stacks.items()}
    pids = {variant: platform_pids(stack) for variant, stack in stacks.items()}
    results: dict[Key, Result] = {}
    cpu: dict[Key, dict[str, float]] = {}
    first = next(iter(stacks))
    for index, (path, concurrency, _) in enumerate(paths[first]):
        per_worker = per_worker_c1 if concurrency == 1 else per_worker_c16
        workers = {v: paths[v][index][2](concurrency) for v in stacks}
        rounds: dict[str, list[Result]] = {v: [] for v in stacks}
        spent = {v: dict.fromkeys(pids[v], 0.0) for v in stacks}
        for round_index in range(ROUNDS):
            for variant in stacks:
                warmup = WARMUP if round_index == 0 else 0
                before = _spent(pids[variant])
                part = run_load(
                    f"{path} [{variant}]", workers[variant], per_worker // ROUNDS, warmup
                )
                for name, seconds in _difference(_spent(pids[variant]), before).items():
                    spent[variant][name] += seconds
                rounds[variant].append(part)
        for variant in stacks:
            result = merged(rounds[variant])
            key = (variant, path, concurrency)
            results[key] = result
            requests = result.calls + result.errors + WARMUP * concurrency
            cpu[key] = {n: s * 1000 / requests for n, s in spent[variant].items()}
            print(
                f"  {path:27} c={concurrency:<2} {variant:11} {result.per_second:7.1f}/s  "
                f"p50 {result.p50:6.1f} ms  p99 {result.p99:6.1f} ms  "
                f"CPU {sum(cpu[key].values()):5.1f} ms/request  errors {result.errors}"
            )
    return results, cpu


def ramp(stack: LocalStack, per_worker: int) -> list[tuple[Result, float]]:
    """The orders/s knee through the bridge: each step's result and the platform's CPU
    milliseconds per order."""
    from bench.__main__ import bridge_calls, trader_tokens

    tokens = trader_tokens(stack, max(RAMP))
    pids = platform_pids(stack)
    steps = []
    for concurrency in RAMP:
        calls = bridge_calls(stack, tokens[:concurrency])
        before = _spent(pids)
        count = max(2, per_worker // concurrency * 4)
        result = run_load(f"ramp c={concurrency}", calls, count, 2)
        orders = result.calls + result.errors + 2 * concurrency
        per_order = sum(_difference(_spent(pids), before).values()) * 1000 / orders
        print(
            f"  ramp c={concurrency:<3} {result.per_second:7.1f}/s  p50 {result.p50:6.1f} ms  "
            f"p99 {result.p99:6.1f} ms  CPU {per_order:5.1f} ms/order  errors {result.errors}"
        )
        steps.append((result, per_order))
    return steps


def report(
    results: dict[Key, Result],
    by_process: dict[Key, dict[str, float]],
    steps: list[tuple[Result, float]],
    reference: str = "before",
) -> str:
    """The tables of a run; ratios are each variant's figure over `reference`'s."""
    cpu = {key: sum(spent.values()) for key, spent in by_process.items()}
    lines = [
        f"Machine: {machine()}; load average at the end: "
        + ", ".join(f"{value:.2f}" for value in os.getloadavg()),
        "",
        "| path | c | variant | requests | per s | p50 ms | p99 ms | errors "
        "| platform CPU ms/request |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for (variant, path, concurrency), r in results.items():
        lines.append(
            f"| {path} | {concurrency} | {variant} | {r.calls} | {r.per_second:.1f} | "
            f"{r.p50:.1f} | {r.p99:.1f} | {r.errors} | {cpu[(variant, path, concurrency)]:.1f} |"
        )
    lines += [
        "",
        f"| path | c | variant | per s / {reference} | p50 / {reference} "
        f"| CPU per request / {reference} |",
        "|---|---|---|---|---|---|",
    ]
    for variant, path, concurrency in results:
        if variant == reference:
            continue
        this, base = results[(variant, path, concurrency)], results[(reference, path, concurrency)]
        lines.append(
            f"| {path} | {concurrency} | {variant} | {this.per_second / base.per_second:.2f} | "
            f"{this.p50 / base.p50:.2f} | "
            f"{cpu[(variant, path, concurrency)] / cpu[(reference, path, concurrency)]:.2f} |"
        )
    names = sorted({name for spent in by_process.values() for name in spent})
    lines += [
        "",
        "CPU milliseconds per request, by process:",
        "",
        "| path | c | variant | " + " | ".join(names) + " |",
        "|---|---|---|" + "---|" * len(names),
    ]
    for (variant, path, concurrency), spent in by_process.items():
        cells = " | ".join(f"{spent[n]:.1f}" if n in spent else "" for n in names)
        lines.append(f"| {path} | {concurrency} | {variant} | {cells} |")
    lines += [
        "",
        'The knee of "after": POST /api/v1/orders through the bridge, concurrency 1 to 64.',
        "",
        "| c | orders | orders/s | p50 ms | p99 ms | errors | platform CPU ms/order |",
        "|---|---|---|---|---|---|---|",
    ]
    for result, per_order in steps:
        lines.append(
            f"| {result.concurrency} | {result.calls} | {result.per_second:.1f} | "
            f"{result.p50:.1f} | {result.p99:.1f} | {result.errors} | {per_order:.1f} |"
        )
    return "\n".join(lines)


@contextmanager
def checkout(ref: str, folder: Path) -> Iterator[tuple[str, Path]]:
    """A detached checkout of `ref` in `folder` (a git worktree, removed afterwards),
    and its short commit name. Raises CalledProcessError for a ref git does not know."""
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", f"{ref}^{{commit}}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--quiet", "--detach", str(folder), commit],
        check=True,
    )
    try:
        yield commit, folder
    finally:
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(folder)], check=False
        )


def main(
    per_worker_c1: int, per_worker_c16: int, write_results: Path | None, baseline: str | None
) -> int:
    from bench.__main__ import OVERRIDES

    with ExitStack() as held:
        scratch = held.enter_context(tempfile.TemporaryDirectory(prefix="bench-levers-"))
        code_roots = {variant: ROOT for variant in VARIANTS}
        overrides = dict(VARIANTS)
        if baseline is not None:
            commit, folder = held.enter_context(checkout(baseline, Path(scratch) / "baseline"))
            code_roots = {f"code at {commit}": folder, **code_roots}
            overrides = {f"code at {commit}": {}, **overrides}
        stacks = {
            variant: LocalStack(
                data_dir=None,
                log_dir=Path(scratch) / variant.replace(" ", "-"),
                overrides={**OVERRIDES, **changed},
                fixed_ports=False,
                code_root=code_roots[variant],
            )
            for variant, changed in overrides.items()
        }
        try:
            for variant, stack in stacks.items():
                print(f"Starting the '{variant}' stack with in-memory engines...")
                # Each stack its own engines: a start leaves its addresses in os.environ.
                for name in ("REDIS_URL", "ORDER_SERVICE_ADDR"):
                    os.environ.pop(name, None)
                stack.start()
            print("Measuring (bounded counts)...")
            results, cpu = measure(stacks, per_worker_c1, per_worker_c16)
            print('The knee of "after"...')
            steps = ramp(stacks["after"], per_worker_c16)
        finally:
            for stack in stacks.values():
                stack.stop()
    table = report(results, cpu, steps, reference=next(iter(stacks)))
    print()
    print(table)
    if write_results:
        write_results.write_text(table + "\n")
    return 0
