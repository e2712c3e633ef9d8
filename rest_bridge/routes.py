"""The route table, read from the `google.api.http` rules of the contracts.

No route is written by hand: every RPC that carries an HTTP rule becomes one route,
with its auth policy and success status from the contract's method options.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from google.api import annotations_pb2
from google.protobuf.descriptor import (
    Descriptor,
    FieldDescriptor,
    FileDescriptor,
    MethodDescriptor,
)
from google.protobuf.message_factory import GetMessageClass
from trading.v1 import options_pb2

from common.methods import TRADING_FILES

_VERBS = ("get", "put", "post", "delete", "patch")
# `{field}` or `{field=*}`; richer templates (`{name=shelves/*}`) are refused at start.
_VARIABLE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?:=\*)?\}")

# The kinds of field the bridge maps to and from JSON (transcode.py) and describes
# (openapi.py): the kinds the contracts use. A contract with another kind (an enum, a
# float, a 64-bit integer, bytes, a map, another well-known type) is refused at start
# rather than half-mapped; adding one means adding its mapping and its tests.
SCALAR_TYPES = frozenset(
    {FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BOOL, FieldDescriptor.TYPE_INT32}
)
# Well-known messages whose JSON form is a string (RFC 3339 for a timestamp).
STRING_MESSAGES = frozenset({"google.protobuf.Timestamp"})


@dataclass(frozen=True)
class Route:
    http_method: str
    path: str  # Starlette template, e.g. /api/v1/orders/{order_id}
    service: str  # trading.v1.OrderService
    method: str  # GetOrder
    request_type: Descriptor
    response_type: Descriptor
    body: str  # "*" or "" (no body)
    response_body: str  # "" or the field of the response that is the HTTP body
    path_params: tuple[str, ...]
    public: bool
    success_status: int
    server_streaming: bool
    # The Server-Sent Event name of a server stream's messages.
    sse_event: str = "message"
    # What the RPC does to a browser's refresh-token cookie (options_pb2.SessionCookie).
    session_cookie: int = options_pb2.SESSION_COOKIE_UNSPECIFIED

    @property
    def grpc_path(self) -> str:
        return f"/{self.service}/{self.method}"

    @property
    def full_name(self) -> str:
        return f"{self.service}.{self.method}"

    def request_class(self) -> Any:
        return GetMessageClass(self.request_type)

    def response_class(self) -> Any:
        return GetMessageClass(self.response_type)


def _unmapped(message: Descriptor, nested: bool, seen: set[str]) -> list[str]:
    """Fields of `message` (and, when `nested`, of the messages it holds) that the
    bridge does not map; a request holds no message but a timestamp."""
    seen.add(message.full_name)
    found = []
    for field in message.fields:
        held = field.message_type
        if held is None:
            if field.type not in SCALAR_TYPES:
                found.append(field.full_name)
        elif held.full_name in STRING_MESSAGES:
            continue
        elif not nested or held.GetOptions().map_entry or held.full_name.startswith("google."):
            found.append(field.full_name)
        elif held.full_name not in seen:
            found.extend(_unmapped(held, nested, seen))
    return found


def _route_of(method: MethodDescriptor) -> Route | None:
    options = method.GetOptions()
    if not options.HasExtension(annotations_pb2.http):
        return None
    rule = options.Extensions[annotations_pb2.http]
    verb = rule.WhichOneof("pattern")
    if verb == "custom":
        http_method, template = rule.custom.kind.upper(), rule.custom.path
    elif verb in _VERBS:
        http_method, template = verb.upper(), getattr(rule, verb)
    else:
        raise ValueError(f"{method.full_name}: HTTP rule without a pattern")
    if rule.additional_bindings:
        raise ValueError(f"{method.full_name}: additional_bindings are not supported")
    params = tuple(_VARIABLE.findall(template))
    path = _VARIABLE.sub(lambda m: "{" + m.group(1) + "}", template)
    if "{" in _VARIABLE.sub("", template):
        raise ValueError(f"{method.full_name}: unsupported path template {template!r}")
    for name in params:
        if name not in method.input_type.fields_by_name:
            raise ValueError(f"{method.full_name}: path variable {name!r} is not a request field")
    if rule.body not in ("", "*"):
        raise ValueError(f'{method.full_name}: body {rule.body!r}: only "*" or none is mapped')
    unmapped = _unmapped(method.input_type, False, set()) + _unmapped(
        method.output_type, True, set()
    )
    if unmapped:
        raise ValueError(f"{method.full_name}: fields of kinds not mapped: {', '.join(unmapped)}")
    if rule.response_body and rule.response_body not in method.output_type.fields_by_name:
        raise ValueError(f"{method.full_name}: response_body {rule.response_body!r} unknown")
    status = int(options.Extensions[options_pb2.success_http_status]) or 200
    return Route(
        http_method=http_method,
        path=path,
        service=method.containing_service.full_name,
        method=method.name,
        request_type=method.input_type,
        response_type=method.output_type,
        body=rule.body,
        response_body=rule.response_body,
        path_params=params,
        public=bool(options.Extensions[options_pb2.public]),
        success_status=status,
        server_streaming=method.server_streaming,
        sse_event=str(options.Extensions[options_pb2.sse_event]) or "message",
        session_cookie=int(options.Extensions[options_pb2.session_cookie]),
    )


def discover_routes(files: Iterable[FileDescriptor] = TRADING_FILES) -> list[Route]:
    """One route per annotated RPC of every service in the given files."""
    routes = [
        route
        for file in files
        for service in file.services_by_name.values()
        for method in service.methods
        if (route := _route_of(method)) is not None
    ]
    seen: set[tuple[str, str]] = set()
    for route in routes:
        key = (route.http_method, route.path)
        if key in seen:
            raise ValueError(f"two RPCs bind {route.http_method} {route.path}")
        seen.add(key)
    # Literal segments before variables, so /orders/mine would win over /orders/{id}.
    return sorted(routes, key=lambda r: (r.path.count("{"), r.path, r.http_method))
