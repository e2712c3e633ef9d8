"""GET /api/v1/stream/prices as Server-Sent Events from svc_inventory's stream."""

from __future__ import annotations

import json
from collections.abc import Callable, Generator, Iterator

import httpx
import pytest

from tests.e2e.conftest import Bridge, Stack, wait_until


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
