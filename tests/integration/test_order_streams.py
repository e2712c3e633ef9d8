"""svc_order caps its open StreamOrderUpdates calls (MAX_ORDER_STREAMS): each holds an RPC
thread, and the cap keeps threads free for orders and balances."""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest
from trading.v1 import order_pb2, user_pb2_grpc

from tests.integration.order_fixtures import (
    OrderEndpoint,
    Trader,
    reason_of,
    refused,
    wait_until,
)
from tests.user_service import register_and_login

STREAMS = 3
# An open stream, as far as the test handles it once subscribed: it can be cancelled.
Updates = grpc.RpcContext


@pytest.fixture(scope="module")
def capped(start_order_server: Callable[..., OrderEndpoint]) -> OrderEndpoint:
    # One thread more than the streams: a unary call is only answered if the cap holds.
    return start_order_server(max_order_streams=STREAMS, grpc_max_workers=STREAMS + 1)


@pytest.fixture
def own(users: user_pb2_grpc.UserServiceStub, capped: OrderEndpoint) -> Trader:
    _, tokens = register_and_login(users)
    return Trader(tokens.access_token, capped.stub)


def _open(trader: Trader) -> Updates:
    updates = trader.stub.StreamOrderUpdates(
        order_pb2.StreamOrderUpdatesRequest(), metadata=trader.metadata(), timeout=30
    )
    assert next(updates).event == "subscribed"
    return updates


def _reopens(trader: Trader) -> Updates | None:
    try:
        return _open(trader)
    except grpc.RpcError as error:
        if reason_of(error) != "TOO_MANY_STREAMS":
            raise
        return None


def test_streams_past_the_limit_are_refused_and_calls_still_answer(own: Trader) -> None:
    streams = [_open(own) for _ in range(STREAMS)]
    try:
        error = refused(lambda: _open(own))
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert reason_of(error) == "TOO_MANY_STREAMS"

        # Every stream place is taken, yet a balance is answered: with the streams
        # holding all threads but one, a starved call would end DEADLINE_EXCEEDED.
        balance = own.stub.GetBalance(
            order_pb2.GetBalanceRequest(), metadata=own.metadata(), timeout=10
        )
        assert balance.current_balance == "0.00"

        # Closing one stream frees its place (once the server has seen the cancel).
        streams.pop().cancel()
        reopened: list[Updates] = []

        def one_reopens() -> bool:
            updates = _reopens(own)
            if updates is not None:
                reopened.append(updates)
            return bool(reopened)

        wait_until(one_reopens, "a cancelled stream's place is given back", timeout=10)
        streams.extend(reopened)
        assert refused(lambda: _open(own)).code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    finally:
        for updates in streams:
            updates.cancel()
