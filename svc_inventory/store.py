"""Storage of the asset catalogue and its latest prices: the port and its DynamoDB adapter.

Table layout (one table, `pk`/`sk`):
    CATALOGUE    ASSET#<id>    one asset: catalogue fields and latest market figures

Every asset lives in one partition so that the whole catalogue is one key-ordered
Query (never a Scan); a catalogue is a few hundred items and one write per asset per
tick, far below what one partition takes. Decimals are stored as strings so that their
scale survives ("1.00" stays "1.00"; a DynamoDB number would come back as 1), and
`last_updated` as a fixed-width UTC ISO string so that comparing strings compares times.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol

from common.dynamo import Item, from_attributes, is_condition_failure, to_attributes
from common.errors import Unavailable
from svc_inventory.domain import Asset, decimal_string

CATALOGUE = "CATALOGUE"
ASSET_PREFIX = "ASSET#"

# DynamoDB's limit of keys in one BatchGetItem.
_BATCH_GET_LIMIT = 100
# Unprocessed keys (throttling) are retried with backoff this many times.
_BATCH_GET_ATTEMPTS = 5

_PRICE_FIELDS = (
    "current_price",
    "market_cap",
    "total_volume_24h",
    "high_24h",
    "low_24h",
    "price_change_24h",
    "price_change_percentage_24h",
)


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


def _time_key(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _key(asset_id: str) -> dict[str, Any]:
    return to_attributes({"pk": CATALOGUE, "sk": f"{ASSET_PREFIX}{asset_id}"})


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
        "last_updated": _time_key(asset.last_updated),
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
        last_updated=datetime.fromisoformat(item["last_updated"]),
    )


def _by_rank(assets: Iterable[Asset]) -> list[Asset]:
    return sorted(assets, key=lambda a: (a.market_cap_rank, a.asset_id))


class DynamoAssetStore:
    def __init__(self, client: Any, table: str) -> None:
        self._db = client
        self._table = table

    def seed_catalogue(self, assets: Iterable[Asset]) -> int:
        written = 0
        for asset in assets:
            try:
                self._db.put_item(
                    TableName=self._table,
                    Item=to_attributes(asset_to_item(asset)),
                    ConditionExpression="attribute_not_exists(sk)",
                )
            except Exception as error:
                # Already there: its live prices (and any operator change) stay.
                if not is_condition_failure(error):
                    raise
                continue
            written += 1
        return written

    def list_assets(self) -> list[Asset]:
        assets: list[Asset] = []
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": to_attributes({":pk": CATALOGUE, ":prefix": ASSET_PREFIX}),
            "ConsistentRead": True,
        }
        while True:
            page = self._db.query(**request)
            assets.extend(asset_from_item(from_attributes(i)) for i in page["Items"])
            if "LastEvaluatedKey" not in page:
                return _by_rank(assets)
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def get_asset(self, asset_id: str) -> Asset | None:
        found = self._db.get_item(
            TableName=self._table, Key=_key(asset_id), ConsistentRead=True
        ).get("Item")
        return asset_from_item(from_attributes(found)) if found else None

    def get_assets(self, asset_ids: Sequence[str]) -> dict[str, Asset]:
        unique_ids = list(dict.fromkeys(asset_ids))
        found: dict[str, Asset] = {}
        for start in range(0, len(unique_ids), _BATCH_GET_LIMIT):
            chunk = unique_ids[start : start + _BATCH_GET_LIMIT]
            for item in self._batch_get([_key(asset_id) for asset_id in chunk]):
                asset = asset_from_item(from_attributes(item))
                found[asset.asset_id] = asset
        return found

    def _batch_get(self, keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        pending: dict[str, Any] = {self._table: {"Keys": keys, "ConsistentRead": True}}
        for attempt in range(_BATCH_GET_ATTEMPTS):
            response = self._db.batch_get_item(RequestItems=pending)
            items.extend(response.get("Responses", {}).get(self._table, []))
            pending = response.get("UnprocessedKeys") or {}
            if not pending:
                return items
            time.sleep(0.02 * 2**attempt)
        raise Unavailable("asset store is throttling reads", reason="STORE_THROTTLED")

    def save_prices(self, assets: Iterable[Asset]) -> list[str]:
        saved: list[str] = []
        for asset in assets:
            values = {f":{field}": decimal_string(getattr(asset, field)) for field in _PRICE_FIELDS}
            values[":last_updated"] = _time_key(asset.last_updated)
            assignments = ", ".join(f"{field} = :{field}" for field in _PRICE_FIELDS)
            try:
                self._db.update_item(
                    TableName=self._table,
                    Key=_key(asset.asset_id),
                    UpdateExpression=f"SET {assignments}, last_updated = :last_updated",
                    # Never create a half item for an unknown id; never let an older
                    # (or a repeated) observation replace a newer one.
                    ConditionExpression="attribute_exists(sk) AND last_updated < :last_updated",
                    ExpressionAttributeValues=to_attributes(values),
                )
            except Exception as error:
                if not is_condition_failure(error):
                    raise
                continue
            saved.append(asset.asset_id)
        return saved
