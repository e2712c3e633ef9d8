"""Money invariants of the order domain under random sequences of operations."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal

from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from svc_order import domain
from svc_order.domain import (
    AppliedOperation,
    AssetEntry,
    CashEntry,
    Change,
    IdempotencyConflict,
    Limits,
    MarketQuote,
    OperationKind,
    OrderRequest,
    OrderRuleError,
    OrderType,
    Request,
    TimeInForce,
)

D = Decimal
START = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
LIMITS = Limits()
ASSETS = ("BTC", "ETH", "DOGE")
BOUNDED = settings(max_examples=200, deadline=None)

amounts = st.decimals(min_value=D("0.01"), max_value=D("6000"), places=2)
quantities = st.decimals(min_value=D("0.001"), max_value=D("50"), places=8)
# Quotes carry many decimals, so that most costs fall between two cents.
prices = st.decimals(min_value=D("0.00000001"), max_value=D("100000"), places=12)
limits = st.decimals(min_value=D("0.01"), max_value=D("1000"), places=8)
# A few keys only, so that keys are reused: replays, conflicts and expiries happen.
keys = st.none() | st.sampled_from([f"key-{n}" for n in range(6)])


class TradingAccount(RuleBasedStateMachine):
    """One account driven by random operations, checked against an independent ledger."""

    def __init__(self) -> None:
        super().__init__()
        self.now = START
        self.account = domain.new_account("user-1", START)
        self.applied = 0
        self.cash_entries: list[CashEntry] = []
        self.asset_entries: list[AssetEntry] = []
        self.derived_ids: set[str] = set()
        self.order_ids: set[str] = set()
        self.by_key: dict[str, AppliedOperation] = {}
        # The replay records the store would hold: derived from each applied operation.
        self.replays: dict[str, AppliedOperation] = {}
        self.last_keyed_request: tuple[str, dict[str, str], str, Callable[[str], Change]] | None
        self.last_keyed_request = None

    def submit(
        self, kind: str, fields: dict[str, str], key: str | None, apply: Callable[[str], Change]
    ) -> None:
        """What the service does: replay a seen key, else apply and write derived items."""
        fingerprint = domain.request_fingerprint(kind, fields)
        if key is not None:
            self.last_keyed_request = (kind, fields, key, apply)
        remembered = self.remembered(key)
        try:
            replay = domain.find_replay(self.on_record(key), key, fingerprint, self.now)
        except IdempotencyConflict:
            assert remembered is not None
            assert remembered.fingerprint != fingerprint
            return
        assert replay == remembered
        if replay is not None:
            return
        try:
            change = apply(fingerprint)
        except OrderRuleError:
            return
        self.record(change)
        if key is not None:
            self.by_key[key] = change.operation

    def on_record(self, key: str | None) -> list[AppliedOperation]:
        """What the service reads: the account's last operation, then the key's record."""
        found = [] if self.account.last_operation is None else [self.account.last_operation]
        if key is not None and key in self.replays:
            found.append(self.replays[key])
        return found

    def request(self, key: str | None, fingerprint: str) -> Request:
        return Request(self.now, f"fresh-{self.applied}", key, fingerprint)

    def remembered(self, key: str | None) -> AppliedOperation | None:
        """The model's answer: the key's operation while its 24 h window is open."""
        operation = self.by_key.get(key) if key is not None else None
        if operation is None or self.now - operation.created_at >= domain.IDEMPOTENCY_WINDOW:
            return None
        return operation

    def record(self, change: Change) -> None:
        assert change.account.version == self.account.version + 1
        self.account = change.account
        self.applied += 1
        items = domain.derived_items(change.operation)
        if items.replay is not None and items.replay.idempotency_key is not None:
            self.replays[items.replay.idempotency_key] = items.replay
        new_ids = []
        if items.cash_entry is not None:
            self.cash_entries.append(items.cash_entry)
            new_ids.append(items.cash_entry.transaction_id)
        if items.asset_entry is not None:
            self.asset_entries.append(items.asset_entry)
            new_ids.append(items.asset_entry.transaction_id)
        if items.order is not None:
            # A limit order keeps its id from placement to fill, cancel or expiry.
            if items.order.order_id not in self.order_ids:
                new_ids.append(items.order.order_id)
            self.order_ids.add(items.order.order_id)
        assert self.derived_ids.isdisjoint(new_ids)
        self.derived_ids.update(new_ids)

    @precondition(lambda self: self.last_keyed_request is not None)
    @rule()
    def retry_the_last_keyed_request(self) -> None:
        """A client that lost the answer sends the same request with the same key."""
        assert self.last_keyed_request is not None
        self.submit(*self.last_keyed_request)

    @rule(hours=st.integers(min_value=0, max_value=30), minutes=st.integers(0, 59))
    def let_time_pass(self, hours: int, minutes: int) -> None:
        self.now += timedelta(hours=hours, minutes=minutes)

    @rule(amount=amounts, key=keys)
    def deposit(self, amount: Decimal, key: str | None) -> None:
        self.submit(
            "deposit",
            {"amount": domain.format_cash(amount)},
            key,
            lambda fingerprint: domain.deposit(
                self.account, amount, self.request(key, fingerprint), LIMITS
            ),
        )

    @rule(amount=amounts, key=keys)
    def withdraw(self, amount: Decimal, key: str | None) -> None:
        self.submit(
            "withdraw",
            {"amount": domain.format_cash(amount)},
            key,
            lambda fingerprint: domain.withdraw(
                self.account, amount, self.request(key, fingerprint), LIMITS
            ),
        )

    @rule(asset=st.sampled_from(ASSETS), quantity=quantities, price=prices, key=keys)
    def buy(self, asset: str, quantity: Decimal, price: Decimal, key: str | None) -> None:
        self.submit(
            "order",
            {"order_type": "market_buy", "asset_id": asset, "quantity": str(quantity)},
            key,
            lambda fingerprint: domain.place_order(
                self.account,
                OrderRequest(OrderType.MARKET_BUY, asset, quantity),
                MarketQuote(price),
                self.request(key, fingerprint),
                LIMITS,
            ),
        )

    @precondition(lambda self: bool(self.account.holdings))
    @rule(
        data=st.data(),
        percent=st.integers(min_value=1, max_value=100),
        price=prices,
        key=keys,
    )
    def sell(self, data: st.DataObject, percent: int, price: Decimal, key: str | None) -> None:
        asset = data.draw(st.sampled_from(sorted(self.account.holdings)))
        held = self.account.quantity_of(asset)
        quantity = (held * percent / 100).quantize(domain.QUANTITY_QUANTUM, rounding=ROUND_FLOOR)
        self.submit(
            "order",
            {"order_type": "market_sell", "asset_id": asset, "quantity": str(quantity)},
            key,
            lambda fingerprint: domain.place_order(
                self.account,
                OrderRequest(OrderType.MARKET_SELL, asset, quantity),
                MarketQuote(price),
                self.request(key, fingerprint),
                LIMITS,
            ),
        )

    @rule(
        asset=st.sampled_from(ASSETS),
        side=st.sampled_from([OrderType.LIMIT_BUY, OrderType.LIMIT_SELL]),
        quantity=st.decimals(min_value=D("0.001"), max_value=D("5"), places=8),
        limit=limits,
        # Around the limit, so that orders both rest and cross at once.
        move=st.decimals(min_value=D("0.9"), max_value=D("1.1"), places=3),
        tif=st.sampled_from(TimeInForce),
        key=keys,
    )
    def place_limit(
        self,
        asset: str,
        side: OrderType,
        quantity: Decimal,
        limit: Decimal,
        move: Decimal,
        tif: TimeInForce,
        key: str | None,
    ) -> None:
        quote = limit * move
        expires_at = self.now + timedelta(hours=5) if tif is TimeInForce.GTD else None
        order = OrderRequest(side, asset, quantity, limit, tif, expires_at)
        self.submit(
            "order",
            {
                "order_type": side.value,
                "asset_id": asset,
                "quantity": str(quantity),
                "price": str(limit),
                "time_in_force": tif.value,
            },
            key,
            lambda fingerprint: domain.place_order(
                self.account, order, MarketQuote(quote), self.request(key, fingerprint), LIMITS
            ),
        )

    @precondition(lambda self: bool(self.account.open_orders))
    @rule(data=st.data(), quote=prices)
    def a_tick_reaches_a_resting_order(self, data: st.DataObject, quote: Decimal) -> None:
        order_id = data.draw(st.sampled_from(sorted(self.account.open_orders)))
        resting = self.account.open_orders[order_id]
        # Half the ticks cross the limit, so that fills happen.
        if data.draw(st.booleans()):
            quote = resting.limit_price
        change = domain.fill_order(
            self.account, order_id, MarketQuote(quote), self.request(None, ""), LIMITS
        )
        if change is None:
            assert not resting.crossed_by(quote) or resting.is_due(self.now)
            return
        self.record(change)

    @precondition(lambda self: bool(self.account.open_orders))
    @rule(data=st.data())
    def cancel_a_resting_order(self, data: st.DataObject) -> None:
        order_id = data.draw(st.sampled_from(sorted(self.account.open_orders)))
        self.record(domain.cancel_order(self.account, order_id, self.request(None, "")))

    @precondition(lambda self: bool(self.account.open_orders))
    @rule()
    def the_sweep_expires_what_is_due(self) -> None:
        for order_id in sorted(self.account.open_orders):
            change = domain.expire_order(self.account, order_id, self.request(None, ""))
            if change is not None:
                self.record(change)

    @invariant()
    def nothing_is_negative(self) -> None:
        assert self.account.cash >= 0
        assert self.account.available_cash >= 0
        assert all(holding.quantity > 0 for holding in self.account.holdings.values())
        assert all(self.account.available_units(asset) >= 0 for asset in ASSETS)

    @invariant()
    def cash_equals_the_ledger(self) -> None:
        # cash is the total: available + held.
        held = sum((o.held_cash for o in self.account.open_orders.values()), D("0.00"))
        assert self.account.held_cash == held
        assert self.account.available_cash + held == domain.ledger_balance(self.cash_entries)

    @invariant()
    def holdings_equal_bought_minus_sold(self) -> None:
        expected: defaultdict[str, Decimal] = defaultdict(Decimal)
        for entry in self.asset_entries:
            sign = 1 if entry.transaction_type is OperationKind.BUY else -1
            expected[entry.asset_id] += sign * entry.quantity
        held = {asset: quantity for asset, quantity in expected.items() if quantity != 0}
        assert held == {
            asset: self.account.available_units(asset) + self.account.held_units(asset)
            for asset in self.account.holdings
        }

    @invariant()
    def every_applied_operation_is_counted_once(self) -> None:
        assert self.account.version == self.applied

    @invariant()
    def daily_limits_hold(self) -> None:
        assert self.account.deposited_today <= LIMITS.daily_deposit_limit
        assert self.account.withdrawn_today <= LIMITS.daily_withdraw_limit

    @invariant()
    def every_keyed_operation_has_its_replay_record(self) -> None:
        assert self.replays == self.by_key


TestTradingAccount = TradingAccount.TestCase
TestTradingAccount.settings = settings(BOUNDED, stateful_step_count=40)


@BOUNDED
@given(quantity=quantities, price=prices)
def test_a_buy_and_a_sale_of_the_same_quantity_never_create_money(
    quantity: Decimal, price: Decimal
) -> None:
    # Only affordable buys: the property is about rounding, not about refusals.
    assume(domain.buy_cost(quantity, price) <= D("1000000"))
    limits = Limits(max_order_value=D("10000000"))
    start = domain.deposit(
        domain.new_account("user-1", START),
        D("1000000"),
        Request(START, "fund"),
        Limits(D("1000000")),
    ).account
    bought = domain.place_order(
        start,
        OrderRequest(OrderType.MARKET_BUY, "BTC", quantity),
        MarketQuote(price),
        Request(START, "buy"),
        limits,
    ).account
    sold = domain.place_order(
        bought,
        OrderRequest(OrderType.MARKET_SELL, "BTC", quantity),
        MarketQuote(price),
        Request(START, "sell"),
        limits,
    ).account
    assert sold.cash <= start.cash
    assert start.cash - sold.cash <= D("0.01")
    assert sold.holdings == {}


@BOUNDED
@given(quantity=quantities, price=prices)
def test_rounding_brackets_the_exact_value_within_a_cent(quantity: Decimal, price: Decimal) -> None:
    exact = domain.notional(quantity, price)
    cost = domain.buy_cost(quantity, price)
    proceeds = domain.sell_proceeds(quantity, price)
    assert proceeds <= exact <= cost
    assert cost - proceeds <= domain.CENT
    assert cost - exact < domain.CENT
    assert exact - proceeds < domain.CENT


@BOUNDED
@given(amount=st.decimals(min_value=D("0.01"), max_value=domain.MAX_AMOUNT, places=2))
def test_formatted_amounts_parse_back_to_themselves(amount: Decimal) -> None:
    text = domain.format_cash(amount)
    assert domain.parse_amount(text) == amount
    assert domain.format_cash(domain.parse_amount(text)) == text


@BOUNDED
@given(quantity=quantities)
def test_formatted_quantities_parse_back_to_themselves(quantity: Decimal) -> None:
    text = domain.format_quantity(quantity)
    assert domain.parse_quantity(text) == quantity
    assert len(text.partition(".")[2]) == domain.QUANTITY_PLACES


@BOUNDED
@given(
    cash=st.decimals(min_value=D("0"), max_value=D("100000"), places=2),
    holdings=st.dictionaries(st.sampled_from(ASSETS), quantities),
    price=prices,
)
def test_portfolio_totals_add_up(
    cash: Decimal, holdings: dict[str, Decimal], price: Decimal
) -> None:
    portfolio = domain.value_portfolio(cash, holdings, dict.fromkeys(ASSETS, price))
    values = [line.market_value for line in portfolio.assets]
    assert portfolio.total_asset_value == sum(values, D(0))
    assert portfolio.total_value == cash + portfolio.total_asset_value
    for line in portfolio.assets:
        assert line.market_value <= domain.notional(line.quantity, line.current_price)
        assert D(0) <= line.percentage <= D(100)
