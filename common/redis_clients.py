"""The one way a process opens a Redis client: short timeouts and no retries.

redis-py retries a timed-out or failed command three times by default; against a
stalled Redis (SIGSTOP, a full network buffer) that turned one check into seconds and
ate the caller's whole deadline. Here every command fails within `timeout_seconds`
(the setting REDIS_TIMEOUT_SECONDS), once, and the caller decides: fail closed with 503
and Retry-After (revocations, login throttle), fail open (rate limits), or read the
store instead (quote cache).
"""

from __future__ import annotations

import redis
import redis.asyncio as aioredis

from common.metrics import count_redis_commands

# Budget of one Redis command: connect, send, answer.
REDIS_TIMEOUT_SECONDS = 0.5


def redis_client(url: str, timeout_seconds: float = REDIS_TIMEOUT_SECONDS) -> redis.Redis:
    client = redis.Redis.from_url(
        url,
        socket_timeout=timeout_seconds,
        socket_connect_timeout=timeout_seconds,
        health_check_interval=30,
        retry=None,
    )
    return count_redis_commands(client)


def async_redis_client(url: str, timeout_seconds: float = REDIS_TIMEOUT_SECONDS) -> aioredis.Redis:
    client = aioredis.Redis.from_url(
        url,
        socket_timeout=timeout_seconds,
        socket_connect_timeout=timeout_seconds,
        health_check_interval=30,
        retry=None,
    )
    return count_redis_commands(client)
