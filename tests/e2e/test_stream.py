"""GET /api/v1/stream/prices as Server-Sent Events from svc_inventory's stream."""

from __future__ import annotations

import json
from collections.abc import Callable, Generator, Iterator
from contextlib import ExitStack

import httpx
import pytest

from tests.e2e.conftest import Account, Bridge, Stack, wait_until


def read_events(lines: Iterator[str], count: int) -> list[tuple[str, dict[str, object]]]:
    """The next events of a stream. Give the same iterator each time: closing one
    (which a for loop that breaks does) closes the connection."""
    events: list[tuple[str, dict[str, object]]] = []
    name = ""
    for line in lines:
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: "):
            events.append((name, json.loads(line.removeprefix("data: "))))
            if len(events) == count:
                break
    return events


def test_prices_arrive_as_events(http: httpx.Client) -> None:
    with http.stream("GET", "/api/v1/stream/prices?symbols=btc,eth") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["X-Request-ID"]
        events = read_events(response.iter_lines(), 4)
    assert {name for name, _ in events} == {"price"}
    for _, data in events:
        quote = data["quote"]
        assert isinstance(quote, dict)
        assert quote["asset_id"] in {"BTC", "ETH"}
        assert isinstance(quote["price"], str)
        assert "price_change_percentage_24h" in data


def test_a_client_that_leaves_cancels_the_grpc_stream(http: httpx.Client, stack: Stack) -> None:
    def subscribers() -> int:
        return int(stack.inventory.streams.subscriber_count)

    before = subscribers()
    with http.stream("GET", "/api/v1/stream/prices") as response:
        lines: Generator[str] = response.iter_lines()  # type: ignore[assignment]
        read_events(lines, 2)
        assert subscribers() == before + 1
        lines.close()
    wait_until(lambda: subscribers() == before, "the gRPC stream ends with the client", 10)


@pytest.mark.parametrize(
    ("query", "named"),
    [("symbols=NOPE", "NOPE"), ("symbols=btc,nope,ZZZ", "NOPE, ZZZ"), ("symbols=bad-symbol", "")],
)
def test_a_bad_or_unknown_symbol_is_an_http_error_not_a_stream(
    http: httpx.Client, query: str, named: str
) -> None:
    response = http.get(f"/api/v1/stream/prices?{query}")
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/json"
    [violation] = response.json()["violations"]
    assert violation["field"] == "symbols"
    assert named in violation["description"]


def test_streams_past_the_bridge_limit_are_429(start_bridge: Callable[..., Bridge]) -> None:
    bridge = start_bridge(bridge_max_streams=1)
    with bridge.client() as client, client.stream("GET", "/api/v1/stream/prices") as first:
        lines = first.iter_lines()
        read_events(lines, 1)
        second = client.get("/api/v1/stream/prices")
        read_events(lines, 1)  # the first stream goes on
    assert second.status_code == 429
    assert second.json()["code"] == "TOO_MANY_STREAMS"


def test_head_of_a_stream_answers_its_headers_and_frees_its_place(
    start_bridge: Callable[..., Bridge],
) -> None:
    # HEAD is GET without a body: for a stream, the headers and an empty body at once,
    # never an endless answer that holds one of the bridge's stream places.
    bridge = start_bridge(bridge_max_streams=1)
    with bridge.client() as client:
        heads = [client.head("/api/v1/stream/prices?symbols=btc") for _ in range(3)]
        with client.stream("GET", "/api/v1/stream/prices?symbols=btc") as stream:
            assert stream.status_code == 200
            assert read_events(stream.iter_lines(), 1)[0][0] == "price"
    assert [head.status_code for head in heads] == [200, 200, 200]
    assert all(head.headers["content-type"].startswith("text/event-stream") for head in heads)
    assert all(head.content == b"" for head in heads)


PRICES = "/api/v1/stream/prices?symbols=btc"
ORDERS = "/api/v1/stream/orders"


def _open(streams: ExitStack, client: httpx.Client, path: str, **kwargs: object) -> httpx.Response:
    """A stream that stays open until `streams` closes; its first event is read when it
    was accepted, so its place is surely held."""
    response = streams.enter_context(client.stream("GET", path, **kwargs))  # type: ignore[arg-type]
    if response.status_code == 200:
        lines: Generator[str] = response.iter_lines()  # type: ignore[assignment]
        streams.callback(lines.close)  # held (not collected, which would close it) till then
        assert read_events(lines, 1)
    else:
        response.read()
    return response


def _refused_by(response: httpx.Response, setting: str) -> None:
    assert response.status_code == 429, response.text
    assert response.json()["code"] == "TOO_MANY_STREAMS"
    assert setting in response.json()["detail"]
    assert response.headers["Retry-After"] == "1"


def test_one_address_cannot_take_every_stream_place(
    start_bridge: Callable[..., Bridge], account: Account
) -> None:
    # The reported case: anonymous price streams from one address used to take all of
    # BRIDGE_MAX_STREAMS, and a signed-in user's order stream got 429.
    bridge = start_bridge(bridge_max_streams=4, bridge_max_streams_per_client=2)
    with bridge.client() as client, ExitStack() as streams:
        anonymous = [_open(streams, client, PRICES) for _ in range(3)]
        assert [r.status_code for r in anonymous[:2]] == [200, 200]
        _refused_by(anonymous[2], "BRIDGE_MAX_STREAMS_PER_CLIENT")
        assert _open(streams, client, ORDERS, headers=account.auth).status_code == 200
        # The user's own share is the user's, whatever kind of stream it holds.
        assert _open(streams, client, PRICES, headers=account.auth).status_code == 200
        _refused_by(_open(streams, client, ORDERS, headers=account.auth), "PER_CLIENT")


def test_a_client_address_behind_a_trusted_proxy_has_a_share_of_its_own(
    start_bridge: Callable[..., Bridge],
) -> None:
    bridge = start_bridge(
        bridge_max_streams=3, bridge_max_streams_per_client=2, trusted_proxies="127.0.0.1"
    )
    behind = {"X-Forwarded-For": "198.51.100.7"}
    with bridge.client() as client, ExitStack() as streams:
        assert _open(streams, client, PRICES).status_code == 200
        assert _open(streams, client, PRICES).status_code == 200
        _refused_by(_open(streams, client, PRICES), "BRIDGE_MAX_STREAMS_PER_CLIENT")
        assert _open(streams, client, PRICES, headers=behind).status_code == 200
        # The bridge-wide limit stays: 3 places, all held.
        other = {"X-Forwarded-For": "198.51.100.8"}
        refused = _open(streams, client, PRICES, headers=other)
        _refused_by(refused, "BRIDGE_MAX_STREAMS")
        assert "PER_CLIENT" not in refused.json()["detail"]


def test_a_forged_token_does_not_buy_a_share_of_its_own(
    start_bridge: Callable[..., Bridge],
) -> None:
    # A token whose signature the bridge cannot verify names no user: its stream counts
    # against the address, however many different tokens the client makes up.
    bridge = start_bridge(bridge_max_streams=8, bridge_max_streams_per_client=2)
    with bridge.client() as client, ExitStack() as streams:
        answers = [
            _open(streams, client, PRICES, headers={"Authorization": f"Bearer forged.token.{n}"})
            for n in range(3)
        ]
    assert [r.status_code for r in answers[:2]] == [200, 200]
    _refused_by(answers[2], "BRIDGE_MAX_STREAMS_PER_CLIENT")


def test_a_closed_stream_gives_its_place_back(start_bridge: Callable[..., Bridge]) -> None:
    bridge = start_bridge(bridge_max_streams=8, bridge_max_streams_per_client=1)
    with bridge.client() as client:

        def opened_and_closed() -> bool:
            with ExitStack() as streams:
                return _open(streams, client, PRICES).status_code == 200

        for _ in range(3):  # one place, taken and given back each time
            wait_until(opened_and_closed, "the closed stream's place is free again", 10)
