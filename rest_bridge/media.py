"""The media type of request bodies: JSON in UTF-8, nothing else.

Only `application/json` (optionally with `charset=utf-8`) is taken. Anything else,
`text/plain` above all, is 415: the types a browser may send cross-site without a
CORS preflight ("simple" requests: text/plain, form encodings) never reach a
service, so a hostile page cannot register accounts or burn a visitor's login
throttle. A request without a body needs no Content-Type.
"""

from __future__ import annotations

from rest_bridge.errors import ApiError

JSON_MEDIA_TYPE = "application/json"
_CHARSETS = frozenset({"utf-8"})


def _unsupported(detail: str) -> ApiError:
    return ApiError(415, "UNSUPPORTED_MEDIA_TYPE", detail)


def require_json(content_type: str | None, body: bytes) -> None:
    """Raises a 415 ApiError unless the body is empty or declared as JSON in UTF-8."""
    if content_type is None:
        if body:
            raise _unsupported("a body needs Content-Type: application/json")
        return
    media_type, *parameters = content_type.split(";")
    if media_type.strip().lower() != JSON_MEDIA_TYPE:
        raise _unsupported("request bodies must be application/json")
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        name, value = name.strip().lower(), value.strip().strip('"').lower()
        if not name and not value:
            continue
        if name != "charset" or value not in _CHARSETS:
            raise _unsupported("request bodies must be application/json in UTF-8")
