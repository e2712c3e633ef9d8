"""Token buckets, kept in Redis so every bridge shares them.

One Lua script checks and spends all buckets of a request atomically (per client IP
and, with a token, per user), reading Redis's clock so bridges on different hosts
agree. When Redis cannot be reached, rate limits fail open (the services still
verify every call; a warning is logged and counted). The login throttle is svc_user's
(svc_user/throttle.py), so that every client of Login meets it.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import dataclass

import redis.asyncio as aioredis

log = logging.getLogger(__name__)

# KEYS: one hash per bucket. ARGV: rate per second and burst of each bucket, in order.
# Returns: allowed (1/0), index (1-based) of the bucket that refused (or, when allowed,
# has the fewest tokens left), its burst, its whole tokens left, ms until it is full,
# ms until the refusing bucket holds one token.
_TOKEN_BUCKETS = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local level = {}
local allowed = 1
for i = 1, #KEYS do
  local rate = tonumber(ARGV[2 * i - 1])
  local burst = tonumber(ARGV[2 * i])
  local state = redis.call('HMGET', KEYS[i], 'tokens', 'at')
  local tokens = tonumber(state[1])
  local at = tonumber(state[2])
  if tokens == nil or at == nil then
    tokens = burst
    at = now
  end
  tokens = math.min(burst, tokens + math.max(0, now - at) * rate / 1000)
  level[i] = tokens
  if tokens < 1 then allowed = 0 end
end
local chosen, lowest, retry_ms = 1, nil, 0
for i = 1, #KEYS do
  local rate = tonumber(ARGV[2 * i - 1])
  local burst = tonumber(ARGV[2 * i])
  if allowed == 1 then level[i] = level[i] - 1 end
  redis.call('HSET', KEYS[i], 'tokens', tostring(level[i]), 'at', tostring(now))
  redis.call('PEXPIRE', KEYS[i], math.ceil(burst / rate * 1000) + 1000)
  if allowed == 0 then
    if level[i] < 1 then
      local wait = math.ceil((1 - level[i]) / rate * 1000)
      if wait > retry_ms then
        retry_ms = wait
        chosen = i
      end
    end
  elseif lowest == nil or level[i] < lowest then
    lowest = level[i]
    chosen = i
  end
end
local rate = tonumber(ARGV[2 * chosen - 1])
local burst = tonumber(ARGV[2 * chosen])
local reset_ms = math.ceil((burst - level[chosen]) / rate * 1000)
return {allowed, chosen, burst, math.max(0, math.floor(level[chosen])), reset_ms, retry_ms}
"""


@dataclass(frozen=True)
class Bucket:
    scope: str  # "ip" or "user": what the bucket counts
    subject: str
    per_second: float
    burst: int


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int
    retry_after_seconds: int
    refused_by: str | None  # the scope of the bucket that refused

    def headers(self) -> dict[str, str]:
        values = {
            "Limit": str(self.limit),
            "Remaining": str(self.remaining),
            "Reset": str(self.reset_seconds),
        }
        headers = {f"RateLimit-{name}": value for name, value in values.items()}
        headers.update({f"X-RateLimit-{name}": value for name, value in values.items()})
        return headers


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class RedisOutage:
    """Counts and logs Redis failures, one warning per interval so an outage does not
    flood the log."""

    def __init__(self, interval_seconds: float = 10.0) -> None:
        self._interval = interval_seconds
        self._last_warning = float("-inf")

    def noted(self, purpose: str, error: Exception) -> None:
        now = time.monotonic()
        if now - self._last_warning >= self._interval:
            self._last_warning = now
            log.warning(
                "redis unreachable", extra={"purpose": purpose, "error": type(error).__name__}
            )


class RateLimiter:
    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self._script = client.register_script(_TOKEN_BUCKETS)
        self._prefix = prefix

    async def spend(self, buckets: list[Bucket]) -> Decision:
        """Take one token from every bucket, or from none when one is empty.
        Raises RedisError when Redis cannot be reached."""
        keys = [f"{self._prefix}:rl:{b.scope}:{_digest(b.subject)}" for b in buckets]
        args: list[float | int] = []
        for bucket in buckets:
            args.extend((bucket.per_second, bucket.burst))
        result = await self._script(keys=keys, args=args)
        allowed, index, limit, left, reset_ms, retry_ms = (int(v) for v in result)
        return Decision(
            allowed=bool(allowed),
            limit=limit,
            remaining=left,
            reset_seconds=math.ceil(reset_ms / 1000),
            retry_after_seconds=max(1, math.ceil(retry_ms / 1000)),
            refused_by=None if allowed else buckets[index - 1].scope,
        )
