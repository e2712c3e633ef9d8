"""orders_total follows a limit order's life: resting when placed, filled when the price
falls through (with its traded value), cancelled when cancelled."""

from __future__ import annotations

from prometheus_client import REGISTRY

from tests.integration.limit_fixtures import LimitStack
from tests.integration.order_fixtures import Trader, wait_until


def orders_counted(outcome: str) -> float:
    labels = {"order_type": "limit_buy", "outcome": outcome}
    return REGISTRY.get_sample_value("orders_total", labels) or 0.0


def traded() -> float:
    labels = {"order_type": "limit_buy"}
    return REGISTRY.get_sample_value("orders_traded_value_usd_total", labels) or 0.0


def status_of(trader: Trader, order_id: str) -> str:
    return str(trader.get_order(order_id).status)


def test_a_limit_order_is_counted_at_each_step_of_its_life(limits: LimitStack) -> None:
    limits.move("BTC", "100.00")
    trader = limits.trader("1000")
    resting, filled, cancelled, value = (
        orders_counted("resting"),
        orders_counted("filled"),
        orders_counted("cancelled"),
        traded(),
    )
    to_fill = trader.limit("buy", "BTC", "2", "90.00")
    to_cancel = trader.limit("buy", "BTC", "1", "50.00")
    assert orders_counted("resting") == resting + 2
    trader.cancel(to_cancel.order_id)
    assert orders_counted("cancelled") == cancelled + 1
    limits.move("BTC", "89.50")
    wait_until(lambda: status_of(trader, to_fill.order_id) == "completed", "the fill")
    wait_until(lambda: orders_counted("filled") == filled + 1, "the fill is counted")
    assert traded() == value + 179.00
