"""svc_order started for real, in this process, beside a fake svc_inventory it controls.

The fake is a real gRPC server on a loopback port: the order service reaches it
exactly as it reaches svc_inventory (GetQuotes through `make_channel`), while each
test sets the prices, their age and whether an asset trades. Tokens come from the
real svc_user of `tests/integration/conftest.py`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import cycle, islice

import grpc
import jwt
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc
from trading.v1 import inventory_pb2, order_pb2, order_pb2_grpc, user_pb2_grpc

from common.dynamo import ensure_table, make_client
from common.grpc_errors import error_info
from common.server import RunningServer
from devstack.engines import free_port
from svc_order.__main__ import OrderServer, build
from svc_order.config import OrderSettings
from svc_order.quotes import INVENTORY_SERVICE_NAME
from svc_order.service import WriteHook
from tests.support import PATIENT_STORE
from tests.user_service import register_and_login

# Generous: two cores are shared with other suites, and races queue on one account.
CALL_TIMEOUT = 60.0
START_TIMEOUT = 20.0

DEFAULT_QUOTES = {"BTC": ("Bitcoin", "50000.00"), "ETH": ("Ethereum", "3000.00")}


def wait_until(condition: Callable[[], bool], what: str, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {timeout}s: {what}")
        time.sleep(0.02)


def serving(channel: grpc.Channel) -> bool:
    try:
        response = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=1
        )
    except grpc.RpcError:
        return False
    return bool(response.status == health_pb2.HealthCheckResponse.SERVING)


def refused(call: Callable[[], object]) -> grpc.RpcError:
    """The error a call that must fail answered with."""
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value


def reason_of(error: grpc.RpcError) -> str:
    info = error_info(error)
    return info.reason if info else ""


# --- The fake inventory ---------------------------------------------------------------


@dataclass(frozen=True)
class FakeQuote:
    name: str
    price: str
    is_active: bool = True
    # How old the quote is when served; over max_quote_age_seconds means stale.
    age_seconds: float = 0.0


class FakeInventory:
    """Answers GetQuotes from quotes a test sets, and records every call; the order
    service calls nothing else of svc_inventory."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._quotes: dict[str, FakeQuote] = {}
        self._calls: list[list[str]] = []

    def reset(self) -> None:
        with self._lock:
            self._quotes = {
                asset: FakeQuote(name, price) for asset, (name, price) in DEFAULT_QUOTES.items()
            }
            self._calls = []

    def set_quote(
        self,
        asset_id: str,
        price: str,
        *,
        name: str | None = None,
        is_active: bool = True,
        age_seconds: float = 0.0,
    ) -> None:
        with self._lock:
            self._quotes[asset_id] = FakeQuote(
                name or asset_id.title(), price, is_active, age_seconds
            )

    @property
    def calls(self) -> list[list[str]]:
        with self._lock:
            return list(self._calls)

    def get_quotes(
        self, request: inventory_pb2.GetQuotesRequest, context: grpc.ServicerContext
    ) -> inventory_pb2.GetQuotesResponse:
        now = datetime.now(UTC)
        with self._lock:
            self._calls.append(list(request.asset_ids))
            known = [(a, self._quotes[a]) for a in request.asset_ids if a in self._quotes]
        quotes = []
        for asset_id, quote in known:
            as_of = Timestamp()
            as_of.FromDatetime(now - timedelta(seconds=quote.age_seconds))
            quotes.append(
                inventory_pb2.Quote(
                    asset_id=asset_id,
                    asset_name=quote.name,
                    price=quote.price,
                    as_of=as_of,
                    is_active=quote.is_active,
                )
            )
        return inventory_pb2.GetQuotesResponse(quotes=quotes)


@pytest.fixture(scope="session")
def fake_inventory_server() -> Iterator[tuple[FakeInventory, int]]:
    fake = FakeInventory()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="fake-inv"))
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                INVENTORY_SERVICE_NAME,
                {
                    "GetQuotes": grpc.unary_unary_rpc_method_handler(
                        fake.get_quotes,
                        request_deserializer=inventory_pb2.GetQuotesRequest.FromString,
                        response_serializer=inventory_pb2.GetQuotesResponse.SerializeToString,
                    )
                },
            ),
        )
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield fake, port
    server.stop(0).wait()


@pytest.fixture
def market(fake_inventory_server: tuple[FakeInventory, int]) -> FakeInventory:
    """The fake inventory with the default quotes (BTC 50000.00, ETH 3000.00), fresh."""
    fake, _ = fake_inventory_server
    fake.reset()
    return fake


# --- svc_order ------------------------------------------------------------------------


def order_settings(
    *,
    dynamodb_endpoint: str,
    redis_url: str,
    table_prefix: str,
    user_port: int,
    inventory_port: int,
    **overrides: object,
) -> OrderSettings:
    fields: dict[str, object] = {
        "grpc_host": "127.0.0.1",
        "order_grpc_port": 0,
        "redis_url": redis_url,
        "dynamodb_endpoint": dynamodb_endpoint,
        "table_prefix": table_prefix,
        "user_service_addr": f"127.0.0.1:{user_port}",
        "inventory_service_addr": f"127.0.0.1:{inventory_port}",
        "shutdown_drain_seconds": 0,
        "shutdown_grace_seconds": 0,
        **PATIENT_STORE,
    }
    fields.update(overrides)
    return OrderSettings(**fields)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def make_order_settings(
    dynamodb_endpoint: str,
    redis_url: str,
    table_prefix: str,
    user_server: RunningServer,
    fake_inventory_server: tuple[FakeInventory, int],
) -> Callable[..., OrderSettings]:
    """Settings of an svc_order wired to this session's engines, svc_user and fake
    inventory; keyword arguments override any setting. The table exists once built."""
    first = order_settings(
        dynamodb_endpoint=dynamodb_endpoint,
        redis_url=redis_url,
        table_prefix=table_prefix,
        user_port=user_server.port,
        inventory_port=fake_inventory_server[1],
    )
    ensure_table(
        make_client(dynamodb_endpoint, first.aws_region), table_prefix + first.trading_table
    )

    def make(**overrides: object) -> OrderSettings:
        return first.model_copy(update=overrides)

    return make


@dataclass
class OrderEndpoint:
    server: OrderServer
    channel: grpc.Channel
    stub: order_pb2_grpc.OrderServiceStub


def _order_servers(
    make_order_settings: Callable[..., OrderSettings],
) -> Iterator[Callable[..., OrderEndpoint]]:
    """A function that starts an svc_order and waits for SERVING; every server it
    started is shut down (price trigger, sweep and worker threads too) when the
    generator ends, so that a module's servers do not tick on through the session."""
    started: list[OrderEndpoint] = []

    def start(
        write_hook: WriteHook | None = None,
        **overrides: object,
    ) -> OrderEndpoint:
        server = build(make_order_settings(**overrides), write_hook=write_hook)
        channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
        endpoint = OrderEndpoint(server, channel, order_pb2_grpc.OrderServiceStub(channel))
        started.append(endpoint)
        wait_until(lambda: serving(channel), "svc_order reports SERVING")
        return endpoint

    yield start
    for endpoint in started:
        endpoint.channel.close()
        endpoint.server.shutdown()


@pytest.fixture(scope="module")
def start_order_server(
    make_order_settings: Callable[..., OrderSettings],
) -> Iterator[Callable[..., OrderEndpoint]]:
    """Starts svc_order servers that stop at the end of the module."""
    yield from _order_servers(make_order_settings)


@pytest.fixture(scope="session")
def order_endpoint(
    make_order_settings: Callable[..., OrderSettings],
) -> Iterator[OrderEndpoint]:
    """The session's shared svc_order."""
    servers = _order_servers(make_order_settings)
    yield next(servers)()
    next(servers, None)


@pytest.fixture(scope="session")
def orders(order_endpoint: OrderEndpoint) -> order_pb2_grpc.OrderServiceStub:
    return order_endpoint.stub


@pytest.fixture(scope="module")
def second_orders(
    start_order_server: Callable[..., OrderEndpoint],
) -> order_pb2_grpc.OrderServiceStub:
    """Another svc_order of this module on its own port, on the same table."""
    return start_order_server().stub


@pytest.fixture(params=[1, 2], ids=["one-server", "two-servers"])
def order_servers(
    request: pytest.FixtureRequest, orders: order_pb2_grpc.OrderServiceStub
) -> tuple[order_pb2_grpc.OrderServiceStub, ...]:
    """The servers a test alternates its calls over: the session's svc_order alone (its
    per-user lock queues one user's changes), then it and `second_orders` side by side
    (only the account item's version condition referees between the two processes)."""
    if request.param == 1:
        return (orders,)
    return (orders, request.getfixturevalue("second_orders"))


def unreachable_address() -> str:
    """A loopback port nobody listens on (it was free a moment ago)."""
    return f"127.0.0.1:{free_port()}"


# --- A signed-in user -----------------------------------------------------------------


@dataclass(frozen=True)
class Trader:
    """One registered user calling svc_order with their access token."""

    access_token: str
    stub: order_pb2_grpc.OrderServiceStub

    @property
    def user_id(self) -> str:
        """The `sub` of the access token (read, not verified: the services verify it)."""
        claims = jwt.decode(self.access_token, options={"verify_signature": False})
        return str(claims["sub"])

    def via(self, stub: order_pb2_grpc.OrderServiceStub) -> Trader:
        return Trader(self.access_token, stub)

    def metadata(self, idempotency_key: str | None = None) -> tuple[tuple[str, str], ...]:
        entries: tuple[tuple[str, str], ...] = (("authorization", f"Bearer {self.access_token}"),)
        if idempotency_key is not None:
            entries += (("idempotency-key", idempotency_key),)
        return entries

    def balance(self) -> str:
        response = self.stub.GetBalance(
            order_pb2.GetBalanceRequest(), metadata=self.metadata(), timeout=CALL_TIMEOUT
        )
        return str(response.current_balance)

    def deposit(self, amount: str, key: str | None = None) -> order_pb2.DepositResponse:
        return self.stub.Deposit(
            order_pb2.DepositRequest(amount=amount),
            metadata=self.metadata(key),
            timeout=CALL_TIMEOUT,
        )

    def withdraw(self, amount: str, key: str | None = None) -> order_pb2.WithdrawResponse:
        return self.stub.Withdraw(
            order_pb2.WithdrawRequest(amount=amount),
            metadata=self.metadata(key),
            timeout=CALL_TIMEOUT,
        )

    def order(
        self,
        order_type: str,
        asset_id: str,
        quantity: str,
        price: str | None = None,
        key: str | None = None,
    ) -> order_pb2.Order:
        request = order_pb2.PlaceOrderRequest(
            order_type=order_type, asset_id=asset_id, quantity=quantity
        )
        if price is not None:
            request.price = price
        response = self.stub.PlaceOrder(request, metadata=self.metadata(key), timeout=CALL_TIMEOUT)
        return response.data

    def limit(
        self,
        side: str,
        asset_id: str,
        quantity: str,
        limit_price: str,
        time_in_force: str | None = None,
        expires_at: datetime | None = None,
        key: str | None = None,
    ) -> order_pb2.Order:
        """A limit order: `side` is "buy" or "sell"."""
        request = order_pb2.PlaceOrderRequest(
            order_type=f"limit_{side}", asset_id=asset_id, quantity=quantity, price=limit_price
        )
        if time_in_force is not None:
            request.time_in_force = time_in_force
        if expires_at is not None:
            request.expires_at.FromDatetime(expires_at)
        response = self.stub.PlaceOrder(request, metadata=self.metadata(key), timeout=CALL_TIMEOUT)
        return response.data

    def cancel(self, order_id: str) -> order_pb2.Order:
        response = self.stub.CancelOrder(
            order_pb2.CancelOrderRequest(order_id=order_id),
            metadata=self.metadata(),
            timeout=CALL_TIMEOUT,
        )
        return response.data

    def balances(self) -> order_pb2.GetBalanceResponse:
        return self.stub.GetBalance(
            order_pb2.GetBalanceRequest(), metadata=self.metadata(), timeout=CALL_TIMEOUT
        )

    def buy(self, asset_id: str, quantity: str, **options: str) -> order_pb2.Order:
        return self.order("market_buy", asset_id, quantity, **options)

    def sell(self, asset_id: str, quantity: str, **options: str) -> order_pb2.Order:
        return self.order("market_sell", asset_id, quantity, **options)

    def list_orders(self, **fields: object) -> order_pb2.ListOrdersResponse:
        return self.stub.ListOrders(
            order_pb2.ListOrdersRequest(**fields),  # type: ignore[arg-type]
            metadata=self.metadata(),
            timeout=CALL_TIMEOUT,
        )

    def get_order(self, order_id: str) -> order_pb2.Order:
        response = self.stub.GetOrder(
            order_pb2.GetOrderRequest(order_id=order_id),
            metadata=self.metadata(),
            timeout=CALL_TIMEOUT,
        )
        return response.data

    def cash_transactions(self, **fields: object) -> order_pb2.ListCashTransactionsResponse:
        return self.stub.ListCashTransactions(
            order_pb2.ListCashTransactionsRequest(**fields),  # type: ignore[arg-type]
            metadata=self.metadata(),
            timeout=CALL_TIMEOUT,
        )

    def portfolio(self) -> order_pb2.GetPortfolioResponse:
        return self.stub.GetPortfolio(
            order_pb2.GetPortfolioRequest(), metadata=self.metadata(), timeout=CALL_TIMEOUT
        )

    def asset_balance(self, asset_id: str) -> order_pb2.GetAssetBalanceResponse:
        return self.stub.GetAssetBalance(
            order_pb2.GetAssetBalanceRequest(asset_id=asset_id),
            metadata=self.metadata(),
            timeout=CALL_TIMEOUT,
        )

    def asset_transactions(
        self, asset_id: str, **fields: object
    ) -> order_pb2.ListAssetTransactionsResponse:
        return self.stub.ListAssetTransactions(
            order_pb2.ListAssetTransactionsRequest(asset_id=asset_id, **fields),  # type: ignore[arg-type]
            metadata=self.metadata(),
            timeout=CALL_TIMEOUT,
        )


@pytest.fixture
def new_trader(
    users: user_pb2_grpc.UserServiceStub, orders: order_pb2_grpc.OrderServiceStub
) -> Callable[[], Trader]:
    def make() -> Trader:
        _, tokens = register_and_login(users)
        return Trader(tokens.access_token, orders)

    return make


@pytest.fixture
def trader(new_trader: Callable[[], Trader], market: FakeInventory) -> Trader:
    """A new user with no money, trading at the default quotes."""
    return new_trader()


@pytest.fixture
def racers(
    trader: Trader, order_servers: tuple[order_pb2_grpc.OrderServiceStub, ...]
) -> tuple[Trader, ...]:
    """`trader` once on each of `order_servers` (the first is `trader` itself)."""
    return tuple(trader.via(stub) for stub in order_servers)


def alternating(racers: tuple[Trader, ...], count: int) -> list[Trader]:
    """`count` callers taken from `racers` in turn."""
    return list(islice(cycle(racers), count))


__all__ = [
    "CALL_TIMEOUT",
    "FakeInventory",
    "OrderEndpoint",
    "Trader",
    "alternating",
    "fake_inventory_server",
    "make_order_settings",
    "market",
    "new_trader",
    "order_endpoint",
    "order_servers",
    "orders",
    "racers",
    "reason_of",
    "refused",
    "second_orders",
    "start_order_server",
    "trader",
    "unreachable_address",
    "wait_until",
]
