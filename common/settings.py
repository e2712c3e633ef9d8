"""Settings read from environment variables, checked at start.

A service refuses to start on a missing or placeholder secret instead of running
with a guessable one. Every variable is listed in the README's configuration table.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

PLACEHOLDER_MARKERS = ("changeme", "change-me", "change_me", "placeholder", "example", "xxx")


def refuse_placeholder(name: str, value: str) -> str:
    lowered = value.strip().lower()
    if not lowered:
        raise ValueError(f"{name} is empty")
    if any(marker in lowered for marker in PLACEHOLDER_MARKERS) or lowered.startswith("<"):
        raise ValueError(f"{name} holds a placeholder value; set a real one")
    return value


class CommonSettings(BaseSettings):
    """What every service needs: where it listens, its engines, how it verifies tokens."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    grpc_host: str = Field("127.0.0.1", description="Address the gRPC server binds to.")
    redis_url: str = Field(description="Redis for revoked tokens, rate limits and caches.")
    dynamodb_endpoint: str | None = Field(
        None, description="DynamoDB-compatible endpoint; unset means AWS itself."
    )
    aws_region: str = Field("us-east-1", description="Region for the DynamoDB client.")
    table_prefix: str = Field("", description="Prefix of every table name (test isolation).")
    jwt_issuer: str = Field("trading-platform", description="iss of access tokens.")
    jwt_audience: str = Field("trading-api", description="aud of access tokens.")
    grpc_max_workers: int = Field(32, ge=1, description="Threads serving RPCs.")
    default_deadline_seconds: float = Field(
        5.0, gt=0, description="Deadline of an outgoing call when the caller has none."
    )
    grpc_client_retries: bool = Field(
        True,
        description="Retry retryable RPCs in the gRPC channel; off in the mesh, where"
        " the sidecar retries (retries live in exactly one layer).",
    )
    dependency_budget_seconds: float = Field(
        1.5,
        gt=0,
        description="Most time one call to another service may take, inside the caller's "
        "deadline: a hung dependency gives 503 after this. Above STORE_READ_TIMEOUT_SECONDS,"
        " so that a callee whose store hangs still answers with its own reason.",
    )
    shutdown_drain_seconds: float = Field(
        1.0, ge=0, description="Time NOT_SERVING is reported before the server stops."
    )
    shutdown_grace_seconds: float = Field(
        5.0, ge=0, description="Time in-flight RPCs get to finish at stop."
    )
    redis_timeout_seconds: float = Field(
        0.5, gt=0, description="Budget of one Redis command (connect, send, answer); no retry."
    )
    log_level: str = Field("INFO", description="Log level of the JSON log lines.")
    audit_log_file: Path | None = Field(
        None, description="File the audit records are appended to; unset: standard output."
    )
    tls_ca_file: Path | None = Field(
        None, description="CA of mTLS between processes (PEM); with the two below, mTLS on."
    )
    tls_cert_file: Path | None = Field(
        None, description="This process's certificate (PEM), identity as URI SAN."
    )
    tls_key_file: Path | None = Field(None, description="This process's private key (PEM).")
    metrics_port: int = Field(
        9464, ge=-1, le=65535, description="Port of the Prometheus /metrics page; -1: none."
    )
    store_connect_timeout_seconds: float = Field(
        0.25, gt=0, description="Time to open a connection to the DynamoDB endpoint."
    )
    store_read_timeout_seconds: float = Field(
        1.0, gt=0, description="Time the DynamoDB endpoint gets to answer one request."
    )
    store_budget_seconds: float = Field(
        2.0, gt=0, description="Time one store call may take with its retries."
    )
    store_max_attempts: int = Field(3, ge=1, description="Tries of one store call.")
    health_probe_seconds: float = Field(
        1.0, gt=0, description="Interval of the probes of the store and Redis behind health."
    )
    client_address_trusted_peers: Annotated[list[Network], NoDecode] = Field(
        default_factory=list,
        description="On plaintext, comma-separated IPs/CIDRs of peers (the REST bridge) "
        "whose x-client-address metadata is believed (login throttle, audit records); from "
        "others the peer is the client. On mTLS the caller's certificate decides instead.",
    )

    @field_validator("client_address_trusted_peers", mode="before")
    @classmethod
    def _split_peers(cls, value: object) -> object:
        return comma_list(value)

    @field_validator("redis_url")
    @classmethod
    def _redis_url_is_real(cls, value: str) -> str:
        return refuse_placeholder("REDIS_URL", value)


def comma_list(value: object) -> object:
    """'a, b,c' as ['a', 'b', 'c'] (for list settings given as one variable)."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def read_secret_file(name: str, path: Path) -> bytes:
    """Contents of a secret file, refusing a missing, empty or placeholder file."""
    if not path.is_file():
        raise ValueError(f"{name}: {path} does not exist")
    data = path.read_bytes()
    refuse_placeholder(name, data.decode("utf-8", errors="replace"))
    return data
