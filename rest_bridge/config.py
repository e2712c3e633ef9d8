"""Settings of the REST bridge (environment variables; see the README's table)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import Field, field_validator, model_validator
from pydantic_settings import NoDecode

from common.settings import CommonSettings, Network, comma_list


class BridgeSettings(CommonSettings):
    bridge_host: str = Field("127.0.0.1", description="Address the HTTP server binds to.")
    bridge_port: int = Field(8000, ge=0, le=65535, description="Port of the REST bridge.")
    user_service_addr: str | None = Field(
        None, description="host:port of svc_user; unset: its routes answer 503."
    )
    inventory_service_addr: str | None = Field(
        None, description="host:port of svc_inventory; unset: its routes answer 503."
    )
    order_service_addr: str | None = Field(
        None, description="host:port of svc_order; unset: its routes answer 503."
    )
    bridge_default_timeout_seconds: float = Field(
        5.0, gt=0, description="Deadline of a gRPC call when the client sends no X-Request-Timeout."
    )
    bridge_max_timeout_seconds: float = Field(
        30.0, gt=0, description="Largest X-Request-Timeout honoured."
    )
    bridge_stream_max_seconds: float = Field(
        3600.0,
        gt=0,
        description="Lifetime of one stream (prices or orders); SSE clients reconnect after it.",
    )
    bridge_max_streams: int = Field(
        8,
        ge=1,
        description="Streams open at once through this bridge, price and order streams "
        "together (each holds one of its service's stream places: MAX_PRICE_STREAMS, "
        "MAX_ORDER_STREAMS; no thread in the bridge).",
    )
    bridge_max_streams_per_client: int = Field(
        3,
        ge=1,
        description="Streams one client may hold at once (a verified user, else a client "
        "address), so that no client takes every place of BRIDGE_MAX_STREAMS.",
    )
    bridge_max_body_bytes: int = Field(
        1024 * 1024, ge=1, description="Largest request body; larger ones get 413."
    )
    bridge_max_header_bytes: int = Field(
        16 * 1024, ge=1024, description="Largest request header block; larger ones get 431."
    )
    bridge_header_timeout_seconds: float = Field(
        10.0, gt=0, description="Time a request's headers may take to arrive; then 408, closed."
    )
    bridge_body_timeout_seconds: float = Field(
        10.0, gt=0, description="Longest pause inside a request body; then 408, closed."
    )
    bridge_idle_timeout_seconds: int = Field(
        5, ge=1, description="Time an idle keep-alive connection is kept open."
    )
    bridge_event_loop: Literal["uvloop", "asyncio"] = Field(
        "uvloop",
        description="Event loop of the HTTP server: uvloop (libuv; less CPU a request) or "
        "the standard library's asyncio.",
    )
    bridge_http_parser: Literal["httptools", "h11"] = Field(
        "httptools",
        description="HTTP/1.1 parser of the HTTP server: httptools (llhttp, in C) or h11 "
        "(pure Python); both with the header deadline and the 431.",
    )
    bridge_unavailable_retry_after_seconds: int = Field(
        1, ge=0, description="Retry-After of a 503 when the service gave none."
    )
    rate_limit_ip_per_second: float = Field(100.0, gt=0, description="Refill rate per client IP.")
    rate_limit_ip_burst: int = Field(200, ge=1, description="Bucket size per client IP.")
    rate_limit_user_per_second: float = Field(50.0, gt=0, description="Refill rate per user.")
    rate_limit_user_burst: int = Field(100, ge=1, description="Bucket size per user.")
    rate_limit_probe_seconds: float = Field(
        1.0,
        gt=0,
        description="After Redis failed a rate-limit check, limits fail open at once for this"
        " long; then one request probes Redis again.",
    )
    rate_limit_key_prefix: str = Field(
        "bridge", description="Prefix of the bridge's Redis keys (rate-limit buckets)."
    )
    trusted_proxies: Annotated[list[Network], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated IPs/CIDRs of proxies whose X-Forwarded-For is believed.",
    )
    cors_allow_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Comma-separated origins allowed by CORS (none: off)."
    )
    cors_allow_credentials: bool = Field(
        False, description="Access-Control-Allow-Credentials (never with a '*' origin)."
    )
    health_timeout_seconds: float = Field(
        1.0, gt=0, description="Deadline of each dependency probe of GET /health."
    )
    web_dist_dir: Path = Field(
        Path(__file__).resolve().parent.parent / "web" / "dist",
        description="The built web app served at / (./dev up builds it there).",
    )

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: object) -> object:
        return comma_list(value)

    @field_validator("cors_allow_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        return comma_list(value)

    @model_validator(mode="after")
    def _no_wildcard_with_credentials(self) -> Self:
        if self.cors_allow_credentials and "*" in self.cors_allow_origins:
            raise ValueError("CORS_ALLOW_ORIGINS may not hold '*' when credentials are allowed")
        if self.bridge_default_timeout_seconds > self.bridge_max_timeout_seconds:
            raise ValueError("BRIDGE_DEFAULT_TIMEOUT_SECONDS exceeds BRIDGE_MAX_TIMEOUT_SECONDS")
        return self
