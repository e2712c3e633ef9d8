"""Composition root of the REST bridge: read settings, prepare channels, serve HTTP."""

from __future__ import annotations

from fastapi import FastAPI

from common.channels import CallPolicy
from common.logs import configure_logging
from common.telemetry import configure_tracing
from rest_bridge.app import INVENTORY_SERVICE, ORDER_SERVICE, USER_SERVICE, create_app
from rest_bridge.channels import BridgeChannels
from rest_bridge.config import BridgeSettings
from rest_bridge.http_server import http_server


def open_channels(settings: BridgeSettings) -> BridgeChannels:
    """One grpc.aio channel per configured service, from the shared factory (every call
    is bounded by DEPENDENCY_BUDGET_SECONDS like the services' own calls), made when the
    app starts on its loop (rest_bridge/channels.py)."""
    addresses = {
        USER_SERVICE: settings.user_service_addr,
        INVENTORY_SERVICE: settings.inventory_service_addr,
        ORDER_SERVICE: settings.order_service_addr,
    }
    policy = CallPolicy.of(settings, default_deadline=settings.bridge_default_timeout_seconds)
    return BridgeChannels(
        {service: address for service, address in addresses.items() if address}, policy
    )


def build_app(settings: BridgeSettings) -> FastAPI:
    return create_app(settings, open_channels(settings))


def main() -> None:
    settings = BridgeSettings()
    configure_logging("rest_bridge", settings.log_level)
    configure_tracing("rest_bridge")
    http_server(build_app(settings), settings).run()


if __name__ == "__main__":
    main()
