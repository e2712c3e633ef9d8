"""HTTP request parts to request messages, response messages to JSON.

The proto3 JSON mapping, checked field by field before anything is parsed, so that
every refusal names its field without reading protobuf's error text:
- a known field is accepted under its proto name or its lowerCamel JSON name, once:
  both spellings, or one key repeated, is a violation (never "the last one wins");
- unknown fields and unknown query parameters are ignored, as grpc-gateway does, so
  old clients' extras (`access_token` on logout, `?_=` cache busters) do no harm;
- types follow the mapping, for the kinds of field the contracts use (routes.py
  refuses others at start): text fields take JSON strings, booleans `true`/`false`,
  32-bit integers a whole number (or its decimal string; one no int32 holds is refused
  naming the field's contract range, `int32_bounds`), timestamps an RFC 3339
  string, repeated fields arrays; `null` leaves a field unset. A JSON number is
  accepted for a text field only when the contract marks it `(trading.v1.decimal)`
  (amounts, prices, quantities), and only as a plain decimal of bounded size, which
  arrives as its exact text.
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

INT32_RANGE = (-(2**31), 2**31 - 1)
_TRUE = frozenset({"true", "1"})
_FALSE = frozenset({"false", "0"})

# The largest decimal a JSON number may carry for a decimal field: 30 digits before
# and after the point, no exponent. Larger or exponent forms are refused unread.
MAX_DECIMAL_DIGITS = 30
PLAIN_DECIMAL = re.compile(rf"-?\d{{1,{MAX_DECIMAL_DIGITS}}}(?:\.\d{{1,{MAX_DECIMAL_DIGITS}}})?")
# A whole number as proto3 JSON writes it; bounded, so no long text is ever converted.
WHOLE_NUMBER = re.compile(r"-?\d{1,20}")


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


def int32_bounds(field: FieldDescriptor) -> tuple[int, int]:
    """(smallest, largest) value of a 32-bit integer field: the contract's `minimum` and
    `maximum` options (which the owning service enforces), else the int32 bounds."""
    options = field.GetOptions()
    low, high = INT32_RANGE
    if options.HasExtension(options_pb2.minimum):
        low = options.Extensions[options_pb2.minimum]
    if options.HasExtension(options_pb2.maximum):
        high = options.Extensions[options_pb2.maximum]
    return low, high


def _int32(path: str, value: Any, field: FieldDescriptor) -> int:
    """A whole number that fits the field. Only a number no int32 holds is refused here,
    naming the field's own bounds; one in int32 but outside them goes on to the owning
    service, which refuses it with the same words."""
    if isinstance(value, bool) or not isinstance(value, str):
        raise _wrong_type(path, "a whole number", value)
    if not WHOLE_NUMBER.fullmatch(value):
        raise _bad(path, "must be a whole number")
    number = int(value)
    if not INT32_RANGE[0] <= number <= INT32_RANGE[1]:
        low, high = int32_bounds(field)
        raise _bad(path, f"must be between {low} and {high}")
    return number


def _scalar(path: str, value: Any, field: FieldDescriptor) -> Any:
    """One JSON value checked against one non-repeated field, as ParseDict takes it
    (the kinds of field routes.SCALAR_TYPES and STRING_MESSAGES allow)."""
    if field.message_type is not None:
        if not isinstance(value, str) or isinstance(value, JsonNumber):
            raise _wrong_type(path, "a string", value)
        return str(value)
    if field.type == FieldDescriptor.TYPE_BOOL:
        if not isinstance(value, bool):
            raise _wrong_type(path, "true or false", value)
        return value
    if field.type == FieldDescriptor.TYPE_INT32:
        return _int32(path, value, field)
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


def _message(data: JsonObject, message: Descriptor) -> dict[str, Any]:
    """The known fields of a JSON object, by proto name, each given at most once."""
    fields: dict[str, Any] = {}
    seen: set[str] = set()
    for key, value in data:
        field = _field_named(message, key)
        if field is None:
            continue  # unknown: ignored (see the module docs)
        if field.name in seen:
            raise _bad(field.name, "given more than once (under its name or its JSON name)")
        seen.add(field.name)
        if value is None:
            continue
        fields[field.name] = _field_value(field.name, value, field)
    return fields


def body_fields(raw: bytes, message: Descriptor) -> dict[str, Any]:
    """The known fields of a JSON object body, checked; an empty body has none."""
    if not raw.strip():
        return {}
    try:
        data = read_json(raw)
    except JsonError as error:
        raise _bad("body", str(error)) from None
    if not isinstance(data, JsonObject):
        raise _bad("body", "must be a JSON object")
    return _message(data, message)


def _query_value(field: FieldDescriptor, raw: str) -> Any:
    if field.type == FieldDescriptor.TYPE_INT32:
        return _int32(field.name, JsonNumber(raw), field)
    if field.type == FieldDescriptor.TYPE_BOOL:
        lowered = raw.lower()
        if lowered in _TRUE or lowered in _FALSE:
            return lowered in _TRUE
        raise _bad(field.name, "must be true or false")
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
    is not read; without a body the query holds them (routes.py maps no other rule).
    """
    message_type = route.request_type
    fields: dict[str, Any] = {}
    if route.body == "*":
        fields.update(body_fields(body, message_type))
    else:
        fields.update(query_fields(message_type, query, route.path_params))
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
