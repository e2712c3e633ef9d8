"""The call graph of common/callgraph.py is the one the code really makes."""

from __future__ import annotations

import importlib

import pytest
from google.protobuf import descriptor_pool

from common.callgraph import (
    CALL_GRAPH,
    HEALTH_PATHS,
    OPERATOR,
    REFLECTION_PATHS,
    SERVES,
    edges,
    may_call,
)
from tests.callsites import calls_of, find_call_sites

PROCESSES = sorted(set(CALL_GRAPH) - {OPERATOR})


def test_the_calls_the_code_makes_are_the_call_graph() -> None:
    computed = {edge for process in PROCESSES for edge in calls_of(process)}
    declared = {edge for edge in edges() if edge.caller != OPERATOR}
    assert computed - declared == set(), "calls the code makes that the graph does not allow"
    assert declared - computed == set(), "calls the graph allows that no code makes"


def test_every_path_names_a_real_method() -> None:
    pool = descriptor_pool.Default()
    for edge in edges():
        if edge.path in HEALTH_PATHS | REFLECTION_PATHS:
            continue
        service, _, method = edge.path.lstrip("/").partition("/")
        assert service in SERVES.values(), edge
        assert method in pool.FindServiceByName(service).methods_by_name, edge


@pytest.mark.parametrize("process", sorted(SERVES))
def test_each_service_process_serves_what_the_graph_says(process: str) -> None:
    server = importlib.import_module(f"{process}.server")
    assert SERVES[process] == server.SERVICE_NAME


def test_may_call_allows_only_the_table_and_health() -> None:
    assert may_call("svc_order", "svc_inventory", "/trading.v1.InventoryService/GetQuotes")
    assert not may_call("svc_order", "svc_user", "/trading.v1.UserService/Login")
    assert not may_call("rest_bridge", "svc_inventory", "/trading.v1.InventoryService/GetQuotes")
    assert not may_call(None, "svc_user", "/trading.v1.UserService/GetJwks")
    assert may_call(None, "svc_user", "/grpc.health.v1.Health/Check")
    assert may_call(
        OPERATOR, "svc_order", "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
    )
    assert not may_call(OPERATOR, "svc_order", "/trading.v1.OrderService/Deposit")


def test_the_analysis_sees_every_shape_of_call() -> None:
    """The finder is what makes the first test able to fail: each way of calling counts."""
    source = """
from trading.v1 import user_pb2_grpc, inventory_pb2_grpc
from grpc_health.v1 import health_pb2_grpc
users = user_pb2_grpc.UserServiceStub(channel)
users.Login(request)
class Quotes:
    def __init__(self, channel):
        self._stub: object = inventory_pb2_grpc.InventoryServiceStub(channel)
    def get(self):
        return self._stub.GetQuotes.future(request)
check = health_pb2_grpc.HealthStub(channel).Check
raw = channel.unary_unary("/trading.v1.OrderService/Deposit")
dynamic = channel.unary_stream(route.grpc_path)
users.close()
"""
    sites = find_call_sites(source)
    assert sites.methods == {
        ("trading.v1.UserService", "Login"),
        ("trading.v1.InventoryService", "GetQuotes"),
        ("grpc.health.v1.Health", "Check"),
        ("trading.v1.OrderService", "Deposit"),
    }
    assert sites.dynamic == [13]
