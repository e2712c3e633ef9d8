"""Settings of svc_inventory (environment variables; see the README's table)."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator

from common.settings import CommonSettings
from common.stream_slots import check_below_workers

# CoinGecko's public API allows about 30 calls a minute and refreshes its markets about
# once a minute, so polling it faster only earns HTTP 429s.
COINGECKO_DEFAULT_TICK_SECONDS = 30.0
SIMULATED_DEFAULT_TICK_SECONDS = 1.0


class InventorySettings(CommonSettings):
    inventory_grpc_port: int = Field(50052, ge=0, le=65535, description="Port of svc_inventory.")
    assets_table: str = Field("assets", description="Table of svc_inventory (before the prefix).")
    user_service_addr: str | None = Field(
        None,
        description="host:port of svc_user, whose JWKS verifies tokens; unset is fine "
        "because every inventory RPC is public.",
    )
    price_source: Literal["simulated", "coingecko"] = Field(
        "simulated", description="Where prices come from: a seeded simulation or CoinGecko."
    )
    price_tick_seconds: float | None = Field(
        None,
        gt=0,
        description="Seconds between price updates; unset means 1 (simulated) or 30 (coingecko).",
    )
    market_seed: int = Field(42, description="Seed of the simulated market (reproducible prices).")
    market_volatility: float = Field(
        1.0, ge=0, description="Scale of the simulated market's realistic volatility (1.0)."
    )
    coingecko_base_url: str = Field(
        "https://api.coingecko.com/api/v3", description="CoinGecko API root."
    )
    coingecko_api_key: str | None = Field(None, description="Optional CoinGecko demo API key.")
    price_snapshot_seconds: float = Field(
        60,
        ge=0,
        description="Seconds between writes of the live prices to the store (0: every "
        "tick); quotes, streams and catalogue reads get the live figures from memory, the "
        "store's snapshot is what a restart continues from.",
    )
    price_cache_ttl_seconds: int = Field(
        30, ge=1, description="Lifetime of a cached quote in Redis."
    )
    max_price_streams: int = Field(
        16, ge=1, description="Concurrent StreamPrices calls; each holds one RPC thread."
    )

    @property
    def tick_seconds(self) -> float:
        if self.price_tick_seconds is not None:
            return self.price_tick_seconds
        if self.price_source == "coingecko":
            return COINGECKO_DEFAULT_TICK_SECONDS
        return SIMULATED_DEFAULT_TICK_SECONDS

    @model_validator(mode="after")
    def _streams_leave_threads_for_calls(self) -> Self:
        # A stream occupies a worker for its whole life; if streams could take every
        # worker, quotes for orders would queue behind browsers watching prices.
        check_below_workers("MAX_PRICE_STREAMS", self.max_price_streams, self.grpc_max_workers)
        return self
