"""The gRPC calls the code really makes, computed from its source.

For each process, the modules its `__main__` imports (transitively, our packages only)
are parsed; a call site is an attribute of a generated stub that names a method of the
stub's service (`UserServiceStub(channel).GetJwks`, `self._stub.GetQuotes.future(...)`),
or a multicallable the code builds itself (`channel.unary_unary(path)`). A path that is
computed at run time (the bridge's routes) is taken from the route table the bridge
builds its endpoints from, `rest_bridge.routes.discover_routes()`.

The callee of a contract method is the process that serves its service; a health or
reflection call goes to every process the caller otherwise calls.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf.descriptor import ServiceDescriptor
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2

from common.callgraph import SERVES, Edge
from common.methods import TRADING_FILES

ROOT = Path(__file__).resolve().parent.parent
FIRST_PARTY = frozenset(
    {"common", "rest_bridge", "svc_user", "svc_inventory", "svc_order", "ops", "devstack"}
)
_MULTICALLABLES = frozenset({"unary_unary", "unary_stream", "stream_unary", "stream_stream"})
_SERVED_BY = {service: process for process, service in SERVES.items()}


def _stubs() -> dict[str, ServiceDescriptor]:
    files = [*TRADING_FILES, health_pb2.DESCRIPTOR, reflection_pb2.DESCRIPTOR]
    return {
        f"{service.name}Stub": service
        for file in files
        for service in file.services_by_name.values()
    }


STUBS = _stubs()


def module_path(name: str) -> Path | None:
    base = ROOT.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported(tree: ast.Module, package: str) -> Iterator[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def third_party_imports(modules: Iterable[str]) -> set[str]:
    """Top-level names of the packages outside ours that these modules import."""
    names: set[str] = set()
    for module in modules:
        path = module_path(module)
        assert path is not None
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for name in _imported(parse(path.read_text()), package):
            top = name.split(".")[0]
            if top and top not in FIRST_PARTY:
                names.add(top)
    return names


def import_closure(root: str) -> set[str]:
    """`root` and every first-party module it imports, directly or not."""
    seen: set[str] = set()
    todo = [root]
    while todo:
        name = todo.pop()
        if name in seen or name.split(".")[0] not in FIRST_PARTY:
            continue
        path = module_path(name)
        if path is None:
            continue
        seen.add(name)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        todo.extend(_imported(parse(path.read_text()), package))
    return seen


def parse(source: str) -> ast.Module:
    """`ast.parse`, tried again when CPython 3.11 reports "AST constructor recursion
    depth mismatch": its AST depth counter is shared by every thread of the
    interpreter (python/cpython#106905), so a parse that overlaps another thread's
    (the servers a test session runs in-process) can fail spuriously."""
    for _ in range(4):
        try:
            return ast.parse(source)
        except SystemError as error:
            if "recursion depth mismatch" not in str(error):
                raise
    return ast.parse(source)


@dataclass
class CallSites:
    """What one module calls: (gRPC service, method) pairs, and whether it builds a
    multicallable whose path is only known at run time."""

    methods: set[tuple[str, str]] = field(default_factory=set)
    dynamic: list[int] = field(default_factory=list)  # line numbers


def _name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        return f"{node.value.id}.{node.attr}"
    return None


def _constructed_stub(node: ast.expr) -> ServiceDescriptor | None:
    if not isinstance(node, ast.Call):
        return None
    func = node.func
    called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
    return STUBS.get(called) if isinstance(called, str) else None


def find_call_sites(source: str) -> CallSites:
    tree = parse(source)
    bound: dict[str, ServiceDescriptor] = {}
    for node in ast.walk(tree):
        targets: Iterable[ast.expr] = ()
        value: ast.expr | None = None
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign):
            targets, value = (node.target,), node.value
        service = _constructed_stub(value) if value is not None else None
        if service is not None:
            for target in targets:
                if (name := _name(target)) is not None:
                    bound[name] = service
    sites = CallSites()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            name = _name(node.value)
            service = _constructed_stub(node.value) or (bound.get(name) if name else None)
            if service is not None and node.attr in service.methods_by_name:
                sites.methods.add((service.full_name, node.attr))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in _MULTICALLABLES
            and node.args
        ):
            argument = node.args[0]
            if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                full_service, _, method = argument.value.lstrip("/").partition("/")
                sites.methods.add((full_service, method))
            else:
                sites.dynamic.append(node.lineno)
    return sites


def _routed_methods() -> set[tuple[str, str]]:
    from rest_bridge.routes import discover_routes

    return {(route.service, route.method) for route in discover_routes()}


def calls_of(process: str) -> set[Edge]:
    """The (caller, callee, path) edges that `process`'s code can make."""
    methods: set[tuple[str, str]] = set()
    for module in import_closure(f"{process}.__main__"):
        source = module_path(module)
        assert source is not None
        sites = find_call_sites(source.read_text())
        methods |= sites.methods
        if sites.dynamic:
            methods |= _routed_methods()
    callees = {_SERVED_BY[service] for service, _ in methods if service in _SERVED_BY}
    edges: set[Edge] = set()
    for service, method in methods:
        path = f"/{service}/{method}"
        targets = {_SERVED_BY[service]} if service in _SERVED_BY else callees
        edges |= {Edge(process, callee, path) for callee in targets}
    return edges
