"""The bridge's route table and JSON mapping, in process (no servers): a contract the
bridge cannot map is refused at start, naming what; request parts become a message
or a refusal naming the field (rest_bridge/routes.py, transcode.py, openapi.py)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor_pb2, descriptor_pool, duration_pb2, timestamp_pb2
from google.protobuf.descriptor import FileDescriptor
from google.protobuf.json_format import MessageToDict

from rest_bridge.openapi import build_openapi
from rest_bridge.routes import Route, discover_routes
from rest_bridge.transcode import BadInput, build_request

F = descriptor_pb2.FieldDescriptorProto
REPEATED = F.LABEL_REPEATED
_numbers = itertools.count(1)
# The contracts below refer to these files, which their modules put in the pool.
_WELL_KNOWN_FILES = (timestamp_pb2.DESCRIPTOR.name, duration_pb2.DESCRIPTOR.name)

Rule = Callable[[http_pb2.HttpRule], None]


def post_all(rule: http_pb2.HttpRule) -> None:
    rule.post = "/things"
    rule.body = "*"


def field(name: str, kind: int, label: int = F.LABEL_OPTIONAL, type_name: str = "") -> F:
    """A field; in `type_name`, "P." stands for the contract's own package."""
    made = F(name=name, number=next(_numbers), type=kind, label=label)  # type: ignore[arg-type]
    if type_name:
        made.type_name = type_name
    return made


def contract(
    request: Sequence[F],
    response: Sequence[F] = (),
    *,
    rules: Sequence[Rule] = (post_all,),
    messages: Sequence[descriptor_pb2.DescriptorProto] = (),
) -> FileDescriptor:
    """A contract file of its own: service Svc, one method Do<i> per rule, Req -> Resp."""
    package = f"bridge_mapping_{next(_numbers)}"
    proto = descriptor_pb2.FileDescriptorProto(
        name=f"{package}.proto",
        package=package,
        syntax="proto3",
        dependency=["google/api/annotations.proto", *_WELL_KNOWN_FILES],
    )
    proto.message_type.add(name="Req").field.extend(request)
    proto.message_type.add(name="Resp").field.extend(response)
    proto.message_type.extend(messages)
    for message in proto.message_type:
        for one in [*message.field, *(f for n in message.nested_type for f in n.field)]:
            if one.type_name.startswith("P."):
                one.type_name = f".{package}.{one.type_name[2:]}"
    service = proto.service.add(name="Svc")
    for index, rule in enumerate(rules):
        method = service.method.add(
            name=f"Do{index}", input_type=f".{package}.Req", output_type=f".{package}.Resp"
        )
        rule(method.options.Extensions[annotations_pb2.http])
    pool = descriptor_pool.Default()
    return pool.AddSerializedFile(proto.SerializeToString())


def message(name: str, *fields: F, map_entry: bool = False) -> descriptor_pb2.DescriptorProto:
    return descriptor_pb2.DescriptorProto(
        name=name, field=fields, options=descriptor_pb2.MessageOptions(map_entry=map_entry)
    )


def refused(file: FileDescriptor) -> str:
    with pytest.raises(ValueError, match=r"^bridge_mapping_|^two RPCs") as refusal:
        discover_routes([file])
    return str(refusal.value)


# --- what a contract may hold ---------------------------------------------------------

STRING, BOOL, INT32 = F.TYPE_STRING, F.TYPE_BOOL, F.TYPE_INT32
MESSAGE = F.TYPE_MESSAGE


@pytest.mark.parametrize(
    ("request_fields", "response_fields", "messages", "named"),
    [
        ([field("ratio", F.TYPE_DOUBLE)], [], [], "Req.ratio"),
        ([field("count", F.TYPE_INT64)], [], [], "Req.count"),
        ([field("blob", F.TYPE_BYTES)], [], [], "Req.blob"),
        ([field("ids", F.TYPE_UINT32, REPEATED)], [], [], "Req.ids"),
        # A request holds no message but a timestamp.
        ([field("inner", MESSAGE, type_name="P.Inner")], [], [message("Inner")], "Req.inner"),
        ([field("ttl", MESSAGE, type_name=".google.protobuf.Duration")], [], [], "Req.ttl"),
        # A response may hold messages of the contract, but each is checked too.
        (
            [],
            [field("inner", MESSAGE, REPEATED, "P.Inner")],
            [message("Inner", field("weight", F.TYPE_FLOAT))],
            "Inner.weight",
        ),
        ([], [field("ttl", MESSAGE, type_name=".google.protobuf.Duration")], [], "Resp.ttl"),
        (
            [],
            [field("labels", MESSAGE, REPEATED, "P.LabelsEntry")],
            [
                message(
                    "LabelsEntry",
                    field("key", STRING),
                    field("value", STRING),
                    map_entry=True,
                )
            ],
            "Resp.labels",
        ),
    ],
)
def test_a_contract_with_a_kind_of_field_the_bridge_does_not_map_is_refused_at_start(
    request_fields: list[F],
    response_fields: list[F],
    messages: list[descriptor_pb2.DescriptorProto],
    named: str,
) -> None:
    refusal = refused(contract(request_fields, response_fields, messages=messages))
    assert "fields of kinds not mapped" in refusal
    assert refusal.endswith(named)


def _rule(**fields: Any) -> Rule:
    def apply(rule: http_pb2.HttpRule) -> None:
        for name, value in fields.items():
            if name == "additional_bindings":
                rule.additional_bindings.add(get="/other")
            else:
                setattr(rule, name, value)

    return apply


@pytest.mark.parametrize(
    ("rules", "says"),
    [
        ([_rule(post="/things", body="name")], "body 'name': only \"*\" or none is mapped"),
        ([_rule(body="*")], "HTTP rule without a pattern"),
        ([_rule(get="/things", additional_bindings=True)], "additional_bindings are not supported"),
        ([_rule(get="/things/{name=shelves/*}")], "unsupported path template"),
        ([_rule(get="/things/{nope}")], "path variable 'nope' is not a request field"),
        ([_rule(get="/things", response_body="nope")], "response_body 'nope' unknown"),
        ([_rule(get="/things"), _rule(get="/things")], "two RPCs bind GET /things"),
    ],
)
def test_an_http_rule_the_bridge_cannot_serve_is_refused_at_start(
    rules: list[Rule], says: str
) -> None:
    assert says in refused(contract([field("name", STRING)], rules=rules))


def test_a_custom_verb_is_a_route_of_its_own_method() -> None:
    def purge(rule: http_pb2.HttpRule) -> None:
        rule.custom.kind = "purge"
        rule.custom.path = "/things/{name}"

    (route,) = discover_routes([contract([field("name", STRING)], rules=[purge])])
    assert (route.http_method, route.path, route.path_params) == (
        "PURGE",
        "/things/{name}",
        ("name",),
    )


# --- request parts to a message ---------------------------------------------------------


def _every_kind() -> list[F]:
    return [
        field("name", STRING),
        field("flag", BOOL),
        field("count", INT32),
        field("when", MESSAGE, type_name=".google.protobuf.Timestamp"),
        field("tags", STRING, REPEATED),
    ]


@pytest.fixture(scope="module")
def posted() -> Route:
    """POST /things/{name} with every mapped kind of field in its body."""

    def rule(http: http_pb2.HttpRule) -> None:
        http.post = "/things/{name}"
        http.body = "*"

    (route,) = discover_routes([contract(_every_kind(), rules=[rule])])
    return route


@pytest.fixture(scope="module")
def listed() -> Route:
    """GET /things with every mapped kind of field in its query."""
    (route,) = discover_routes([contract(_every_kind(), rules=[_rule(get="/things")])])
    return route


def violation(route: Route, *, body: bytes = b"", query: Sequence[tuple[str, str]] = ()) -> Any:
    with pytest.raises(BadInput) as bad:
        build_request(
            route, path_params={"name": "a"} if route.path_params else {}, query=query, body=body
        )
    return bad.value.violations


def test_a_body_of_every_kind_of_field_becomes_its_message(posted: Route) -> None:
    body = b'{"flag": true, "count": "-7", "when": "2026-12-01T09:00:00Z", "tags": ["x", "y"]}'
    built = build_request(posted, path_params={"name": "a"}, query=(), body=body)
    assert MessageToDict(built, preserving_proto_field_name=True) == {
        "name": "a",
        "flag": True,
        "count": -7,
        "when": "2026-12-01T09:00:00Z",
        "tags": ["x", "y"],
    }


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"[]", ("body", "must be a JSON object")),
        (b'{"count": true}', ("count", "must be a whole number, not a boolean")),
        (b'{"count": 1.5}', ("count", "must be a whole number")),
        (b'{"count": 2147483648}', ("count", "must be between -2147483648 and 2147483647")),
        (b'{"tags": "x"}', ("tags", "must be an array, not a string")),
        (b'{"tags": [null]}', ("tags[0]", "must be a string, not null")),
        (b'{"tags": [{}]}', ("tags[0]", "must be a string, not an object")),
        (b'{"when": 5}', ("when", "must be a string, not a number")),
        (b'{"when": "tomorrow"}', ("when", "invalid value for this field")),
        (b'{"name": "b"}', ("name", "given in the path; leave it out of the body")),
    ],
)
def test_a_body_field_of_the_wrong_kind_is_refused_by_name(
    posted: Route, body: bytes, expected: tuple[str, str]
) -> None:
    assert violation(posted, body=body) == (expected,)


def test_a_query_of_every_kind_of_field_becomes_its_message(listed: Route) -> None:
    query = [("name", "a"), ("flag", "1"), ("count", "3"), ("tags", "x,y"), ("tags", "z")]
    built = build_request(listed, path_params={}, query=query, body=b"")
    assert MessageToDict(built, preserving_proto_field_name=True) == {
        "name": "a",
        "flag": True,
        "count": 3,
        "tags": ["x", "y", "z"],
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ([("flag", "maybe")], ("flag", "must be true or false")),
        ([("count", "1e3")], ("count", "must be a whole number")),
        ([("when", "2026-12-01T09:00:00Z")], ("when", "cannot be given in the query string")),
        ([("name", "a"), ("name", "b")], ("name", "given more than once")),
    ],
)
def test_a_query_parameter_the_mapping_refuses_is_named(
    listed: Route, query: list[tuple[str, str]], expected: tuple[str, str]
) -> None:
    assert violation(listed, query=query) == (expected,)


def test_a_path_variable_is_not_taken_from_the_query_too() -> None:
    (route,) = discover_routes(
        [contract([field("name", STRING)], rules=[_rule(get="/things/{name}")])]
    )
    assert violation(route, query=[("name", "b")]) == (
        ("name", "given in the path or body; leave it out of the query"),
    )


def test_openapi_describes_every_mapped_kind_as_the_mapping_reads_it(posted: Route) -> None:
    spec = build_openapi([posted])
    body = spec["paths"]["/things/{name}"]["post"]["requestBody"]["content"]["application/json"]
    properties = body["schema"]["properties"]
    assert "name" not in properties  # bound by the path
    assert properties["flag"] == {"type": "boolean"}
    assert properties["count"] == {
        "type": "integer",
        "format": "int32",
        "minimum": -(2**31),
        "maximum": 2**31 - 1,
    }
    assert properties["when"] == {"type": "string", "format": "date-time"}
    assert properties["tags"] == {"type": "array", "items": {"type": "string"}}
