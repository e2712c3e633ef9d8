"""PlaceOrder measured three ways in one run, side by side, as ratios.

    ./dev bench            (or: python -m bench [--write-results])

1. the store alone: the DynamoDB operations one market buy needs (read the account,
   one conditional write, the derived order and ledger items), issued directly;
2. PlaceOrder over gRPC to svc_order (which fetches a quote from svc_inventory);
3. POST /api/v1/orders through the REST bridge, when the bridge exists.

Each at concurrency 1 and 16, every worker a user of its own, on a fresh local stack
with in-memory engines. Counts are bounded; nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import grpc
from trading.v1 import order_pb2, order_pb2_grpc, user_pb2, user_pb2_grpc

from bench.harness import Result, cpu_seconds, machine, merged, peak_rss_mb, run_load
from common.channels import channel_target
from common.dynamo import Table, make_client
from devstack.stack import LocalStack
from svc_order import domain
from svc_order.store import DynamoTradingStore

PASSWORD = "Bench-Password-42!"
QUANTITY = "0.001"
WARMUP = 5
ROUNDS = 4
STORE_PRICE = Decimal("67000.00")
# Benchmarks raise the limits; they never bypass them.
OVERRIDES = {
    "DAILY_DEPOSIT_LIMIT": "100000000",
    "MAX_ORDER_VALUE": "1000000",
    "RATE_LIMIT_IP_PER_SECOND": "100000",
    "RATE_LIMIT_IP_BURST": "100000",
    "RATE_LIMIT_USER_PER_SECOND": "100000",
    "RATE_LIMIT_USER_BURST": "100000",
    "LOG_LEVEL": "WARNING",
}


def trader_tokens(stack: LocalStack, count: int) -> list[str]:
    """Access tokens of `count` new users, each with 1,000,000.00 deposited."""
    tokens = []
    with (
        grpc.insecure_channel(f"127.0.0.1:{stack.port('svc_user')}") as to_users,
        grpc.insecure_channel(f"127.0.0.1:{stack.port('svc_order')}") as to_orders,
    ):
        users = user_pb2_grpc.UserServiceStub(to_users)
        orders = order_pb2_grpc.OrderServiceStub(to_orders)
        for _ in range(count):
            name = f"bench_{uuid.uuid4().hex[:12]}"
            users.Register(
                user_pb2.RegisterRequest(
                    username=name,
                    email=f"{name}@example.org",
                    password=PASSWORD,
                    first_name="Bench",
                    last_name="Trader",
                ),
                timeout=30,
            )
            token = users.Login(
                user_pb2.LoginRequest(username=name, password=PASSWORD), timeout=30
            ).access_token
            orders.Deposit(
                order_pb2.DepositRequest(amount="1000000"),
                metadata=(("authorization", f"Bearer {token}"),),
                timeout=30,
            )
            tokens.append(token)
    return tokens


def store_calls(stack: LocalStack, count: int) -> list[Callable[[], None]]:
    """One market buy each, as svc_order's store issues it, with no service around."""
    client = make_client(stack.env["DYNAMODB_ENDPOINT"], stack.env["AWS_REGION"], 64)
    store = DynamoTradingStore(Table(client, stack.env.get("TABLE_PREFIX", "") + "trading"))
    limits = domain.Limits(max_order_value=Decimal("1000000"))
    order = domain.OrderRequest(domain.OrderType.MARKET_BUY, "BTC", Decimal(QUANTITY))
    calls: list[Callable[[], None]] = []
    for _ in range(count):
        user_id = f"store-bench-{uuid.uuid4().hex}"
        funded = domain.deposit(
            domain.new_account(user_id, datetime.now(UTC)),
            Decimal("1000000"),
            domain.Request(datetime.now(UTC), uuid.uuid4().hex),
            domain.Limits(daily_deposit_limit=Decimal("1000000")),
        )
        store.save_account(funded.account, 0)
        store.put_derived(user_id, domain.derived_items(funded.operation))

        def buy(user_id: str = user_id) -> None:
            account = store.get_account(user_id)
            assert account is not None
            now = datetime.now(UTC)
            change = domain.place_order(
                account,
                order,
                domain.MarketQuote(STORE_PRICE),
                domain.Request(now, uuid.uuid4().hex),
                limits,
            )
            if not store.save_account(change.account, account.version):
                raise RuntimeError("lost a race nobody else was running")
            store.put_derived(user_id, domain.derived_items(change.operation))

        calls.append(buy)
    return calls


def order_channel(stack: LocalStack) -> grpc.Channel:
    """A channel to every svc_order process of the stack, calls spread round robin as
    the bridge's are (common.channels)."""
    target, several = channel_target(stack.env["ORDER_SERVICE_ADDR"])
    config: dict[str, object] = {"loadBalancingConfig": [{"round_robin": {}}]} if several else {}
    return grpc.insecure_channel(target, options=[("grpc.service_config", json.dumps(config))])


def grpc_calls(stack: LocalStack, tokens: list[str]) -> list[Callable[[], None]]:
    channel = order_channel(stack)
    orders = order_pb2_grpc.OrderServiceStub(channel)
    request = order_pb2.PlaceOrderRequest(
        order_type="market_buy", asset_id="BTC", quantity=QUANTITY
    )

    def caller(token: str) -> Callable[[], None]:
        metadata = (("authorization", f"Bearer {token}"),)

        def place() -> None:
            orders.PlaceOrder(request, metadata=metadata, timeout=30)

        return place

    return [caller(token) for token in tokens]


def bridge_calls(stack: LocalStack, tokens: list[str]) -> list[Callable[[], None]]:
    import httpx

    base = f"http://127.0.0.1:{stack.port('rest_bridge')}"
    body = {"order_type": "market_buy", "asset_id": "BTC", "quantity": QUANTITY}

    def caller(token: str) -> Callable[[], None]:
        client = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"})

        def place() -> None:
            response = client.post("/api/v1/orders", json=body, timeout=30)
            if response.status_code != 201:
                raise RuntimeError(f"{response.status_code}: {response.text[:200]}")

        return place

    return [caller(token) for token in tokens]


def stack_pids(stack: LocalStack) -> dict[str, int]:
    pids = {name: p.pid for name, p in stack.processes.items()}
    pids.update({e.name: e.process.pid for e in stack.engines})
    pids["bench client"] = os.getpid()
    return pids


def measure(
    stack: LocalStack, per_worker_c1: int, per_worker_c16: int
) -> tuple[list[Result], dict[tuple[str, int], dict[str, float]]]:
    """The results, and per run the CPU milliseconds each process spent per order."""
    results = []
    cpu_per_order: dict[tuple[str, int], dict[str, float]] = {}
    pids = stack_pids(stack)
    tokens = trader_tokens(stack, 16)
    kinds: list[tuple[str, Callable[[int], list[Callable[[], None]]]]] = [
        ("store alone", lambda n: store_calls(stack, n)),
        ("gRPC PlaceOrder", lambda n: grpc_calls(stack, tokens[:n])),
    ]
    if any(spec.name == "rest_bridge" for spec in stack.specs):
        kinds.append(("REST POST /api/v1/orders", lambda n: bridge_calls(stack, tokens[:n])))
    for concurrency, per_worker in ((1, per_worker_c1), (16, per_worker_c16)):
        workers = {name: make(concurrency) for name, make in kinds}
        rounds: dict[str, list[Result]] = {name: [] for name, _ in kinds}
        spent = {name: dict.fromkeys(pids, 0.0) for name, _ in kinds}
        # The paths take turns, a slice each, so drift of the shared machine (other
        # load, CPU clocks, the engine warming up) falls on all of them alike.
        for round_index in range(ROUNDS):
            for name, _ in kinds:
                warmup = WARMUP if round_index == 0 else 0
                before = {process: cpu_seconds(pid) for process, pid in pids.items()}
                part = run_load(name, workers[name], per_worker // ROUNDS, warmup)
                for process, pid in pids.items():
                    spent[name][process] += cpu_seconds(pid) - before[process]
                rounds[name].append(part)
        for name, _ in kinds:
            result = merged(rounds[name])
            # CPU is read around every slice, warm-up calls included.
            orders = result.calls + result.errors + WARMUP * concurrency
            cpu_per_order[(name, concurrency)] = {
                process: seconds * 1000 / orders for process, seconds in spent[name].items()
            }
            print(
                f"  {name:26} c={concurrency:<2} {result.per_second:7.1f}/s  "
                f"p50 {result.p50:6.1f} ms  p99 {result.p99:6.1f} ms  errors {result.errors}"
            )
            results.append(result)
    return results, cpu_per_order


def report(
    results: list[Result],
    memory: dict[str, float],
    cpu_per_order: dict[tuple[str, int], dict[str, float]],
) -> str:
    by_key = {(r.name, r.concurrency): r for r in results}
    lines = [
        f"Machine: {machine()}",
        "",
        "| path | concurrency | orders | orders/s | p50 ms | p99 ms | errors |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.name} | {r.concurrency} | {r.calls} | {r.per_second:.1f} | "
            f"{r.p50:.1f} | {r.p99:.1f} | {r.errors} |"
        )
    lines += ["", "| ratio | value | target |", "|---|---|---|"]
    store1, store16 = by_key[("store alone", 1)], by_key[("store alone", 16)]
    grpc1, grpc16 = by_key[("gRPC PlaceOrder", 1)], by_key[("gRPC PlaceOrder", 16)]
    lines.append(f"| gRPC p50 / store p50, c=1 | {grpc1.p50 / store1.p50:.2f} | <= 1.5 |")
    lines.append(
        f"| gRPC orders/s / store orders/s, c=16 | {grpc16.per_second / store16.per_second:.2f}"
        " | >= 0.6 |"
    )
    rest1 = by_key.get(("REST POST /api/v1/orders", 1))
    rest16 = by_key.get(("REST POST /api/v1/orders", 16))
    if rest1 and rest16:
        lines.append(f"| REST p50 / gRPC p50, c=1 | {rest1.p50 / grpc1.p50:.2f} | <= 1.25 |")
        lines.append(f"| REST p50 / gRPC p50, c=16 | {rest16.p50 / grpc16.p50:.2f} | <= 1.25 |")
        lines.append(
            f"| REST orders/s / store orders/s, c=16 | "
            f"{rest16.per_second / store16.per_second:.2f} | |"
        )
        lines.append(f"| REST orders/s, c=16 | {rest16.per_second:.0f} | >= 310 |")
        lines.append(f"| REST p99 ms, c=16 | {rest16.p99:.0f} | <= 50 |")
    processes = list(next(iter(cpu_per_order.values())))
    lines += [
        "",
        "CPU milliseconds per order, by process:",
        "",
        "| path | c | " + " | ".join(processes) + " | total |",
        "|---|---|" + "---|" * (len(processes) + 1),
    ]
    for (name, concurrency), spent in cpu_per_order.items():
        cells = " | ".join(f"{spent[p]:.1f}" for p in processes)
        lines.append(f"| {name} | {concurrency} | {cells} | {sum(spent.values()):.1f} |")
    lines += ["", "| process | peak resident MB | target |", "|---|---|---|"]
    for name, mb in memory.items():
        target = "< 150" if name.startswith(("svc_", "rest_")) else ""
        lines.append(f"| {name} | {mb:.0f} | {target} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--c1", type=int, default=200, help="orders at concurrency 1")
    parser.add_argument("--c16", type=int, default=50, help="orders per worker at 16")
    parser.add_argument("--write-results", type=Path, help="also write the table here")
    parser.add_argument(
        "--telemetry",
        action="store_true",
        help="instead: the cost of tracing and metrics, on against off (bench/telemetry.py)",
    )
    parser.add_argument(
        "--levers",
        action="store_true",
        help="instead: issue 13's levers, before against after, and the knee (bench/levers.py)",
    )
    parser.add_argument(
        "--baseline",
        metavar="REF",
        help="with --levers: also run the services of commit REF side by side (a "
        "temporary git worktree) and take the ratios against them",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="instead: py-spy profiles of every process under the heaviest load "
        "(bench/profile.py; --write-results names their folder)",
    )
    parser.add_argument(
        "--gil",
        action="store_true",
        help="with --profile: only samples that hold the GIL (the Python CPU, no waits)",
    )
    args = parser.parse_args()
    if args.profile:
        from bench import profile

        return profile.main(args.write_results, gil=args.gil)
    if args.levers:
        from bench import levers

        return levers.main(args.c1, args.c16, args.write_results, args.baseline)
    if args.telemetry:
        from bench import telemetry

        return telemetry.main(args.c1, args.c16, args.write_results)
    with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
        stack = LocalStack(
            data_dir=None, log_dir=Path(scratch), overrides=OVERRIDES, fixed_ports=False
        )
        try:
            print("Starting a local stack with in-memory engines...")
            stack.start()
            print("Measuring (bounded counts)...")
            results, cpu_per_order = measure(stack, args.c1, args.c16)
            memory = {name: peak_rss_mb(p.pid) for name, p in stack.processes.items()}
            memory.update({e.name: peak_rss_mb(e.process.pid) for e in stack.engines})
        finally:
            stack.stop()
    table = report(results, memory, cpu_per_order)
    print()
    print(table)
    if args.write_results:
        args.write_results.write_text(table + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
