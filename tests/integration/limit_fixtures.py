"""svc_order beside a real svc_inventory whose prices a test scripts (ScriptedMarket).

Each `LimitStack` has a trading table of its own, so that the only price trigger that
sees its orders is that of its own svc_order replicas.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal

import grpc
import pytest
from trading.v1 import inventory_pb2, inventory_pb2_grpc, user_pb2_grpc

from common.dynamo import ensure_table, make_client
from svc_inventory.__main__ import InventoryServer
from svc_inventory.__main__ import build as build_inventory
from svc_order.config import OrderSettings
from tests.integration.inventory_fixtures import inventory_settings, serving
from tests.integration.order_fixtures import CALL_TIMEOUT, OrderEndpoint, Trader, wait_until
from tests.integration.scripted_market import ScriptedMarket
from tests.user_service import register_and_login

# Sweeps and ticks fast enough that a test waits fractions of a second.
SWEEP_SECONDS = 0.1
TICK_SECONDS = 0.05


@dataclass
class LimitStack:
    market: ScriptedMarket
    inventory: InventoryServer
    quotes: inventory_pb2_grpc.InventoryServiceStub
    start_replica: Callable[..., OrderEndpoint]
    replicas: list[OrderEndpoint] = field(default_factory=list)
    users: user_pb2_grpc.UserServiceStub | None = None

    @property
    def orders(self) -> OrderEndpoint:
        return self.replicas[0]

    def move(self, asset_id: str, price: str) -> None:
        """Moves the price and waits until svc_inventory quotes it."""
        self.market.move(asset_id, price)

        def quoted() -> bool:
            answer = self.quotes.GetQuotes(
                inventory_pb2.GetQuotesRequest(asset_ids=[asset_id]), timeout=CALL_TIMEOUT
            )
            return any(Decimal(q.price) == Decimal(price) for q in answer.quotes)

        wait_until(quoted, f"{asset_id} quoted at {price}")

    def trader(self, cash: str = "0") -> Trader:
        assert self.users is not None
        _, tokens = register_and_login(self.users)
        trader = Trader(tokens.access_token, self.orders.stub)
        if Decimal(cash):
            trader.deposit(cash)
        return trader


@pytest.fixture(scope="module")
def make_limit_stack(
    dynamodb_endpoint: str,
    redis_url: str,
    start_order_server: Callable[..., OrderEndpoint],
    make_order_settings: Callable[..., OrderSettings],
    users: user_pb2_grpc.UserServiceStub,
) -> Iterator[Callable[[], LimitStack]]:
    started: list[tuple[InventoryServer, grpc.Channel]] = []

    def make() -> LimitStack:
        prefix = f"lim{uuid.uuid4().hex[:8]}-"
        market = ScriptedMarket()
        inventory = build_inventory(
            inventory_settings(
                dynamodb_endpoint, redis_url, prefix, price_tick_seconds=TICK_SECONDS
            ),
            source=market.source,
        )
        channel = grpc.insecure_channel(f"127.0.0.1:{inventory.port}")
        started.append((inventory, channel))
        wait_until(lambda: serving(channel), "scripted svc_inventory reports SERVING")
        settings = make_order_settings(table_prefix=prefix)
        ensure_table(
            make_client(dynamodb_endpoint, settings.aws_region), prefix + settings.trading_table
        )

        def start_replica(**overrides: object) -> OrderEndpoint:
            endpoint = start_order_server(
                table_prefix=prefix,
                inventory_service_addr=f"127.0.0.1:{inventory.port}",
                order_sweep_seconds=SWEEP_SECONDS,
                **overrides,
            )
            stack.replicas.append(endpoint)
            return endpoint

        stack = LimitStack(
            market, inventory, inventory_pb2_grpc.InventoryServiceStub(channel), start_replica
        )
        stack.users = users
        return stack

    yield make
    for inventory, channel in started:
        channel.close()
        inventory.shutdown()


@pytest.fixture(scope="module")
def limits(make_limit_stack: Callable[[], LimitStack]) -> LimitStack:
    """One scripted market and one svc_order replica for a module's tests."""
    stack = make_limit_stack()
    stack.start_replica()
    return stack


__all__ = ["LimitStack", "limits", "make_limit_stack"]
