"""HTTP request parts to request messages, response messages to JSON.

The proto3 JSON mapping, checked field by field before anything is parsed, so that
every refusal names its field without reading protobuf's error text:
- a known field is accepted under its proto name or its lowerCamel JSON name, once:
  both spellings, or one key repeated, is a violation (never "the last one wins");
- unknown fields and unknown query parameters are ignored, as grpc-gateway does, so
  old clients' extras (`access_token` on logout, `?_=` cache busters) do no harm;
- types follow the mapping: text fields take JSON strings, booleans `true`/`false`,
  integers a whole number (or its decimal string), messages objects, repeated fields
  arrays; `null` leaves a field unset. A JSON number is accepted for a text field only
  when the contract marks it `(trading.v1.decimal)` (amounts, prices, quantities),
  and only as a plain decimal of bounded size, which arrives as its exact text.
Numbers are judged from their text (`json_text.JsonNumber`) and never expanded.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from trading.v1 import options_pb2

from rest_bridge.json_text import JsonError, JsonNumber, JsonObject, read_json
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
TEXT_TYPES = frozenset({FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BYTES})
# Messages whose JSON form is not an object; protobuf parses their text.
WELL_KNOWN_SCALARS = frozenset(
    {
        "google.protobuf.Timestamp",
        "google.protobuf.Duration",
        "google.protobuf.FieldMask",
    }
)
_TRUE = frozenset({"true", "1"})
_FALSE = frozenset({"false", "0"})

# The largest decimal a JSON number may carry for a decimal field: 30 digits before
# and after the point, no exponent. Larger or exponent forms are refused unread.
MAX_DECIMAL_DIGITS = 30
PLAIN_DECIMAL = re.compile(rf"-?\d{{1,{MAX_DECIMAL_DIGITS}}}(?:\.\d{{1,{MAX_DECIMAL_DIGITS}}})?")
# A whole number as proto3 JSON writes it (64-bit ones as strings); 20 digits hold
# every 64-bit value, so nothing longer is converted.
WHOLE_NUMBER = re.compile(r"-?\d{1,20}")
# Floats are parsed from bounded text only.
MAX_FLOAT_TEXT = 40


@dataclass(frozen=True)
class BadInput(Exception):
    """Input that cannot become a request; each violation names the field at fault."""

    violations: tuple[tuple[str, str], ...]

    def __str__(self) -> str:
        return "; ".join(f"{field}: {description}" for field, description in self.violations)


def _bad(field: str, description: str) -> BadInput:
    return BadInput(((field, description),))


def is_decimal(field: FieldDescriptor) -> bool:
    """True when the contract marks the field as decimal text (money, price, quantity)."""
    return bool(field.GetOptions().Extensions[options_pb2.decimal])


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, JsonNumber):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, JsonObject):
        return "an object"
    return "an array"


def _wrong_type(path: str, wanted: str, value: Any) -> BadInput:
    return _bad(path, f"must be {wanted}, not {_type_name(value)}")


def _whole_number(path: str, value: Any, field: FieldDescriptor) -> int:
    if isinstance(value, bool) or not isinstance(value, str):
        raise _wrong_type(path, "a whole number", value)
    if not WHOLE_NUMBER.fullmatch(value):
        raise _bad(path, "must be a whole number")
    number = int(value)
    if field.type in (FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_SINT32) or (
        field.type == FieldDescriptor.TYPE_SFIXED32
    ):
        low, high = -(2**31), 2**31 - 1
    elif field.type in (FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_FIXED32):
        low, high = 0, 2**32 - 1
    elif field.type in (FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64):
        low, high = 0, 2**64 - 1
    else:
        low, high = -(2**63), 2**63 - 1
    if not low <= number <= high:
        raise _bad(path, f"must be between {low} and {high}")
    return number


def _scalar(path: str, value: Any, field: FieldDescriptor) -> Any:
    """One JSON value checked against one non-repeated field, as ParseDict takes it."""
    if field.message_type is not None:
        if field.message_type.full_name in WELL_KNOWN_SCALARS:
            if not isinstance(value, str) or isinstance(value, JsonNumber):
                raise _wrong_type(path, "a string", value)
            return str(value)
        if not isinstance(value, JsonObject):
            raise _wrong_type(path, "an object", value)
        return _message(path, value, field.message_type)
    if field.enum_type is not None:
        if isinstance(value, JsonNumber):
            return _whole_number(path, value, field)
        if not isinstance(value, str):
            raise _wrong_type(path, "a string", value)
        if field.enum_type.values_by_name.get(value) is None:
            names = ", ".join(v.name for v in field.enum_type.values)
            raise _bad(path, f"must be one of {names}")
        return str(value)
    if field.type == FieldDescriptor.TYPE_BOOL:
        if not isinstance(value, bool):
            raise _wrong_type(path, "true or false", value)
        return value
    if field.type in INTEGER_TYPES:
        return _whole_number(path, value, field)
    if field.type in FLOAT_TYPES:
        if isinstance(value, bool) or not isinstance(value, str) or len(value) > MAX_FLOAT_TEXT:
            raise _wrong_type(path, "a number", value)
        try:
            return float(value)
        except ValueError:
            raise _bad(path, "must be a number") from None
    # Text: a string, or for a decimal field a plain decimal JSON number.
    if isinstance(value, JsonNumber):
        if not is_decimal(field):
            raise _wrong_type(path, "a string", value)
        if not PLAIN_DECIMAL.fullmatch(value):
            raise _bad(
                path,
                f"must be a plain decimal number of at most {MAX_DECIMAL_DIGITS} digits "
                "before and after the point, without an exponent",
            )
        return str(value)
    if not isinstance(value, str):
        raise _wrong_type(path, "a string", value)
    return str(value)


def _field_value(path: str, value: Any, field: FieldDescriptor) -> Any:
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        if not isinstance(value, JsonObject):
            raise _wrong_type(path, "an object", value)
        value_field = field.message_type.fields_by_name["value"]
        entries: dict[str, Any] = {}
        for key, item in value:
            if key in entries:
                raise _bad(f"{path}.{key}", "given more than once")
            entries[key] = _scalar(f"{path}.{key}", item, value_field)
        return entries
    if field.is_repeated:
        if not isinstance(value, list) or isinstance(value, JsonObject):
            raise _wrong_type(path, "an array", value)
        return [_scalar(f"{path}[{index}]", item, field) for index, item in enumerate(value)]
    return _scalar(path, value, field)


@cache
def _json_names(message: Descriptor) -> dict[str, FieldDescriptor]:
    return {field.json_name: field for field in message.fields}


def _field_named(message: Descriptor, key: str) -> FieldDescriptor | None:
    """The field a JSON key or query parameter names: its proto name or JSON name."""
    return message.fields_by_name.get(key) or _json_names(message).get(key)


def _message(prefix: str, data: JsonObject, message: Descriptor) -> dict[str, Any]:
    """The known fields of a JSON object, by proto name, each given at most once."""
    fields: dict[str, Any] = {}
    seen: set[str] = set()
    for key, value in data:
        field = _field_named(message, key)
        if field is None:
            continue  # unknown: ignored (see the module docs)
        path = f"{prefix}.{field.name}" if prefix else field.name
        if field.name in seen:
            raise _bad(path, "given more than once (under its name or its JSON name)")
        seen.add(field.name)
        if value is None:
            continue
        fields[field.name] = _field_value(path, value, field)
    return fields


def body_fields(raw: bytes, message: Descriptor, prefix: str = "") -> dict[str, Any]:
    """The known fields of a JSON object body, checked; an empty body has none."""
    if not raw.strip():
        return {}
    try:
        data = read_json(raw)
    except JsonError as error:
        raise _bad("body", str(error)) from None
    if not isinstance(data, JsonObject):
        raise _bad("body", "must be a JSON object")
    return _message(prefix, data, message)


def _query_value(field: FieldDescriptor, raw: str) -> Any:
    if field.type in INTEGER_TYPES or field.enum_type is not None:
        if field.enum_type is not None and not WHOLE_NUMBER.fullmatch(raw):
            return _scalar(field.name, raw, field)
        return _whole_number(field.name, JsonNumber(raw), field)
    if field.type == FieldDescriptor.TYPE_BOOL:
        lowered = raw.lower()
        if lowered in _TRUE or lowered in _FALSE:
            return lowered in _TRUE
        raise _bad(field.name, "must be true or false")
    if field.type in FLOAT_TYPES:
        return _scalar(field.name, JsonNumber(raw), field)
    return raw


def query_fields(
    message: Descriptor, items: Sequence[tuple[str, str]], bound: Sequence[str]
) -> dict[str, Any]:
    """Request fields from query parameters. Unknown parameters are ignored; a field
    already bound by the path or the body, a message field, or a single field given
    twice is refused. Repeated fields take repeated parameters or comma lists."""
    grouped: dict[str, list[str]] = {}
    for name, raw in items:
        field = _field_named(message, name)
        if field is None:
            continue
        if field.name in bound:
            raise _bad(field.name, "given in the path or body; leave it out of the query")
        if field.message_type is not None:
            raise _bad(field.name, "cannot be given in the query string")
        grouped.setdefault(field.name, []).append(raw)
    fields: dict[str, Any] = {}
    for name, values in grouped.items():
        field = message.fields_by_name[name]
        if field.is_repeated:
            parts = [part for raw in values for part in raw.split(",") if part]
            fields[name] = [_query_value(field, part) for part in parts]
        elif len(values) > 1:
            raise _bad(name, "given more than once")
        else:
            fields[name] = _query_value(field, values[0])
    return fields


def _parse_into(request: Message, fields: Mapping[str, Any]) -> None:
    """Each checked field into the request, one at a time, so that what protobuf still
    refuses (a malformed timestamp) is known by the field it was parsing."""
    for name, value in fields.items():
        part = type(request)()
        try:
            json_format.ParseDict({name: value}, part)
        except json_format.ParseError:
            raise _bad(name, "invalid value for this field") from None
        request.MergeFrom(part)


def build_request(
    route: Route,
    *,
    path_params: Mapping[str, str],
    query: Sequence[tuple[str, str]],
    body: bytes,
) -> Message:
    """The request message of a route from the parts of an HTTP request.

    With `body: "*"` the body holds every field but the path's and the query string
    is not read; otherwise the body fills its one field and the query the others.
    """
    message_type = route.request_type
    fields: dict[str, Any] = {}
    if route.body == "*":
        fields.update(body_fields(body, message_type))
    else:
        if route.body:
            field = message_type.fields_by_name[route.body]
            if field.message_type is not None:
                fields[route.body] = body_fields(body, field.message_type, route.body)
            elif body.strip():
                try:
                    fields[route.body] = _field_value(route.body, read_json(body), field)
                except JsonError as error:
                    raise _bad("body", str(error)) from None
        fields.update(query_fields(message_type, query, (*route.path_params, route.body)))
    for name, value in path_params.items():
        if name in fields:
            raise _bad(name, "given in the path; leave it out of the body")
        fields[name] = value
    request: Message = route.request_class()()
    _parse_into(request, fields)
    return request


_JSON_NUMBER_TEXT = re.compile(r"-?\d+(?:\.\d+)?")


@cache
def _json_options(message: Descriptor) -> tuple[tuple[FieldDescriptor, bool, bool], ...]:
    """(field, json_number, json_null) of each field that has them or may hold them."""
    found = []
    for field in message.fields:
        options = field.GetOptions()
        number = bool(options.Extensions[options_pb2.json_number])
        null = bool(options.Extensions[options_pb2.json_null])
        nested = (
            field.message_type is not None
            # Well-known types (Struct may nest itself) never carry our options.
            and not field.message_type.full_name.startswith("google.protobuf.")
            and bool(_json_options(field.message_type))
        )
        if number or null or nested:
            found.append((field, number, null))
    return tuple(found)


def _old_client_types(data: dict[str, Any], message: Message) -> None:
    """Applies the contract's json_number and json_null options to `data` in place."""
    for field, number, null in _json_options(message.DESCRIPTOR):
        name = field.name
        value = data.get(name)
        if field.message_type is not None and value is not None:
            items = value if field.is_repeated else [value]
            held = getattr(message, name)
            for item, sub in zip(items, held if field.is_repeated else [held], strict=False):
                if isinstance(item, dict):
                    _old_client_types(item, sub)
        elif number and isinstance(value, str):
            exact = _JSON_NUMBER_TEXT.fullmatch(value)
            data[name] = Decimal(value) if exact else None
            continue
        if null and (name not in data or (number and value == "")):
            data[name] = None


def response_json(route: Route, response: Message) -> Any:
    """The JSON body of a response, honouring the rule's response_body and the
    contract's json_number and json_null options (see json_render)."""
    data = json_format.MessageToDict(
        response,
        preserving_proto_field_name=True,
        always_print_fields_with_no_presence=True,
    )
    _old_client_types(data, response)
    if route.response_body:
        return data.get(route.response_body, {})
    return data
