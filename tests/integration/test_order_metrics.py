"""svc_order's metrics after a scripted scenario: an order, refusals (a stale quote, not
enough cash), an idempotent replay, cash moved; and the RPC, outgoing-call, store and
Redis families underneath. The services run in this process, so the default registry
is the one their /metrics pages serve."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import grpc
import pytest
from prometheus_client import REGISTRY

from tests.integration.order_fixtures import FakeInventory, Trader
from tests.support import unique

ORDERS = "trading.v1.OrderService"
INVENTORY = "trading.v1.InventoryService"


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class Deltas:
    """Samples read before and after a block: `delta(name, **labels)`."""

    def __init__(self) -> None:
        self._before: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self._after: dict[tuple[str, tuple[tuple[str, str], ...]], float] | None = None

    def _all(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        values = {}
        for family in REGISTRY.collect():
            for s in family.samples:
                values[(s.name, tuple(sorted(s.labels.items())))] = s.value
        return values

    def delta(self, name: str, **labels: str) -> float:
        assert self._after is not None
        key = (name, tuple(sorted(labels.items())))
        return self._after.get(key, 0.0) - self._before.get(key, 0.0)


@contextmanager
def measured() -> Iterator[Deltas]:
    deltas = Deltas()
    deltas._before = deltas._all()
    yield deltas
    deltas._after = deltas._all()


def test_business_and_plumbing_metrics_follow_a_scenario(
    trader: Trader, market: FakeInventory, new_trader: Callable[[], Trader]
) -> None:
    key = unique("dep")
    with measured() as m:
        trader.deposit("1000", key=key)
        trader.deposit("1000", key=key)  # a replay: no second deposit
        trader.withdraw("100")
        order = trader.buy("BTC", "0.001")
        with pytest.raises(grpc.RpcError):
            trader.buy("BTC", "0.018")  # 900 USD, more than the cash left
        market.set_quote("BTC", "50000.00", name="Bitcoin", age_seconds=11)
        with pytest.raises(grpc.RpcError):
            trader.buy("BTC", "0.001")  # a stale quote
    assert m.delta("cash_operations_total", kind="deposit") == 1
    assert m.delta("cash_operations_value_usd_total", kind="deposit") == 1000
    assert m.delta("cash_operations_total", kind="withdrawal") == 1
    assert m.delta("cash_operations_value_usd_total", kind="withdrawal") == 100
    assert m.delta("idempotent_replays_total", kind="deposit") == 1
    assert m.delta("orders_total", order_type="market_buy", outcome="filled") == 1
    assert m.delta("orders_total", order_type="market_buy", outcome="refused") == 2
    assert m.delta("orders_traded_value_usd_total", order_type="market_buy") == pytest.approx(
        float(order.total_amount)
    )
    refusals = {"grpc_service": ORDERS, "grpc_method": "PlaceOrder"}
    assert m.delta("grpc_server_refusals_total", **refusals, reason="STALE_QUOTE") == 1
    assert m.delta("grpc_server_refusals_total", **refusals, reason="INSUFFICIENT_FUNDS") == 1
    # The stale quote was observed at its age (11 s), the fresh ones near 0.
    assert m.delta("order_quote_age_seconds_count") >= 3
    assert (
        m.delta("order_quote_age_seconds_bucket", le="10.0")
        == m.delta("order_quote_age_seconds_count") - 1
    )

    place = {"grpc_service": ORDERS, "grpc_method": "PlaceOrder"}
    assert m.delta("grpc_server_handled_total", **place, grpc_code="OK") == 1
    assert m.delta("grpc_server_handled_total", **place, grpc_code="FAILED_PRECONDITION") == 1
    assert m.delta("grpc_server_handled_total", **place, grpc_code="UNAVAILABLE") == 1
    assert m.delta("grpc_server_handling_seconds_count", **place) == 3
    assert sample("grpc_server_in_flight_requests", **place) == 0
    quotes = {"grpc_service": INVENTORY, "grpc_method": "GetQuotes"}
    assert m.delta("grpc_client_handled_total", **quotes, grpc_code="OK") >= 3
    assert m.delta("grpc_client_handling_seconds_count", **quotes) >= 3
    assert m.delta("dynamodb_requests_total", operation="GetItem", outcome="ok") >= 1
    assert m.delta("dynamodb_request_duration_seconds_count", operation="GetItem") >= 1
    # Every call checks the revocation list: one MGET each.
    assert m.delta("redis_commands_total", command="MGET", outcome="ok") >= 6
