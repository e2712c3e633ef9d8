"""Whose bucket a bearer token spends: its verified `sub`, else the token's hash.

The signature is checked with svc_user's public keys so that a forged token cannot
spend another user's bucket; the result is used for bucketing only. Whether the
token is valid and unrevoked is for the services to decide.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Mapping, Sequence

import anyio.to_thread
import grpc
from trading.v1 import user_pb2, user_pb2_grpc

from common.tokens import ACCESS, JwksKeyResolver, decode_token

_JWK_FIELDS = ("kty", "crv", "x", "kid", "alg", "use")
# A subject of a token whose signature, issuer, audience and expiry were verified.
_USER_PREFIX = "sub:"
_CACHE_SIZE = 4096


def is_verified_user(subject: str) -> bool:
    """Whether `subject` (from TokenSubjects) names a user whose token was verified, not
    merely a token's hash (which anyone can vary at will)."""
    return subject.startswith(_USER_PREFIX)


class TokenSubjects:
    def __init__(
        self,
        user_channel: grpc.Channel | None,
        *,
        issuer: str,
        audience: str,
        fetch_timeout: float,
    ) -> None:
        self._issuer = issuer
        self._audience = audience
        self._cache: OrderedDict[str, str] = OrderedDict()
        self._keys: JwksKeyResolver | None = None
        if user_channel is not None:
            users = user_pb2_grpc.UserServiceStub(user_channel)

            def fetch() -> Sequence[Mapping[str, str]]:
                answer = users.GetJwks(user_pb2.GetJwksRequest(), timeout=fetch_timeout)
                return [{name: getattr(key, name) for name in _JWK_FIELDS} for key in answer.keys]

            self._keys = JwksKeyResolver(fetch)

    def _verified_subject(self, token: str, digest: str) -> str:
        if self._keys is None:
            return f"token:{digest}"
        try:
            claims = decode_token(
                token,
                expected_type=ACCESS,
                issuer=self._issuer,
                audience=self._audience,
                resolve_key=self._keys,
            )
        except Exception:  # any failure: bucket by the token itself
            return f"token:{digest}"
        return f"{_USER_PREFIX}{claims['sub']}"

    async def __call__(self, token: str) -> str:
        digest = hashlib.sha256(token.encode()).hexdigest()
        subject = self._cache.get(digest)
        if subject is None:
            subject = await anyio.to_thread.run_sync(self._verified_subject, token, digest)
            self._cache[digest] = subject
            if len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        return subject
