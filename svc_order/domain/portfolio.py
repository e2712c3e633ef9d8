"""Valuing cash and holdings at current prices."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from svc_order.domain.values import CENT, market_value


@dataclass(frozen=True)
class PortfolioLine:
    asset_id: str
    quantity: Decimal
    current_price: Decimal
    # quantity × price rounded down to the cent.
    market_value: Decimal
    # Share of cash + holdings in percent, 2 decimals; 0.00 when the total is 0.
    percentage: Decimal
    # Units held by resting limit sells; quantity - held_quantity can be sold now.
    held_quantity: Decimal = Decimal(0)

    @property
    def available_quantity(self) -> Decimal:
        return self.quantity - self.held_quantity


@dataclass(frozen=True)
class Portfolio:
    assets: tuple[PortfolioLine, ...]
    cash_balance: Decimal
    total_asset_value: Decimal
    total_value: Decimal
    # Cash held by resting limit buys; cash_balance is the total.
    held_cash: Decimal = Decimal("0.00")

    @property
    def available_cash(self) -> Decimal:
        return self.cash_balance - self.held_cash


def _share(part: Decimal, total: Decimal) -> Decimal:
    if total == 0:
        return Decimal("0.00")
    return (part * 100 / total).quantize(CENT, rounding=ROUND_HALF_EVEN)


def value_portfolio(
    cash: Decimal,
    holdings: Mapping[str, Decimal],
    prices: Mapping[str, Decimal],
    *,
    held_cash: Decimal = Decimal("0.00"),
    held_units: Mapping[str, Decimal] | None = None,
) -> Portfolio:
    """Cash and holdings (asset id → quantity) valued at `prices`, largest value first.

    Market values are rounded down to the cent, so the portfolio never shows more than
    selling would pay. A price is needed for every non-zero holding.
    """
    held = {asset_id: qty for asset_id, qty in holdings.items() if qty != 0}
    missing = sorted(set(held) - set(prices))
    if missing:
        raise ValueError(f"no price for {', '.join(missing)}")
    values = {asset_id: market_value(qty, prices[asset_id]) for asset_id, qty in held.items()}
    total_asset_value = sum(values.values(), Decimal("0.00"))
    total_value = cash + total_asset_value
    lines = tuple(
        PortfolioLine(
            asset_id=asset_id,
            quantity=held[asset_id],
            current_price=prices[asset_id],
            market_value=values[asset_id],
            percentage=_share(values[asset_id], total_value),
            held_quantity=(held_units or {}).get(asset_id, Decimal(0)),
        )
        for asset_id in sorted(values, key=lambda a: (-values[a], a))
    )
    return Portfolio(lines, cash, total_asset_value, total_value, held_cash)
