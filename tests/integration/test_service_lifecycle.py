"""svc_user as an operator meets it: a real process, reflection, health, SIGTERM."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from common.dynamo import ensure_table, make_client
from devstack.engines import ROOT, free_port
from svc_user.config import UserSettings
from tests.support import unique

GRPCURL = Path(sys.executable).parent / "grpcurl"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def _health(channel: grpc.Channel, service: str = "") -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    status: int = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=2).status
    return status


def _wait_until_serving(channel: grpc.Channel, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(process.stderr.read() if process.stderr else "exited")
        try:
            if _health(channel) == SERVING:
                return
        except grpc.RpcError:
            time.sleep(0.05)
    raise TimeoutError("svc_user never reported SERVING")


@pytest.fixture
def user_process(user_settings: UserSettings) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    # Its health follows its store: the table must exist.
    ensure_table(
        make_client(user_settings.dynamodb_endpoint, user_settings.aws_region),
        user_settings.table_prefix + user_settings.users_table,
    )
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'generated'}",
        "USER_GRPC_PORT": str(port),
        "REDIS_URL": user_settings.redis_url,
        "DYNAMODB_ENDPOINT": str(user_settings.dynamodb_endpoint),
        "TABLE_PREFIX": user_settings.table_prefix,
        "JWT_PRIVATE_KEY_FILE": str(user_settings.jwt_private_key_file),
        "ARGON2_TIME_COST": "1",
        "ARGON2_MEMORY_KIB": "8192",
        "SHUTDOWN_DRAIN_SECONDS": "2",
        "SHUTDOWN_GRACE_SECONDS": "1",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "svc_user"], cwd=ROOT, env=env, stderr=subprocess.PIPE
    )
    try:
        yield process, port
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


def test_health_reports_serving_then_not_serving_on_sigterm(
    user_process: tuple[subprocess.Popen[bytes], int],
) -> None:
    process, port = user_process
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        _wait_until_serving(channel, process)
        assert _health(channel, "trading.v1.UserService") == SERVING
        process.send_signal(signal.SIGTERM)
        seen = []
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline and NOT_SERVING not in seen:
            seen.append(_health(channel))
        assert NOT_SERVING in seen
        assert _health(channel, "trading.v1.UserService") == NOT_SERVING
    assert process.wait(timeout=15) == 0
    assert process.stderr is not None
    lines = [json.loads(line) for line in process.stderr.read().decode().splitlines() if line]
    messages = [line["msg"] for line in lines]
    assert messages.index("shutting down") < messages.index("stopped")
    assert all(line["service"] == "svc_user" for line in lines)


def test_a_missing_signing_key_stops_the_start(user_settings: UserSettings) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'generated'}",
        "USER_GRPC_PORT": str(free_port()),
        "REDIS_URL": user_settings.redis_url,
        "JWT_PRIVATE_KEY_FILE": "/nonexistent/key.pem",
    }
    result = subprocess.run(
        [sys.executable, "-m", "svc_user"], cwd=ROOT, env=env, capture_output=True, timeout=30
    )
    assert result.returncode != 0
    assert b"JWT_PRIVATE_KEY_FILE" in result.stderr


def test_reflection_lists_the_services(user_channel: grpc.Channel) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(user_channel)
    responses = stub.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
    )
    names = {s.name for r in responses for s in r.list_services_response.service}
    assert {"trading.v1.UserService", "grpc.health.v1.Health"} <= names


@pytest.mark.skipif(not GRPCURL.exists(), reason="grpcurl is installed by requirements-dev.txt")
def test_grpcurl_lists_and_calls_through_reflection(user_server: object) -> None:
    port = user_server.port  # type: ignore[attr-defined]
    target = f"127.0.0.1:{port}"
    listed = subprocess.run(
        [str(GRPCURL), "-plaintext", target, "list"], capture_output=True, text=True, timeout=30
    )
    assert listed.returncode == 0, listed.stderr
    assert "trading.v1.UserService" in listed.stdout.split()
    name = unique()
    body = {
        "username": name,
        "email": f"{name}@example.org",
        "password": "Correct-Horse-42!",
        "first_name": "Grace",
        "last_name": "Hopper",
    }
    called = subprocess.run(
        [
            str(GRPCURL),
            "-plaintext",
            "-d",
            json.dumps(body),
            target,
            "trading.v1.UserService/Register",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert called.returncode == 0, called.stderr
    assert json.loads(called.stdout)["message"] == "User registered successfully"
    assert shutil.which(str(GRPCURL))
