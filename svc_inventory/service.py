"""The use cases of svc_inventory; ports (store, cache, price source, broadcaster,
clock) come in as arguments so tests can swap any of them."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta

from common.errors import FieldViolation, InvalidArgument, NotFound
from svc_inventory import metrics
from svc_inventory.broadcast import PriceBroadcaster, Subscription
from svc_inventory.cache import QuoteCache
from svc_inventory.domain import (
    MAX_LIST_LIMIT,
    Asset,
    AssetListing,
    Quote,
    apply_tick,
    list_assets,
    normalize_asset_id,
    quote_of,
    validate_list_limit,
    with_live_market,
)
from svc_inventory.feeds import PriceFeedError, PriceSource
from svc_inventory.store import AssetStore

log = logging.getLogger(__name__)

# One request may name at most as many ids as a catalogue page holds.
MAX_IDS_PER_REQUEST = MAX_LIST_LIMIT


class AssetNotFound(NotFound):
    reason = "ASSET_NOT_FOUND"


def normalize_asset_ids(raw_ids: Sequence[str], *, field: str) -> list[str]:
    """Canonical ids in request order without repeats; the field names the list."""
    if len(raw_ids) > MAX_IDS_PER_REQUEST:
        description = f"must name at most {MAX_IDS_PER_REQUEST} assets"
        raise InvalidArgument(
            f"{field} {description}; got {len(raw_ids)}",
            reason="TOO_MANY_ASSET_IDS",
            violations=(FieldViolation(field, description),),
        )
    return list(dict.fromkeys(normalize_asset_id(raw, field=field) for raw in raw_ids))


class InventoryService:
    def __init__(
        self,
        *,
        store: AssetStore,
        cache: QuoteCache,
        source: PriceSource,
        broadcaster: PriceBroadcaster,
        clock: Callable[[], datetime],
        assets: Iterable[Asset],
        snapshot_interval: timedelta = timedelta(0),
    ) -> None:
        self._store = store
        self._cache = cache
        self._source = source
        self._broadcaster = broadcaster
        self._clock = clock
        # The newest figures this process knows, written only by the ticker thread and
        # replaced whole (never mutated) so that readers on other threads see a snapshot.
        self._latest: dict[str, Asset] = {a.asset_id: a for a in assets}
        # The store keeps a snapshot of the market every `snapshot_interval`, enough for
        # a restart to continue from; readers get the live figures from `_latest`.
        # Both fields belong to the ticker thread (and to shutdown, after it stopped).
        self._snapshot_interval = snapshot_interval
        self._last_snapshot: datetime | None = None
        self._unsaved: dict[str, Asset] = {}

    # Catalogue ----------------------------------------------------------------

    def list_assets(self, *, active_only: bool, limit: int | None) -> AssetListing:
        page_size = validate_list_limit(limit)
        latest = self._latest
        stored = self._store.list_assets()
        live = [with_live_market(asset, latest.get(asset.asset_id)) for asset in stored]
        return list_assets(live, active_only=active_only, limit=page_size)

    def get_asset(self, raw_id: str) -> Asset:
        asset_id = normalize_asset_id(raw_id)
        asset = self._store.get_asset(asset_id)
        if asset is None:
            raise AssetNotFound(f"asset {asset_id} not found")
        return with_live_market(asset, self._latest.get(asset_id))

    # Quotes -------------------------------------------------------------------

    def get_quotes(self, raw_ids: Sequence[str]) -> list[Quote]:
        """Quotes in request order; unknown ids are left out."""
        asset_ids = normalize_asset_ids(raw_ids, field="asset_ids")
        cached = self._cache.get_many(asset_ids)
        # A miss is not written back: the ticker refreshes every entry each tick, and a
        # write-back could race it and put an older price over a newer one. A miss is
        # answered from this process's live figures (as new as anything it cached), and
        # only an asset it does not know from the store.
        missing = [asset_id for asset_id in asset_ids if asset_id not in cached]
        metrics.cache_lookups.labels("hit").inc(len(asset_ids) - len(missing))
        metrics.cache_lookups.labels("miss").inc(len(missing))
        latest = self._latest
        unknown = [asset_id for asset_id in missing if asset_id not in latest]
        stored = self._store.get_assets(unknown) if unknown else {}
        quotes: list[Quote] = []
        for asset_id in asset_ids:
            if asset_id in cached:
                quotes.append(cached[asset_id])
            elif asset_id in latest:
                quotes.append(quote_of(latest[asset_id]))
            elif asset_id in stored:
                quotes.append(quote_of(stored[asset_id]))
        return quotes

    def watch_prices(self, raw_symbols: Sequence[str]) -> Subscription:
        """A subscription to price changes, primed with the current figures so that a
        client sees every asset it asked for at once, not only at its next change."""
        symbols = normalize_asset_ids(raw_symbols, field="symbols")
        latest = self._latest
        unknown = [symbol for symbol in symbols if symbol not in latest]
        if unknown:
            # A stream of nothing would stay open and silent: refuse it instead.
            description = f"unknown: {', '.join(unknown)}"
            raise InvalidArgument(
                f"symbols {description}",
                reason="UNKNOWN_SYMBOLS",
                violations=(FieldViolation("symbols", description),),
            )
        wanted = frozenset(symbols) if symbols else None
        subscription = self._broadcaster.subscribe(wanted)
        # Subscribed before reading the snapshot: a change published in between is in
        # the buffer or in the snapshot, never lost (the ticker updates, then publishes).
        subscription.offer(latest.values())
        return subscription

    # Market -------------------------------------------------------------------

    def refresh_prices(self) -> list[Asset]:
        """One tick: read the source, keep what is new, cache, publish, and persist a
        snapshot when `snapshot_interval` has passed since the last one.

        Returns the assets whose figures advanced. A failing source changes nothing: the
        last prices stay, with their `as_of`, so consumers can tell they are aging.
        """
        now = self._clock()
        try:
            ticks = self._source.snapshot(now)
        except PriceFeedError as error:
            log.warning("price feed failed; keeping the last prices", extra={"error": str(error)})
            return []
        latest = dict(self._latest)
        advanced: list[Asset] = []
        for asset_id, asset in self._latest.items():
            tick = ticks.get(asset_id)
            if tick is None or tick.as_of <= asset.last_updated:
                continue
            latest[asset_id] = apply_tick(asset, tick)
            advanced.append(latest[asset_id])
        if not advanced:
            return []
        self._unsaved.update((asset.asset_id, asset) for asset in advanced)
        if self._last_snapshot is None or now - self._last_snapshot >= self._snapshot_interval:
            self._last_snapshot = now
            self.save_snapshot()
        self._cache.put_many(quote_of(asset) for asset in advanced)
        previous = self._latest
        self._latest = latest
        metrics.price_updated.set(max(a.last_updated for a in advanced).timestamp())
        # Every observation refreshes `as_of` above; streams hear only of real moves.
        self._broadcaster.publish(
            a for a in advanced if a.current_price != previous[a.asset_id].current_price
        )
        return advanced

    def save_snapshot(self) -> list[str]:
        """Writes the market figures that changed since the last snapshot (each asset's
        newest only); returns the ids written. A store error is logged and those figures
        wait for the next snapshot: the cache and the streams never wait for the store.
        """
        unsaved, self._unsaved = self._unsaved, {}
        if not unsaved:
            return []
        try:
            return self._store.save_prices(unsaved.values())
        except Exception:
            log.exception("could not save prices; retried at the next snapshot")
            self._unsaved = unsaved
            return []
