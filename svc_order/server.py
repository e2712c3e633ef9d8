"""The gRPC face of svc_order: protobuf in, domain calls, protobuf out; nothing else."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from trading.v1 import order_pb2, order_pb2_grpc

from common import idempotency
from common.context import Identity, current_identity
from common.errors import Unauthenticated
from common.server import Registrar
from common.stream_slots import StreamSlots
from svc_order import metrics
from svc_order.audit import Books
from svc_order.domain import (
    AppliedOperation,
    AssetEntry,
    CashEntry,
    Holding,
    OperationKind,
    OrderRecord,
    cash_transaction_id_of,
    format_cash,
    format_percentage,
    format_price,
    format_quantity,
)
from svc_order.metrics import order_outcome
from svc_order.service import OrderService, page_request

SERVICE_NAME = order_pb2.DESCRIPTOR.services_by_name["OrderService"].full_name
# How often an order stream checks that its caller's session still counts (a revoked
# session ends the stream within this) and that the client is still there.
STREAM_POLL_SECONDS = 0.4


def _timestamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def _idempotency_key(context: grpc.ServicerContext) -> str | None:
    for key, value in context.invocation_metadata():
        if key == idempotency.METADATA_KEY and isinstance(value, str):
            return value
    return None


def _optional(message: object, field: str) -> str | None:
    return getattr(message, field) if message.HasField(field) else None  # type: ignore[attr-defined]


def _limit(
    request: order_pb2.ListOrdersRequest
    | order_pb2.ListCashTransactionsRequest
    | order_pb2.ListAssetTransactionsRequest,
) -> int | None:
    """A list request's limit; None when not given (0 is a given, refused value)."""
    return request.limit if request.HasField("limit") else None


def _held_text(order: OrderRecord) -> str:
    if order.held_amount is None:
        return ""
    if order.order_type.is_buy:
        return format_cash(order.held_amount)
    return format_quantity(order.held_amount)


def order_message(order: OrderRecord) -> order_pb2.Order:
    message = order_pb2.Order(
        order_id=order.order_id,
        order_type=order.order_type.value,
        asset_id=order.asset_id,
        quantity=format_quantity(order.quantity),
        price="" if order.price is None else format_price(order.price),
        status=order.status.value,
        total_amount=format_cash(order.total_amount),
        created_at=_timestamp(order.created_at),
        time_in_force="" if order.time_in_force is None else order.time_in_force.value,
        limit_price="" if order.limit_price is None else format_price(order.limit_price),
        held_amount=_held_text(order),
    )
    for field, moment in (
        ("expires_at", order.expires_at),
        ("filled_at", order.filled_at),
        ("cancelled_at", order.cancelled_at),
        ("expired_at", order.expired_at),
    ):
        if moment is not None:
            getattr(message, field).CopyFrom(_timestamp(moment))
    return message


# The ledger's transaction types as the contract names them (the previous platform's
# values, which its clients know); the domain's names stay its own.
CASH_TRANSACTION_TYPES = {
    OperationKind.DEPOSIT: "deposit",
    OperationKind.WITHDRAWAL: "withdraw",
    OperationKind.BUY: "order_payment",
    OperationKind.SELL: "order_sale",
}


def _cash_message(entry: CashEntry) -> order_pb2.CashTransaction:
    return order_pb2.CashTransaction(
        transaction_id=entry.transaction_id,
        transaction_type=CASH_TRANSACTION_TYPES[entry.transaction_type],
        amount=format_cash(entry.amount),
        status=entry.status,
        created_at=_timestamp(entry.created_at),
        reference_id=entry.reference_id,
    )


def _asset_entry_message(entry: AssetEntry) -> order_pb2.AssetTransaction:
    return order_pb2.AssetTransaction(
        asset_id=entry.asset_id,
        transaction_type=entry.transaction_type.value,
        quantity=format_quantity(entry.quantity),
        price=format_price(entry.price),
        total_amount=format_cash(entry.total_amount),
        order_id=entry.order_id,
        status=entry.status,
        timestamp=_timestamp(entry.created_at),
    )


def _deposit_response(operation: AppliedOperation) -> order_pb2.DepositResponse:
    return order_pb2.DepositResponse(
        success=True,
        message="Deposit completed",
        transaction_id=cash_transaction_id_of(operation),
        timestamp=_timestamp(operation.created_at),
        current_balance=format_cash(operation.cash_after),
    )


def _withdraw_response(operation: AppliedOperation) -> order_pb2.WithdrawResponse:
    return order_pb2.WithdrawResponse(
        success=True,
        message="Withdrawal completed",
        transaction_id=cash_transaction_id_of(operation),
        timestamp=_timestamp(operation.created_at),
        current_balance=format_cash(operation.cash_after),
    )


def _holding_message(asset_id: str, holding: Holding) -> order_pb2.HeldAsset:
    return order_pb2.HeldAsset(
        asset_id=asset_id,
        quantity=format_quantity(holding.quantity),
        created_at=_timestamp(holding.created_at),
        updated_at=_timestamp(holding.updated_at),
    )


def export_message(books: Books) -> order_pb2.TradingAccountExport:
    """The account and every record of `books`, oldest first."""
    account = books.account
    message = order_pb2.TradingAccountExport(
        cash_balance=format_cash(account.cash if account else Decimal("0.00")),
        holdings=[
            _holding_message(asset_id, holding)
            for asset_id, holding in sorted((account.holdings if account else {}).items())
        ],
        ledger=[_cash_message(e) for e in sorted(books.cash_entries, key=lambda e: e.created_at)],
        orders=[
            order_message(o)
            for o in sorted(books.orders_by_id.values(), key=lambda o: o.created_at)
        ],
        trades=[
            _asset_entry_message(e) for e in sorted(books.asset_entries, key=lambda e: e.created_at)
        ],
    )
    if account is not None and account.version:
        message.created_at.CopyFrom(_timestamp(account.created_at))
    if account is not None and account.closed_at is not None:
        message.closed_at.CopyFrom(_timestamp(account.closed_at))
    return message


class OrderServicer(order_pb2_grpc.OrderServiceServicer):
    def __init__(
        self,
        service: OrderService,
        *,
        session_alive: Callable[[Identity], bool],
        max_streams: int,
        stream_poll_seconds: float = STREAM_POLL_SECONDS,
    ) -> None:
        self._service = service
        # Open StreamOrderUpdates calls; past the cap a new one is refused
        # (TOO_MANY_STREAMS) so unary calls always find an RPC thread.
        self._streams = StreamSlots(max_streams, "order streams", metrics.order_streams.inc)
        # Whether the caller's token still counts (not revoked, not expired); a stream
        # outlives the check made when it opened, so it asks again as it runs.
        self._session_alive = session_alive
        self._stream_poll_seconds = stream_poll_seconds

    def GetBalance(
        self, request: order_pb2.GetBalanceRequest, context: grpc.ServicerContext
    ) -> order_pb2.GetBalanceResponse:
        account = self._service.balance(current_identity().user_id)
        return order_pb2.GetBalanceResponse(
            current_balance=format_cash(account.cash),
            updated_at=_timestamp(account.updated_at),
            available_balance=format_cash(account.available_cash),
            held_balance=format_cash(account.held_cash),
        )

    def Deposit(
        self, request: order_pb2.DepositRequest, context: grpc.ServicerContext
    ) -> order_pb2.DepositResponse:
        operation = self._service.deposit(
            current_identity().user_id, request.amount, _idempotency_key(context)
        )
        return _deposit_response(operation)

    def Withdraw(
        self, request: order_pb2.WithdrawRequest, context: grpc.ServicerContext
    ) -> order_pb2.WithdrawResponse:
        operation = self._service.withdraw(
            current_identity().user_id, request.amount, _idempotency_key(context)
        )
        return _withdraw_response(operation)

    def ListCashTransactions(
        self, request: order_pb2.ListCashTransactionsRequest, context: grpc.ServicerContext
    ) -> order_pb2.ListCashTransactionsResponse:
        page, total = self._service.cash_transactions(
            current_identity().user_id,
            page_request(_limit(request), request.page_token, request.offset),
        )
        return order_pb2.ListCashTransactionsResponse(
            transactions=[_cash_message(entry) for entry in page.items],
            total_count=total,
            has_more=page.has_more,
            next_page_token=page.next_page_token,
        )

    def PlaceOrder(
        self, request: order_pb2.PlaceOrderRequest, context: grpc.ServicerContext
    ) -> order_pb2.PlaceOrderResponse:
        with order_outcome(request.order_type):
            order = self._service.place_order(
                current_identity().user_id,
                order_type=request.order_type,
                asset_id=request.asset_id,
                quantity=request.quantity,
                price=_optional(request, "price"),
                idempotency_key=_idempotency_key(context),
                time_in_force=_optional(request, "time_in_force"),
                expires_at=request.expires_at.ToDatetime(tzinfo=UTC)
                if request.HasField("expires_at")
                else None,
            )
        return order_pb2.PlaceOrderResponse(data=order_message(order))

    def ListOrders(
        self, request: order_pb2.ListOrdersRequest, context: grpc.ServicerContext
    ) -> order_pb2.ListOrdersResponse:
        page = self._service.list_orders(
            current_identity().user_id,
            page_request(_limit(request), request.page_token, request.offset),
            asset_id=_optional(request, "asset_id"),
            order_type=_optional(request, "order_type"),
            status=_optional(request, "status"),
        )
        return order_pb2.ListOrdersResponse(
            data=[order_message(order) for order in page.items],
            has_more=page.has_more,
            next_page_token=page.next_page_token,
        )

    def GetOrder(
        self, request: order_pb2.GetOrderRequest, context: grpc.ServicerContext
    ) -> order_pb2.GetOrderResponse:
        order = self._service.get_order(current_identity().user_id, request.order_id)
        return order_pb2.GetOrderResponse(data=order_message(order))

    def CancelOrder(
        self, request: order_pb2.CancelOrderRequest, context: grpc.ServicerContext
    ) -> order_pb2.CancelOrderResponse:
        order = self._service.cancel_order(current_identity().user_id, request.order_id)
        return order_pb2.CancelOrderResponse(data=order_message(order))

    def StreamOrderUpdates(
        self, request: order_pb2.StreamOrderUpdatesRequest, context: grpc.ServicerContext
    ) -> Iterator[order_pb2.StreamOrderUpdatesResponse]:
        identity = current_identity()
        self._streams.take()
        try:
            yield from self._order_updates(identity, context)
        finally:
            self._streams.release()

    def _order_updates(
        self, identity: Identity, context: grpc.ServicerContext
    ) -> Iterator[order_pb2.StreamOrderUpdatesResponse]:
        feed = self._service.watch_orders(identity.user_id)
        try:
            yield order_pb2.StreamOrderUpdatesResponse(event="subscribed")
            while context.is_active():
                if not self._session_alive(identity):
                    raise Unauthenticated("the session has ended", reason="SESSION_ENDED")
                update = feed.next(self._stream_poll_seconds)
                if update is not None:
                    event, order = update
                    yield order_pb2.StreamOrderUpdatesResponse(
                        event=event, order=order_message(order)
                    )
        finally:
            feed.close()

    def GetPortfolio(
        self, request: order_pb2.GetPortfolioRequest, context: grpc.ServicerContext
    ) -> order_pb2.GetPortfolioResponse:
        portfolio = self._service.portfolio(current_identity().user_id)
        return order_pb2.GetPortfolioResponse(
            assets=[
                order_pb2.PortfolioAsset(
                    asset_id=line.asset_id,
                    quantity=format_quantity(line.quantity),
                    current_price=format_price(line.current_price),
                    market_value=format_cash(line.market_value),
                    percentage=format_percentage(line.percentage),
                    available_quantity=format_quantity(line.available_quantity),
                    held_quantity=format_quantity(line.held_quantity),
                )
                for line in portfolio.assets
            ],
            cash_balance=format_cash(portfolio.cash_balance),
            total_asset_value=format_cash(portfolio.total_asset_value),
            total_value=format_cash(portfolio.total_value),
            available_cash=format_cash(portfolio.available_cash),
            held_cash=format_cash(portfolio.held_cash),
        )

    def GetAssetBalance(
        self, request: order_pb2.GetAssetBalanceRequest, context: grpc.ServicerContext
    ) -> order_pb2.GetAssetBalanceResponse:
        balance = self._service.asset_balance(current_identity().user_id, request.asset_id)
        return order_pb2.GetAssetBalanceResponse(
            asset_id=balance.asset_id,
            asset_name=balance.asset_name,
            quantity=format_quantity(balance.holding.quantity),
            current_price=format_price(balance.current_price),
            total_value=format_cash(balance.total_value),
            created_at=_timestamp(balance.holding.created_at),
            updated_at=_timestamp(balance.holding.updated_at),
            available_quantity=format_quantity(balance.holding.quantity - balance.held_quantity),
            held_quantity=format_quantity(balance.held_quantity),
        )

    def ListAssetTransactions(
        self, request: order_pb2.ListAssetTransactionsRequest, context: grpc.ServicerContext
    ) -> order_pb2.ListAssetTransactionsResponse:
        page = self._service.asset_transactions(
            current_identity().user_id,
            request.asset_id,
            page_request(_limit(request), request.page_token, request.offset),
        )
        return order_pb2.ListAssetTransactionsResponse(
            data=[_asset_entry_message(entry) for entry in page.items],
            has_more=page.has_more,
            next_page_token=page.next_page_token,
        )

    def ExportTradingAccount(
        self, request: order_pb2.ExportTradingAccountRequest, context: grpc.ServicerContext
    ) -> order_pb2.ExportTradingAccountResponse:
        books = self._service.export(current_identity().user_id)
        return order_pb2.ExportTradingAccountResponse(account=export_message(books))

    def CloseTradingAccount(
        self, request: order_pb2.CloseTradingAccountRequest, context: grpc.ServicerContext
    ) -> order_pb2.CloseTradingAccountResponse:
        account = self._service.close(current_identity().user_id)
        closed_at = account.closed_at or account.updated_at
        return order_pb2.CloseTradingAccountResponse(closed_at=_timestamp(closed_at))


def register(servicer: OrderServicer) -> Registrar:
    def add(server: grpc.Server) -> None:
        order_pb2_grpc.add_OrderServiceServicer_to_server(servicer, server)

    return add
