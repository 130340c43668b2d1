"""Compaction of an hour partition: all its Parquet objects become one, each event once.

Before compaction, duplicates in the archive can only come from re-cut (bisected) batches,
which write a second object for records already archived; they are bounded by the number of
retried batches. The scheduled job compacts every closed hour that holds any object besides
its ``compacted.parquet``, whatever its age: late events (an offline device, a back-fill, an
import) land in old hours, and those are compacted too. A listing of the archive finds them
(after compaction one object per hour: a year is 8,760 keys, nine LIST calls).

Compaction reads every object of the partition, keeps the first copy of each ``event_id``
(the first to arrive, then the lowest shard/sequence position), writes ``compacted.parquet``
and then deletes exactly the objects it read. A crash between the two steps leaves
duplicates that the next run removes; objects written meanwhile are left for the next run.

Beside a user's erasure (``clickstream.privacy``): the scheduled job takes each hour's lock
(``clickstream.jobs.JobStore.lock``, the one an erasure's step on that hour takes) before
reading it and releases it after deleting, and leaves erased users' rows out of what it
writes. An hour locked by an erasure is skipped; it stays touched and the next run compacts it.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from clickstream.archive import (
    delete_keys,
    list_archive_keys,
    read_parquet_objects,
    to_parquet_bytes,
)
from clickstream.layout import (
    ARCHIVE_PREFIX,
    compacted_key,
    hour_prefixes,
    is_compacted,
    partition_of,
    partition_prefix,
)

CLOSED_AFTER = timedelta(minutes=10)  # an hour is compacted once its own batches have landed


@dataclass(frozen=True)
class CompactionResult:
    prefix: str
    objects_read: int
    rows_read: int
    rows_written: int

    @property
    def duplicates_removed(self) -> int:
        return self.rows_read - self.rows_written


def deduplicate(table: pa.Table) -> pa.Table:
    """One row per ``event_id``: the first to arrive wins (two clients' events under one id,
    on two shards, whose positions say nothing of which came first), then the earliest stream
    position (the copies of one record arrive together); rows sorted by time. Sequence
    numbers compare by length, then text: Kinesis's have 56 digits, more than a DECIMAL(38)
    holds (a cast wrapped them and kept a later copy about half the time)."""
    if table.num_rows == 0:
        return table
    digits = pc.utf8_length(table["sequence_number"])
    ordered = table.append_column("_digits", digits).sort_by(
        [
            ("event_id", "ascending"),
            ("received_at", "ascending"),
            ("shard_id", "ascending"),
            ("_digits", "ascending"),
            ("sequence_number", "ascending"),
        ]
    )
    event_ids = ordered["event_id"].to_pylist()
    keep = [
        index == 0 or event_ids[index] != event_ids[index - 1] for index in range(len(event_ids))
    ]
    unique = ordered.filter(pa.array(keep)).drop_columns(["_digits"])
    return unique.sort_by([("timestamp", "ascending"), ("event_id", "ascending")])


def compact_partition(
    s3: Any,
    bucket: str,
    prefix: str,
    *,
    erased: Collection[str] = (),
    locks: Any = None,
    owner: str = "compactor",
) -> CompactionResult | None:
    """Compact one hour; with ``locks`` (a ``JobStore``) under the hour's lock (None when an
    erasure holds it), leaving out the rows of users whose id hashes are in ``erased``."""
    if locks is not None and not locks.lock(prefix, owner):
        return None
    try:
        keys = list_archive_keys(s3, bucket, prefix)
        if not keys or keys == [compacted_key(prefix)]:
            return None
        table = read_parquet_objects(s3, bucket, keys)
        unique = deduplicate(table)
        if erased:
            from clickstream.privacy import without_users

            unique = without_users(unique, erased)
        target = compacted_key(prefix)
        s3.put_object(Bucket=bucket, Key=target, Body=to_parquet_bytes(unique))
        stale = [key for key in keys if key != target]
        delete_keys(s3, bucket, stale)
        return CompactionResult(prefix, len(keys), table.num_rows, unique.num_rows)
    finally:
        if locks is not None:
            locks.unlock(prefix, owner)


def compact_hours(s3: Any, bucket: str, start: datetime, end: datetime) -> list[CompactionResult]:
    results = [compact_partition(s3, bucket, prefix) for prefix in hour_prefixes(start, end)]
    return [result for result in results if result is not None]


def touched_partitions(keys: list[str], now: datetime) -> list[str]:
    """The closed hours that received objects since their last compaction, oldest first."""
    last_closed = partition_prefix(now - CLOSED_AFTER - timedelta(hours=1))
    touched = {
        prefix
        for key in keys
        if not is_compacted(key) and (prefix := partition_of(key)) is not None
    }
    # Zero-padded year/month/day/hour: the prefixes sort as the hours do.
    return sorted(prefix for prefix in touched if prefix <= last_closed)


def compact_closed_hours(
    s3: Any,
    bucket: str,
    now: datetime,
    *,
    erased: Collection[str] = (),
    locks: Any = None,
) -> list[CompactionResult]:
    """The scheduled job: every closed hour touched since its last compaction, any age."""
    keys = list_archive_keys(s3, bucket, ARCHIVE_PREFIX)
    owner = f"compactor-{uuid.uuid4().hex}"  # two overlapping runs exclude each other too
    results = [
        compact_partition(s3, bucket, prefix, erased=erased, locks=locks, owner=owner)
        for prefix in touched_partitions(keys, now)
    ]
    return [result for result in results if result is not None]
