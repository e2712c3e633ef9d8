"""Retries live in exactly one layer: the channel's, unless GRPC_CLIENT_RETRIES=false
hands them to the mesh. Counted on a real server that answers UNAVAILABLE."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest
from trading.v1 import user_pb2, user_pb2_grpc

from rest_bridge.__main__ import open_channels
from rest_bridge.app import USER_SERVICE
from rest_bridge.config import BridgeSettings

JWKS = "/trading.v1.UserService/GetJwks"
LOGIN = "/trading.v1.UserService/Login"


class _Unavailable(grpc.GenericRpcHandler):
    """Every call fails UNAVAILABLE; attempts are counted per method."""

    def __init__(self) -> None:
        self.attempts: dict[str, int] = {}
        self._lock = threading.Lock()

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> Any:
        method = handler_call_details.method

        def answer(_request: bytes, context: grpc.ServicerContext) -> bytes:
            with self._lock:
                self.attempts[method] = self.attempts.get(method, 0) + 1
            context.abort(grpc.StatusCode.UNAVAILABLE, "down for the test")

        return grpc.unary_unary_rpc_method_handler(answer)


@pytest.fixture
def failing_user_service() -> Iterator[tuple[str, _Unavailable]]:
    handler = _Unavailable()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), handlers=[handler])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}", handler
    server.stop(0).wait()


def _bridge_call(address: str, method: str, request: Any) -> None:
    """`method` of svc_user called as the bridge's composition root reaches it (its
    grpc.aio channel, on a loop of its own), settings from the environment."""
    settings = BridgeSettings(redis_url="redis://127.0.0.1:1/0", user_service_addr=address)

    async def call() -> None:
        channels = open_channels(settings)
        try:
            users = user_pb2_grpc.UserServiceStub(channels.get(USER_SERVICE))  # type: ignore[arg-type]
            await getattr(users, method)(request, timeout=5)
        finally:
            await channels.close()

    asyncio.run(call())


@pytest.mark.parametrize(("setting", "expected_attempts"), [(None, 3), ("false", 1)])
def test_the_setting_decides_whether_the_channel_retries(
    failing_user_service: tuple[str, _Unavailable],
    monkeypatch: pytest.MonkeyPatch,
    setting: str | None,
    expected_attempts: int,
) -> None:
    address, handler = failing_user_service
    if setting is None:
        monkeypatch.delenv("GRPC_CLIENT_RETRIES", raising=False)
    else:
        monkeypatch.setenv("GRPC_CLIENT_RETRIES", setting)
    with pytest.raises(grpc.RpcError) as caught:
        _bridge_call(address, "GetJwks", user_pb2.GetJwksRequest())
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert handler.attempts[JWKS] == expected_attempts


def test_a_call_the_contract_does_not_mark_retryable_is_tried_once(
    failing_user_service: tuple[str, _Unavailable],
) -> None:
    address, handler = failing_user_service
    with pytest.raises(grpc.RpcError):
        _bridge_call(address, "Login", user_pb2.LoginRequest(username="someone", password="x"))
    assert handler.attempts[LOGIN] == 1
