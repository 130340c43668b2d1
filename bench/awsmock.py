"""In-process AWS (moto's ``mock_aws``) for the figures that need no network, plus counting
DynamoDB requests with a botocore event hook and sizing items like DynamoDB does."""

from __future__ import annotations

import contextlib
import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
from moto import mock_aws

from clickstream.aws import reset_clients
from infra.template import table_arguments
from localdev.harness import patched_env

REGION = "us-east-1"
ITEM_LIMIT_BYTES = 400 * 1024  # DynamoDB's maximum item size
WCU_BYTES = 1024


@contextlib.contextmanager
def in_process_aws(extra_env: dict[str, str | None] | None = None) -> Iterator[None]:
    """moto in this process; credentials and region set, any emulator endpoint unset; the
    product's cached clients and settings forgotten before and after."""
    env: dict[str, str | None] = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": None,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL": None,
        **(extra_env or {}),
    }
    with patched_env(env), mock_aws():
        reset_clients()
        try:
            yield
        finally:
            reset_clients()
    reset_clients()


def client(service: str) -> Any:
    session: Any = boto3.session.Session()  # a service name chosen at run time
    return session.client(service, region_name=REGION)


def create_aggregates_table(dynamodb: Any, name: str) -> None:
    """The aggregates table as infra/template.yaml defines it."""
    dynamodb.create_table(**table_arguments("AggregatesTable", name))


def _number_size(text: str) -> int:
    digits = text.lstrip("-").replace(".", "").lstrip("0") or "0"
    return math.ceil(len(digits) / 2) + 1


def attribute_value_size(value: dict[str, Any]) -> int:
    """Bytes of one AttributeValue, following DynamoDB's item size rules."""
    (kind, content), *_ = value.items()
    if kind == "S":
        return len(content.encode())
    if kind == "N":
        return _number_size(str(content))
    if kind == "B":
        return len(content)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(item.encode()) for item in content)
    if kind == "NS":
        return sum(_number_size(str(item)) for item in content)
    if kind == "BS":
        return sum(len(item) for item in content)
    if kind == "L":
        return 3 + sum(1 + attribute_value_size(item) for item in content)
    if kind == "M":
        return 3 + sum(
            1 + len(name.encode()) + attribute_value_size(item) for name, item in content.items()
        )
    raise ValueError(f"unknown attribute type {kind}")


def item_size(item: dict[str, dict[str, Any]]) -> int:
    """Bytes of an item: attribute names plus values."""
    return sum(len(name.encode()) + attribute_value_size(value) for name, value in item.items())


def write_units(size: int, *, transactional: bool) -> int:
    """Write capacity units for writing an item of ``size`` bytes (1 KB units; a
    transactional write costs twice)."""
    units = max(1, math.ceil(size / WCU_BYTES))
    return 2 * units if transactional else units


@dataclass
class DynamoCalls:
    """DynamoDB requests seen by a client: per operation, items in transactions, and the
    exact size of each ``Put`` inside them."""

    operations: Counter[str] = field(default_factory=Counter)
    transaction_items: int = 0
    update_keys: list[tuple[str, str]] = field(default_factory=list)
    put_sizes: list[int] = field(default_factory=list)

    def hook(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.operations[model.name] += 1
        if model.name == "TransactWriteItems":
            actions = params.get("TransactItems", [])
            self.transaction_items += len(actions)
            for action in actions:
                if "Update" in action:
                    key = action["Update"]["Key"]
                    self.update_keys.append((key["pk"]["S"], key["sk"]["S"]))
                elif "Put" in action:
                    self.put_sizes.append(item_size(action["Put"]["Item"]))

    def attach(self, dynamodb: Any) -> DynamoCalls:
        dynamodb.meta.events.register("provide-client-params.dynamodb", self.hook)
        return self


def item_sizes(dynamodb: Any, table: str) -> dict[tuple[str, str], int]:
    """Current size of every item in the table (a scan; only for the bench's own tables)."""
    sizes: dict[tuple[str, str], int] = {}
    for page in dynamodb.get_paginator("scan").paginate(TableName=table):
        for item in page.get("Items", []):
            sizes[(item["pk"]["S"], item["sk"]["S"])] = item_size(item)
    return sizes
