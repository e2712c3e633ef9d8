"""One table on every engine a store must work on: dynalite (real, on loopback) and
moto (in memory). Each store's contract suite runs against both through this fixture."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto import mock_aws

from common.dynamo import Table, ensure_table, make_client
from tests.support import unique


@pytest.fixture(params=["dynalite", "moto"])
def engine_table(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Table]:
    name = unique("contract")
    if request.param == "dynalite":
        client = make_client(request.getfixturevalue("dynamodb_endpoint"), "us-east-1")
        ensure_table(client, name)
        yield Table(client, name)
        client.delete_table(TableName=name)
        return
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(variable, "moto")
    with mock_aws():
        client = make_client(None, "us-east-1")
        ensure_table(client, name)
        yield Table(client, name)
