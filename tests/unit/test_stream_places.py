"""The bridge's stream places: a limit per client inside the bridge-wide one."""

from __future__ import annotations

import pytest

from rest_bridge.errors import ApiError
from rest_bridge.stream_places import StreamPlaces


def refusal(places: StreamPlaces, client: str) -> ApiError:
    with pytest.raises(ApiError) as refused:
        places.take(client)
    return refused.value


def test_one_client_takes_its_share_and_no_more() -> None:
    places = StreamPlaces(total=4, per_client=2, retry_after=1)
    places.take("ip:a")
    places.take("ip:a")
    error = refusal(places, "ip:a")
    assert (error.status, error.code, error.retry_after) == (429, "TOO_MANY_STREAMS", 1)
    assert "BRIDGE_MAX_STREAMS_PER_CLIENT" in error.detail
    places.take("sub:u")  # another client still gets its places
    places.take("ip:b")
    error = refusal(places, "ip:c")
    assert "BRIDGE_MAX_STREAMS" in error.detail
    assert "PER_CLIENT" not in error.detail
    assert places.open == 4


def test_a_place_is_released_once_however_often_its_release_runs() -> None:
    places = StreamPlaces(total=2, per_client=2, retry_after=0)
    release = places.take("ip:a")
    places.take("ip:a")
    release()
    release()  # a second call (a stream closed twice) gives nothing back twice
    assert (places.open, places.held_by("ip:a")) == (1, 1)
    places.take("ip:a")
    assert refusal(places, "ip:b").status == 429
