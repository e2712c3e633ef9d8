"""The login throttle: failed logins counted in Redis per client address and per
username; reaching the maximum within the window blocks login for that address or
username (API.md: 5 in 300 s block for 300 s, all three settings).

It lives in svc_user, so every client of Login meets it: the bridge, grpcurl, another
service. Redis is shared by every replica. When Redis cannot be reached it fails
closed (UNAVAILABLE `LOGIN_UNAVAILABLE`): without the counts, guessing would be
unlimited. An emptied Redis forgets counts and blocks (README, "When a part fails").
"""

from __future__ import annotations

import hashlib
from typing import Protocol

import redis

from common.errors import Unavailable

# KEYS: failure counters, then block markers, pairwise. ARGV: max failures, window s,
# block s. Counts one failure for each subject and blocks those that reach the max.
_RECORD_FAILURE = """
local half = #KEYS / 2
for i = 1, half do
  local count = redis.call('INCR', KEYS[i])
  if count == 1 then redis.call('EXPIRE', KEYS[i], tonumber(ARGV[2])) end
  if count >= tonumber(ARGV[1]) then
    redis.call('SET', KEYS[half + i], '1', 'EX', tonumber(ARGV[3]))
    redis.call('DEL', KEYS[i])
  end
end
return 1
"""


class LoginThrottle(Protocol):
    def blocked_for(self, client_address: str, username: str) -> int:
        """Seconds login stays blocked for this address or username; 0 when open.
        Raises Unavailable when the counts cannot be read."""
        ...

    def failed(self, client_address: str, username: str) -> None:
        """Counts one failed login for both. Raises Unavailable when it cannot."""
        ...


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _unavailable() -> Unavailable:
    return Unavailable(
        "login is unavailable; try again shortly",
        reason="LOGIN_UNAVAILABLE",
        retry_after_seconds=1,
    )


class RedisLoginThrottle:
    def __init__(
        self,
        client: redis.Redis,
        prefix: str,
        *,
        max_failures: int,
        window_seconds: int,
        block_seconds: int,
    ) -> None:
        self._client = client
        self._record = client.register_script(_RECORD_FAILURE)
        self._prefix = prefix
        self._args = (max_failures, window_seconds, block_seconds)

    def _subjects(self, client_address: str, username: str) -> list[str]:
        subjects = [f"ip:{_digest(client_address)}"]
        if username:
            subjects.append(f"user:{_digest(username.strip().lower())}")
        return subjects

    def blocked_for(self, client_address: str, username: str) -> int:
        keys = [f"{self._prefix}:block:{s}" for s in self._subjects(client_address, username)]
        try:
            with self._client.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.ttl(key)
                ttls = pipe.execute()
        except redis.RedisError as error:
            raise _unavailable() from error
        return max([0, *(int(ttl) for ttl in ttls)])

    def failed(self, client_address: str, username: str) -> None:
        subjects = self._subjects(client_address, username)
        keys = [f"{self._prefix}:fail:{s}" for s in subjects]
        keys += [f"{self._prefix}:block:{s}" for s in subjects]
        try:
            self._record(keys=keys, args=list(self._args))
        except redis.RedisError as error:
            raise _unavailable() from error
