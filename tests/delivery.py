"""Where an event sent through the local stack ends up: the Parquet archive (read straight
from the emulator's S3, only objects written since a moment) and the aggregates' recent
feed in ``/stats``. Used by the tracker's and the SDKs' end-to-end tests."""

from __future__ import annotations

import io
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from clickstream.compaction import deduplicate
from localdev.harness import LoopbackStackHandle
from localdev.runner import CheckpointStore, read_stream

CONSUMERS = ("aggregator", "archiver")

Row = dict[str, Any]


def archived_since(
    stack: LoopbackStackHandle, since: datetime, match: Callable[[Row], bool]
) -> list[Row]:
    """Archive rows in objects written after ``since`` (less a margin) that ``match``."""
    s3 = stack.client("s3")
    rows: list[Row] = []
    cutoff = since - timedelta(seconds=5)
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket=stack.archive_bucket, Prefix="events/"
    )
    for page in pages:
        for obj in page.get("Contents", []):
            if obj["LastModified"] < cutoff or not obj["Key"].endswith(".parquet"):
                continue
            body = s3.get_object(Bucket=stack.archive_bucket, Key=obj["Key"])["Body"].read()
            rows.extend(row for row in pq.read_table(io.BytesIO(body)).to_pylist() if match(row))
    return rows


def delivered(
    stack: LoopbackStackHandle,
    since: datetime,
    match: Callable[[Row], bool],
    expected: int,
    timeout: float = 60,
) -> list[Row]:
    """The archive's events once ``expected`` of them arrived (and a little longer, so a late
    copy would be seen too), each once as the archive answers queries."""
    deadline = time.monotonic() + timeout
    rows: list[Row] = []
    while time.monotonic() < deadline:
        rows = each_once(archived_since(stack, since, match))
        if len(rows) >= expected:
            # A late copy (a redelivery) would come before the consumers pass the stream's end.
            wait_for_consumers_at_the_tip(stack, max(1.0, deadline - time.monotonic()))
            return each_once(archived_since(stack, since, match))
        time.sleep(0.5)
    return rows


def consumers_at_the_tip(stack: LoopbackStackHandle) -> bool:
    """Every consumer has checkpointed the last record of every shard. A redelivery starts at
    a checkpoint, so from then on nothing already in the stream can be delivered again."""
    tips = {
        shard: records[-1].sequence_number
        for shard, records in read_stream(stack.client("kinesis"), stack.stream_name).items()
    }
    table = stack.info["env"].get("CLICKSTREAM_CHECKPOINTS_TABLE", "clickstream-checkpoints")
    checkpoints = CheckpointStore(stack.client("dynamodb"), table)
    return all(
        checkpoints.get(function, shard) == tip
        for function in CONSUMERS
        for shard, tip in tips.items()
    )


def wait_for_consumers_at_the_tip(stack: LoopbackStackHandle, timeout: float = 120) -> None:
    stack.wait_until(lambda: consumers_at_the_tip(stack), timeout=timeout, interval=0.5)


def each_once(rows: list[Row]) -> list[Row]:
    """One row per event, as compaction and the SQL view keep it (the earliest stream
    position). A client's resend (a new stream record, same event_id) may sit in the hour's
    objects until compaction; one stream record archived twice is a bug and fails here."""
    positions = [(row["shard_id"], row["sequence_number"]) for row in rows]
    assert len(positions) == len(set(positions)), "a stream record was archived twice"
    return deduplicate(pa.Table.from_pylist(rows)).to_pylist() if rows else rows


def counted_once(
    stack: LoopbackStackHandle, event_ids: list[str], timeout: float = 60
) -> Counter[str]:
    """How often each id shows in the aggregates' recent feed, once every id is there."""
    wanted = set(event_ids)

    def seen() -> Counter[str] | None:
        feed = stack.get("/stats")["recent_events"]
        counts = Counter(e["event_id"] for e in feed if e["event_id"] in wanted)
        return counts if set(counts) == wanted else None

    found = stack.wait_until(seen, timeout=timeout)
    assert found, f"not all of {len(wanted)} events reached the aggregates"
    return found
