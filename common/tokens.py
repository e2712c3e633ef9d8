"""Verification of access tokens, shared by every service.

The algorithm is pinned (EdDSA over Ed25519): a token naming any other algorithm,
`none` included, is refused before its signature is looked at. Issuer, audience,
expiry and type are required, and the token id and session id are checked against
the revocation list.

A service sees the same access token on every call of its session, and the signature
and claims check of a token string is pure: `AccessTokenVerifier` remembers the
tokens it verified (at most `MEMO_SIZE`, least recently used out) and serves one again
only while it is unexpired and its key id still resolves to the very key that verified
it (a key retired or replaced since empties the memo). The revocation check is not
remembered: it runs on every call (issue #13).
"""

from __future__ import annotations

import asyncio
import base64
import functools
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from common.context import Identity
from common.errors import Unauthenticated, Unavailable
from common.revocation import RevocationList

ALGORITHM = "EdDSA"
ACCESS = "access"
REFRESH = "refresh"
REQUIRED_CLAIMS = ("iss", "aud", "sub", "jti", "sid", "iat", "exp", "type")

# After a failed key fetch, the next try waits this long.
RETRY_SECONDS = 1.0
# Verified access tokens a verifier remembers: one per active session, each about 2 KB
# with its claims, so a few MB at most.
MEMO_SIZE = 2048

KeyResolver = Callable[[str], Ed25519PublicKey | None]


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def public_key_from_jwk(jwk: Mapping[str, str]) -> Ed25519PublicKey:
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        raise ValueError("only OKP/Ed25519 keys are accepted")
    return Ed25519PublicKey.from_public_bytes(_b64url_decode(jwk["x"]))


def decode_token(
    token: str,
    *,
    expected_type: str,
    issuer: str,
    audience: str,
    resolve_key: KeyResolver,
) -> dict[str, Any]:
    """The claims of a validly signed, unexpired token of the expected type.

    Raises Unauthenticated (TOKEN_INVALID, TOKEN_EXPIRED), or Unavailable when the
    keys cannot be fetched."""
    return _verified(
        token,
        expected_type=expected_type,
        issuer=issuer,
        audience=audience,
        resolve_key=resolve_key,
    ).claims


@dataclass(frozen=True)
class _Verified:
    """A token's claims and the key (and its id) whose signature check they passed."""

    claims: dict[str, Any]
    kid: str
    key: Ed25519PublicKey

    @property
    def expired(self) -> bool:
        # As PyJWT decides it (no leeway): expired once `exp` <= now.
        return int(self.claims["exp"]) <= time.time()


def _verified(
    token: str,
    *,
    expected_type: str,
    issuer: str,
    audience: str,
    resolve_key: KeyResolver,
) -> _Verified:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as error:
        raise Unauthenticated("malformed token", reason="TOKEN_INVALID") from error
    if header.get("alg") != ALGORITHM:
        raise Unauthenticated("token algorithm not accepted", reason="TOKEN_INVALID")
    kid = str(header.get("kid", ""))
    key = resolve_key(kid)
    if key is None:
        raise Unauthenticated("token signed by an unknown key", reason="TOKEN_INVALID")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            issuer=issuer,
            audience=audience,
            options={"require": list(REQUIRED_CLAIMS)},
        )
    except jwt.ExpiredSignatureError as error:
        raise Unauthenticated("token expired", reason="TOKEN_EXPIRED") from error
    except jwt.PyJWTError as error:
        raise Unauthenticated("invalid token", reason="TOKEN_INVALID") from error
    if claims.get("type") != expected_type:
        raise Unauthenticated("wrong token type", reason="TOKEN_INVALID")
    return _Verified(claims, kid, key)


class AccessTokenVerifier:
    """The caller of a request, from its access token (see the module's docstring)."""

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        resolve_key: KeyResolver,
        revocations: RevocationList,
        memo_size: int = MEMO_SIZE,
    ) -> None:
        self._issuer = issuer
        self._audience = audience
        self._resolve_key = resolve_key
        self._revocations = revocations
        # Only successes are remembered: a refused token is checked in full every time.
        self._memo = functools.lru_cache(maxsize=memo_size)(self._check)

    def _check(self, token: str) -> _Verified:
        return _verified(
            token,
            expected_type=ACCESS,
            issuer=self._issuer,
            audience=self._audience,
            resolve_key=self._resolve_key,
        )

    def verify(self, token: str) -> Identity:
        """The verified, unrevoked caller; raises Unauthenticated (TOKEN_INVALID,
        TOKEN_EXPIRED, TOKEN_REVOKED) or Unavailable (keys or revocation list)."""
        verified = self._memo(token)
        if verified.expired:
            # The full check gives the answer (TOKEN_EXPIRED) as for a token never seen.
            verified = self._check(token)
        elif self._resolve_key(verified.kid) is not verified.key:
            # The keys changed since (a key retired or replaced): nothing verified under
            # the old ones is served again.
            self._memo.cache_clear()
            verified = self._memo(token)
        claims = verified.claims
        if self._revocations.is_revoked(claims["jti"], claims["sid"]):
            raise Unauthenticated("token revoked", reason="TOKEN_REVOKED")
        return Identity(
            user_id=str(claims["sub"]),
            role=str(claims.get("role", "user")),
            token_id=str(claims["jti"]),
            session_id=str(claims["sid"]),
            expires_at=int(claims["exp"]),
            raw_token=token,
        )


class _KeySet:
    """The keys of svc_user's JWKS and when they may be fetched again: when a token
    names an unknown kid, at most every `min_refetch_seconds` (a flood of tokens with
    made-up key ids cannot turn into a flood of calls to svc_user), `RETRY_SECONDS`
    after a failed fetch. The rules of the sync and the async resolver."""

    def __init__(self, min_refetch_seconds: float) -> None:
        self._min_refetch = min_refetch_seconds
        self._keys: dict[str, Ed25519PublicKey] = {}
        self._fetched_at = float("-inf")

    def known(self, kid: str) -> Ed25519PublicKey | None:
        """The key `kid` among those fetched, None if it is not (a KeyResolver)."""
        return self._keys.get(kid)

    def _due(self, kid: str) -> bool:
        return kid not in self._keys and time.monotonic() - self._fetched_at >= self._min_refetch

    def _took(self, fetched: Sequence[Mapping[str, str]]) -> None:
        self._fetched_at = time.monotonic()
        self._keys = {jwk["kid"]: public_key_from_jwk(jwk) for jwk in fetched}

    def _failed(self) -> Unavailable:
        # Try again soon rather than after the full spacing: the keys are needed, and
        # the failure was theirs, not the token's.
        self._fetched_at = time.monotonic() - self._min_refetch + RETRY_SECONDS
        return Unavailable(
            "token keys unavailable", reason="KEYS_UNAVAILABLE", retry_after_seconds=1
        )


class JwksKeyResolver(_KeySet):
    """Public keys fetched from svc_user's JWKS by `fetch` (blocking, from any thread),
    refetched when an unknown kid appears (the spacing of `_KeySet`)."""

    def __init__(
        self,
        fetch: Callable[[], Sequence[Mapping[str, str]]],
        min_refetch_seconds: float = 30.0,
    ) -> None:
        super().__init__(min_refetch_seconds)
        self._fetch = fetch
        self._lock = threading.Lock()

    def __call__(self, kid: str) -> Ed25519PublicKey | None:
        key = self.known(kid)
        if key is not None:
            return key
        with self._lock:
            if self._due(kid):
                try:
                    fetched = self._fetch()
                except Exception as error:
                    raise self._failed() from error
                self._took(fetched)
            return self.known(kid)


class AsyncJwksKeys(_KeySet):
    """`JwksKeyResolver` for an event loop: `await load(kid)` fetches with the awaitable
    `fetch` (a grpc.aio call) when the rules say so, then `known` resolves without
    blocking. One fetch at a time; callers of the same loop wait for it."""

    def __init__(
        self,
        fetch: Callable[[], Awaitable[Sequence[Mapping[str, str]]]],
        min_refetch_seconds: float = 30.0,
    ) -> None:
        super().__init__(min_refetch_seconds)
        self._fetch = fetch
        self._lock = asyncio.Lock()

    async def load(self, kid: str) -> None:
        """Make `kid` known if svc_user has it and a fetch is due; raises Unavailable
        when the fetch fails."""
        if self.known(kid) is not None:
            return
        async with self._lock:
            if self._due(kid):
                try:
                    fetched = await self._fetch()
                except Exception as error:
                    raise self._failed() from error
                self._took(fetched)
