"""A refusal of the trading rules names the fields the client sent on that route:
INSUFFICIENT_FUNDS is about `amount` on a withdrawal but about `quantity` (and the
limit `price`) on an order, whose body has no `amount`; likewise ORDER_VALUE_TOO_HIGH."""

from __future__ import annotations

import httpx

from tests.e2e.conftest import sign_up

# Far more than 100.00 buys, far less than the 10,000.00 order cap at BTC's price.
TOO_MUCH_BTC = "0.05"


def _refused(answer: httpx.Response, code: str) -> list[str]:
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["code"] == code, answer.text
    return sorted(violation["field"] for violation in body["violations"])


def test_each_refusal_names_what_the_client_sent(http: httpx.Client) -> None:
    account = sign_up(http)
    deposited = http.post("/api/v1/balance/deposit", json={"amount": "100"}, headers=account.auth)
    assert deposited.status_code == 201, deposited.text

    def order(**body: str) -> httpx.Response:
        return http.post("/api/v1/orders", json={"asset_id": "BTC", **body}, headers=account.auth)

    withdrawal = http.post("/api/v1/balance/withdraw", json={"amount": "500"}, headers=account.auth)
    assert _refused(withdrawal, "INSUFFICIENT_FUNDS") == ["amount"]
    market_buy = order(order_type="market_buy", quantity=TOO_MUCH_BTC)
    assert _refused(market_buy, "INSUFFICIENT_FUNDS") == ["quantity"]
    # A resting limit buy holds quantity × limit: both are the client's.
    limit_buy = order(order_type="limit_buy", quantity="1", price="1000")
    assert _refused(limit_buy, "INSUFFICIENT_FUNDS") == ["price", "quantity"]
    too_large = order(order_type="market_buy", quantity="1000")
    assert _refused(too_large, "ORDER_VALUE_TOO_HIGH") == ["quantity"]
    too_large_at_limit = order(order_type="limit_buy", quantity="1000", price="1000")
    assert _refused(too_large_at_limit, "ORDER_VALUE_TOO_HIGH") == ["price", "quantity"]
