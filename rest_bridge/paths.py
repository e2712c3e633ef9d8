"""Path variables as the `google.api.http` rule defines them: `{name}` is one path
segment, percent-decoded as a whole.

Starlette routes on the decoded path, where `BTC%2FETH` has become two segments and
matches nothing (or, worse, a redirect to another resource). `SegmentRoute` matches
on the raw segments instead, and `path_values` decodes each variable's segment: a
value holding `/` is then malformed (422), never another route.
"""

from __future__ import annotations

from urllib.parse import unquote

from starlette.routing import Match, Route
from starlette.types import Scope

from rest_bridge.transcode import BadInput


def _segments(scope: Scope) -> list[str]:
    raw: bytes = scope.get("raw_path") or scope["path"].encode()
    return raw.decode("latin-1").split("/")


class SegmentRoute(Route):
    """A Route that matches each raw segment decoded alone, an encoded `/` kept
    inside its segment."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        raw = scope.get("raw_path")
        if raw is not None and b"%2f" in raw.lower():
            # Each segment decoded alone, its `/` left encoded: the segment count stays.
            path = "/".join(unquote(part).replace("/", "%2F") for part in _segments(scope))
            scope = {**scope, "path": path}
        return super().matches(scope)


def path_values(template: str, scope: Scope) -> dict[str, str]:
    """The variables of a matched template, each its raw segment decoded as a whole.

    Raises BadInput naming the variable when its segment decodes to text with `/`.
    """
    values: dict[str, str] = {}
    for pattern, raw in zip(template.split("/"), _segments(scope), strict=False):
        if pattern.startswith("{") and pattern.endswith("}"):
            name = pattern[1:-1]
            value = unquote(raw)
            if "/" in value:
                raise BadInput(((name, "must be one path segment; an encoded / is not allowed"),))
            values[name] = value
    return values
