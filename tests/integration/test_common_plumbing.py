"""The shared plumbing as a client meets it: deadlines, request ids, hidden failures."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import uuid
from base64 import urlsafe_b64encode
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from trading.v1 import user_pb2, user_pb2_grpc

from common.channels import CallPolicy, make_channel
from common.context import deadline_var, request_id_var
from common.errors import Unavailable
from common.grpc_errors import error_info
from common.redis_clients import redis_client
from common.revocation import RevocationList
from common.server import RunningServer, start_server
from common.settings import read_secret_file, refuse_placeholder
from common.tokens import AccessTokenVerifier, AsyncJwksKeys, JwksKeyResolver
from svc_user.config import UserSettings
from svc_user.credentials import PasswordHasher, TokenIssuer, load_private_key
from svc_user.server import SERVICE_NAME, UserServicer, register
from svc_user.service import UserService
from svc_user.throttle import RedisLoginThrottle

SERVICES = [SERVICE_NAME]
POLICY = CallPolicy(default_deadline=5, budget=5)


def test_the_request_id_travels_and_comes_back(user_server: RunningServer) -> None:
    channel = make_channel(
        f"127.0.0.1:{user_server.port}", services=SERVICES, policy=CallPolicy(5, 5)
    )
    users = user_pb2_grpc.UserServiceStub(channel)
    token = request_id_var.set("trace-me.42")
    try:
        _, call = users.GetJwks.with_call(user_pb2.GetJwksRequest())
    finally:
        request_id_var.reset(token)
    assert ("x-request-id", "trace-me.42") in call.trailing_metadata()


def test_an_insane_request_id_is_replaced(user_channel: grpc.Channel) -> None:
    users = user_pb2_grpc.UserServiceStub(user_channel)
    _, call = users.GetJwks.with_call(
        user_pb2.GetJwksRequest(), metadata=(("x-request-id", "bad id with spaces"),)
    )
    returned = dict(call.trailing_metadata())["x-request-id"]
    assert returned != "bad id with spaces"
    assert len(returned) == 32


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    listener.close()


def test_every_outgoing_call_has_a_deadline(silent_server: int) -> None:
    channel = make_channel(
        f"127.0.0.1:{silent_server}", services=SERVICES, policy=CallPolicy(0.5, 5)
    )
    users = user_pb2_grpc.UserServiceStub(channel)
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as caught:
        users.GetJwks(user_pb2.GetJwksRequest(), wait_for_ready=True)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - started < 5


class _BrokenStore:
    def __getattr__(self, name: str) -> Any:
        raise RuntimeError("disk on fire: secret internals")


@pytest.fixture
def broken_user_server(user_settings: UserSettings) -> Iterator[RunningServer]:
    """svc_user whose store fails in an unexpected way on every call."""
    tokens = TokenIssuer(
        load_private_key(user_settings.jwt_private_key_file.read_bytes()),
        issuer=user_settings.jwt_issuer,
        audience=user_settings.jwt_audience,
        access_ttl_seconds=60,
        refresh_ttl_seconds=60,
    )
    redis = redis_client(user_settings.redis_url)
    revocations = RevocationList(redis)
    service = UserService(
        store=_BrokenStore(),
        hasher=PasswordHasher(1, 8192, 1),
        tokens=tokens,
        revocations=revocations,
        throttle=RedisLoginThrottle(
            redis, f"broken-{uuid.uuid4().hex}", max_failures=5, window_seconds=60, block_seconds=60
        ),
        clock=lambda: datetime.now(UTC),
        new_id=lambda: uuid.uuid4().hex,
    )
    running = start_server(
        service_names=SERVICES,
        register=register(UserServicer(service)),
        verifier=AccessTokenVerifier(
            issuer=tokens.issuer,
            audience=tokens.audience,
            resolve_key=tokens.resolve,
            revocations=revocations,
        ),
        host="127.0.0.1",
        port=0,
        max_workers=4,
        drain_seconds=0,
        grace_seconds=0,
    )
    yield running
    running.shutdown()


def test_an_unexpected_failure_is_internal_without_details(
    broken_user_server: RunningServer,
) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{broken_user_server.port}") as channel:
        users = user_pb2_grpc.UserServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            users.Login(user_pb2.LoginRequest(username="someone", password="x"))
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    details = caught.value.details() or ""
    assert "secret" not in details
    assert "internal error (request id " in details
    info = error_info(caught.value)
    assert info is not None
    assert info.reason == "INTERNAL"


@pytest.mark.parametrize("value", ["", "changeme", "CHANGE_ME please", "<your secret>", "xxx"])
def test_placeholder_secrets_are_refused(value: str) -> None:
    with pytest.raises(ValueError, match="REDIS_URL"):
        refuse_placeholder("REDIS_URL", value)


def test_a_missing_or_placeholder_key_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        read_secret_file("JWT_PRIVATE_KEY_FILE", tmp_path / "absent.pem")
    placeholder = tmp_path / "key.pem"
    placeholder.write_text("CHANGEME\n")
    with pytest.raises(ValueError, match="placeholder"):
        read_secret_file("JWT_PRIVATE_KEY_FILE", placeholder)


def test_a_caller_without_deadline_gives_inner_calls_the_default(
    user_server: RunningServer,
) -> None:
    # A call without a deadline reports ~9.2e18 s left; passed on, gRPC fails at once.
    channel = make_channel(
        f"127.0.0.1:{user_server.port}", services=SERVICES, policy=CallPolicy(5, 5)
    )
    users = user_pb2_grpc.UserServiceStub(channel)
    token = deadline_var.set(time.monotonic() + 9.2e18)
    try:
        assert users.GetJwks(user_pb2.GetJwksRequest()).keys
    finally:
        deadline_var.reset(token)


def test_key_fetch_failures_are_unavailable_and_retried_soon() -> None:
    attempts: list[int] = []

    def fetch() -> list[dict[str, str]]:
        attempts.append(1)
        raise ConnectionError("svc_user is down")

    resolver = JwksKeyResolver(fetch, min_refetch_seconds=30)
    with pytest.raises(Unavailable):
        resolver("some-kid")
    assert resolver("some-kid") is None  # within the retry pause: no new fetch
    assert len(attempts) == 1


def test_the_async_key_fetch_keeps_the_same_rules() -> None:
    # The bridge's resolver (fetched over grpc.aio): one fetch for callers that
    # arrive together, a failure is Unavailable and not retried within its pause.
    public = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    jwk = {"kty": "OKP", "crv": "Ed25519", "kid": "k1", "x": urlsafe_b64encode(public).decode()}
    attempts: list[int] = []

    async def slow() -> list[dict[str, str]]:
        attempts.append(1)
        await asyncio.sleep(0.05)
        return [jwk]

    async def failing() -> list[dict[str, str]]:
        attempts.append(1)
        raise ConnectionError("svc_user is down")

    async def scenario() -> None:
        keys = AsyncJwksKeys(slow, min_refetch_seconds=30)
        await asyncio.gather(*(keys.load("k1") for _ in range(5)))
        assert keys.known("k1") is not None
        assert len(attempts) == 1
        attempts.clear()
        keys = AsyncJwksKeys(failing, min_refetch_seconds=30)
        with pytest.raises(Unavailable):
            await keys.load("some-kid")
        await keys.load("some-kid")  # within the retry pause: no new fetch
        assert keys.known("some-kid") is None
        assert len(attempts) == 1

    asyncio.run(scenario())
