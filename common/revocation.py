"""The revocation list in Redis: token ids and whole sessions that no longer count.

A key lives exactly as long as the thing it revokes could still be presented, so the
list cleans itself. When Redis cannot be reached, verification fails closed.
"""

from __future__ import annotations

import redis

from common.errors import Unavailable

_TOKEN_KEY = "revoked:jti:{}"
_SESSION_KEY = "revoked:sid:{}"


class RevocationList:
    def __init__(self, client: redis.Redis) -> None:
        self._redis = client

    def revoke_token(self, token_id: str, ttl_seconds: int) -> None:
        self._set(_TOKEN_KEY.format(token_id), ttl_seconds)

    def revoke_session(self, session_id: str, ttl_seconds: int) -> None:
        self._set(_SESSION_KEY.format(session_id), ttl_seconds)

    def is_revoked(self, token_id: str, session_id: str) -> bool:
        try:
            found = self._redis.exists(_TOKEN_KEY.format(token_id), _SESSION_KEY.format(session_id))
        except redis.RedisError as error:
            raise Unavailable(
                "token revocation list unavailable", reason="REVOCATION_UNAVAILABLE"
            ) from error
        return int(found) > 0

    def _set(self, key: str, ttl_seconds: int) -> None:
        try:
            self._redis.set(key, b"1", ex=max(ttl_seconds, 1))
        except redis.RedisError as error:
            raise Unavailable(
                "token revocation list unavailable", reason="REVOCATION_UNAVAILABLE"
            ) from error


def redis_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url, socket_timeout=2, socket_connect_timeout=2, health_check_interval=30
    )
