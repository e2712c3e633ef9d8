"""The revocation list in Redis: token ids and whole sessions that no longer count.

Redis is the fast path, not the record. svc_user writes every revocation to its store
first (the record) and then here; a key lives exactly as long as the thing it revokes
could still be presented, so the list cleans itself.

An emptied Redis (a flush, a failover to an empty replica, a new pod without a volume)
must not make a revoked token valid again. So the list is trusted only while the key
`revoked:complete` exists: it is written, without expiry, by the one who restored the
list from the record (svc_user's keeper, at start and whenever the key is missing) and
disappears with everything else when Redis loses its data. Every check reads it in
the same round trip as the token's keys (one MGET); without it, verification fails
closed (UNAVAILABLE, retry after 1 s) until the list is restored. When Redis cannot be
reached, verification fails closed too. Redis must therefore not evict these keys
(`maxmemory-policy noeviction`, or a Redis of its own).

The mark cannot tell a Redis that lost only its newest writes and kept the mark (a
replica promoted before it received them, a restart from a file that missed its last
second, a revocation whose Redis write failed after its record was written). So the
keeper also reconciles: every `reconcile_seconds` it reads the record of the
revocations in force (at most an access token's lifetime of them) and writes back any
that Redis lacks, so such a token is refused again within that interval.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

import redis

from common import audit
from common.errors import Unavailable
from common.telemetry import untraced

log = logging.getLogger(__name__)

_KEYS = {"token": "revoked:jti:{}", "session": "revoked:sid:{}"}
COMPLETE_KEY = "revoked:complete"
_RESTORE_LEASE_KEY = "revoked:restoring"

# Sets the completion mark only if this restorer still holds the lease: a flush during
# the restore removed the lease, and then the restore must run again.
_MARK_COMPLETE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[2], ARGV[1])
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""

RevocationKind = Literal["token", "session"]


@dataclass(frozen=True)
class Revocation:
    """One revoked access token (kind "token", id = jti) or session (id = sid), in force
    until `expires_at` (Unix seconds): after it no token it revokes can be valid."""

    kind: RevocationKind
    subject_id: str
    expires_at: int


def _unavailable(message: str) -> Unavailable:
    return Unavailable(message, reason="REVOCATION_UNAVAILABLE", retry_after_seconds=1)


class RevocationList:
    def __init__(self, client: redis.Redis, clock: Callable[[], float] = time.time) -> None:
        self._redis = client
        self._clock = clock
        self._mark_complete = client.register_script(_MARK_COMPLETE)

    def revoke(self, revocation: Revocation) -> None:
        ttl = revocation.expires_at - int(self._clock())
        if ttl <= 0:
            return
        try:
            self._redis.set(_key(revocation), b"1", ex=ttl)
        except redis.RedisError as error:
            audit.record(
                "revocation",
                outcome=audit.FAILURE,
                reason="REVOCATION_UNAVAILABLE",
                kind=revocation.kind,
                subject_id=revocation.subject_id,
                expires_at=revocation.expires_at,
            )
            raise _unavailable("token revocation list unavailable") from error
        audit.record(
            "revocation",
            kind=revocation.kind,
            subject_id=revocation.subject_id,
            expires_at=revocation.expires_at,
        )

    def is_revoked(self, token_id: str, session_id: str) -> bool:
        """Raises Unavailable when Redis cannot answer or lost the list."""
        keys = (COMPLETE_KEY, _KEYS["token"].format(token_id), _KEYS["session"].format(session_id))
        try:
            complete, token, session = self._redis.mget(keys)
        except redis.RedisError as error:
            raise _unavailable("token revocation list unavailable") from error
        if complete is None:
            raise _unavailable("token revocation list is being restored")
        return token is not None or session is not None

    def is_complete(self) -> bool:
        return bool(self._redis.exists(COMPLETE_KEY))

    def restore(self, record: Callable[[], Iterable[Revocation]], lease_seconds: int = 60) -> bool:
        """Write every revocation of the record into Redis, then mark the list complete.

        Only one restorer runs at a time (a lease in Redis, given up at its expiry when
        the holder dies). False when another holds the lease or Redis lost the lease
        meanwhile; the caller tries again later. Raises RedisError or the record's error.
        """
        lease = secrets.token_hex(16)
        if not self._redis.set(_RESTORE_LEASE_KEY, lease, nx=True, ex=lease_seconds):
            return False
        now = int(self._clock())
        written = 0
        with self._redis.pipeline(transaction=False) as pipe:
            for revocation in record():
                if revocation.expires_at > now:
                    pipe.set(_key(revocation), b"1", ex=revocation.expires_at - now)
                    written += 1
            pipe.execute()
        done = bool(self._mark_complete(keys=[_RESTORE_LEASE_KEY, COMPLETE_KEY], args=[lease]))
        if done:
            log.info("revocation list restored", extra={"revocations": written})
            audit.record("revocation_list_restored", revocations=written)
        return done

    def reconcile(self, record: Callable[[], Iterable[Revocation]]) -> int:
        """Writes every revocation of the record still in force that Redis lacks; the
        number written (0 when Redis holds them all: one MGET). Raises RedisError or
        the record's error."""
        now = int(self._clock())
        in_force = [revocation for revocation in record() if revocation.expires_at > now]
        if not in_force:
            return 0
        held = self._redis.mget([_key(revocation) for revocation in in_force])
        missing = [
            revocation for revocation, value in zip(in_force, held, strict=True) if value is None
        ]
        if not missing:
            return 0
        with self._redis.pipeline(transaction=False) as pipe:
            for revocation in missing:
                pipe.set(_key(revocation), b"1", ex=revocation.expires_at - now)
            pipe.execute()
        log.warning(
            "revocations missing from Redis written again", extra={"revocations": len(missing)}
        )
        audit.record("revocation_list_repaired", revocations=len(missing))
        return len(missing)


def _key(revocation: Revocation) -> str:
    return _KEYS[revocation.kind].format(revocation.subject_id)


class RevocationKeeper:
    """Keeps the revocation list complete: restores it from the record at start and
    whenever the completion mark is missing (Redis emptied), checking every
    `interval_seconds` (one EXISTS), and reconciles it with the record every
    `reconcile_seconds` (Redis lost some newest writes only). Runs in a daemon thread
    until stop()."""

    def __init__(
        self,
        revocations: RevocationList,
        record: Callable[[], Iterable[Revocation]],
        interval_seconds: float = 0.25,
        reconcile_seconds: float = 10.0,
    ) -> None:
        self._revocations = revocations
        self._record = record
        self._interval = interval_seconds
        self._reconcile_seconds = reconcile_seconds
        self._reconciled_at = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="revocation-keeper", daemon=True)
        self._failing = False

    def start(self) -> None:
        """Check (and restore) once now, so a service starts with a complete list
        whenever Redis and the record can be reached, then keep checking."""
        self._check()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._check()

    def _check(self) -> None:
        # Background work, not a request: no spans (four EXISTS a second otherwise).
        with untraced():
            self._keep()

    def _keep(self) -> None:
        try:
            if not self._revocations.is_complete():
                if self._revocations.restore(self._record):
                    self._reconciled_at = time.monotonic()
            elif time.monotonic() - self._reconciled_at >= self._reconcile_seconds:
                self._revocations.reconcile(self._record)
                self._reconciled_at = time.monotonic()
            self._failing = False
        except Exception as error:
            # Redis or the store is out; verification fails closed meanwhile.
            if not self._failing:
                log.warning("revocation list not restored", extra={"error": repr(error)})
            self._failing = True
