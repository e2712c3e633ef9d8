"""The grpc.aio channels of the factory (common/channels.py: make_aio_channel), as the
bridge uses them, against real gRPC servers: the caller's request id, identity and
deadline reach the service as over a sync channel; a server stream is not cut by the
budget; cancelling an awaited call cancels the RPC on the server; calls are counted in
the client families; several addresses are called round robin."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from prometheus_client import REGISTRY

from common.channels import CallPolicy, make_aio_channel
from common.context import Identity, deadline_var, identity_var, request_id_var
from rest_bridge.calls import unary_call

SERVICE = "trading.v1.InventoryService"
UNARY = f"/{SERVICE}/ListAssets"
STREAM = f"/{SERVICE}/StreamPrices"


def _same(data: bytes) -> bytes:
    return data


@dataclass
class Seen:
    """What a call brought to the service: its metadata and the time it had left."""

    metadata: dict[str, str]
    time_remaining: float | None


@dataclass
class Fake:
    """ListAssets answers (or hangs while `hang` is set); StreamPrices sends `ticks`
    messages 0.1 s apart. Every call is recorded; `ended` is set when a call ends."""

    name: str = "fake"
    seen: list[Seen] = field(default_factory=list)
    hang: bool = False
    ticks: int = 2
    started: threading.Event = field(default_factory=threading.Event)
    ended: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    def _record(self, context: grpc.ServicerContext) -> None:
        metadata = {key: str(value) for key, value in context.invocation_metadata()}
        self.seen.append(Seen(metadata, context.time_remaining()))
        context.add_callback(self.ended.set)

    def unary(self, _request: bytes, context: grpc.ServicerContext) -> bytes:
        self._record(context)
        self.started.set()
        if self.hang:
            self.release.wait(20)
        return self.name.encode()

    def stream(self, _request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
        self._record(context)
        for _ in range(self.ticks):
            time.sleep(0.1)
            yield b"tick"


@dataclass
class Served:
    fake: Fake
    server: grpc.Server
    port: int


def _serve(fake: Fake) -> Served:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {
        "ListAssets": grpc.unary_unary_rpc_method_handler(fake.unary),
        "StreamPrices": grpc.unary_stream_rpc_method_handler(fake.stream),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return Served(fake, server, port)


@pytest.fixture
def served() -> Iterator[Served]:
    running = _serve(Fake())
    yield running
    running.fake.release.set()
    running.server.stop(0).wait()


def _policy(budget: float = 30.0) -> CallPolicy:
    return CallPolicy(default_deadline=60.0, budget=budget)


async def _unary(port: int, policy: CallPolicy, timeout: float | None = None) -> bytes:
    channel = make_aio_channel(f"127.0.0.1:{port}", services=[SERVICE], policy=policy)
    try:
        answer: bytes = await channel.unary_unary(UNARY, _same, _same)(b"", timeout=timeout)
        return answer
    finally:
        await channel.close()


async def _stream(port: int, policy: CallPolicy, timeout: float | None) -> list[bytes]:
    channel = make_aio_channel(f"127.0.0.1:{port}", services=[SERVICE], policy=policy)
    try:
        call = channel.unary_stream(STREAM, _same, _same)(b"", timeout=timeout)
        return [message async for message in call]
    finally:
        await channel.close()


def test_the_callers_request_id_identity_and_deadline_reach_the_service(
    served: Served,
) -> None:
    identity = Identity("user-1", "user", "jti-1", "sid-1", 0, "raw.token.value")
    request_id = request_id_var.set("aio-request-1")
    caller = identity_var.set(identity)
    deadline = deadline_var.set(time.monotonic() + 10)
    try:
        asyncio.run(_unary(served.port, _policy()))
        asyncio.run(_stream(served.port, _policy(), timeout=None))
    finally:
        deadline_var.reset(deadline)
        identity_var.reset(caller)
        request_id_var.reset(request_id)
    unary, stream = served.fake.seen
    for seen in (unary, stream):
        assert seen.metadata["x-request-id"] == "aio-request-1"
        assert seen.metadata["authorization"] == "Bearer raw.token.value"
    # An awaited answer keeps a fifth of the caller's 10 s in reserve; a stream does not.
    assert unary.time_remaining is not None
    assert unary.time_remaining <= 8.0
    assert stream.time_remaining is not None
    assert stream.time_remaining > 8.0


def test_the_budget_cuts_an_awaited_answer_but_not_a_stream(served: Served) -> None:
    served.fake.ticks = 6  # 0.6 s of ticks, beyond the budget
    assert asyncio.run(_stream(served.port, _policy(budget=0.3), timeout=30)) == [b"tick"] * 6
    served.fake.hang = True
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as caught:
        asyncio.run(_unary(served.port, _policy(budget=0.3), timeout=20))
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - started < 10  # the budget, not the caller's 20 s


def test_cancelling_an_awaited_call_cancels_the_rpc_on_the_server(served: Served) -> None:
    # The tracing and metrics interceptors await only the call's status: the RPC
    # itself must still be cancelled with the task that awaits it.
    served.fake.hang = True

    async def cancelled_midway() -> None:
        channel = make_aio_channel(f"127.0.0.1:{served.port}", services=[SERVICE], policy=_policy())
        try:
            call = asyncio.ensure_future(
                unary_call(
                    channel.unary_unary(UNARY, _same, _same),
                    b"",  # type: ignore[arg-type]
                    timeout=20,
                    metadata=(),
                )
            )
            while not served.fake.started.is_set():
                await asyncio.sleep(0.01)
            call.cancel()
            with pytest.raises(asyncio.CancelledError):
                await call
            # Well before the 20 s deadline, while the handler still waits.
            ended = await asyncio.to_thread(served.fake.ended.wait, 5)
            assert ended, "the server never saw the call end"
        finally:
            await channel.close()

    asyncio.run(cancelled_midway())


def _count(method: str, code: str) -> float:
    labels = {"grpc_service": SERVICE, "grpc_method": method, "grpc_code": code}
    return REGISTRY.get_sample_value("grpc_client_handled_total", labels) or 0.0


def test_calls_are_counted_in_the_client_families(served: Served) -> None:
    unary, stream = _count("ListAssets", "OK"), _count("StreamPrices", "OK")
    asyncio.run(_unary(served.port, _policy()))
    assert _count("ListAssets", "OK") == unary + 1

    async def streamed() -> None:
        await _stream(served.port, _policy(), timeout=30)
        await asyncio.sleep(0.1)  # a stream is counted by a task when it ends

    asyncio.run(streamed())
    assert _count("StreamPrices", "OK") == stream + 1
    served.fake.hang = True
    hung = _count("ListAssets", "DEADLINE_EXCEEDED")
    with pytest.raises(grpc.RpcError):
        asyncio.run(_unary(served.port, _policy(budget=0.2)))
    assert _count("ListAssets", "DEADLINE_EXCEEDED") == hung + 1


def test_several_addresses_are_called_round_robin() -> None:
    first, second = _serve(Fake(name="first")), _serve(Fake(name="second"))
    try:
        target = f"127.0.0.1:{first.port},127.0.0.1:{second.port}"

        async def calls() -> list[bytes]:
            channel = make_aio_channel(target, services=[SERVICE], policy=_policy())
            try:
                call = channel.unary_unary(UNARY, _same, _same)
                return [await call(b"") for _ in range(20)]
            finally:
                await channel.close()

        answers = asyncio.run(calls())
        # Round robin over the processes that are ready (the second may connect a
        # little later than the first).
        assert answers.count(b"first") >= 5
        assert answers.count(b"second") >= 5
    finally:
        first.server.stop(0).wait()
        second.server.stop(0).wait()
