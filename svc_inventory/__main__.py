"""Composition root of svc_inventory: read settings, wire the ports, serve, tick prices."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from functools import partial

from common.channels import CallPolicy
from common.dynamo import ensure_table, open_table
from common.logs import configure_logging
from common.metrics import serve_metrics
from common.periodic import PeriodicTask
from common.server import RunningServer, revocation_list, serve_until_signalled, start_service
from common.telemetry import configure_tracing
from common.user_keys import no_keys, user_service_channel, user_service_keys
from svc_inventory.broadcast import PriceBroadcaster
from svc_inventory.cache import RedisQuoteCache, cache_client
from svc_inventory.config import InventorySettings
from svc_inventory.domain import SEED_CATALOGUE, Asset
from svc_inventory.feeds import CoinGeckoMarkets, PriceSource, SimulatedMarket
from svc_inventory.server import SERVICE_NAME, InventoryServicer, register
from svc_inventory.service import InventoryService
from svc_inventory.store import DynamoAssetStore


@dataclasses.dataclass
class InventoryServer(RunningServer):
    """The running server, the price ticker that feeds it and its open price streams."""

    ticker: PeriodicTask | None = None
    streams: PriceBroadcaster | None = None
    service: InventoryService | None = None

    def shutdown(self) -> None:
        # Prices stop first and open streams end (clients reconnect elsewhere), so that
        # the grace period is spent on calls that can finish, not on endless streams.
        if self.ticker is not None:
            self.ticker.stop()
        if self.service is not None:
            # The figures since the last snapshot, so a restart continues from them.
            self.service.save_snapshot()
        if self.streams is not None:
            self.streams.close()
        super().shutdown()


def price_source(settings: InventorySettings, assets: Iterable[Asset]) -> PriceSource:
    if settings.price_source == "coingecko":
        return CoinGeckoMarkets(
            base_url=settings.coingecko_base_url, api_key=settings.coingecko_api_key
        )
    # The walk continues from the stored prices, so a restart does not jump back to
    # the catalogue's.
    return SimulatedMarket(
        assets,
        settings.market_seed,
        volatility=settings.market_volatility,
        tick_seconds=settings.tick_seconds,
    )


def build(
    settings: InventorySettings,
    *,
    source: Callable[[Iterable[Asset]], PriceSource] | None = None,
) -> InventoryServer:
    """The running server. `source` replaces the configured price source: tests pass a
    scripted market; no setting selects one, so production cannot."""
    table = open_table(settings, settings.assets_table)
    ensure_table(table.client, table.name)
    store = DynamoAssetStore(table)
    store.seed_catalogue(SEED_CATALOGUE)
    assets = store.list_assets()
    streams = PriceBroadcaster(max_subscribers=settings.max_price_streams)
    service = InventoryService(
        store=store,
        cache=RedisQuoteCache(
            cache_client(settings.redis_url),
            namespace=table.name,
            ttl_seconds=settings.price_cache_ttl_seconds,
        ),
        source=(source or partial(price_source, settings))(assets),
        broadcaster=streams,
        clock=lambda: datetime.now(UTC),
        assets=assets,
        snapshot_interval=timedelta(seconds=settings.price_snapshot_seconds),
    )
    # Prices are live before the server reports SERVING, so that a caller who waits
    # for health never meets the catalogue's seed prices (stale by their as_of).
    service.refresh_prices()
    running = start_service(
        settings,
        port=settings.inventory_grpc_port,
        service_names=[SERVICE_NAME],
        register=register(InventoryServicer(service)),
        resolve_key=(
            user_service_keys(
                user_service_channel(settings.user_service_addr, CallPolicy.of(settings))
            )
            if settings.user_service_addr
            else no_keys
        ),
        revocations=revocation_list(settings),
        store=table.probe,
        # Quotes come from the store while the Redis cache is down.
        needs_redis=False,
    )
    ticker = PeriodicTask("price-ticker", service.refresh_prices, settings.tick_seconds)
    ticker.start()
    fields = {f.name: getattr(running, f.name) for f in dataclasses.fields(RunningServer)}
    return InventoryServer(**fields, ticker=ticker, streams=streams, service=service)


def main() -> None:
    settings = InventorySettings()
    configure_logging("svc_inventory", settings.log_level, settings.audit_log_file)
    configure_tracing("svc_inventory")
    serve_metrics(settings.grpc_host, settings.metrics_port)
    serve_until_signalled(lambda: build(settings))


if __name__ == "__main__":
    main()
