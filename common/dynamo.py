"""The DynamoDB client, table creation and item (de)serialization.

Every table uses a string partition key `pk` and sort key `sk` (single-table design
inside each service). Only features every DynamoDB-compatible engine has are used.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config

from common.metrics import count_store_calls

log = logging.getLogger(__name__)

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()

Item = dict[str, Any]


def make_client(endpoint: str | None, region: str, max_connections: int = 50) -> Any:
    config = Config(
        retries={"max_attempts": 3, "mode": "standard"},
        connect_timeout=2,
        read_timeout=5,
        max_pool_connections=max_connections,
    )
    client = boto3.client("dynamodb", endpoint_url=endpoint, region_name=region, config=config)
    return count_store_calls(client)


def to_attributes(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(v) for k, v in item.items() if v is not None}


def from_attributes(attributes: Mapping[str, Any]) -> Item:
    return {k: _plain(_deserializer.deserialize(v)) for k, v in attributes.items()}


def to_value(value: Any) -> Any:
    return _serializer.serialize(value)


def _plain(value: Any) -> Any:
    # Numbers come back as Decimal; integral ones are meant as ints (versions, counts).
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return int(value)
    return value


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


def is_condition_failure(error: Exception) -> bool:
    response = getattr(error, "response", None)
    if not isinstance(response, dict):
        return False
    return bool(response.get("Error", {}).get("Code") == "ConditionalCheckFailedException")
