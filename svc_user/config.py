"""Settings of svc_user (environment variables; see the README's table)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from common.settings import CommonSettings


class UserSettings(CommonSettings):
    user_grpc_port: int = Field(50051, ge=0, le=65535, description="Port of svc_user.")
    jwt_private_key_file: Path = Field(
        description="PEM file with svc_user's Ed25519 signing key (required)."
    )
    access_token_ttl_seconds: int = Field(3600, gt=0, description="Access token lifetime.")
    refresh_token_ttl_seconds: int = Field(
        30 * 24 * 3600, gt=0, description="Refresh token lifetime."
    )
    # OWASP's first recommended Argon2id setting: 19 MiB, 2 passes, 1 lane.
    argon2_time_cost: int = Field(2, ge=1, description="Argon2id passes.")
    argon2_memory_kib: int = Field(19456, ge=8, description="Argon2id memory in KiB.")
    argon2_parallelism: int = Field(1, ge=1, description="Argon2id lanes.")
    argon2_max_concurrent: int = Field(
        2, ge=1, description="Hashes computed at once (each holds its memory and a core)."
    )
    users_table: str = Field("users", description="Table of svc_user (before the prefix).")
    order_service_addr: str | None = Field(
        None,
        description="host:port of svc_order, for the data export and account closing "
        "(unset: both answer UNAVAILABLE SERVICE_NOT_CONFIGURED).",
    )
    login_max_failures: int = Field(
        5, ge=1, description="Failed logins (401) per client address or username before a block."
    )
    login_failure_window_seconds: int = Field(
        300, ge=1, description="Window in which failed logins are counted."
    )
    login_block_seconds: int = Field(
        300, ge=1, description="How long login stays blocked (403 AUTH_004, Retry-After)."
    )
    login_throttle_key_prefix: str = Field(
        "login", description="Prefix of the login throttle's Redis keys."
    )
    revocation_reconcile_seconds: float = Field(
        10.0,
        gt=0,
        description="How often the revocation list in Redis is checked against the record"
        " and what it lacks written again.",
    )
