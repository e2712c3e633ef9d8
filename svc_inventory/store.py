"""Storage of the asset catalogue and its latest prices: the port and its DynamoDB adapter.

Table layout (one table, `pk`/`sk`):
    CATALOGUE    ASSET#<id>    one asset: catalogue fields and latest market figures

Every asset lives in one partition so that the whole catalogue is one key-ordered
Query (never a Scan); a catalogue is a few hundred items and one write per changed
asset per price snapshot (`PRICE_SNAPSHOT_SECONDS`), far below what one partition
takes. Decimals are stored as strings so that their scale survives ("1.00" stays
"1.00"; a DynamoDB number would come back as 1), and `last_updated` as a fixed-width
UTC ISO string so that comparing strings compares times.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any, Protocol

from common.dynamo import Item, Table, decode_time, encode_time
from svc_inventory.domain import MARKET_FIELDS, Asset, decimal_string

CATALOGUE = "CATALOGUE"
ASSET_PREFIX = "ASSET#"

# The market figures the domain defines, but the time: stored apart, in its own encoding.
_PRICE_FIELDS = tuple(field for field in MARKET_FIELDS if field != "last_updated")


class AssetStore(Protocol):
    def seed_catalogue(self, assets: Iterable[Asset]) -> int:
        """Write the assets that are missing; returns how many were written."""
        ...

    def list_assets(self) -> list[Asset]:
        """Every asset, by market-cap rank (ties by id)."""
        ...

    def get_asset(self, asset_id: str) -> Asset | None: ...

    def get_assets(self, asset_ids: Sequence[str]) -> dict[str, Asset]:
        """The known assets among `asset_ids`, keyed by id."""
        ...

    def save_prices(self, assets: Iterable[Asset]) -> list[str]:
        """Write each asset's market figures unless the stored ones are as new or newer;
        returns the ids written."""
        ...


def _key(asset_id: str) -> dict[str, Any]:
    return {"pk": CATALOGUE, "sk": f"{ASSET_PREFIX}{asset_id}"}


def asset_to_item(asset: Asset) -> Item:
    return {
        "pk": CATALOGUE,
        "sk": f"{ASSET_PREFIX}{asset.asset_id}",
        "asset_id": asset.asset_id,
        "name": asset.name,
        "category": asset.category,
        "market_cap_rank": asset.market_cap_rank,
        "circulating_supply": decimal_string(asset.circulating_supply),
        "is_active": asset.is_active,
        **{field: decimal_string(getattr(asset, field)) for field in _PRICE_FIELDS},
        "last_updated": encode_time(asset.last_updated),
    }


def asset_from_item(item: Item) -> Asset:
    return Asset(
        asset_id=item["asset_id"],
        name=item["name"],
        category=item["category"],
        market_cap_rank=int(item["market_cap_rank"]),
        current_price=Decimal(item["current_price"]),
        market_cap=Decimal(item["market_cap"]),
        total_volume_24h=Decimal(item["total_volume_24h"]),
        high_24h=Decimal(item["high_24h"]),
        low_24h=Decimal(item["low_24h"]),
        price_change_24h=Decimal(item["price_change_24h"]),
        price_change_percentage_24h=Decimal(item["price_change_percentage_24h"]),
        circulating_supply=Decimal(item["circulating_supply"]),
        is_active=bool(item["is_active"]),
        last_updated=decode_time(item["last_updated"]),
    )


def _by_rank(assets: Iterable[Asset]) -> list[Asset]:
    return sorted(assets, key=lambda a: (a.market_cap_rank, a.asset_id))


class DynamoAssetStore:
    def __init__(self, table: Table) -> None:
        self._table = table

    def seed_catalogue(self, assets: Iterable[Asset]) -> int:
        # An asset already there keeps its live prices (and any operator change).
        return sum(
            self._table.put_if(asset_to_item(asset), "attribute_not_exists(sk)") for asset in assets
        )

    def list_assets(self) -> list[Asset]:
        return _by_rank(
            asset_from_item(item) for item in self._table.query(CATALOGUE, ASSET_PREFIX)
        )

    def get_asset(self, asset_id: str) -> Asset | None:
        found = self._table.get(_key(asset_id))
        return asset_from_item(found) if found else None

    def get_assets(self, asset_ids: Sequence[str]) -> dict[str, Asset]:
        keys = [_key(asset_id) for asset_id in dict.fromkeys(asset_ids)]
        assets = (asset_from_item(item) for item in self._table.get_many(keys))
        return {asset.asset_id: asset for asset in assets}

    def save_prices(self, assets: Iterable[Asset]) -> list[str]:
        assignments = ", ".join(f"{field} = :{field}" for field in _PRICE_FIELDS)
        saved: list[str] = []
        for asset in assets:
            values: dict[str, Any] = {
                f":{field}": decimal_string(getattr(asset, field)) for field in _PRICE_FIELDS
            }
            values[":last_updated"] = encode_time(asset.last_updated)
            # Never create a half item for an unknown id; never let an older (or a
            # repeated) observation replace a newer one.
            if self._table.update_if(
                _key(asset.asset_id),
                f"SET {assignments}, last_updated = :last_updated",
                "attribute_exists(sk) AND last_updated < :last_updated",
                values,
            ):
                saved.append(asset.asset_id)
        return saved
