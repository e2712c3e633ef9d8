"""The server interceptor authenticates every kind of RPC, not only unary ones.

No contract has a client-streaming or bidirectional RPC yet, so a test service inside
our package adds one of each kind; a call without a valid token must be refused before
the handler runs or reads a single message.
"""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from trading.v1 import user_pb2, user_pb2_grpc

from common.channels import CallPolicy
from common.context import current_identity
from common.redis_clients import redis_client
from common.revocation import RevocationList
from common.server import RunningServer, start_server
from common.tokens import AccessTokenVerifier
from common.user_keys import user_service_channel, user_service_keys
from svc_user.config import UserSettings
from tests.user_service import bearer, register_and_login

PROBE = "trading.v1.StreamProbe"
KINDS = ("UnaryUnary", "UnaryStream", "StreamUnary", "StreamStream")


def _same(data: bytes) -> bytes:
    return data


class Probe:
    """Answers each message with the caller's user id; counts the messages it read."""

    def __init__(self) -> None:
        self.reads = 0

    def _reply(self) -> bytes:
        return current_identity().user_id.encode()

    def unary_unary(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        self.reads += 1
        return self._reply()

    def unary_stream(self, request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
        self.reads += 1
        yield self._reply()
        yield self._reply()

    def stream_unary(self, requests: Iterator[bytes], context: grpc.ServicerContext) -> bytes:
        for _ in requests:
            self.reads += 1
        return self._reply()

    def stream_stream(
        self, requests: Iterator[bytes], context: grpc.ServicerContext
    ) -> Iterator[bytes]:
        for _ in requests:
            self.reads += 1
            yield self._reply()

    def handler(self) -> grpc.GenericRpcHandler:
        kinds = {
            "UnaryUnary": grpc.unary_unary_rpc_method_handler(self.unary_unary, _same, _same),
            "UnaryStream": grpc.unary_stream_rpc_method_handler(self.unary_stream, _same, _same),
            "StreamUnary": grpc.stream_unary_rpc_method_handler(self.stream_unary, _same, _same),
            "StreamStream": grpc.stream_stream_rpc_method_handler(self.stream_stream, _same, _same),
        }
        return grpc.method_handlers_generic_handler(PROBE, kinds)


@pytest.fixture
def probe_server(
    user_settings: UserSettings, user_server: RunningServer
) -> Iterator[tuple[Probe, RunningServer]]:
    probe = Probe()
    keys_channel = user_service_channel(f"127.0.0.1:{user_server.port}", CallPolicy(5, 5))
    running = start_server(
        service_names=[PROBE],
        register=lambda server: server.add_generic_rpc_handlers((probe.handler(),)),
        verifier=AccessTokenVerifier(
            issuer=user_settings.jwt_issuer,
            audience=user_settings.jwt_audience,
            resolve_key=user_service_keys(keys_channel),
            revocations=RevocationList(redis_client(user_settings.redis_url)),
        ),
        host="127.0.0.1",
        port=0,
        max_workers=4,
        drain_seconds=0,
        grace_seconds=0,
    )
    yield probe, running
    running.shutdown()
    keys_channel.close()


def _call(channel: grpc.Channel, kind: str, metadata: tuple[tuple[str, str], ...]) -> list[bytes]:
    path = f"/{PROBE}/{kind}"
    messages = iter([b"one", b"two"])
    if kind == "UnaryUnary":
        return [channel.unary_unary(path, _same, _same)(b"one", metadata=metadata, timeout=10)]
    if kind == "UnaryStream":
        return list(channel.unary_stream(path, _same, _same)(b"one", metadata=metadata, timeout=10))
    if kind == "StreamUnary":
        return [channel.stream_unary(path, _same, _same)(messages, metadata=metadata, timeout=10)]
    return list(channel.stream_stream(path, _same, _same)(messages, metadata=metadata, timeout=10))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "metadata",
    [(), (("authorization", "Bearer not-a-token"),), (("authorization", "Basic abc"),)],
    ids=["no token", "bad token", "not bearer"],
)
def test_every_kind_of_rpc_refuses_a_caller_without_a_valid_token(
    probe_server: tuple[Probe, RunningServer], kind: str, metadata: tuple[tuple[str, str], ...]
) -> None:
    probe, running = probe_server
    with (
        grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel,
        pytest.raises(grpc.RpcError) as caught,
    ):
        _call(channel, kind, metadata)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert probe.reads == 0, "the handler read a message of an unauthenticated call"


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_of_rpc_serves_a_verified_caller(
    probe_server: tuple[Probe, RunningServer],
    users: user_pb2_grpc.UserServiceStub,
    kind: str,
) -> None:
    probe, running = probe_server
    _, tokens = register_and_login(users)
    with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        answers = _call(channel, kind, bearer(tokens.access_token))
    assert len(answers) >= 1
    assert len(set(answers)) == 1
    assert len(answers[0]) == 32
    assert probe.reads >= 1


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_of_rpc_refuses_a_logged_out_token(
    probe_server: tuple[Probe, RunningServer],
    users: user_pb2_grpc.UserServiceStub,
    kind: str,
) -> None:

    probe, running = probe_server
    _, tokens = register_and_login(users)
    users.Logout(user_pb2.LogoutRequest(), metadata=bearer(tokens.access_token), timeout=10)
    with (
        grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel,
        pytest.raises(grpc.RpcError) as caught,
    ):
        _call(channel, kind, bearer(tokens.access_token))
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert probe.reads == 0
