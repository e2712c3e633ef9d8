"""A store that is killed or stalls (SIGSTOP) is UNAVAILABLE with a retry-after, on every
RPC that needs it, in every service; each service's health says so and names the store,
and comes back when the store does.

Each test starts a dynalite of its own (a real process) and kills or stops only that.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from trading.v1 import inventory_pb2, inventory_pb2_grpc, order_pb2, user_pb2, user_pb2_grpc

from common.dynamo import STORE_RETRY_AFTER_SECONDS, ensure_table, make_client
from common.grpc_errors import error_info
from common.health import dependency_health_name
from devstack.engines import Engine
from svc_inventory.__main__ import build as build_inventory
from svc_order.config import OrderSettings
from svc_user.__main__ import build as build_user
from svc_user.config import UserSettings
from tests.integration.inventory_fixtures import inventory_settings
from tests.integration.order_fixtures import OrderEndpoint, Trader, refused, wait_until
from tests.support import STORE_DEFAULTS
from tests.user_service import STRONG_PASSWORD, bearer, registration

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
# What a client of these tests waits at most; a stalled store must answer well before.
CLIENT_DEADLINE_SECONDS = 5.0


def kill(engine: Engine) -> None:
    engine.process.kill()
    engine.process.wait()


def health(channel: grpc.Channel, name: str = "") -> int:
    answer = health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service=name), timeout=2
    )
    return int(answer.status)


def wait_for_health(channel: grpc.Channel, status: int) -> None:
    wait_until(lambda: health(channel) == status, f"health becomes {status}")


def assert_store_unavailable(call: Callable[[], object], what: str = "") -> None:
    error = refused(call)
    assert error.code() == grpc.StatusCode.UNAVAILABLE, (what, error.code(), error.details())
    info = error_info(error)
    assert info is not None, what
    assert info.reason == "STORE_UNAVAILABLE", what
    assert info.metadata["retry_after_seconds"] == str(STORE_RETRY_AFTER_SECONDS), what


def assert_health_names_the_store(channel: grpc.Channel) -> None:
    wait_for_health(channel, NOT_SERVING)
    assert health(channel, dependency_health_name("store")) == NOT_SERVING
    assert health(channel, dependency_health_name("redis")) == SERVING


# --- svc_order -------------------------------------------------------------------------


@pytest.fixture
def order_on_own_store(
    own_store: Engine,
    make_order_settings: Callable[..., OrderSettings],
    start_order_server: Callable[..., OrderEndpoint],
    trader: Trader,
) -> tuple[Engine, OrderEndpoint, Trader]:
    """svc_order on `own_store`, and a trader of it with 1000.00 and 0.002 BTC."""
    settings = make_order_settings(dynamodb_endpoint=own_store.url, **STORE_DEFAULTS)
    ensure_table(
        make_client(own_store.url, settings.aws_region),
        settings.table_prefix + settings.trading_table,
    )
    endpoint = start_order_server(dynamodb_endpoint=own_store.url, **STORE_DEFAULTS)
    own = trader.via(endpoint.stub)
    own.deposit("1000")
    own.buy("BTC", "0.002")
    return own_store, endpoint, own


def _order_calls(order_id: str) -> dict[str, Callable[[Trader], object]]:
    return {
        "GetBalance": lambda t: t.balance(),
        "Deposit": lambda t: t.deposit("10"),
        "Withdraw": lambda t: t.withdraw("10"),
        "ListCashTransactions": lambda t: t.cash_transactions(),
        "PlaceOrder": lambda t: t.buy("BTC", "0.001"),
        "ListOrders": lambda t: t.list_orders(),
        "GetOrder": lambda t: t.get_order(order_id),
        "CancelOrder": lambda t: t.stub.CancelOrder(
            order_pb2.CancelOrderRequest(order_id=order_id), metadata=t.metadata(), timeout=10
        ),
        "GetPortfolio": lambda t: t.portfolio(),
        "GetAssetBalance": lambda t: t.asset_balance("BTC"),
        "ListAssetTransactions": lambda t: t.asset_transactions("BTC"),
        # svc_user's calls, on behalf of the signed-in user.
        "ExportTradingAccount": lambda t: t.stub.ExportTradingAccount(
            order_pb2.ExportTradingAccountRequest(), metadata=t.metadata(), timeout=10
        ),
        "CloseTradingAccount": lambda t: t.stub.CloseTradingAccount(
            order_pb2.CloseTradingAccountRequest(), metadata=t.metadata(), timeout=10
        ),
    }


def test_every_order_rpc_is_unavailable_while_the_store_is_down(
    order_on_own_store: tuple[Engine, OrderEndpoint, Trader],
) -> None:
    store, endpoint, own = order_on_own_store
    [order] = own.list_orders().data
    calls = _order_calls(order.order_id)
    methods = set(order_pb2.DESCRIPTOR.services_by_name["OrderService"].methods_by_name)
    # Live order updates come through Redis: they need no store.
    assert methods - set(calls) == {"StreamOrderUpdates"}, "every other RPC is called here"
    assert health(endpoint.channel) == SERVING

    kill(store)

    for name, call in calls.items():
        assert_store_unavailable(lambda call=call: call(own), name)  # type: ignore[misc]
    updates = endpoint.stub.StreamOrderUpdates(
        order_pb2.StreamOrderUpdatesRequest(), metadata=own.metadata(), timeout=10
    )
    assert next(updates).event == "subscribed"
    updates.cancel()
    assert_health_names_the_store(endpoint.channel)


def test_a_stalled_store_answers_unavailable_before_the_client_gives_up(
    order_on_own_store: tuple[Engine, OrderEndpoint, Trader],
) -> None:
    store, endpoint, own = order_on_own_store
    calls: list[Callable[[], object]] = [
        lambda: endpoint.stub.GetBalance(
            order_pb2.GetBalanceRequest(),
            metadata=own.metadata(),
            timeout=CLIENT_DEADLINE_SECONDS,
        ),
        lambda: endpoint.stub.PlaceOrder(
            order_pb2.PlaceOrderRequest(order_type="market_buy", asset_id="BTC", quantity="0.001"),
            metadata=own.metadata(),
            timeout=CLIENT_DEADLINE_SECONDS,
        ),
    ]
    os.kill(store.process.pid, signal.SIGSTOP)
    try:
        for call in calls:
            # Not DEADLINE_EXCEEDED: the store's budget ends well inside the client's.
            assert_store_unavailable(call)
        assert_health_names_the_store(endpoint.channel)
    finally:
        os.kill(store.process.pid, signal.SIGCONT)

    wait_for_health(endpoint.channel, SERVING)
    assert health(endpoint.channel, dependency_health_name("store")) == SERVING
    # The refused order changed nothing; trading goes on.
    assert own.balance() == "900.00"
    own.buy("BTC", "0.001")
    assert own.balance() == "850.00"


# --- svc_user ----------------------------------------------------------------------------


def test_every_user_rpc_that_needs_the_store_is_unavailable_while_it_is_down(
    own_store: Engine, user_settings: UserSettings
) -> None:
    settings = user_settings.model_copy(
        update={"dynamodb_endpoint": own_store.url, **STORE_DEFAULTS}
    )
    ensure_table(
        make_client(own_store.url, settings.aws_region),
        settings.table_prefix + settings.users_table,
    )
    running = build_user(settings)
    channel = grpc.insecure_channel(f"127.0.0.1:{running.port}")
    try:
        users = user_pb2_grpc.UserServiceStub(channel)
        wait_for_health(channel, SERVING)
        signed_up = registration()
        users.Register(signed_up, timeout=10)
        tokens = users.Login(
            user_pb2.LoginRequest(username=signed_up.username, password=STRONG_PASSWORD),
            timeout=10,
        )
        auth = bearer(tokens.access_token)
        calls: dict[str, Callable[[], object]] = {
            "Register": lambda: users.Register(registration(), timeout=10),
            "Login": lambda: users.Login(
                user_pb2.LoginRequest(username=signed_up.username, password=STRONG_PASSWORD),
                timeout=10,
            ),
            "RefreshToken": lambda: users.RefreshToken(
                user_pb2.RefreshTokenRequest(refresh_token=tokens.refresh_token), timeout=10
            ),
            "GetProfile": lambda: users.GetProfile(
                user_pb2.GetProfileRequest(), metadata=auth, timeout=10
            ),
            "UpdateProfile": lambda: users.UpdateProfile(
                user_pb2.UpdateProfileRequest(first_name="grace"), metadata=auth, timeout=10
            ),
            "ChangePassword": lambda: users.ChangePassword(
                user_pb2.ChangePasswordRequest(
                    current_password=STRONG_PASSWORD, new_password=STRONG_PASSWORD + "x"
                ),
                metadata=auth,
                timeout=10,
            ),
            "ExportData": lambda: users.ExportData(
                user_pb2.ExportDataRequest(), metadata=auth, timeout=10
            ),
            "CloseAccount": lambda: users.CloseAccount(
                user_pb2.CloseAccountRequest(current_password=STRONG_PASSWORD),
                metadata=auth,
                timeout=10,
            ),
            # Last: whatever Logout gets done before the store fails may revoke the token.
            "Logout": lambda: users.Logout(user_pb2.LogoutRequest(), metadata=auth, timeout=10),
        }
        methods = set(user_pb2.DESCRIPTOR.services_by_name["UserService"].methods_by_name)
        # The public keys live in the process: they need no store.
        assert methods - set(calls) == {"GetJwks"}

        kill(own_store)

        for name, call in calls.items():
            assert_store_unavailable(call, name)
        assert users.GetJwks(user_pb2.GetJwksRequest(), timeout=10).keys
        assert_health_names_the_store(channel)
    finally:
        channel.close()
        running.shutdown()


# --- svc_inventory -----------------------------------------------------------------------


def test_the_catalogue_is_unavailable_while_the_store_is_down_and_cached_quotes_still_answer(
    own_store: Engine, redis_url: str, table_prefix: str
) -> None:
    running = build_inventory(
        inventory_settings(own_store.url, redis_url, table_prefix + "down-", **STORE_DEFAULTS)
    )
    channel = grpc.insecure_channel(f"127.0.0.1:{running.port}")
    try:
        inventory = inventory_pb2_grpc.InventoryServiceStub(channel)
        wait_for_health(channel, SERVING)

        kill(own_store)

        assert_store_unavailable(
            lambda: inventory.ListAssets(inventory_pb2.ListAssetsRequest(), timeout=10)
        )
        assert_store_unavailable(
            lambda: inventory.GetAsset(inventory_pb2.GetAssetRequest(asset_id="BTC"), timeout=10)
        )
        # Quotes are served from the Redis cache, which the ticker keeps fresh.
        quotes = inventory.GetQuotes(inventory_pb2.GetQuotesRequest(asset_ids=["BTC"]), timeout=10)
        assert [q.asset_id for q in quotes.quotes] == ["BTC"]
        assert_health_names_the_store(channel)
    finally:
        channel.close()
        running.shutdown()
