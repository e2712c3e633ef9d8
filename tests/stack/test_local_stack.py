"""The README's first command: `./dev up` brings everything up, Ctrl-C stops it all,
and a restart keeps every user."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import psutil
import pytest
from trading.v1 import user_pb2, user_pb2_grpc

from devstack.engines import ROOT
from devstack.stack import existing_specs
from tests.support import stack_ports, unique

PASSWORD = "Correct-Horse-42!"


def _start(data_dir: Path, ports: dict[str, str], *options: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DYNAMODB_ENDPOINT")}
    env.update(ports)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "generated")])
    return subprocess.Popen(
        [sys.executable, "-m", "devstack", "--data-dir", str(data_dir), *options],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_up(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    seen = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        seen.append(line)
        if "Ctrl-C stops everything" in line:
            return "".join(seen)
    raise AssertionError("the stack did not come up:\n" + "".join(seen))


def _stop(process: subprocess.Popen[str]) -> tuple[int, list[int]]:
    children = [c.pid for c in psutil.Process(process.pid).children(recursive=True)]
    process.send_signal(signal.SIGINT)
    code = process.wait(timeout=60)
    return code, [pid for pid in children if psutil.pid_exists(pid) and _alive(pid)]


def _alive(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


@pytest.mark.slow
def test_up_prints_addresses_stops_everything_and_keeps_users(tmp_path: Path) -> None:
    ports = stack_ports()
    user_address = f"127.0.0.1:{ports['USER_GRPC_PORT']}"
    name = unique()

    stack = _start(tmp_path, ports)
    try:
        printed = _wait_up(stack)
        for spec in existing_specs():
            assert f"127.0.0.1:{ports[spec.port_variable]}" in printed, spec.name
        assert f"grpcurl -plaintext {user_address} list" in printed
        assert f"http://127.0.0.1:{ports['BRIDGE_PORT']}/docs" in printed
        with grpc.insecure_channel(user_address) as channel:
            user_pb2_grpc.UserServiceStub(channel).Register(
                user_pb2.RegisterRequest(
                    username=name,
                    email=f"{name}@example.org",
                    password=PASSWORD,
                    first_name="Ada",
                    last_name="Lovelace",
                ),
                timeout=30,
            )
    finally:
        code, survivors = _stop(stack)
    assert code == 0
    assert survivors == [], "Ctrl-C left processes running"

    restarted = _start(tmp_path, ports)
    try:
        _wait_up(restarted)
        with grpc.insecure_channel(user_address) as channel:
            tokens = user_pb2_grpc.UserServiceStub(channel).Login(
                user_pb2.LoginRequest(username=name, password=PASSWORD), timeout=30
            )
        assert tokens.access_token
    finally:
        code, survivors = _stop(restarted)
    assert code == 0
    assert survivors == []
