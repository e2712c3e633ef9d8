"""svc_user's port to the caller's trading account (svc_user/trading.py) when svc_order
cannot help: not reachable is UNAVAILABLE ORDER_SERVICE_UNAVAILABLE with Retry-After,
and a svc_user started without ORDER_SERVICE_ADDR says so (SERVICE_NOT_CONFIGURED) for
the export and for closing."""

from __future__ import annotations

import pytest

from common.channels import CallPolicy
from common.errors import Unavailable
from devstack.engines import free_port
from svc_user.trading import NoTradingAccounts, OrderServiceAccounts, order_channel


def test_a_svc_order_nobody_answers_at_is_unavailable() -> None:
    channel = order_channel(f"127.0.0.1:{free_port()}", CallPolicy(5, 5, retries=True))
    accounts = OrderServiceAccounts(channel)
    try:
        for call in (accounts.export, accounts.close):
            with pytest.raises(Unavailable) as refused:
                call()
            assert refused.value.reason == "ORDER_SERVICE_UNAVAILABLE"
            assert refused.value.retry_after_seconds == 1
    finally:
        channel.close()


def test_without_an_order_service_configured_export_and_closing_say_so() -> None:
    accounts = NoTradingAccounts()
    for call in (accounts.export, accounts.close):
        with pytest.raises(Unavailable) as refused:
            call()
        assert refused.value.reason == "SERVICE_NOT_CONFIGURED"
        assert "ORDER_SERVICE_ADDR" in str(refused.value.message)
