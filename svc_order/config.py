"""Settings of svc_order (environment variables; see the README's table)."""

from __future__ import annotations

from decimal import Decimal
from typing import Self

from pydantic import Field, model_validator

from common.settings import CommonSettings
from common.stream_slots import check_below_workers


class OrderSettings(CommonSettings):
    order_grpc_port: int = Field(50053, ge=0, le=65535, description="Port of svc_order.")
    inventory_service_addr: str = Field(
        description="host:port of svc_inventory, which quotes prices (required)."
    )
    user_service_addr: str = Field(
        description="host:port of svc_user, whose JWKS verifies access tokens (required)."
    )
    trading_table: str = Field("trading", description="Table of svc_order (before the prefix).")
    max_quote_age_seconds: float = Field(
        10.0, gt=0, description="A quote older than this is never traded on (UNAVAILABLE)."
    )
    streamed_quote_max_age_seconds: float = Field(
        2.0,
        ge=0,
        description="An order or portfolio takes the price stream's last quote of an asset "
        "while it is at most this old, else asks svc_inventory (0: always asks). Below "
        "MAX_QUOTE_AGE_SECONDS.",
    )
    daily_deposit_limit: Decimal = Field(
        Decimal("10000.00"), gt=0, description="Deposits per user per UTC day."
    )
    daily_withdraw_limit: Decimal = Field(
        Decimal("5000.00"), gt=0, description="Withdrawals per user per UTC day."
    )
    max_order_value: Decimal = Field(
        Decimal("10000.00"), gt=0, description="Largest value of one order."
    )
    account_write_attempts: int = Field(
        10,
        ge=1,
        description="Tries of an account write that loses a race to another write, "
        "before the request answers ABORTED.",
    )
    order_sweep_seconds: float = Field(
        1.0,
        gt=0,
        description="Seconds between sweeps that expire day and gtd limit orders whose "
        "time has come.",
    )
    price_trigger_stream_seconds: float = Field(
        300.0,
        gt=0,
        description="Lifetime of svc_order's price stream from svc_inventory; each "
        "reconnect re-checks every resting limit order against the current quotes.",
    )

    max_order_streams: int = Field(
        16,
        ge=1,
        description="Concurrent StreamOrderUpdates calls; each holds one RPC thread.",
    )

    @model_validator(mode="after")
    def _streams_leave_threads_for_calls(self) -> Self:
        # An order stream occupies a worker for its whole life; if streams could take
        # every worker, orders and balances would queue behind open streams.
        check_below_workers("MAX_ORDER_STREAMS", self.max_order_streams, self.grpc_max_workers)
        return self

    @model_validator(mode="after")
    def _streamed_quotes_stay_tradable(self) -> Self:
        # A held quote must still be young enough to trade on when the order checks it.
        if self.streamed_quote_max_age_seconds >= self.max_quote_age_seconds:
            raise ValueError(
                f"STREAMED_QUOTE_MAX_AGE_SECONDS ({self.streamed_quote_max_age_seconds}) must "
                f"be below MAX_QUOTE_AGE_SECONDS ({self.max_quote_age_seconds})"
            )
        return self
