"""A dedicated local stack for the security tests: its own emulator, API and consumers, with
two allowed CORS origins and a 7-day bound on event age, so these tests neither see nor
disturb the events of the shared ``local_stack``."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest

from localdev.harness import LocalStackHandle, start_local_stack

ALLOWED_ORIGINS = ("http://allowed.example", "https://dash.example:8443")


@pytest.fixture(scope="session")
def secure_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStackHandle]:
    handle = start_local_stack(
        tmp_path_factory.mktemp("secure-stack"),
        {
            "CLICKSTREAM_CORS_ORIGINS": ",".join(ALLOWED_ORIGINS),
            "CLICKSTREAM_MAX_EVENT_AGE_DAYS": "7",
        },
    )
    try:
        yield handle
    finally:
        handle.stop()


def stream_records(stack: LocalStackHandle, partition_keys: set[str]) -> list[dict[str, Any]]:
    """Every record in the Kinesis stream (read through the emulator from the start of each
    shard) whose partition key is one of ``partition_keys``, decoded."""
    kinesis = stack.client("kinesis")
    found = []
    for shard in kinesis.list_shards(StreamName=stack.stream_name)["Shards"]:
        iterator = kinesis.get_shard_iterator(
            StreamName=stack.stream_name,
            ShardId=shard["ShardId"],
            ShardIteratorType="TRIM_HORIZON",
        )["ShardIterator"]
        while iterator:
            page = kinesis.get_records(ShardIterator=iterator, Limit=10000)
            found += [r for r in page["Records"] if r["PartitionKey"] in partition_keys]
            if not page["Records"] or not page.get("MillisBehindLatest"):
                break
            iterator = page.get("NextShardIterator")
    return [json.loads(_bytes(record["Data"])) for record in found]


def _bytes(data: Any) -> bytes:
    return data if isinstance(data, bytes) else base64.b64decode(data)
