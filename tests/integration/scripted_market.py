"""A price source for tests: every asset keeps its catalogue price until a test moves it.

svc_inventory takes it through `build(settings, source=...)`; no setting selects it,
so a deployment cannot. Each snapshot stamps the prices with `now`, so quotes stay
fresh while a test holds a price still.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

from svc_inventory.domain import Asset, MarketTick


class ScriptedMarket:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._assets: dict[str, Asset] = {}
        self._prices: dict[str, Decimal] = {}

    def source(self, catalogue: Iterable[Asset]) -> ScriptedMarket:
        """What `build(source=...)` calls with the stored catalogue."""
        with self._lock:
            self._assets = {asset.asset_id: asset for asset in catalogue}
            for asset_id, asset in self._assets.items():
                self._prices.setdefault(asset_id, asset.current_price)
        return self

    def move(self, asset_id: str, price: str) -> None:
        """The next tick quotes `price` for `asset_id`."""
        with self._lock:
            self._prices[asset_id] = Decimal(price)

    def snapshot(self, now: datetime) -> dict[str, MarketTick]:
        with self._lock:
            prices = dict(self._prices)
        return {
            asset_id: MarketTick(
                asset_id=asset_id,
                price=price,
                high_24h=price,
                low_24h=price,
                price_change_24h=Decimal("0"),
                price_change_percentage_24h=Decimal("0"),
                total_volume_24h=self._assets[asset_id].total_volume_24h,
                as_of=now,
            )
            for asset_id, price in prices.items()
            if asset_id in self._assets
        }
