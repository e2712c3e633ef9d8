"""OpenAPI 3 of the bridge, generated from the same route table as the routes, and
a self-contained /docs page (no scripts, no external assets) listing them."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from trading.v1 import options_pb2

from common import idempotency
from common.health import DEPENDENCIES
from rest_bridge.errors import HTTP_STATUS
from rest_bridge.routes import Route
from rest_bridge.transcode import int32_bounds, is_decimal

# The schemas of the well-known messages the routes may hold (routes.STRING_MESSAGES).
_WELL_KNOWN: dict[str, dict[str, Any]] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
}
_ERROR_STATUSES = sorted({s for s in HTTP_STATUS.values() if 400 <= s < 600 and s != 499})
_RATE_HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")


def schema_name(message: Descriptor) -> str:
    return message.full_name.removeprefix("trading.v1.").replace(".", "_")


class _Schemas:
    def __init__(self) -> None:
        self.components: dict[str, Any] = {}

    def ref(self, message: Descriptor) -> dict[str, Any]:
        if message.full_name in _WELL_KNOWN:
            return dict(_WELL_KNOWN[message.full_name])
        name = schema_name(message)
        if name not in self.components:
            self.components[name] = {}  # placeholder against recursion
            self.components[name] = self.message(message)
        return {"$ref": f"#/components/schemas/{name}"}

    def message(self, message: Descriptor, leave_out: Sequence[str] = ()) -> dict[str, Any]:
        properties: dict[str, Any] = {}
        required: list[str] = []
        for field in message.fields:
            if field.name in leave_out:
                continue
            properties[field.name] = self.field(field)
            if field.type != FieldDescriptor.TYPE_MESSAGE and not field.has_presence:
                required.append(field.name)
        schema: dict[str, Any] = {
            "type": "object",
            "properties": properties,
            "additionalProperties": False,
        }
        if required:
            schema["required"] = required
        return schema

    def field(self, field: FieldDescriptor) -> dict[str, Any]:
        single = self.scalar(field)
        if field.is_repeated:
            return {"type": "array", "items": single}
        options = field.GetOptions()
        if options.Extensions[options_pb2.json_number]:
            single = {"type": "number"}  # what transcode.response_json writes
        if options.Extensions[options_pb2.json_null]:
            if "$ref" in single:
                single = {"allOf": [single]}
            single["nullable"] = True
        return single

    def scalar(self, field: FieldDescriptor) -> dict[str, Any]:
        """The schema of one value of a field of the kinds routes.py maps."""
        if field.message_type is not None:
            return self.ref(field.message_type)
        if field.type == FieldDescriptor.TYPE_BOOL:
            return {"type": "boolean"}
        if field.type == FieldDescriptor.TYPE_INT32:
            low, high = int32_bounds(field)
            return {"type": "integer", "format": "int32", "minimum": low, "maximum": high}
        schema: dict[str, Any] = {"type": "string"}
        # Constraints come from the contract's field options, never from here.
        pattern = field.GetOptions().Extensions[options_pb2.pattern]
        if pattern:
            schema["pattern"] = pattern
        if is_decimal(field):
            schema["format"] = "decimal"
        return schema


def _error_response(status: int) -> dict[str, Any]:
    content = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    return {"description": f"Error ({status})", "content": content}


def _headers() -> dict[str, Any]:
    headers: dict[str, Any] = {"X-Request-ID": {"schema": {"type": "string"}}}
    headers.update({name: {"schema": {"type": "integer"}} for name in _RATE_HEADERS})
    return headers


def _operation(route: Route, schemas: _Schemas) -> dict[str, Any]:
    request_type = route.request_type
    operation: dict[str, Any] = {
        "operationId": route.method,
        "summary": f"{route.service.rsplit('.', 1)[-1]}.{route.method}",
        "tags": [route.service.rsplit(".", 1)[-1]],
        "security": [] if route.public else [{"bearer": []}],
    }
    parameters: list[dict[str, Any]] = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": schemas.field(request_type.fields_by_name[name]),
        }
        for name in route.path_params
    ]
    if route.body != "*":
        for field in request_type.fields:
            if field.name in route.path_params or field.name == route.body:
                continue
            if field.type == FieldDescriptor.TYPE_MESSAGE:
                continue
            parameter: dict[str, Any] = {
                "name": field.name,
                "in": "query",
                "required": False,
                "schema": schemas.field(field),
            }
            if field.is_repeated:
                parameter.update(style="form", explode=True)
            parameters.append(parameter)
    parameters.append(
        {
            "name": "X-Request-ID",
            "in": "header",
            "required": False,
            "schema": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,128}$"},
        }
    )
    if route.http_method in ("POST", "PUT", "PATCH"):
        parameters.append(
            {
                "name": idempotency.HTTP_HEADER,
                "in": "header",
                "required": False,
                "description": idempotency.DESCRIPTION,
                "schema": {
                    "type": "string",
                    "pattern": f"^{idempotency.PATTERN}$",
                    "maxLength": idempotency.MAX_LENGTH,
                },
            }
        )
    operation["parameters"] = parameters
    if route.body == "*":
        body_schema = (
            schemas.message(request_type, route.path_params)
            if route.path_params
            else schemas.ref(request_type)
        )
        operation["requestBody"] = {
            "required": False,
            "content": {"application/json": {"schema": body_schema}},
        }
    response_type = route.response_type
    response_schema = (
        schemas.field(response_type.fields_by_name[route.response_body])
        if route.response_body
        else schemas.ref(response_type)
    )
    if route.server_streaming:
        success = {
            "description": "Server-Sent Events: one `price` event per message; each "
            f"event's data is a JSON {schema_name(response_type)}.",
            "headers": _headers(),
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
            "x-event-schema": response_schema,
        }
    else:
        success = {
            "description": "Success",
            "headers": _headers(),
            "content": {"application/json": {"schema": response_schema}},
        }
    responses: dict[str, Any] = {str(route.success_status): success}
    for status in _ERROR_STATUSES:
        responses[str(status)] = _error_response(status)
    operation["responses"] = responses
    return operation


_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["detail", "code", "request_id"],
    "properties": {
        "detail": {"type": "string"},
        "code": {"type": "string"},
        "request_id": {"type": "string"},
        "violations": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "description"],
                "properties": {"field": {"type": "string"}, "description": {"type": "string"}},
            },
        },
    },
}

_HEALTH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["status", "service", "dependencies"],
    "properties": {
        "status": {"type": "string", "enum": ["healthy", "degraded"]},
        "service": {"type": "string"},
        "dependencies": {
            "type": "object",
            "additionalProperties": {"type": "string", "enum": ["up", "down", "not_configured"]},
        },
        "causes": {
            "type": "object",
            "description": "Per service that is down, the dependencies it reports failing.",
            "additionalProperties": {
                "type": "array",
                "items": {"type": "string", "enum": list(DEPENDENCIES)},
            },
        },
    },
}


def _operations_paths() -> dict[str, Any]:
    def plain(summary: str, media: str, schema: dict[str, Any]) -> dict[str, Any]:
        return {
            "get": {
                "operationId": summary.replace(" ", "_"),
                "summary": summary,
                "tags": ["operations"],
                "security": [],
                "responses": {
                    "200": {"description": summary, "content": {media: {"schema": schema}}},
                    "429": _error_response(429),
                },
            }
        }

    health = plain("health", "application/json", {"$ref": "#/components/schemas/Health"})
    health["get"]["responses"]["503"] = {
        "description": "A needed dependency is down",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Health"}}},
    }
    return {
        "/health": health,
        "/metrics": plain("metrics", "text/plain", {"type": "string"}),
        "/openapi.json": plain("openapi", "application/json", {"type": "object"}),
        "/docs": plain("docs", "text/html", {"type": "string"}),
    }


def build_openapi(routes: Sequence[Route], version: str = "1.0.0") -> dict[str, Any]:
    schemas = _Schemas()
    paths: dict[str, Any] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.http_method.lower()] = _operation(route, schemas)
    paths.update(_operations_paths())
    components = dict(sorted(schemas.components.items()))
    components["Error"] = _ERROR_SCHEMA
    components["Health"] = _HEALTH_SCHEMA
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Trading platform REST API",
            "version": version,
            "description": "Generated from the google.api.http rules of trading.v1.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }


def docs_page(spec: dict[str, Any]) -> str:
    rows = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            auth = "bearer token" if operation.get("security") else "public"
            codes = ", ".join(operation["responses"])
            rows.append(
                "<tr>"
                f"<td><code>{html.escape(method.upper())}</code></td>"
                f"<td><code>{html.escape(path)}</code></td>"
                f"<td>{html.escape(operation.get('summary', ''))}</td>"
                f"<td>{auth}</td><td>{html.escape(codes)}</td>"
                "</tr>"
            )
    title = html.escape(spec["info"]["title"])
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{title}</title><style>"
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}"
        "</style></head><body>"
        f"<h1>{title}</h1><p>The full contract, with request and response schemas: "
        '<a href="/openapi.json">/openapi.json</a>.</p>'
        "<table><tr><th>Method</th><th>Path</th><th>RPC</th><th>Auth</th>"
        "<th>Statuses</th></tr>" + "".join(rows) + "</table></body></html>"
    )
