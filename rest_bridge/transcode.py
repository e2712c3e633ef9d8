"""JSON and query strings to request messages, response messages to JSON.

Bodies are parsed with Decimal for every JSON number, so a number sent for a decimal
string field (an amount, a quantity) arrives as its exact decimal text and never
passes through a binary float. Unknown fields are refused, naming the field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from rest_bridge.routes import Route

INTEGER_TYPES = frozenset(
    {
        FieldDescriptor.TYPE_INT32,
        FieldDescriptor.TYPE_INT64,
        FieldDescriptor.TYPE_UINT32,
        FieldDescriptor.TYPE_UINT64,
        FieldDescriptor.TYPE_SINT32,
        FieldDescriptor.TYPE_SINT64,
        FieldDescriptor.TYPE_FIXED32,
        FieldDescriptor.TYPE_FIXED64,
        FieldDescriptor.TYPE_SFIXED32,
        FieldDescriptor.TYPE_SFIXED64,
    }
)
FLOAT_TYPES = frozenset({FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE})
_TRUE = frozenset({"true", "1"})
_FALSE = frozenset({"false", "0"})

_UNKNOWN_FIELD = re.compile(r'has no field named "([^"]+)" at "([^"]*)"')
_BAD_VALUE = re.compile(r"Failed to parse (\w+) field")
_AT_PATH = re.compile(r" at ([\w.]+)\.?$")


@dataclass(frozen=True)
class BadInput(Exception):
    """Input that cannot become a request; each violation names the field at fault."""

    violations: tuple[tuple[str, str], ...]

    def __str__(self) -> str:
        return "; ".join(f"{field}: {description}" for field, description in self.violations)


def _is_repeated(field: FieldDescriptor) -> bool:
    return bool(field.is_repeated)


def _exact_numbers(value: Any, field: FieldDescriptor) -> Any:
    """A JSON value with its Decimal numbers made what ParseDict takes for this field."""
    if _is_repeated(field) and isinstance(value, list):
        return [_scalar(item, field) for item in value]
    return _scalar(value, field)


def _scalar(value: Any, field: FieldDescriptor) -> Any:
    if field.message_type is not None and isinstance(value, dict):
        return _with_exact_numbers(value, field.message_type)
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        return value
    if field.type == FieldDescriptor.TYPE_STRING:
        # The number's own digits, never a float's: 0.1 stays "0.1", 1e2 becomes "100".
        return str(value) if isinstance(value, int) else format(value, "f")
    if field.type in INTEGER_TYPES and isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if field.type in FLOAT_TYPES:
        return float(value)
    return value


def _with_exact_numbers(data: dict[str, Any], message: Descriptor) -> dict[str, Any]:
    converted: dict[str, Any] = {}
    for name, value in data.items():
        field = message.fields_by_name.get(name)
        converted[name] = value if field is None else _exact_numbers(value, field)
    return converted


def _parse_error(error: json_format.ParseError, root: str) -> BadInput:
    text = str(error)
    unknown = _UNKNOWN_FIELD.search(text)
    if unknown:
        location = unknown.group(2).split(".")[1:]
        field = ".".join([*location, unknown.group(1)])
        return BadInput(((field, "unknown field"),))
    bad = _BAD_VALUE.search(text)
    if bad:
        return BadInput(((bad.group(1), "invalid value for this field"),))
    at = _AT_PATH.search(text)
    field = ".".join(at.group(1).split(".")[1:]) if at else ""
    return BadInput(((field or root, "invalid value for this field"),))


def _query_value(field: FieldDescriptor, raw: str) -> Any:
    if field.type in INTEGER_TYPES:
        try:
            return int(raw)
        except ValueError:
            raise BadInput(((field.name, "must be an integer"),)) from None
    if field.type == FieldDescriptor.TYPE_BOOL:
        lowered = raw.lower()
        if lowered in _TRUE or lowered in _FALSE:
            return lowered in _TRUE
        raise BadInput(((field.name, "must be true or false"),))
    if field.type in FLOAT_TYPES:
        try:
            return float(raw)
        except ValueError:
            raise BadInput(((field.name, "must be a number"),)) from None
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        raise BadInput(((field.name, "cannot be given in the query string"),))
    return raw


def query_fields(
    message: Descriptor, items: Sequence[tuple[str, str]], bound: Sequence[str]
) -> dict[str, Any]:
    """Request fields from query parameters; repeated fields take repeated parameters
    or comma-separated lists."""
    grouped: dict[str, list[str]] = {}
    for name, raw in items:
        grouped.setdefault(name, []).append(raw)
    fields: dict[str, Any] = {}
    for name, values in grouped.items():
        field = message.fields_by_name.get(name)
        if field is None or name in bound:
            raise BadInput(((name, "unknown query parameter"),))
        if _is_repeated(field):
            parts = [part for raw in values for part in raw.split(",") if part]
            fields[name] = [_query_value(field, part) for part in parts]
        elif len(values) > 1:
            raise BadInput(((name, "given more than once"),))
        else:
            fields[name] = _query_value(field, values[0])
    return fields


def body_fields(raw: bytes, message: Descriptor) -> dict[str, Any]:
    """The JSON object of a request body, numbers as their exact decimal text."""
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError):
        raise BadInput((("body", "is not valid JSON"),)) from None
    if not isinstance(data, dict):
        raise BadInput((("body", "must be a JSON object"),))
    return _with_exact_numbers(data, message)


def build_request(
    route: Route,
    *,
    path_params: Mapping[str, str],
    query: Sequence[tuple[str, str]],
    body: bytes,
) -> Message:
    """The request message of a route from the parts of an HTTP request."""
    message_type = route.request_type
    fields: dict[str, Any] = {}
    if route.body == "*":
        fields.update(body_fields(body, message_type))
    else:
        if route.body:
            field = message_type.fields_by_name[route.body]
            sub = field.message_type
            content = body_fields(body, sub) if sub is not None else json.loads(body or b"null")
            fields[route.body] = content
        fields.update(query_fields(message_type, query, (*route.path_params, route.body)))
    for name, value in path_params.items():
        if name in fields:
            raise BadInput(((name, "given in the path; leave it out of the body"),))
        fields[name] = value
    request: Message = route.request_class()()
    try:
        json_format.ParseDict(fields, request, ignore_unknown_fields=False)
    except json_format.ParseError as error:
        raise _parse_error(error, "body") from None
    return request


def response_json(route: Route, response: Message) -> Any:
    """The JSON body of a response, honouring the rule's response_body."""
    data = json_format.MessageToDict(
        response,
        preserving_proto_field_name=True,
        always_print_fields_with_no_presence=True,
    )
    if route.response_body:
        return data.get(route.response_body, {})
    return data
