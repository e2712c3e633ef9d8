"""The DynamoDB toolkit every store shares: the client, its time budget, one table type.

Every table uses a string partition key `pk` and sort key `sk` (single-table design
inside each service). Only features every DynamoDB-compatible engine has are used.

What the stores get from here, written once:
- `Table.query`: the one paginated, key-ordered query (never a Scan);
- `Table.put_if` / `update_if` / `delete_if`: the one conditional write; a lost
  condition is `False`, everywhere, never an exception to catch;
- `encode_time` / `decode_time`: the one time encoding (fixed-width ISO 8601 UTC with
  microseconds, so comparing strings compares times);
- the fault rule of DESIGN.md: an engine that cannot be reached, refuses connections,
  throttles or does not answer within its budget raises `StoreUnavailable` (UNAVAILABLE,
  503 with Retry-After at the edge), never INTERNAL.

Time budget. botocore's own retries are off; each call here gets at most
`StoreBudget.total_seconds`, cut to the caller's remaining deadline
(`common.context.time_remaining`). A call whose caller has less than
`StoreBudget.min_attempt_seconds` left sends nothing and raises `DeadlineExceeded` at
once (no answer could come back in time; a write started then would only leave its
outcome unknown). An attempt lasts at most the connect plus the read timeout; a retry
starts only when a whole attempt still fits in the budget, so retries never outlive
the deadline. Reads and unconditional (idempotent) writes are retried after any
transient failure; a conditional write only when the engine surely did not apply it
(no connection, or throttled): after a timeout or a dropped connection its outcome is
unknown, so it is reported, not repeated.

Attempts, across every layer. One store call sends at most `max_attempts` requests
(STORE_MAX_ATTEMPTS). The layers above do not multiply them: a service's
STORE_UNAVAILABLE, like every status a service chooses, carries the no-retry pushback
(`common.grpc_errors.NO_RETRY`), so a channel that retries UNAVAILABLE (the bridge's,
svc_user's to svc_order, gRPC's `maxAttempts` 3) tries that RPC once, and a store call
that fails ends its RPC (only undoing work follows it: a registration releases its
claims). So one client request costs a failing store at most STORE_MAX_ATTEMPTS
requests per store call of its RPC (tests/integration/test_store_attempts.py counts
them on a killed and on a stopped dynalite).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as NotConnected

from common.context import time_remaining
from common.errors import DeadlineExceeded, Unavailable
from common.metrics import count_store_calls
from common.settings import CommonSettings

log = logging.getLogger(__name__)

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()

Item = dict[str, Any]
# An item as the engine stores it, in DynamoDB's attribute-value form ({"S": "..."}):
# what tools that copy items exactly (the backup) read and write.
Attributes = dict[str, Any]

# Seconds a client should wait before trying again after a store failure.
STORE_RETRY_AFTER_SECONDS = 1
# DynamoDB's limits per BatchWriteItem and BatchGetItem.
_BATCH_WRITE_LIMIT = 25
_BATCH_GET_LIMIT = 100
# Unprocessed batch entries (throttling) are sent again this many times.
_BATCH_ROUNDS = 8
_BACKOFF_BASE_SECONDS = 0.02
_CONDITION_FAILED = "ConditionalCheckFailedException"
# Refusals that leave nothing applied: trying again later is safe.
_THROTTLED = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "LimitExceededException",
    }
)
# Any key works for a health probe: a missing item is an answer too.
_PROBE_KEY = {"pk": {"S": "HEALTH"}, "sk": {"S": "PROBE"}}


class StoreUnavailable(Unavailable):
    """The engine could not be reached, refused, throttled or did not answer in time."""

    reason = "STORE_UNAVAILABLE"

    def __init__(self, message: str = "the data store is unavailable; try again shortly") -> None:
        super().__init__(message, retry_after_seconds=STORE_RETRY_AFTER_SECONDS)


@dataclass(frozen=True)
class StoreBudget:
    """Time one store call may take, in seconds, and how often it is tried.

    The defaults answer a stalled engine with UNAVAILABLE after about 1 s (one read
    timeout) and an engine that refuses connections within about 0.1 s (three quick
    tries), well inside the 5 s a client waits by default.
    """

    connect_timeout_seconds: float = 0.25
    read_timeout_seconds: float = 1.0
    total_seconds: float = 2.0
    max_attempts: int = 3
    # Least time left to the caller for which a first attempt is sent: a single-item
    # request takes a few ms on loopback and in-region DynamoDB. Below the bridge's
    # tolerance for telling its client's deadline from a spent budget
    # (rest_bridge/calls.py), so a DEADLINE_EXCEEDED answered for this reason at the
    # client's deadline stays the client's 504.
    min_attempt_seconds: float = 0.02

    def __post_init__(self) -> None:
        if min(self.connect_timeout_seconds, self.read_timeout_seconds) <= 0:
            raise ValueError("store timeouts must be positive")
        if self.min_attempt_seconds < 0:
            raise ValueError("min_attempt_seconds cannot be negative")
        if self.total_seconds < self.read_timeout_seconds or self.max_attempts < 1:
            raise ValueError("a store budget must fit at least one attempt")

    @property
    def attempt_seconds(self) -> float:
        return self.connect_timeout_seconds + self.read_timeout_seconds


def make_client(
    endpoint: str | None,
    region: str,
    max_connections: int = 50,
    budget: StoreBudget | None = None,
    *,
    validate_parameters: bool = True,
) -> Any:
    """A DynamoDB client.

    With a budget (the services', through `open_table`): the budget's timeouts and no
    retries of botocore's own, since `Table` retries within the budget. Without one
    (operators' tools and tests that call the client directly): botocore's standard
    retries and patient timeouts.

    `validate_parameters=False` skips botocore's check of every request against the
    API model before it is sent (about 5 % of a service's Python CPU per store call,
    issue #13). Safe where `Table` builds every request: the engine validates each
    request itself and refuses a bad one with a `ValidationException` (a ClientError,
    as before). Tools and tests that hand-write requests keep the check.
    """
    if budget is None:
        config = Config(
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=2,
            read_timeout=10,
            max_pool_connections=max_connections,
            parameter_validation=validate_parameters,
        )
    else:
        config = Config(
            retries={"total_max_attempts": 1},
            connect_timeout=budget.connect_timeout_seconds,
            read_timeout=budget.read_timeout_seconds,
            max_pool_connections=max_connections,
            parameter_validation=validate_parameters,
        )
    client = boto3.client("dynamodb", endpoint_url=endpoint, region_name=region, config=config)
    return count_store_calls(client)


def open_table(settings: CommonSettings, table: str) -> Table:
    """The service's table (`table` before the prefix) through a client of its own,
    with one pooled connection per RPC thread and the configured budget."""
    budget = StoreBudget(
        connect_timeout_seconds=settings.store_connect_timeout_seconds,
        read_timeout_seconds=settings.store_read_timeout_seconds,
        total_seconds=settings.store_budget_seconds,
        max_attempts=settings.store_max_attempts,
    )
    client = make_client(
        settings.dynamodb_endpoint,
        settings.aws_region,
        settings.grpc_max_workers,
        budget,
        validate_parameters=False,
    )
    return Table(client, settings.table_prefix + table, budget)


# --- Values -----------------------------------------------------------------------------


def to_attributes(item: Mapping[str, Any]) -> dict[str, Any]:
    """Python values as DynamoDB attributes; None is left out (the attribute is absent)."""
    return {k: _serializer.serialize(v) for k, v in item.items() if v is not None}


def from_attributes(attributes: Mapping[str, Any]) -> Item:
    return {k: _plain(_deserializer.deserialize(v)) for k, v in attributes.items()}


def _plain(value: Any) -> Any:
    # Numbers come back as Decimal; integral ones are meant as ints (versions, counts).
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return int(value)
    return value


def encode_time(moment: datetime) -> str:
    """A timezone-aware time as fixed-width ISO 8601 UTC with microseconds:
    "2026-12-01T00:40:00.000000+00:00". Equal widths make string order time order."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("times must be timezone-aware")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def decode_time(stored: str | int) -> datetime:
    """What `encode_time` wrote; whole epoch seconds (written by earlier releases) too."""
    if isinstance(stored, int):
        return datetime.fromtimestamp(stored, UTC)
    return datetime.fromisoformat(stored).astimezone(UTC)


# --- Tables -----------------------------------------------------------------------------


def ensure_table(client: Any, name: str, timeout_seconds: float = 30.0) -> None:
    """Create the table when missing and wait until it is ACTIVE."""
    try:
        client.create_table(
            TableName=name,
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        log.info("created table", extra={"table": name})
    except client.exceptions.ResourceInUseException:
        pass
    deadline = time.monotonic() + timeout_seconds
    while True:
        status = client.describe_table(TableName=name)["Table"]["TableStatus"]
        if status == "ACTIVE":
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"table {name} is still {status}")
        time.sleep(0.05)


def _key_condition(
    pk: str, prefix: str | None, at_least: str | None = None, below: str | None = None
) -> dict[str, Any]:
    """The key condition of a query: the partition, and at most one bound on `sk`."""
    bounds = {
        "begins_with(sk, :bound)": prefix or None,
        "sk >= :bound": at_least,
        "sk < :bound": below,
    }
    given = {condition: value for condition, value in bounds.items() if value is not None}
    if len(given) > 1:
        raise ValueError("a query takes one condition on the sort key")
    # No condition on an empty value: engines refuse an empty key value.
    if not given:
        return {
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": to_attributes({":pk": pk}),
        }
    [(condition, value)] = given.items()
    return {
        "KeyConditionExpression": f"pk = :pk AND {condition}",
        "ExpressionAttributeValues": to_attributes({":pk": pk, ":bound": value}),
    }


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _is_server_error(error: ClientError) -> bool:
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return isinstance(status, int) and status >= 500


class Table:
    """One table of one service, through one client, within one `StoreBudget`.

    Keys and items are plain Python mappings (`to_attributes` turns them into the wire
    form); every call may raise `StoreUnavailable`, and `DeadlineExceeded` when the
    caller's deadline leaves no time for it.
    """

    def __init__(self, client: Any, name: str, budget: StoreBudget | None = None) -> None:
        self.client = client
        self.name = name
        self._budget = budget or StoreBudget()
        self._jitter = random.SystemRandom()

    # The one way to call the engine ------------------------------------------------

    def _call(
        self, operation: str, request: dict[str, Any], *, repeatable: bool, named: bool = True
    ) -> Any:
        """The engine's answer to one request, tried again within the budget.

        `repeatable`: applying the request twice does the same as once (reads, plain
        puts); otherwise only failures that applied nothing are retried.
        """
        budget_end = time.monotonic() + self._budget.total_seconds
        remaining = time_remaining()
        if remaining is not None:
            if remaining < self._budget.min_attempt_seconds:
                # Nothing is sent: the answer could not arrive before the caller gives up.
                raise DeadlineExceeded(
                    "the request's deadline leaves no time to ask the data store"
                )
            budget_end = min(budget_end, time.monotonic() + remaining)
        send = getattr(self.client, operation)
        if named:
            request = {"TableName": self.name, **request}
        for attempt in range(1, self._budget.max_attempts + 1):
            try:
                return send(**request)
            except ClientError as error:
                code = _error_code(error)
                if code == _CONDITION_FAILED:
                    raise
                if code not in _THROTTLED and not _is_server_error(error):
                    raise
                # A server error may come after the write was applied.
                if code not in _THROTTLED and not repeatable:
                    raise self._unavailable(operation, error) from error
                failure: Exception = error
            except NotConnected as error:
                # No connection was made: the engine never saw the request.
                failure = error
            except HTTPClientError as error:
                # Timed out or dropped mid-request: the outcome is unknown.
                if not repeatable:
                    raise self._unavailable(operation, error) from error
                failure = error
            pause = self._jitter.uniform(0, _BACKOFF_BASE_SECONDS * 2**attempt)
            if time.monotonic() + pause + self._budget.attempt_seconds > budget_end:
                break
            time.sleep(pause)
        raise self._unavailable(operation, failure) from failure

    def _unavailable(self, operation: str, failure: Exception) -> StoreUnavailable:
        log.warning(
            "store call failed",
            extra={"operation": operation, "table": self.name, "error": repr(failure)},
        )
        return StoreUnavailable()

    # Reads -----------------------------------------------------------------------------

    def get(self, key: Mapping[str, Any], *, projection: str | None = None) -> Item | None:
        """The item with this key (strongly consistent), or None."""
        request: dict[str, Any] = {"Key": to_attributes(key), "ConsistentRead": True}
        if projection is not None:
            request["ProjectionExpression"] = projection
        found = self._call("get_item", request, repeatable=True).get("Item")
        return from_attributes(found) if found else None

    def get_many(
        self, keys: Sequence[Mapping[str, Any]], *, projection: str | None = None
    ) -> list[Item]:
        """The items among `keys` that exist (strongly consistent), in no set order."""
        found: list[Item] = []
        for start in range(0, len(keys), _BATCH_GET_LIMIT):
            chunk = [to_attributes(key) for key in keys[start : start + _BATCH_GET_LIMIT]]
            wanted: dict[str, Any] = {"Keys": chunk, "ConsistentRead": True}
            if projection is not None:
                wanted["ProjectionExpression"] = projection
            pending: dict[str, Any] = {self.name: wanted}
            for attempt in range(_BATCH_ROUNDS):
                response = self._call_batch("batch_get_item", pending)
                found.extend(
                    from_attributes(i) for i in response.get("Responses", {}).get(self.name, [])
                )
                pending = response.get("UnprocessedKeys") or {}
                if not pending:
                    break
                time.sleep(_BACKOFF_BASE_SECONDS * 2**attempt)
            else:
                raise StoreUnavailable()
        return found

    def query(
        self,
        pk: str,
        prefix: str | None = None,
        *,
        at_least: str | None = None,
        below: str | None = None,
        newest_first: bool = False,
        after_sk: str | None = None,
        page_size: int | None = None,
    ) -> Iterator[Item]:
        """Items of partition `pk` whose sort key starts with `prefix`, or is at least
        `at_least`, or is below `below` (one of them, or none), in key order (descending
        when `newest_first`), starting after `after_sk`; pages of `page_size` are
        fetched as the iterator is consumed."""
        request: dict[str, Any] = {
            **_key_condition(pk, prefix, at_least, below),
            "ScanIndexForward": not newest_first,
            "ConsistentRead": True,
        }
        if page_size is not None:
            request["Limit"] = page_size
        if after_sk is not None:
            request["ExclusiveStartKey"] = to_attributes({"pk": pk, "sk": after_sk})
        for response in self._pages("query", request):
            for found in response["Items"]:
                yield from_attributes(found)

    def count(self, pk: str, prefix: str | None = None) -> int:
        """How many items `query(pk, prefix)` would give, without reading them."""
        request: dict[str, Any] = {
            **_key_condition(pk, prefix),
            "ConsistentRead": True,
            "Select": "COUNT",
        }
        return sum(int(response["Count"]) for response in self._pages("query", request))

    def scan(self, *, projection: str | None = None) -> Iterator[Item]:
        """Every item of the table, page by page: for operators' tools only (the audit);
        requests never scan."""
        request: dict[str, Any] = {"ConsistentRead": True}
        if projection is not None:
            request["ProjectionExpression"] = projection
        for response in self._pages("scan", request):
            for found in response["Items"]:
                yield from_attributes(found)

    def scan_attributes(self, *, page_size: int | None = None) -> Iterator[list[Attributes]]:
        """Every item of the table as stored (attribute-value form), one list per page of
        at most `page_size` items (engines also cut pages at 1 MB): for operators' tools
        that copy items exactly (the backup)."""
        request: dict[str, Any] = {"ConsistentRead": True}
        if page_size is not None:
            request["Limit"] = page_size
        for response in self._pages("scan", request):
            yield list(response["Items"])

    def query_attributes(self, pk: str) -> list[Attributes]:
        """Every item of partition `pk` as stored (attribute-value form), in key order."""
        request = {**_key_condition(pk, None), "ConsistentRead": True}
        return [found for response in self._pages("query", request) for found in response["Items"]]

    def is_empty(self) -> bool:
        """Whether the table holds no item at all."""
        first = self._call("scan", {"Limit": 1, "ConsistentRead": True}, repeatable=True)
        return not first["Items"]

    def estimated_item_count(self) -> int | None:
        """The engine's estimate of the table's item count (AWS updates it every few
        hours); None when the table does not exist."""
        try:
            described = self._call("describe_table", {}, repeatable=True)
        except ClientError as error:
            if _error_code(error) == "ResourceNotFoundException":
                return None
            raise
        return int(described["Table"].get("ItemCount", 0))

    def _pages(self, operation: str, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """The engine's answers to a query or scan, page after page: the one paging loop."""
        request = dict(request)
        while True:
            response = self._call(operation, request, repeatable=True)
            yield response
            if "LastEvaluatedKey" not in response:
                return
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def probe(self) -> None:
        """One cheap read; raises StoreUnavailable when the engine does not answer."""
        self._call("get_item", {"Key": _PROBE_KEY}, repeatable=True)

    # Writes ----------------------------------------------------------------------------

    def put(self, item: Mapping[str, Any]) -> None:
        """Writes the item whatever is there: for items whose content is a function of
        their key, so that writing them twice is harmless."""
        self._call("put_item", {"Item": to_attributes(item)}, repeatable=True)

    def put_many(self, items: Sequence[Mapping[str, Any]]) -> None:
        """`put` for several items in as few calls as the engine allows (not atomic:
        after a failure some may be written, and writing them all again is harmless)."""
        self.put_many_attributes([to_attributes(item) for item in items])

    def put_many_attributes(self, items: Sequence[Attributes]) -> None:
        """`put_many` of items already in attribute-value form (a restore's)."""
        self._write_many([{"PutRequest": {"Item": item}} for item in items])

    def delete_many(self, keys: Sequence[Mapping[str, Any]]) -> None:
        """Deletes the items with these keys (those missing are no matter), batched."""
        self._write_many([{"DeleteRequest": {"Key": to_attributes(key)}} for key in keys])

    def _write_many(self, requests: list[dict[str, Any]]) -> None:
        for start in range(0, len(requests), _BATCH_WRITE_LIMIT):
            pending: dict[str, Any] = {self.name: requests[start : start + _BATCH_WRITE_LIMIT]}
            for attempt in range(_BATCH_ROUNDS):
                pending = self._call_batch("batch_write_item", pending).get("UnprocessedItems")
                if not pending:
                    break
                time.sleep(_BACKOFF_BASE_SECONDS * 2**attempt)
            else:
                raise StoreUnavailable()

    def put_if(
        self, item: Mapping[str, Any], condition: str, values: Mapping[str, Any] | None = None
    ) -> bool:
        """Writes the item if `condition` holds; False when it did not (nothing written)."""
        return self._conditional("put_item", {"Item": to_attributes(item)}, condition, values or {})

    def update_if(
        self,
        key: Mapping[str, Any],
        update: str,
        condition: str,
        values: Mapping[str, Any],
    ) -> bool:
        """Applies `update` to the item if `condition` holds; False when it did not."""
        return self._conditional(
            "update_item",
            {"Key": to_attributes(key), "UpdateExpression": update},
            condition,
            values,
        )

    def delete_if(
        self, key: Mapping[str, Any], condition: str, values: Mapping[str, Any] | None = None
    ) -> bool:
        """Deletes the item if `condition` holds; False when it did not."""
        return self._conditional(
            "delete_item", {"Key": to_attributes(key)}, condition, values or {}
        )

    def _conditional(
        self,
        operation: str,
        request: dict[str, Any],
        condition: str,
        values: Mapping[str, Any],
    ) -> bool:
        request = {**request, "ConditionExpression": condition}
        if values:
            request["ExpressionAttributeValues"] = to_attributes(values)
        try:
            self._call(operation, request, repeatable=False)
        except ClientError as error:
            if _error_code(error) == _CONDITION_FAILED:
                return False
            raise
        return True

    def _call_batch(self, operation: str, request_items: dict[str, Any]) -> Any:
        # Batch entries are plain gets and puts: repeatable. They name their table inside.
        return self._call(operation, {"RequestItems": request_items}, repeatable=True, named=False)
