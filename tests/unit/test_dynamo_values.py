"""The DynamoDB toolkit's pure parts (common/dynamo.py): a store budget that cannot fit
an attempt is refused at start; times are stored as fixed-width UTC text whose order is
their order, and epoch seconds written by earlier releases still read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from common.dynamo import StoreBudget, decode_time, encode_time, from_attributes, to_attributes


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"connect_timeout_seconds": 0}, "timeouts must be positive"),
        ({"read_timeout_seconds": -1}, "timeouts must be positive"),
        ({"min_attempt_seconds": -0.1}, "cannot be negative"),
        ({"read_timeout_seconds": 3, "total_seconds": 2}, "at least one attempt"),
        ({"max_attempts": 0}, "at least one attempt"),
    ],
)
def test_a_budget_that_fits_no_attempt_is_refused(settings: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        StoreBudget(**settings)  # type: ignore[arg-type]


def test_an_attempt_takes_the_connect_and_the_read_timeout() -> None:
    assert StoreBudget(connect_timeout_seconds=0.5, read_timeout_seconds=1.5).attempt_seconds == 2


def test_times_are_stored_as_fixed_width_utc_and_read_back_equal() -> None:
    paris = timezone(timedelta(hours=1))
    moments = [
        datetime(2026, 12, 1, 0, 40, tzinfo=UTC),
        datetime(2026, 12, 1, 1, 39, 59, 999_999, tzinfo=paris),
        datetime(2026, 12, 1, 0, 40, 0, 1, tzinfo=UTC),
    ]
    stored = [encode_time(moment) for moment in moments]
    assert stored[0] == "2026-12-01T00:40:00.000000+00:00"
    assert stored[1] == "2026-12-01T00:39:59.999999+00:00"
    assert len(set(map(len, stored))) == 1
    # Text order is time order.
    assert sorted(stored) == [stored[1], stored[0], stored[2]]
    assert [decode_time(text) for text in stored] == moments


def test_a_time_without_a_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        encode_time(datetime(2026, 12, 1, 0, 40))


def test_epoch_seconds_of_earlier_releases_read_as_utc_times() -> None:
    assert decode_time(1_764_549_600) == datetime(2025, 12, 1, 0, 40, tzinfo=UTC)


def test_absent_values_are_left_out_and_whole_numbers_come_back_as_ints() -> None:
    attributes = to_attributes({"pk": "A", "phone": None, "version": 3, "cash": Decimal("1.50")})
    assert set(attributes) == {"pk", "version", "cash"}
    back = from_attributes(attributes)
    assert back == {"pk": "A", "version": 3, "cash": Decimal("1.50")}
    assert type(back["version"]) is int
