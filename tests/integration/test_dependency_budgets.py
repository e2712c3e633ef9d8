"""Each call to another service has its own budget inside the caller's deadline, and
gRPC's retries stay inside it; a status a service chose is not retried at all."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest

from common.channels import CallPolicy, make_aio_channel, make_channel
from common.errors import Unavailable
from common.grpc_errors import to_grpc_status
from rest_bridge.calls import BudgetSpent, unary_call
from rest_bridge.errors import from_rpc_error

SERVICE = "trading.v1.InventoryService"  # a service whose GetQuotes is retryable
PATH = f"/{SERVICE}/GetQuotes"


def _same(data: bytes) -> bytes:
    return data


class Dependency:
    """Answers GetQuotes as told: UNAVAILABLE chosen by the service, or a hang."""

    def __init__(self) -> None:
        self.attempts = 0
        self.behaviour = "unavailable"
        self.release = threading.Event()

    def handle(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        self.attempts += 1
        if self.behaviour == "hang":
            self.release.wait(10)
            return b""
        context.abort_with_status(
            to_grpc_status(Unavailable("store down", reason="STORE_UNAVAILABLE"))
        )
        raise AssertionError("unreachable")


@pytest.fixture
def dependency() -> Iterator[tuple[Dependency, int]]:
    fake = Dependency()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                SERVICE, {"GetQuotes": grpc.unary_unary_rpc_method_handler(fake.handle)}
            ),
        )
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield fake, port
    fake.release.set()
    server.stop(0).wait()


def _call(port: int, *, budget: float, timeout: float | None = None) -> grpc.RpcError:
    channel = make_channel(
        f"127.0.0.1:{port}",
        services=[SERVICE],
        policy=CallPolicy(default_deadline=5, budget=budget),
    )
    try:
        with pytest.raises(grpc.RpcError) as caught:
            channel.unary_unary(PATH, _same, _same)(b"", timeout=timeout)
    finally:
        channel.close()
    return caught.value


def test_an_unavailable_the_service_chose_is_not_retried(
    dependency: tuple[Dependency, int],
) -> None:
    fake, port = dependency
    error = _call(port, budget=5)
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert fake.attempts == 1


def test_a_hung_dependency_costs_its_budget_not_the_callers_deadline(
    dependency: tuple[Dependency, int],
) -> None:
    fake, port = dependency
    fake.behaviour = "hang"
    started = time.monotonic()
    error = _call(port, budget=0.3, timeout=20)
    waited = time.monotonic() - started
    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    # The budget, not the 20 s the caller allowed (with ample room for a busy machine).
    assert waited < 10
    assert fake.attempts == 1


def _ticks(_request: bytes, _context: grpc.ServicerContext) -> Iterator[bytes]:
    for _ in range(8):
        time.sleep(0.1)
        yield b"tick"


def test_a_server_stream_lives_for_its_own_timeout_not_the_budget() -> None:
    # svc_order's price trigger holds StreamPrices open for minutes on a budgeted
    # channel; the budget is for awaited answers and must not cut the feed.
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                SERVICE, {"StreamPrices": grpc.unary_stream_rpc_method_handler(_ticks)}
            ),
        )
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    channel = make_channel(
        f"127.0.0.1:{port}", services=[SERVICE], policy=CallPolicy(default_deadline=5, budget=0.2)
    )
    try:
        stream = channel.unary_stream(f"/{SERVICE}/StreamPrices", _same, _same)
        assert list(stream(b"", timeout=30)) == [b"tick"] * 8
    finally:
        channel.close()
        server.stop(0).wait()


def _bridge_call(port: int, *, budget: float, client_timeout: float) -> grpc.RpcError:
    """A call as the bridge awaits it (rest_bridge/calls.py, its grpc.aio channel), with
    the client's timeout."""

    async def call() -> object:
        channel = make_aio_channel(
            f"127.0.0.1:{port}",
            services=[SERVICE],
            policy=CallPolicy(default_deadline=5, budget=budget),
        )
        try:
            return await unary_call(
                channel.unary_unary(PATH, _same, _same),
                b"",  # type: ignore[arg-type]
                timeout=client_timeout,
                metadata=(),
            )
        finally:
            await channel.close()

    with pytest.raises(grpc.RpcError) as caught:
        asyncio.run(call())
    return caught.value


def test_the_bridge_tells_a_spent_budget_from_the_clients_own_deadline(
    dependency: tuple[Dependency, int],
) -> None:
    fake, port = dependency
    fake.behaviour = "hang"
    # The budget cut the call while the client still had time: a hung service, 503.
    spent = _bridge_call(port, budget=0.3, client_timeout=20)
    assert isinstance(spent, BudgetSpent)
    answer = from_rpc_error(spent, default_retry_after=1)
    assert (answer.status, answer.code, answer.retry_after) == (503, "UNAVAILABLE", 1)
    # The client's own deadline came first: still the client's 504.
    own = _bridge_call(port, budget=5, client_timeout=0.3)
    assert not isinstance(own, BudgetSpent)
    assert from_rpc_error(own, default_retry_after=1).status == 504
