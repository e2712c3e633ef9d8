"""Composition root of svc_order: read settings, wire the ports, serve.

The table is not created here: the local stack and the tests create it, and in a
cluster it is provisioned with the rest of the infrastructure, so the service needs no
permission to create tables.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import grpc

from common.channels import CallPolicy
from common.context import Identity
from common.dynamo import open_table
from common.logs import configure_logging
from common.metrics import serve_metrics
from common.periodic import PeriodicTask
from common.redis_clients import redis_client
from common.revocation import RevocationList
from common.server import RunningServer, revocation_list, serve_until_signalled, start_service
from common.telemetry import configure_tracing
from common.user_keys import user_service_channel, user_service_keys
from svc_order.config import OrderSettings
from svc_order.domain import Limits
from svc_order.events import RedisOrderEvents
from svc_order.quotes import InventoryQuotes, StreamedQuotes, inventory_channel
from svc_order.server import SERVICE_NAME, OrderServicer, register
from svc_order.service import OrderService, WriteHook
from svc_order.store import DynamoTradingStore
from svc_order.trigger import PriceTrigger, WatchedAssets


@dataclasses.dataclass
class OrderServer(RunningServer):
    """The running server, what ends resting orders in the background (the price
    trigger, the expiry sweep) and the channels it opened to other services."""

    channels: tuple[grpc.Channel, ...] = ()
    trigger: PriceTrigger | None = None
    sweep: PeriodicTask | None = None

    def shutdown(self) -> None:
        # The background work stops first: nothing starts a fill during the grace.
        if self.trigger is not None:
            self.trigger.stop()
        if self.sweep is not None:
            self.sweep.stop()
        super().shutdown()
        for channel in self.channels:
            channel.close()


def build(settings: OrderSettings, *, write_hook: WriteHook | None = None) -> OrderServer:
    """The running server; `write_hook` lets tests inject a crash between writes."""
    policy = CallPolicy.of(settings)
    to_inventory = inventory_channel(settings.inventory_service_addr, policy)
    to_users = user_service_channel(settings.user_service_addr, policy)
    table = open_table(settings, settings.trading_table)
    revocations = revocation_list(settings)
    quotes = StreamedQuotes(
        InventoryQuotes(to_inventory),
        fresh_for=timedelta(seconds=settings.streamed_quote_max_age_seconds),
        clock=lambda: datetime.now(UTC),
    )
    watched = WatchedAssets()
    store = DynamoTradingStore(table)
    service = OrderService(
        store=store,
        quotes=quotes,
        note_resting=watched.add,
        events=RedisOrderEvents(
            redis_client(settings.redis_url, settings.redis_timeout_seconds), namespace=table.name
        ),
        limits=Limits(
            daily_deposit_limit=settings.daily_deposit_limit,
            daily_withdraw_limit=settings.daily_withdraw_limit,
            max_order_value=settings.max_order_value,
        ),
        clock=lambda: datetime.now(UTC),
        new_id=lambda: str(uuid.uuid4()),
        max_quote_age=timedelta(seconds=settings.max_quote_age_seconds),
        write_attempts=settings.account_write_attempts,
        write_hook=write_hook,
    )
    running = start_service(
        settings,
        port=settings.order_grpc_port,
        service_names=[SERVICE_NAME],
        register=register(
            OrderServicer(
                service,
                session_alive=session_checker(revocations),
                max_streams=settings.max_order_streams,
            )
        ),
        resolve_key=user_service_keys(to_users),
        revocations=revocations,
        store=table.probe,
    )
    trigger = PriceTrigger(
        quotes,
        service.fill_crossed,
        watched=watched,
        has_hints=store.has_hints,
        stream_seconds=settings.price_trigger_stream_seconds,
    )
    trigger.start()

    def sweep_step() -> None:
        service.expire_due()
        trigger.recheck()

    sweep = PeriodicTask("order-sweep", sweep_step, settings.order_sweep_seconds)
    sweep.start()
    fields = {f.name: getattr(running, f.name) for f in dataclasses.fields(RunningServer)}
    return OrderServer(**fields, channels=(to_inventory, to_users), trigger=trigger, sweep=sweep)


def session_checker(revocations: RevocationList) -> Callable[[Identity], bool]:
    """Whether a verified caller's token still counts: not expired, not revoked."""

    def alive(identity: Identity) -> bool:
        return identity.expires_at > time.time() and not revocations.is_revoked(
            identity.token_id, identity.session_id
        )

    return alive


def main() -> None:
    settings = OrderSettings()
    configure_logging("svc_order", settings.log_level, settings.audit_log_file)
    configure_tracing("svc_order")
    serve_metrics(settings.grpc_host, settings.metrics_port)
    serve_until_signalled(lambda: build(settings))


if __name__ == "__main__":
    main()
