"""The one parser of the `Authorization: Bearer <token>` header, for the whole platform.

The bridge (before it forwards a call) and every service (in its interceptor) read the
header with this function, so a header is usable everywhere or nowhere. The syntax is
RFC 9110's credentials with RFC 6750's token68: the scheme, case-insensitive, then one
or more spaces, then the token. A token longer than MAX_TOKEN_LENGTH is refused
unread: ours are a few hundred characters, and gRPC refuses metadata past 8 KiB.
"""

from __future__ import annotations

import re

from common.errors import Unauthenticated

# Far above any token svc_user signs (about 500 characters), far below gRPC's 8 KiB
# soft limit on metadata.
MAX_TOKEN_LENGTH = 4096
_SCHEME = "bearer"
_TOKEN68 = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


# Reasons of an UNAUTHENTICATED answer that mean: a bearer token was presented and
# cannot be used (malformed, forged, expired, revoked, its session ended). HTTP answers
# them with RFC 6750's `error="invalid_token"` challenge, so a client knows to get a new
# token; TOKEN_MISSING (nothing presented) and the credential refusals (wrong password)
# carry no error code. Raised by this module, common/tokens.py and the services.
INVALID_TOKEN_REASONS = frozenset(
    {"TOKEN_INVALID", "TOKEN_TOO_LARGE", "TOKEN_EXPIRED", "TOKEN_REVOKED", "SESSION_ENDED"}
)


class TokenTooLarge(Unauthenticated):
    reason = "TOKEN_TOO_LARGE"


def parse_bearer(header: str | None) -> str:
    """The token of a bearer Authorization header.

    Raises Unauthenticated with reason TOKEN_MISSING (no header or an empty one),
    TOKEN_INVALID (another scheme, no token, characters outside token68), or
    TokenTooLarge (reason TOKEN_TOO_LARGE) past MAX_TOKEN_LENGTH.
    """
    if header is None or not header.strip():
        raise Unauthenticated("a bearer token is required", reason="TOKEN_MISSING")
    scheme, _, rest = header.strip(" \t").partition(" ")
    token = rest.lstrip(" ")
    if scheme.lower() != _SCHEME or not token:
        raise Unauthenticated("malformed bearer token", reason="TOKEN_INVALID")
    if len(token) > MAX_TOKEN_LENGTH:
        raise TokenTooLarge(f"bearer token over {MAX_TOKEN_LENGTH} characters")
    if not _TOKEN68.fullmatch(token):
        raise Unauthenticated("malformed bearer token", reason="TOKEN_INVALID")
    return token
