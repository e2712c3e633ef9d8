"""Which process may call which gRPC methods of which other process: the call graph,
written once.

`CALL_GRAPH[caller][callee]` is the set of full method paths
('/trading.v1.UserService/GetJwks', as gRPC puts them on the wire and as Istio's
AuthorizationPolicy `paths` match them) that `caller` may invoke on `callee`. Processes
are named by the package they run; `operator` is a person with grpcurl (reflection and
health only). Health is also open to any peer (`OPEN_TO_ANY_PEER`), for probes.

Everything else derives from this table: the mesh's AuthorizationPolicies are checked
against it (tests/mesh), and a test computes the calls the code really makes (from the
clients each process builds) and requires them to equal it. A new call between services
is one line here, and a test fails until the code and the mesh agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, NamedTuple

SVC_USER: Final = "svc_user"
SVC_INVENTORY: Final = "svc_inventory"
SVC_ORDER: Final = "svc_order"
REST_BRIDGE: Final = "rest_bridge"
OPERATOR: Final = "operator"

# The gRPC service each serving process implements (checked against its server.py).
SERVES: Final[Mapping[str, str]] = {
    SVC_USER: "trading.v1.UserService",
    SVC_INVENTORY: "trading.v1.InventoryService",
    SVC_ORDER: "trading.v1.OrderService",
}

HEALTH_PATHS: Final = frozenset({"/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch"})
# grpcurl asks v1 first and falls back to v1alpha only on UNIMPLEMENTED, so the
# operator must be allowed to reach both (grpcio-reflection serves v1alpha).
REFLECTION_PATHS: Final = frozenset(
    {
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    }
)
# Kubernetes probes (and the mesh's rewritten probes) have no caller identity.
OPEN_TO_ANY_PEER: Final = HEALTH_PATHS

CALL_GRAPH: Final[Mapping[str, Mapping[str, frozenset[str]]]] = {
    REST_BRIDGE: {
        SVC_USER: frozenset(
            {
                "/trading.v1.UserService/Register",
                "/trading.v1.UserService/Login",
                "/trading.v1.UserService/RefreshToken",
                "/trading.v1.UserService/Logout",
                "/trading.v1.UserService/GetProfile",
                "/trading.v1.UserService/UpdateProfile",
                "/trading.v1.UserService/ChangePassword",
                "/trading.v1.UserService/ExportData",
                "/trading.v1.UserService/CloseAccount",
                "/trading.v1.UserService/GetJwks",
                "/grpc.health.v1.Health/Check",
            }
        ),
        SVC_INVENTORY: frozenset(
            {
                "/trading.v1.InventoryService/ListAssets",
                "/trading.v1.InventoryService/GetAsset",
                "/trading.v1.InventoryService/StreamPrices",
                "/grpc.health.v1.Health/Check",
            }
        ),
        SVC_ORDER: frozenset(
            {
                "/trading.v1.OrderService/GetBalance",
                "/trading.v1.OrderService/Deposit",
                "/trading.v1.OrderService/Withdraw",
                "/trading.v1.OrderService/ListCashTransactions",
                "/trading.v1.OrderService/PlaceOrder",
                "/trading.v1.OrderService/ListOrders",
                "/trading.v1.OrderService/GetOrder",
                "/trading.v1.OrderService/CancelOrder",
                "/trading.v1.OrderService/StreamOrderUpdates",
                "/trading.v1.OrderService/GetPortfolio",
                "/trading.v1.OrderService/GetAssetBalance",
                "/trading.v1.OrderService/ListAssetTransactions",
                "/grpc.health.v1.Health/Check",
            }
        ),
    },
    SVC_ORDER: {
        SVC_USER: frozenset({"/trading.v1.UserService/GetJwks"}),
        # Quotes to trade on; the price stream triggers resting limit orders.
        SVC_INVENTORY: frozenset(
            {
                "/trading.v1.InventoryService/GetQuotes",
                "/trading.v1.InventoryService/StreamPrices",
            }
        ),
    },
    # Only when USER_SERVICE_ADDR is set: all of its RPCs are public today.
    SVC_INVENTORY: {
        SVC_USER: frozenset({"/trading.v1.UserService/GetJwks"}),
    },
    # Only when ORDER_SERVICE_ADDR is set: the data export and account closing.
    SVC_USER: {
        SVC_ORDER: frozenset(
            {
                "/trading.v1.OrderService/ExportTradingAccount",
                "/trading.v1.OrderService/CloseTradingAccount",
            }
        ),
    },
    OPERATOR: {callee: REFLECTION_PATHS | HEALTH_PATHS for callee in SERVES},
}


class Edge(NamedTuple):
    caller: str
    callee: str
    path: str  # /package.Service/Method


def edges() -> frozenset[Edge]:
    """Every (caller, callee, method path) of the table, one per allowed call."""
    return frozenset(
        Edge(caller, callee, path)
        for caller, callees in CALL_GRAPH.items()
        for callee, paths in callees.items()
        for path in paths
    )


def may_call(caller: str | None, callee: str, path: str) -> bool:
    """Whether `caller` (None: an unknown peer) may invoke `path` on `callee`."""
    if path in OPEN_TO_ANY_PEER:
        return True
    if caller is None:
        return False
    return path in CALL_GRAPH.get(caller, {}).get(callee, frozenset())
