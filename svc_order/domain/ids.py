"""Time and ids: sort keys that order by time, name-based ids, request fingerprints."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MICROSECOND = timedelta(microseconds=1)
# Fixed namespace for name-based (uuid5) ids: the same inputs give the same id everywhere.
_ID_NAMESPACE = uuid.UUID("6f1d3c2e-9b4a-5e8f-a1c7-2d4b6e8f0a13")


def utc(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("datetimes must be timezone-aware")
    return moment.astimezone(UTC)


def sort_key(created_at: datetime, op_id: str) -> str:
    """A key that sorts chronologically as a string: zero-padded epoch µs, then the id.

    The id breaks ties between operations of the same microsecond, so keys are unique.
    """
    micros = (utc(created_at) - _EPOCH) // _ONE_MICROSECOND
    if micros < 0:
        raise ValueError("times before 1970 have no sort key")
    return f"{micros:020d}#{op_id}"


def name_based_id(name: str) -> str:
    return str(uuid.uuid5(_ID_NAMESPACE, name))


def operation_id(user_id: str, idempotency_key: str | None, version: int, fresh_id: str) -> str:
    """The id of an operation: from the idempotency key when there is one, else fresh.

    With a key it is a function of the user, the key and the account version the
    operation creates: two racing requests with one key decide the same id, and a key
    reused after its 24 h window still gets a new id (so it never overwrites an old order).
    """
    if idempotency_key is None:
        return fresh_id
    return name_based_id(f"operation\n{user_id}\n{version}\n{idempotency_key}")


def request_fingerprint(kind: str, fields: Mapping[str, str]) -> str:
    """sha256 of a canonical encoding of a request body (hex).

    Callers pass normalized values (e.g. `format_cash(parse_amount(raw))`), so that
    "100" and "100.00" are the same request.
    """
    canonical = json.dumps(
        {"kind": kind, "fields": dict(fields)},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
    )
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()
