"""The caller's trading account in svc_order: the port svc_user's export and account
closing use, and its gRPC adapter.

Calls carry the caller's own access token (the channel factory propagates it), so
svc_order acts for exactly that user. Its refusals come back as the same typed errors
(reason and message kept); a svc_order that cannot be reached is UNAVAILABLE.
"""

from __future__ import annotations

import logging
from typing import Protocol

import grpc
from trading.v1 import order_pb2, order_pb2_grpc

from common.channels import CallPolicy, make_channel
from common.errors import Aborted, DomainError, Unavailable
from common.grpc_errors import error_info

log = logging.getLogger(__name__)

ORDER_SERVICE_NAME = order_pb2.DESCRIPTOR.services_by_name["OrderService"].full_name
RETRY_AFTER_SECONDS = 1


class TradingAccounts(Protocol):
    def export(self) -> order_pb2.TradingAccountExport:
        """The caller's whole trading account."""
        ...

    def close(self) -> None:
        """Closes the caller's trading account; Aborted ACCOUNT_NOT_EMPTY when money or
        assets are left (the message says which)."""
        ...


def _relayed(error: grpc.RpcError) -> DomainError:
    code = error.code() if isinstance(error, grpc.Call) else None
    info = error_info(error)
    details = error.details() if isinstance(error, grpc.Call) else None
    if code == grpc.StatusCode.ABORTED and info is not None:
        return Aborted(details or "the trading account refused", reason=info.reason)
    log.warning("order service call failed", extra={"code": getattr(code, "name", None)})
    return Unavailable(
        "the trading account cannot be reached; try again shortly",
        reason="ORDER_SERVICE_UNAVAILABLE",
        retry_after_seconds=RETRY_AFTER_SECONDS,
    )


def order_channel(address: str, policy: CallPolicy) -> grpc.Channel:
    return make_channel(address, services=[ORDER_SERVICE_NAME], policy=policy)


class OrderServiceAccounts:
    def __init__(self, channel: grpc.Channel) -> None:
        self._stub = order_pb2_grpc.OrderServiceStub(channel)

    def export(self) -> order_pb2.TradingAccountExport:
        try:
            response = self._stub.ExportTradingAccount(order_pb2.ExportTradingAccountRequest())
        except grpc.RpcError as error:
            raise _relayed(error) from None
        return response.account

    def close(self) -> None:
        try:
            self._stub.CloseTradingAccount(order_pb2.CloseTradingAccountRequest())
        except grpc.RpcError as error:
            raise _relayed(error) from None


class NoTradingAccounts:
    """svc_user without ORDER_SERVICE_ADDR: export and closing answer UNAVAILABLE."""

    def _refuse(self) -> DomainError:
        return Unavailable(
            "the order service is not configured (ORDER_SERVICE_ADDR)",
            reason="SERVICE_NOT_CONFIGURED",
            retry_after_seconds=RETRY_AFTER_SECONDS,
        )

    def export(self) -> order_pb2.TradingAccountExport:
        raise self._refuse()

    def close(self) -> None:
        raise self._refuse()
