"""Whose bucket a bearer token spends: its verified `sub`, else the token's hash.

The signature is checked with svc_user's public keys so that a forged token cannot
spend another user's bucket; the result is used for bucketing only. Whether the
token is valid and unrevoked is for the services to decide. The keys are fetched with
GetJwks over the bridge's grpc.aio channel, awaited (`common.tokens.AsyncJwksKeys`:
the services' refetch rules); a token is checked on the loop (one Ed25519 signature,
once per token: the subjects are cached).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence

import grpc
import jwt
from trading.v1 import user_pb2, user_pb2_grpc

from common.tokens import ACCESS, AsyncJwksKeys, decode_token
from rest_bridge.calls import unary_call

_JWK_FIELDS = ("kty", "crv", "x", "kid", "alg", "use")
# A subject of a token whose signature, issuer, audience and expiry were verified.
_USER_PREFIX = "sub:"
_CACHE_SIZE = 4096


def is_verified_user(subject: str) -> bool:
    """Whether `subject` (from TokenSubjects) names a user whose token was verified, not
    merely a token's hash (which anyone can vary at will)."""
    return subject.startswith(_USER_PREFIX)


class TokenSubjects:
    """token -> subject (`sub:<user id>` when verified, else `token:<sha256>`), cached.
    `user_channel` gives svc_user's channel (called on the loop, at the first fetch);
    None: no svc_user, no token is verified. `fetch_timeout` in seconds."""

    def __init__(
        self,
        user_channel: Callable[[], grpc.aio.Channel | None] | None,
        *,
        issuer: str,
        audience: str,
        fetch_timeout: float,
    ) -> None:
        self._issuer = issuer
        self._audience = audience
        self._cache: OrderedDict[str, str] = OrderedDict()
        self._keys: AsyncJwksKeys | None = None
        if user_channel is not None:

            async def fetch() -> Sequence[Mapping[str, str]]:
                channel = user_channel()
                if channel is None:
                    raise LookupError("svc_user is not configured")
                answer = await unary_call(
                    user_pb2_grpc.UserServiceStub(channel).GetJwks,
                    user_pb2.GetJwksRequest(),
                    timeout=fetch_timeout,
                    metadata=(),
                )
                assert isinstance(answer, user_pb2.GetJwksResponse)
                return [{name: getattr(key, name) for name in _JWK_FIELDS} for key in answer.keys]

            self._keys = AsyncJwksKeys(fetch)

    async def _verified_subject(self, token: str, digest: str) -> str:
        keys = self._keys
        if keys is None:
            return f"token:{digest}"
        try:
            await keys.load(str(jwt.get_unverified_header(token).get("kid", "")))
            claims = decode_token(
                token,
                expected_type=ACCESS,
                issuer=self._issuer,
                audience=self._audience,
                resolve_key=keys.known,
            )
        except Exception:  # any failure: bucket by the token itself
            return f"token:{digest}"
        return f"{_USER_PREFIX}{claims['sub']}"

    async def __call__(self, token: str) -> str:
        digest = hashlib.sha256(token.encode()).hexdigest()
        subject = self._cache.get(digest)
        if subject is None:
            subject = await self._verified_subject(token, digest)
            self._cache[digest] = subject
            if len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        return subject
