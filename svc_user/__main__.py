"""Composition root of svc_user: read settings, wire the ports, serve."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from common.channels import CallPolicy
from common.dynamo import open_table
from common.logs import configure_logging
from common.metrics import serve_metrics
from common.redis_clients import redis_client
from common.revocation import RevocationKeeper, RevocationList
from common.server import RunningServer, serve_until_signalled, start_service
from common.settings import read_secret_file
from common.telemetry import configure_tracing
from svc_user.config import UserSettings
from svc_user.credentials import PasswordHasher, TokenIssuer, load_private_key
from svc_user.server import SERVICE_NAME, UserServicer, register
from svc_user.service import UserService
from svc_user.store import DynamoUserStore
from svc_user.throttle import RedisLoginThrottle
from svc_user.trading import OrderServiceAccounts, order_channel


def build(settings: UserSettings) -> RunningServer:
    signing_key = load_private_key(
        read_secret_file("JWT_PRIVATE_KEY_FILE", settings.jwt_private_key_file)
    )
    tokens = TokenIssuer(
        signing_key,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        access_ttl_seconds=settings.access_token_ttl_seconds,
        refresh_ttl_seconds=settings.refresh_token_ttl_seconds,
    )
    redis = redis_client(settings.redis_url, settings.redis_timeout_seconds)
    revocations = RevocationList(redis)
    table = open_table(settings, settings.users_table)
    service = UserService(
        store=DynamoUserStore(table),
        hasher=PasswordHasher(
            settings.argon2_time_cost,
            settings.argon2_memory_kib,
            settings.argon2_parallelism,
            settings.argon2_max_concurrent,
        ),
        tokens=tokens,
        revocations=revocations,
        throttle=RedisLoginThrottle(
            redis,
            settings.login_throttle_key_prefix,
            max_failures=settings.login_max_failures,
            window_seconds=settings.login_failure_window_seconds,
            block_seconds=settings.login_block_seconds,
        ),
        clock=lambda: datetime.now(UTC),
        new_id=lambda: uuid.uuid4().hex,
        trading=OrderServiceAccounts(
            order_channel(settings.order_service_addr, CallPolicy.of(settings))
        )
        if settings.order_service_addr
        else None,
    )
    # Restores Redis's revocation list from the record at start and whenever Redis
    # lost it (until then every service refuses tokens with 503: fail closed), and
    # writes back what Redis lost of it while keeping the completion mark.
    keeper = RevocationKeeper(
        revocations,
        service.revocations_in_force,
        reconcile_seconds=settings.revocation_reconcile_seconds,
    )
    keeper.start()
    running = start_service(
        settings,
        port=settings.user_grpc_port,
        service_names=[SERVICE_NAME],
        register=register(UserServicer(service)),
        resolve_key=tokens.resolve,
        revocations=revocations,
        store=table.probe,
    )
    running.background.append(keeper)
    return running


def main() -> None:
    settings = UserSettings()
    configure_logging("svc_user", settings.log_level, settings.audit_log_file)
    configure_tracing("svc_user")
    serve_metrics(settings.grpc_host, settings.metrics_port)
    serve_until_signalled(lambda: build(settings))


if __name__ == "__main__":
    main()
