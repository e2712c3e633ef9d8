"""svc_user started for real, in this process, on an ephemeral port: fixtures and
helpers. tests/conftest.py makes the fixtures visible to every folder, so one svc_user
serves the whole session."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from trading.v1 import user_pb2, user_pb2_grpc

from common.dynamo import ensure_table, make_client
from common.grpc_errors import error_info
from common.server import RunningServer
from svc_user.__main__ import build
from svc_user.config import UserSettings
from tests.support import PATIENT_STORE, Pki, dial, tls_settings, unique

STRONG_PASSWORD = "Correct-Horse-42!"


@pytest.fixture(scope="session")
def user_settings(
    dynamodb_endpoint: str,
    redis_url: str,
    table_prefix: str,
    signing_key_file: Path,
    wire_pki: Pki,
) -> UserSettings:
    return UserSettings(
        grpc_host="127.0.0.1",
        user_grpc_port=0,
        redis_url=redis_url,
        dynamodb_endpoint=dynamodb_endpoint,
        table_prefix=table_prefix,
        jwt_private_key_file=signing_key_file,
        # Cheaper Argon2id keeps the suite quick; the algorithm and code path are the same.
        argon2_time_cost=1,
        argon2_memory_kib=8192,
        argon2_parallelism=1,
        shutdown_drain_seconds=0,
        shutdown_grace_seconds=0,
        # Every test calls from 127.0.0.1; tests of the throttle start their own svc_user.
        login_max_failures=100_000,
        **PATIENT_STORE,  # type: ignore[arg-type]
        **tls_settings(wire_pki, "svc_user"),  # type: ignore[arg-type]
    )


@pytest.fixture(scope="session")
def user_server(user_settings: UserSettings) -> Iterator[RunningServer]:
    client = make_client(user_settings.dynamodb_endpoint, user_settings.aws_region)
    ensure_table(client, user_settings.table_prefix + user_settings.users_table)
    running = build(user_settings)
    yield running
    running.shutdown()


@pytest.fixture(scope="session")
def user_channel(user_server: RunningServer, wire_pki: Pki) -> Iterator[grpc.Channel]:
    # On mTLS the tests call svc_user as the bridge does.
    channel = dial(wire_pki, user_server.port, "svc_user", "rest_bridge")
    yield channel
    channel.close()


@pytest.fixture(scope="session")
def users(user_channel: grpc.Channel) -> user_pb2_grpc.UserServiceStub:
    return user_pb2_grpc.UserServiceStub(user_channel)


def registration(**overrides: object) -> user_pb2.RegisterRequest:
    name = unique()
    fields: dict[str, object] = {
        "username": name,
        "email": f"{name}@example.org",
        "password": STRONG_PASSWORD,
        "first_name": "ada",
        "last_name": "lovelace",
    }
    fields.update(overrides)
    return user_pb2.RegisterRequest(**fields)  # type: ignore[arg-type]


def outcome(call: Callable[[], object]) -> str:
    """ "OK", or the refusal as "CODE:REASON" (its ErrorInfo reason)."""
    try:
        call()
    except grpc.RpcError as error:
        info = error_info(error)
        return f"{error.code().name}:{info.reason if info else ''}"
    return "OK"


def bearer(token: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {token}"),)


def register_and_login(
    users: user_pb2_grpc.UserServiceStub, **overrides: object
) -> tuple[user_pb2.RegisterRequest, user_pb2.LoginResponse]:
    request = registration(**overrides)
    users.Register(request, timeout=10)
    tokens = users.Login(
        user_pb2.LoginRequest(username=request.username, password=request.password), timeout=10
    )
    return request, tokens
