"""Closing an account: allowed only when nothing is left in it (API.md, account/close).

A closed account keeps its records (DESIGN.md: the ledger, trades and orders are kept
for the retention the law asks; see the README, "Your data") and takes no further
operation: `operations` refuses every change of a closed account (AccountClosed).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from svc_order.domain.account import Account
from svc_order.domain.errors import AccountNotEmpty
from svc_order.domain.ids import utc
from svc_order.domain.values import format_cash, format_quantity


def close_account(account: Account, now: datetime) -> Account:
    """The account closed at `now` (version + 1); unchanged when already closed.

    Raises AccountNotEmpty naming each resting order to cancel, the cash to withdraw and
    each holding to sell.
    """
    if account.closed_at is not None:
        return account
    # Resting orders first: their holds are part of the cash and units below.
    left = [f"cancel order {order_id}" for order_id in sorted(account.open_orders)]
    if account.cash != 0:
        left.append(f"withdraw {format_cash(account.cash)} USD")
    left += [
        f"sell {format_quantity(holding.quantity)} {asset_id}"
        for asset_id, holding in sorted(account.holdings.items())
        if holding.quantity != 0
    ]
    if left:
        raise AccountNotEmpty(
            "the account still holds money or assets: " + ", ".join(left) + " first"
        )
    now = utc(now)
    return replace(account, version=account.version + 1, updated_at=now, closed_at=now)
