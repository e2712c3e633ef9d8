"""The use cases of svc_order; ports (store, quotes, clock, ids) come in as arguments so
tests can swap any of them.

A change reads the account (strongly consistent), answers a replayed idempotency key
from the account's last operation or the key's replay record, decides in the domain,
and writes the account back on the condition that its version is unchanged; a lost
race re-reads and decides again, a bounded number of times, then answers ABORTED. The
orders, ledger entries and replay record an operation derives are written after the
account. Every access first completes the derived items of the account's last
operation if a crash left them unwritten; since a write must read the version it
replaces, no operation is superseded before its items exist. So the work per request
and the account's size are bounded however many keys a user sends in 24 h.

Limit orders: a placement that rests writes the order's hint items (found by the
trigger and the sweep, see store.py) before the account write that opens it; the write
that ends it (fill, cancel, expiry) deletes them after its derived items. Fills come
from `fill_crossed`, called by the price trigger for each quote; expiries from
`expire_due`, called by the sweep. Both re-read the account and act only on what it
says, so two replicas (or a trigger and a cancel) never end one order twice. Every
order event (placed, filled, cancelled, expired) is published after the writes.
"""

from __future__ import annotations

import enum
import logging
import random
import re
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol

from common.context import outliving_the_request
from common.errors import Aborted, InvalidArgument, NotFound, Unavailable
from svc_order import metrics
from svc_order.audit import Books
from svc_order.domain import (
    Account,
    AppliedOperation,
    AssetEntry,
    CashEntry,
    Change,
    Holding,
    InvalidOrderType,
    Limits,
    MarketQuote,
    OpenOrder,
    OrderNotCancellable,
    OrderNotOpen,
    OrderRecord,
    OrderRequest,
    OrderStatus,
    OrderType,
    Portfolio,
    Request,
    UnknownAsset,
    cancel_order,
    close_account,
    deposit,
    derived_items,
    expire_order,
    fill_order,
    find_replay,
    format_cash,
    format_price,
    format_quantity,
    market_value,
    new_account,
    order_event,
    order_record,
    parse_amount,
    parse_asset_id,
    parse_idempotency_key,
    parse_order_type,
    parse_price,
    parse_quantity,
    parse_status_filter,
    parse_time_in_force,
    place_order,
    request_fingerprint,
    resting_of,
    value_portfolio,
    withdraw,
)
from svc_order.quotes import RETRY_AFTER_SECONDS, Quote, QuoteSource
from svc_order.store import BOTH_SIDES, Page, PageRequest, TradingStore

log = logging.getLogger(__name__)

DEFAULT_PAGE_LIMIT = 50
MAX_PAGE_LIMIT = 100
# `offset` reads and drops that many items; the bound keeps one request's work bounded.
# Clients that go deeper page with page_token, which costs nothing extra.
MAX_OFFSET = 10_000
# Full-jitter backoff between tries of a contended account write: racing writers spread
# out instead of colliding again in lockstep.
BACKOFF_BASE_SECONDS = 0.005
BACKOFF_CAP_SECONDS = 0.1
# Operations this process knows to be complete; only saves a read per access.
COMPLETED_MEMORY = 10_000
# A user's changes queue on one of these locks inside a process, so that concurrent
# requests of one user do not spend DynamoDB writes (a failed conditional write is
# billed too) beating each other; the conditional write still decides between
# processes. Striped: bounded memory, and users rarely share a stripe at once.
USER_LOCK_STRIPES = 1024

_ORDER_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class WriteStage(enum.Enum):
    """Where a change stands between its writes; a test's hook may fail at any of them
    to play a crash there."""

    BEFORE_ACCOUNT_WRITE = "before_account_write"
    AFTER_ACCOUNT_WRITE = "after_account_write"
    AFTER_DERIVED_WRITE = "after_derived_write"


WriteHook = Callable[[WriteStage, AppliedOperation], None]
_Decide = Callable[[Account, datetime, str], Change | None]


class OrderFeed(Protocol):
    def next(self, timeout_seconds: float) -> tuple[str, OrderRecord] | None:
        """The next event of the user's orders, or None when none came in time."""
        ...

    def close(self) -> None: ...


class OrderEvents(Protocol):
    """Where order events go (to every replica's streams) and come from."""

    def publish(self, user_id: str, event: str, order: OrderRecord) -> None: ...
    def subscribe(self, user_id: str) -> OrderFeed: ...


# domain.deposit or domain.withdraw: same arguments, opposite directions.
_CashOperation = Callable[[Account, Decimal, Request, Limits], Change]


class AssetNotFound(NotFound):
    reason = "ASSET_NOT_FOUND"


class OrderNotFound(NotFound):
    reason = "ORDER_NOT_FOUND"


class HoldingNotFound(NotFound):
    reason = "HOLDING_NOT_FOUND"


@dataclass(frozen=True)
class AssetBalance:
    asset_id: str
    asset_name: str
    holding: Holding
    current_price: Decimal
    # quantity × price rounded down to the cent.
    total_value: Decimal
    # Units held by resting limit sells (of holding.quantity).
    held_quantity: Decimal = Decimal(0)


def page_request(limit: int | None, page_token: str, offset: int) -> PageRequest:
    """The page a list request asks for; no limit (None) means the default, and 0 is
    out of range."""
    limit = DEFAULT_PAGE_LIMIT if limit is None else limit
    if not 1 <= limit <= MAX_PAGE_LIMIT:
        raise InvalidArgument.field("limit", f"must be between 1 and {MAX_PAGE_LIMIT}")
    if not 0 <= offset <= MAX_OFFSET:
        raise InvalidArgument.field("offset", f"must be between 0 and {MAX_OFFSET}")
    return PageRequest(limit=limit, page_token=page_token.strip(), offset=offset)


def parse_order_id(raw: str) -> str:
    text = raw.strip().lower()
    if not _ORDER_ID.fullmatch(text):
        raise InvalidArgument.field("order_id", "must be an order id", reason="INVALID_ORDER_ID")
    return text


def _order_type_filter(raw: str) -> OrderType:
    try:
        return OrderType(raw.strip())
    except ValueError:
        choices = ", ".join(t.value for t in OrderType)
        raise InvalidOrderType(f"must be one of {choices}") from None


class _CompletedOperations:
    """Ids of operations whose derived items are known to exist, oldest forgotten first."""

    def __init__(self, capacity: int) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._capacity = capacity
        self._lock = threading.Lock()

    def __contains__(self, operation_id: object) -> bool:
        with self._lock:
            return operation_id in self._ids

    def add(self, operation_id: str) -> None:
        with self._lock:
            self._ids[operation_id] = None
            if len(self._ids) > self._capacity:
                self._ids.popitem(last=False)


class OrderService:
    def __init__(
        self,
        *,
        store: TradingStore,
        quotes: QuoteSource,
        limits: Limits,
        clock: Callable[[], datetime],
        new_id: Callable[[], str],
        max_quote_age: timedelta,
        events: OrderEvents | None = None,
        note_resting: Callable[[str], None] | None = None,
        write_attempts: int = 10,
        write_hook: WriteHook | None = None,
    ) -> None:
        self._store = store
        self._quotes = quotes
        self._limits = limits
        self._clock = clock
        self._new_id = new_id
        self._max_quote_age = max_quote_age
        self._write_attempts = write_attempts
        # A test sets this to fail at a stage between the writes (a crash there).
        self._write_hook = write_hook
        self._events = events
        # Tells this replica's price trigger at once that an asset has a resting order.
        self._note_resting = note_resting
        self._completed = _CompletedOperations(COMPLETED_MEMORY)
        self._jitter = random.SystemRandom()
        self._user_locks = tuple(threading.Lock() for _ in range(USER_LOCK_STRIPES))

    # The account and its unfinished operation ----------------------------------

    def _account(self, user_id: str) -> Account:
        stored = self._store.get_account(user_id)
        if stored is None:
            return new_account(user_id, self._clock())
        self._complete(stored)
        return stored

    def _complete(self, account: Account) -> None:
        operation = account.last_operation
        if operation is None or operation.operation_id in self._completed:
            return
        items = derived_items(operation)
        if not self._store.has_derived(account.user_id, items):
            # After a crash, or a read that overtook a write in progress (harmless).
            log.info(
                "writing the derived items of the last operation",
                extra={"user_id": account.user_id, "operation_id": operation.operation_id},
            )
            self._store.put_derived(account.user_id, items)
            self._drop_ended_hints(operation)
        self._completed.add(operation.operation_id)

    def _drop_ended_hints(self, operation: AppliedOperation) -> None:
        order = operation.order
        if order is not None and order.status is not OrderStatus.PENDING:
            self._store.delete_hints(resting_of(order))

    def _apply(
        self, user_id: str, key: str | None, fingerprint: str, decide: _Decide
    ) -> AppliedOperation | None:
        """The operation `decide` made (or the replayed one); None when it decided that
        there is nothing to do."""
        stripe = zlib.crc32(user_id.encode()) % len(self._user_locks)
        with self._user_locks[stripe]:
            return self._apply_in_turn(user_id, key, fingerprint, decide)

    def _apply_in_turn(
        self, user_id: str, key: str | None, fingerprint: str, decide: _Decide
    ) -> AppliedOperation | None:
        for attempt in range(self._write_attempts):
            if attempt:
                self._back_off(attempt)
            account = self._account(user_id)
            now = self._clock()
            replay = find_replay(self._recorded(account, key), key, fingerprint, now)
            if replay is not None:
                metrics.replayed(replay)
                return replay
            change = decide(account, now, self._new_id())
            if change is None:
                return None
            opened = [
                order
                for order_id, order in change.account.open_orders.items()
                if order_id not in account.open_orders
            ]
            for order in opened:
                self._store.put_hints(user_id, order)
                if self._note_resting is not None:
                    self._note_resting(order.asset_id)
            self._reached(WriteStage.BEFORE_ACCOUNT_WRITE, change.operation)
            if self._store.save_account(change.account, account.version):
                self._write_derived(user_id, change.operation)
                metrics.applied(change.operation)
                return change.operation
        log.warning("account write kept losing races", extra={"user_id": user_id})
        raise Aborted(
            "the account changed concurrently too often; try again", reason="CONCURRENT_UPDATE"
        )

    def _recorded(self, account: Account, key: str | None) -> Iterator[AppliedOperation]:
        """Where a key's operation may be, newest first: the account's last operation,
        then the key's replay record (read only when the first is not it). Read after
        the account: an operation superseded by then had its record written first."""
        if account.last_operation is not None:
            yield account.last_operation
        if key is not None:
            recorded = self._store.replay_record(account.user_id, key)
            if recorded is not None:
                yield recorded

    def _back_off(self, attempt: int) -> None:
        ceiling = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2**attempt)
        time.sleep(self._jitter.uniform(0, ceiling))

    def _write_derived(self, user_id: str, operation: AppliedOperation) -> None:
        self._reached(WriteStage.AFTER_ACCOUNT_WRITE, operation)
        # The operation is applied: its items are written even when the caller has run
        # out of time (within the store's own budget), not left to the next access.
        with outliving_the_request():
            self._store.put_derived(user_id, derived_items(operation))
            self._drop_ended_hints(operation)
        self._completed.add(operation.operation_id)
        self._reached(WriteStage.AFTER_DERIVED_WRITE, operation)
        self._publish(user_id, operation)

    def _reached(self, stage: WriteStage, operation: AppliedOperation) -> None:
        if self._write_hook is not None:
            self._write_hook(stage, operation)

    def _publish(self, user_id: str, operation: AppliedOperation) -> None:
        event = order_event(operation)
        if event is None or self._events is None:
            return
        try:
            self._events.publish(user_id, event, order_record(operation))
        except Exception:
            # Live updates are a convenience; the order's state is already written.
            log.warning("could not publish an order event", exc_info=True)

    @staticmethod
    def _key(raw: str | None) -> str | None:
        return None if raw is None else parse_idempotency_key(raw)

    # Cash ----------------------------------------------------------------------

    def balance(self, user_id: str) -> Account:
        return self._account(user_id)

    def deposit(self, user_id: str, amount: str, idempotency_key: str | None) -> AppliedOperation:
        return self._move_cash(deposit, "deposit", user_id, amount, idempotency_key)

    def withdraw(self, user_id: str, amount: str, idempotency_key: str | None) -> AppliedOperation:
        return self._move_cash(withdraw, "withdraw", user_id, amount, idempotency_key)

    def _move_cash(
        self,
        operation: _CashOperation,
        kind: str,
        user_id: str,
        amount: str,
        idempotency_key: str | None,
    ) -> AppliedOperation:
        value = parse_amount(amount)
        key = self._key(idempotency_key)
        fingerprint = request_fingerprint(kind, {"amount": format_cash(value)})

        def decide(account: Account, now: datetime, fresh_id: str) -> Change:
            return operation(account, value, Request(now, fresh_id, key, fingerprint), self._limits)

        return self._applied(self._apply(user_id, key, fingerprint, decide))

    @staticmethod
    def _applied(operation: AppliedOperation | None) -> AppliedOperation:
        if operation is None:
            raise ValueError("this operation always changes the account")
        return operation

    def cash_transactions(self, user_id: str, page: PageRequest) -> tuple[Page[CashEntry], int]:
        """A page of the ledger and the number of entries in it."""
        self._account(user_id)
        return (
            self._store.list_cash_entries(user_id, page),
            self._store.count_cash_entries(user_id),
        )

    # The whole account: export and closing -------------------------------------

    def export(self, user_id: str) -> Books:
        """Every record of the user's trading account, as of one moment."""
        self._account(user_id)
        return self._store.books(user_id)

    def close(self, user_id: str) -> Account:
        """Closes the account (domain.close_account); the closed account. Idempotent."""
        stripe = zlib.crc32(user_id.encode()) % len(self._user_locks)
        with self._user_locks[stripe]:
            for attempt in range(self._write_attempts):
                if attempt:
                    self._back_off(attempt)
                account = self._account(user_id)
                closed = close_account(account, self._clock())
                if closed is account or self._store.save_account(closed, account.version):
                    return closed
        raise Aborted(
            "the account changed concurrently too often; try again", reason="CONCURRENT_UPDATE"
        )

    # Orders --------------------------------------------------------------------

    def place_order(
        self,
        user_id: str,
        *,
        order_type: str,
        asset_id: str,
        quantity: str,
        price: str | None,
        idempotency_key: str | None,
        time_in_force: str | None = None,
        expires_at: datetime | None = None,
    ) -> OrderRecord:
        """Places a market or limit order (domain.place_order says what happens).

        `price` is a market order's protection price or a limit order's limit;
        `time_in_force` and `expires_at` are for limit orders (INVALID_TIME_IN_FORCE,
        INVALID_EXPIRES_AT otherwise).
        """
        kind = parse_order_type(order_type)
        asset = parse_asset_id(asset_id)
        amount = parse_quantity(quantity)
        protection = None if price is None else parse_price(price)
        tif = None if time_in_force is None else parse_time_in_force(time_in_force)
        key = self._key(idempotency_key)
        fields = {
            "order_type": kind.value,
            "asset_id": asset,
            "quantity": format_quantity(amount),
            # "100" and "100.00" protect alike: the same request.
            "price": "" if protection is None else format_price(protection.normalize()),
        }
        if tif is not None or expires_at is not None:
            fields["time_in_force"] = "" if tif is None else tif.value
            fields["expires_at"] = "" if expires_at is None else expires_at.isoformat()
        fingerprint = request_fingerprint("order", fields)
        order = OrderRequest(kind, asset, amount, protection, tif, expires_at)
        # Asked before the account is read so the two overlap; awaited only once a
        # replay is ruled out, so a replay works even while inventory is down.
        pending = [self._quotes.request_quotes([asset])]
        held_quote: list[Quote] = []

        def decide(account: Account, now: datetime, fresh_id: str) -> Change:
            if not held_quote or self._is_stale(held_quote[0], now):
                source = pending.pop() if pending else self._quotes.request_quotes([asset])
                held_quote[:] = [self._tradable_quote(asset, source())]
            quote = held_quote[0]
            return place_order(
                account,
                order,
                MarketQuote(quote.price, quote.is_active),
                Request(now, fresh_id, key, fingerprint),
                self._limits,
            )

        return order_record(self._applied(self._apply(user_id, key, fingerprint, decide)))

    def cancel_order(self, user_id: str, order_id: str) -> OrderRecord:
        """Cancels a resting order: its record, now cancelled, hold released.

        NOT_FOUND for a missing or another user's order; ABORTED ORDER_NOT_CANCELLABLE,
        naming the status, for one that is no longer resting (however often asked).
        """
        wanted = parse_order_id(order_id)

        def decide(account: Account, now: datetime, fresh_id: str) -> Change:
            return cancel_order(account, wanted, Request(now, fresh_id))

        try:
            operation = self._applied(self._apply(user_id, None, "", decide))
        except OrderNotOpen:
            ended = self.get_order(user_id, wanted)
            raise OrderNotCancellable(
                f"the order is {ended.status.value} and can no longer be cancelled"
            ) from None
        return order_record(operation)

    def fill_crossed(self, quote: Quote, sides: frozenset[str] = BOTH_SIDES) -> int:
        """Fills the resting orders of the quote's asset that it crosses; how many filled.

        Called by the price trigger for every quote of the stream (and so for every
        asset at each (re)connect: the re-check after a restart or missed ticks), for
        the side the price moved toward (`sides`: BUY, SELL). A stale or inactive
        quote fills nothing.
        """
        if not quote.is_active or self._is_stale(quote, self._clock()):
            return 0
        market = MarketQuote(quote.price, quote.is_active)

        def fill(account: Account, order_id: str, request: Request) -> Change | None:
            return fill_order(account, order_id, market, request, self._limits)

        filled = 0
        for user_id, resting in self._store.crossed_hints(quote.asset_id, quote.price, sides):
            if resting.crossed_by(quote.price) and self._end_resting(user_id, resting, fill):
                filled += 1
        return filled

    def expire_due(self) -> int:
        """Expires every resting order whose time has come; how many expired. Called by
        the sweep, so expiry happens when nobody touches the account, and after a
        restart (the hints are stored)."""
        expired = 0
        for user_id, resting in self._store.due_hints(self._clock()):
            if self._end_resting(user_id, resting, expire_order):
                expired += 1
        return expired

    def _end_resting(
        self,
        user_id: str,
        resting: OpenOrder,
        end: Callable[[Account, str, Request], Change | None],
    ) -> bool:
        """Applies `end` to a hinted order; deletes the hint when the account says the
        order is not resting (it ended meanwhile, or its placement lost a race)."""
        stale: list[bool] = []

        def decide(account: Account, now: datetime, fresh_id: str) -> Change | None:
            stale[:] = [resting.order_id not in account.open_orders]
            return end(account, resting.order_id, Request(now, fresh_id))

        if self._apply(user_id, None, "", decide) is not None:
            return True
        if stale and stale[0]:
            self._store.delete_hints(resting)
        return False

    def watch_orders(self, user_id: str) -> OrderFeed:
        """The user's order events from now on, from every replica."""
        if self._events is None:
            raise Unavailable("live order updates are not configured", reason="NO_ORDER_EVENTS")
        return self._events.subscribe(user_id)

    def list_orders(
        self,
        user_id: str,
        page: PageRequest,
        *,
        asset_id: str | None = None,
        order_type: str | None = None,
        status: str | None = None,
    ) -> Page[OrderRecord]:
        asset = parse_asset_id(asset_id) if asset_id else None
        kind = _order_type_filter(order_type) if order_type else None
        wanted = parse_status_filter(status) if status else None
        self._account(user_id)
        return self._store.list_orders(
            user_id, page, asset_id=asset, order_type=kind, status=wanted
        )

    def get_order(self, user_id: str, order_id: str) -> OrderRecord:
        wanted = parse_order_id(order_id)
        self._account(user_id)
        order = self._store.get_order(user_id, wanted)
        if order is None:
            # Another user's order answers exactly like a missing one.
            raise OrderNotFound("order not found")
        return order

    # Holdings ------------------------------------------------------------------

    def portfolio(self, user_id: str) -> Portfolio:
        account = self._account(user_id)
        held = {asset_id: holding.quantity for asset_id, holding in account.holdings.items()}
        quotes = self._valuation_quotes(held)
        return value_portfolio(
            account.cash,
            held,
            {asset_id: quote.price for asset_id, quote in quotes.items()},
            held_cash=account.held_cash,
            held_units={asset_id: account.held_units(asset_id) for asset_id in held},
        )

    def asset_balance(self, user_id: str, asset_id: str) -> AssetBalance:
        asset = parse_asset_id(asset_id)
        account = self._account(user_id)
        holding = account.holdings.get(asset)
        if holding is None:
            raise HoldingNotFound(f"no {asset} held")
        quote = self._valuation_quotes({asset: holding.quantity})[asset]
        return AssetBalance(
            asset_id=asset,
            asset_name=quote.asset_name,
            holding=holding,
            current_price=quote.price,
            total_value=market_value(holding.quantity, quote.price),
            held_quantity=account.held_units(asset),
        )

    def asset_transactions(
        self, user_id: str, asset_id: str, page: PageRequest
    ) -> Page[AssetEntry]:
        asset = parse_asset_id(asset_id)
        self._account(user_id)
        if asset not in self._quotes.quotes([asset]):
            raise AssetNotFound(f"asset {asset} not found")
        return self._store.list_asset_entries(user_id, asset, page)

    # Quotes --------------------------------------------------------------------

    def _is_stale(self, quote: Quote, now: datetime) -> bool:
        return now - quote.as_of > self._max_quote_age

    def _tradable_quote(self, asset_id: str, quotes: Mapping[str, Quote]) -> Quote:
        quote = quotes.get(asset_id)
        if quote is None:
            raise UnknownAsset(f"asset {asset_id} does not exist")
        metrics.quote_age.observe((self._clock() - quote.as_of).total_seconds())
        if self._is_stale(quote, self._clock()):
            raise Unavailable(
                f"the price of {asset_id} is out of date; try again shortly",
                reason="STALE_QUOTE",
                retry_after_seconds=RETRY_AFTER_SECONDS,
            )
        return quote

    def _valuation_quotes(self, held: Mapping[str, Decimal]) -> dict[str, Quote]:
        """Quotes for every held asset, in one call; valuing (unlike trading) may use an
        older quote, so age is not checked."""
        if not held:
            return {}
        quotes = self._quotes.quotes(sorted(held))
        missing = sorted(set(held) - set(quotes))
        if missing:
            log.error("held assets without a quote", extra={"asset_ids": missing})
            raise Unavailable(
                f"no price for {', '.join(missing)} at the moment",
                reason="QUOTE_MISSING",
                retry_after_seconds=RETRY_AFTER_SECONDS,
            )
        return quotes
