"""Redelivery never changes the aggregates twice: the shard watermark is written in the same
DynamoDB transaction as the counters. DynamoDB is moto, in-process."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import pytest
from moto import mock_aws

from clickstream.aggregates import apply_events, load_shard_state, shard_item_key
from localdev.provision import table_arguments
from tests.factories import make_event, sequenced

TABLE = "aggregates"
SHARD = shard_item_key("stream", "shardId-000000000000")
T0 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


@pytest.fixture
def dynamodb(monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        client = boto3.client(
            "dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
        )
        client.create_table(**table_arguments("AggregatesTable", TABLE))
        yield client


def total(dynamodb) -> int:
    item = dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": "total"}, "sk": {"S": "all"}}).get(
        "Item", {}
    )
    return int(item.get("events", {"N": "0"})["N"])


def test_the_same_batch_delivered_twice_counts_once(dynamodb):
    batch = sequenced([make_event() for _ in range(20)])
    first = apply_events(dynamodb, TABLE, SHARD, batch)
    again = apply_events(dynamodb, TABLE, SHARD, batch)
    assert (first.applied, again.applied, again.skipped_duplicates) == (20, 0, 20)
    assert total(dynamodb) == 20


def test_a_recut_batch_overlapping_the_last_one_counts_only_the_new_records(dynamodb):
    events = sequenced([make_event() for _ in range(30)])
    apply_events(dynamodb, TABLE, SHARD, events[:20])
    result = apply_events(dynamodb, TABLE, SHARD, events[10:30])
    assert (result.applied, result.skipped_duplicates) == (10, 10)
    assert total(dynamodb) == 30


def test_a_backfill_spanning_many_minutes_is_written_in_several_transactions_each_with_the_watermark(
    dynamodb,
):
    events = sequenced([make_event(timestamp=T0 + timedelta(minutes=i)) for i in range(250)])
    result = apply_events(dynamodb, TABLE, SHARD, events)
    assert result.transactions > 1
    assert total(dynamodb) == 250
    assert load_shard_state(dynamodb, TABLE, SHARD).watermark == events[-1].sequence_number
    assert apply_events(dynamodb, TABLE, SHARD, events).applied == 0


def test_writes_grow_with_distinct_keys_not_with_events(dynamodb):
    events = sequenced(
        [make_event(session_id=f"s{i % 50}", page=f"/p{i % 7}") for i in range(1000)]
    )
    result = apply_events(dynamodb, TABLE, SHARD, events)
    # total, minute, hour, day, <=4 page shards, and the shard item
    assert result.items_written <= 9
