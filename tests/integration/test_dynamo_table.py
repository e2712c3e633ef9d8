"""The DynamoDB toolkit every store shares (common/dynamo.py) against real dynalite:
reads with a projection, batched deletes, conditional deletes, a malformed request
told apart from a failed condition, lists and counts past the engine's 1 MB page,
and a conditional write whose outcome is unknown (a stalled engine) answered
STORE_UNAVAILABLE after one attempt, never sent twice."""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError

from common.dynamo import StoreBudget, StoreUnavailable, Table, ensure_table, make_client
from devstack.engines import Engine, start_dynalite

# Three items of 380 KB are more than one 1 MB page of a query or a scan.
BIG_ITEM_CHARACTERS = 380_000


@pytest.fixture
def table(dynamodb_endpoint: str, table_prefix: str) -> Table:
    client = make_client(dynamodb_endpoint, "us-east-1")
    name = f"{table_prefix}toolkit-{uuid.uuid4().hex[:8]}"
    ensure_table(client, name)
    # A second call finds the table there and returns.
    ensure_table(client, name)
    return Table(client, name)


def test_a_projected_read_gives_only_the_named_attributes(table: Table) -> None:
    table.put({"pk": "U#1", "sk": "PROFILE", "email": "a@example.org", "version": 3})
    assert table.get({"pk": "U#1", "sk": "PROFILE"}, projection="version") == {"version": 3}
    assert table.get({"pk": "U#1", "sk": "ABSENT"}, projection="version") is None


def test_batched_deletes_remove_every_key_and_ignore_missing_ones(table: Table) -> None:
    keys = [{"pk": "P", "sk": f"{n:03d}"} for n in range(30)]
    table.put_many(keys)
    assert table.count("P") == 30
    # More keys than one batch takes, some never written.
    table.delete_many([*keys[:27], {"pk": "P", "sk": "none"}])
    assert [item["sk"] for item in table.query("P")] == ["027", "028", "029"]


def test_a_conditional_delete_deletes_only_when_its_condition_holds(table: Table) -> None:
    key = {"pk": "CLAIM", "sk": "alice"}
    table.put({**key, "holder": "u1"})
    assert not table.delete_if(key, "holder = :me", {":me": "u2"})
    assert table.get(key) == {**key, "holder": "u1"}
    assert table.delete_if(key, "holder = :me", {":me": "u1"})
    assert table.get(key) is None
    assert table.delete_if(key, "attribute_not_exists(pk)")


def test_a_malformed_conditional_write_raises_and_is_not_a_failed_condition(
    table: Table,
) -> None:
    with pytest.raises(ClientError) as refused:
        table.update_if({"pk": "A", "sk": "B"}, "SET", "attribute_exists(pk)", {":v": 1})
    assert refused.value.response["Error"]["Code"] == "ValidationException"


def test_the_services_client_leaves_request_checks_to_the_engine(
    dynamodb_endpoint: str, table: Table
) -> None:
    # Services skip botocore's own check of each request against the API model (issue
    # #13): a request outside it still fails, refused by the engine (with botocore's
    # check it would be a ParamValidationError, never sent).
    budget = StoreBudget()
    services = Table(
        make_client(dynamodb_endpoint, "us-east-1", budget=budget, validate_parameters=False),
        table.name,
        budget,
    )
    table.put({"pk": "V", "sk": "1"})
    with pytest.raises(ClientError) as refused:
        next(services.query("V", page_size=0))  # the model's least Limit is 1
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert [item["sk"] for item in services.query("V")] == ["1"]


def test_a_query_takes_one_condition_on_the_sort_key(table: Table) -> None:
    with pytest.raises(ValueError, match="one condition"):
        next(table.query("P", "ORDER#", at_least="ORDER#2025"))


def test_lists_and_counts_go_on_past_one_page_of_the_engine(table: Table) -> None:
    big = "x" * BIG_ITEM_CHARACTERS
    table.put_many([{"pk": "BIG", "sk": f"{n}", "blob": big} for n in range(3)])
    table.put({"pk": "SMALL", "sk": "1"})
    assert table.count("BIG") == 3
    assert [item["sk"] for item in table.query("BIG", newest_first=True)] == ["2", "1", "0"]
    everything = {(item["pk"], item["sk"]) for item in table.scan(projection="pk, sk")}
    assert everything == {("BIG", "0"), ("BIG", "1"), ("BIG", "2"), ("SMALL", "1")}


@pytest.fixture
def stalled_store() -> Iterator[Engine]:
    """A dynalite of this test's own, stopped (SIGSTOP) once its table exists."""
    engine = start_dynalite()
    try:
        yield engine
    finally:
        os.kill(engine.process.pid, signal.SIGCONT)
        engine.stop()


def test_a_conditional_write_to_a_stalled_store_is_sent_once_and_unavailable(
    stalled_store: Engine,
) -> None:
    ensure_table(make_client(stalled_store.url, "us-east-1"), "stalled")
    budget = StoreBudget(read_timeout_seconds=0.3, total_seconds=2.0, max_attempts=3)
    client = make_client(stalled_store.url, "us-east-1", budget=budget)
    sent: list[str] = []
    client.meta.events.register("before-send.dynamodb", lambda **_: sent.append("sent"))
    table = Table(client, "stalled", budget)
    os.kill(stalled_store.process.pid, signal.SIGSTOP)
    with pytest.raises(StoreUnavailable):
        table.put_if({"pk": "A", "sk": "1"}, "attribute_not_exists(pk)")
    # Its outcome is unknown: the engine may have applied it, so it is not sent again.
    assert sent == ["sent"]
    with pytest.raises(StoreUnavailable):
        table.get({"pk": "A", "sk": "1"})
    # A read is repeatable: tried again within the budget.
    assert len(sent) >= 3
