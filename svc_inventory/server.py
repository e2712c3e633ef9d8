"""The gRPC face of svc_inventory: protobuf in, domain calls, protobuf out; nothing else."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from trading.v1 import inventory_pb2, inventory_pb2_grpc

from common.server import Registrar
from svc_inventory.domain import Asset, Quote, decimal_string, quote_of
from svc_inventory.service import InventoryService

SERVICE_NAME = inventory_pb2.DESCRIPTOR.services_by_name["InventoryService"].full_name


def _timestamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def asset_message(asset: Asset) -> inventory_pb2.Asset:
    return inventory_pb2.Asset(
        asset_id=asset.asset_id,
        name=asset.name,
        category=asset.category,
        market_cap_rank=asset.market_cap_rank,
        current_price=decimal_string(asset.current_price),
        market_cap=decimal_string(asset.market_cap),
        total_volume_24h=decimal_string(asset.total_volume_24h),
        high_24h=decimal_string(asset.high_24h),
        low_24h=decimal_string(asset.low_24h),
        price_change_24h=decimal_string(asset.price_change_24h),
        price_change_percentage_24h=decimal_string(asset.price_change_percentage_24h),
        circulating_supply=decimal_string(asset.circulating_supply),
        is_active=asset.is_active,
        last_updated=_timestamp(asset.last_updated),
        # The previous platform's names (the contract's Asset); what the catalogue
        # does not know (description, image, 7d/30d, supply caps, ATH/ATL) stays unset.
        price_usd=decimal_string(asset.current_price),
        symbol=asset.asset_id,
        availability_status="available" if asset.is_active else "unavailable",
    )


def quote_message(quote: Quote) -> inventory_pb2.Quote:
    return inventory_pb2.Quote(
        asset_id=quote.asset_id,
        asset_name=quote.asset_name,
        price=decimal_string(quote.price),
        as_of=_timestamp(quote.as_of),
        is_active=quote.is_active,
    )


class InventoryServicer(inventory_pb2_grpc.InventoryServiceServicer):
    def __init__(self, service: InventoryService) -> None:
        self._service = service

    def ListAssets(
        self, request: inventory_pb2.ListAssetsRequest, context: grpc.ServicerContext
    ) -> inventory_pb2.ListAssetsResponse:
        listing = self._service.list_assets(
            active_only=request.active_only if request.HasField("active_only") else True,
            limit=request.limit if request.HasField("limit") else None,
        )
        return inventory_pb2.ListAssetsResponse(
            data=[asset_message(a) for a in listing.assets],
            total_count=listing.total_count,
            active_count=listing.active_count,
        )

    def GetAsset(
        self, request: inventory_pb2.GetAssetRequest, context: grpc.ServicerContext
    ) -> inventory_pb2.GetAssetResponse:
        return inventory_pb2.GetAssetResponse(
            data=asset_message(self._service.get_asset(request.asset_id))
        )

    def GetQuotes(
        self, request: inventory_pb2.GetQuotesRequest, context: grpc.ServicerContext
    ) -> inventory_pb2.GetQuotesResponse:
        quotes = self._service.get_quotes(list(request.asset_ids))
        return inventory_pb2.GetQuotesResponse(quotes=[quote_message(q) for q in quotes])

    def StreamPrices(
        self, request: inventory_pb2.StreamPricesRequest, context: grpc.ServicerContext
    ) -> Iterator[inventory_pb2.StreamPricesResponse]:
        with self._service.watch_prices(list(request.symbols)) as subscription:
            # A cancelled or finished call wakes the waiting stream at once.
            context.add_callback(subscription.close)
            for asset in subscription.updates(context.is_active):
                yield inventory_pb2.StreamPricesResponse(
                    quote=quote_message(quote_of(asset)),
                    price_change_percentage_24h=decimal_string(asset.price_change_percentage_24h),
                )


def register(servicer: InventoryServicer) -> Registrar:
    def add(server: grpc.Server) -> None:
        inventory_pb2_grpc.add_InventoryServiceServicer_to_server(servicer, server)

    return add
