"""How many requests one call costs the store, counted against real dynalite processes.

A call whose caller has no time left sends nothing. Store retries (STORE_MAX_ATTEMPTS)
and gRPC channel retries (maxAttempts 3 on UNAVAILABLE) are two layers; a service's
STORE_UNAVAILABLE carries the no-retry pushback, so a retrying channel tries the RPC
once and a killed or stopped store sees at most STORE_MAX_ATTEMPTS requests per store
call, never their product.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

import grpc
import pytest
from prometheus_client import REGISTRY

from common.channels import CallPolicy, make_channel
from common.context import deadline_var, outliving_the_request
from common.dynamo import StoreBudget, Table, ensure_table, make_client
from common.errors import DeadlineExceeded
from devstack.engines import Engine
from svc_order.config import OrderSettings
from svc_order.server import SERVICE_NAME
from tests.integration.order_fixtures import OrderEndpoint, Trader, reason_of, refused
from tests.support import STORE_DEFAULTS

# The channel's budget is ample, so only the store's own budget limits the attempts.
ROOMY = CallPolicy(default_deadline=10, budget=10, retries=True)


class SentRequests:
    """The HTTP requests a boto3 client sends (each attempt is one)."""

    def __init__(self, client: object) -> None:
        self.count = 0
        client.meta.events.register("before-send.dynamodb", self._sent)  # type: ignore[attr-defined]

    def _sent(self, **_: object) -> None:
        self.count += 1


def test_a_call_with_no_time_left_sends_nothing(dynamodb_endpoint: str, table_prefix: str) -> None:
    client = make_client(dynamodb_endpoint, "us-east-1", budget=StoreBudget())
    name = table_prefix + "attempts"
    ensure_table(make_client(dynamodb_endpoint, "us-east-1"), name)
    table = Table(client, name, StoreBudget())
    sent = SentRequests(client)
    key = {"pk": "USER#1", "sk": "PROFILE"}
    calls: dict[str, Callable[[], object]] = {
        "get": lambda: table.get(key),
        "put_if": lambda: table.put_if({**key, "v": 1}, "attribute_not_exists(pk)"),
        "query": lambda: list(table.query("USER#1")),
        "put_many": lambda: table.put_many([{**key, "v": 2}]),
    }
    # Already past, and too close to be worth a request.
    for left in (-1.0, StoreBudget().min_attempt_seconds / 2):
        token = deadline_var.set(time.monotonic() + left)
        try:
            for what, call in calls.items():
                with pytest.raises(DeadlineExceeded):
                    call()
                assert sent.count == 0, (what, left)
        finally:
            deadline_var.reset(token)

    # With time left, each sends its request; work that outlives the request too.
    token = deadline_var.set(time.monotonic() + 5)
    try:
        assert table.put_if({**key, "v": 1}, "attribute_not_exists(pk)")
        assert sent.count == 1
    finally:
        deadline_var.reset(token)
    token = deadline_var.set(time.monotonic() - 1)
    try:
        with outliving_the_request():
            assert table.get(key) == {**key, "v": 1}
        assert sent.count == 2
    finally:
        deadline_var.reset(token)


def _unavailable_store_requests() -> float:
    """Requests that got no answer from the store, by every in-process service."""
    return sum(
        sample.value
        for family in REGISTRY.collect()
        for sample in family.samples
        if sample.name == "dynamodb_requests_total" and sample.labels["outcome"] == "unavailable"
    )


@pytest.fixture
def quiet_order_on_own_store(
    own_store: Engine,
    make_order_settings: Callable[..., OrderSettings],
    start_order_server: Callable[..., OrderEndpoint],
    trader: Trader,
) -> tuple[Engine, OrderSettings, Trader]:
    """svc_order on `own_store` with no background store calls (health probe and sweep
    an hour apart), and a trader of it reaching it through a channel that retries."""
    quiet: dict[str, object] = {
        "dynamodb_endpoint": own_store.url,
        "health_probe_seconds": 3600,
        "order_sweep_seconds": 3600,
        **STORE_DEFAULTS,
    }
    settings = make_order_settings(**quiet)
    ensure_table(
        make_client(own_store.url, settings.aws_region),
        settings.table_prefix + settings.trading_table,
    )
    endpoint = start_order_server(**quiet)
    channel = make_channel(
        f"127.0.0.1:{endpoint.server.port}", services=[SERVICE_NAME], policy=ROOMY
    )
    own = trader.via(type(endpoint.stub)(channel))
    own.deposit("100")
    return own_store, settings, own


@pytest.mark.parametrize("fault", ["killed", "stopped"])
def test_a_retrying_channel_does_not_multiply_store_attempts(
    quiet_order_on_own_store: tuple[Engine, OrderSettings, Trader], fault: str
) -> None:
    store, settings, own = quiet_order_on_own_store
    if fault == "killed":
        store.process.kill()
        store.process.wait()
        # Refused connections are retried at once: every attempt the budget allows.
        expected = settings.store_max_attempts
    else:
        os.kill(store.process.pid, signal.SIGSTOP)
        # One read timeout (1 s) leaves no room in the 2 s budget for another whole
        # attempt (connect + read, 1.25 s).
        expected = 1
    try:
        # Both retryable by the contract: the channel would try each 3 times.
        calls: dict[str, Callable[[], object]] = {
            "GetBalance": own.balance,
            "ListOrders": own.list_orders,
        }
        for what, call in calls.items():
            before = _unavailable_store_requests()
            error = refused(call)
            assert error.code() == grpc.StatusCode.UNAVAILABLE, what
            assert reason_of(error) == "STORE_UNAVAILABLE", what
            assert _unavailable_store_requests() - before == expected, (what, fault)
    finally:
        if fault == "stopped":
            os.kill(store.process.pid, signal.SIGCONT)
