"""The quote cache: the port and its Redis adapter, which keeps the latest quote of each
asset so that GetQuotes rarely touches the store.

The cache is an accelerator, never a source of truth: every failure (Redis down, slow,
or holding garbage) reads as a miss, the caller falls back to the store, and a warning
is logged once when Redis stops answering (and a note when it is back), not per call.
Entries live `ttl_seconds`, so a cache whose writer has stopped empties itself instead
of serving old prices as if they were the latest.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Protocol

import redis

from common.redis_clients import redis_client
from svc_inventory.domain import Quote, decimal_string

log = logging.getLogger(__name__)

# Quotes sit on the order path: a Redis that hangs must cost little before the store
# answers instead, hence timeouts far below the revocation list's.
CACHE_SOCKET_TIMEOUT_SECONDS = 0.25

# Newer wins, as in the store: a writer that observed a price earlier (a slow tick, a
# second replica) never replaces a later observation. "t" is as_of in epoch microseconds.
_PUT_IF_NEWER = """
local current = redis.call('GET', KEYS[1])
if current then
  local ok, decoded = pcall(cjson.decode, current)
  if ok and type(decoded) == 'table' and tonumber(decoded['t'])
      and tonumber(decoded['t']) > tonumber(ARGV[2]) then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
return 1
"""


class QuoteCache(Protocol):
    def put_many(self, quotes: Iterable[Quote]) -> None:
        """Remember these quotes; a failure is logged, never raised."""
        ...

    def get_many(self, asset_ids: Sequence[str]) -> dict[str, Quote]:
        """The cached quotes among `asset_ids`; a failure reads as all missing."""
        ...


def cache_client(url: str) -> redis.Redis:
    return redis_client(url, CACHE_SOCKET_TIMEOUT_SECONDS)


def quote_to_json(quote: Quote) -> str:
    return json.dumps(
        {
            "asset_id": quote.asset_id,
            "asset_name": quote.asset_name,
            "price": decimal_string(quote.price),
            "as_of": quote.as_of.isoformat(),
            "is_active": quote.is_active,
            "t": as_of_micros(quote),
        },
        separators=(",", ":"),
    )


def as_of_micros(quote: Quote) -> int:
    return round(quote.as_of.timestamp() * 1_000_000)


def quote_from_json(raw: bytes | str) -> Quote:
    """The quote an entry holds; ValueError (or KeyError) when it is not one."""
    fields = json.loads(raw)
    try:
        price = Decimal(fields["price"])
    except InvalidOperation as error:
        raise ValueError(f"bad price {fields['price']!r}") from error
    return Quote(
        asset_id=str(fields["asset_id"]),
        asset_name=str(fields["asset_name"]),
        price=price,
        as_of=datetime.fromisoformat(fields["as_of"]),
        is_active=bool(fields["is_active"]),
    )


class RedisQuoteCache:
    def __init__(self, client: redis.Redis, *, namespace: str, ttl_seconds: int) -> None:
        self._redis = client
        # Named after the table it mirrors, so services on other tables never share it.
        self._prefix = f"quote:{namespace}:"
        self._ttl_seconds = ttl_seconds
        self._put_if_newer = client.register_script(_PUT_IF_NEWER)
        self._lock = threading.Lock()
        self._down = False

    def key(self, asset_id: str) -> str:
        return self._prefix + asset_id

    def put_many(self, quotes: Iterable[Quote]) -> None:
        pipeline = self._redis.pipeline(transaction=False)
        for quote in quotes:
            self._put_if_newer(
                keys=[self.key(quote.asset_id)],
                args=[quote_to_json(quote), as_of_micros(quote), self._ttl_seconds],
                client=pipeline,
            )
        try:
            pipeline.execute()
        except redis.RedisError as error:
            self._note_down(error)
            return
        self._note_up()

    def get_many(self, asset_ids: Sequence[str]) -> dict[str, Quote]:
        if not asset_ids:
            return {}
        try:
            raw_entries = self._redis.mget([self.key(asset_id) for asset_id in asset_ids])
        except redis.RedisError as error:
            self._note_down(error)
            return {}
        self._note_up()
        found: dict[str, Quote] = {}
        for asset_id, raw in zip(asset_ids, raw_entries, strict=True):
            if raw is None:
                continue
            try:
                found[asset_id] = quote_from_json(raw)
            except (ValueError, KeyError, TypeError):
                log.warning("ignored an unreadable cached quote", extra={"asset_id": asset_id})
        return found

    def _note_down(self, error: redis.RedisError) -> None:
        with self._lock:
            was_down, self._down = self._down, True
        if not was_down:
            log.warning(
                "price cache unavailable; quotes come from the store",
                extra={"error": str(error)},
            )

    def _note_up(self) -> None:
        with self._lock:
            was_down, self._down = self._down, False
        if was_down:
            log.info("price cache available again")
