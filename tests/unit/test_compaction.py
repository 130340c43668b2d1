"""The hourly compaction job over moto's S3 in process: every closed hour touched since its
last compaction is compacted, whatever its age; the open hour never is; each event ends
once, in one file per hour."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from clickstream.archive import (
    list_archive_keys,
    plan_objects,
    read_parquet_objects,
    to_parquet_bytes,
)
from clickstream.compaction import (
    compact_closed_hours,
    compact_hours,
    compact_partition,
    touched_partitions,
)
from clickstream.layout import compacted_key, partition_prefix
from tests.factories import make_event, sequenced

NOW = datetime(2026, 11, 30, 12, 30, tzinfo=UTC)
BUCKET = "archive"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        client = boto3.client(
            "s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
        )
        client.create_bucket(Bucket=BUCKET)
        yield client


def archive(s3: Any, events: list[Any], start: int, shard: str = "shardId-000") -> None:
    """What the archiver writes for one batch: one object per hour it touches."""
    for key, table in plan_objects(sequenced(events, start=start), shard).items():
        s3.put_object(Bucket=BUCKET, Key=key, Body=to_parquet_bytes(table))


def test_a_back_fill_three_days_old_with_redeliveries_ends_once_in_one_file_per_hour(s3):
    day = NOW - timedelta(days=3)
    midnight = day.replace(hour=0, minute=0)
    backfill = [make_event(timestamp=midnight + timedelta(minutes=15 * i)) for i in range(96)]
    archive(s3, backfill, start=1000)
    archive(s3, backfill[10:40], start=5000)  # a redelivered, re-cut part of it
    archive(s3, backfill[:5], start=1000)  # the same batch again: same keys, overwritten
    today = [make_event(timestamp=NOW - timedelta(minutes=5))]  # the open hour
    archive(s3, today, start=9000)

    results = compact_closed_hours(s3, BUCKET, NOW)

    assert len(results) == 24
    assert sum(r.rows_written for r in results) == 96
    assert sum(r.duplicates_removed for r in results) >= 30  # the re-cut copies at least
    for hour in range(24):
        prefix = partition_prefix(midnight + timedelta(hours=hour))
        assert list_archive_keys(s3, BUCKET, prefix) == [compacted_key(prefix)]
    rows = read_parquet_objects(s3, BUCKET, list_archive_keys(s3, BUCKET, "events/"))
    ids = rows["event_id"].to_pylist()
    assert sorted(ids) == sorted(e.event_id for e in backfill + today)
    open_hour = partition_prefix(NOW)
    assert compacted_key(open_hour) not in list_archive_keys(s3, BUCKET, open_hour)
    # A second run finds nothing touched: compacting twice loses and changes nothing.
    assert compact_closed_hours(s3, BUCKET, NOW) == []
    again = read_parquet_objects(s3, BUCKET, list_archive_keys(s3, BUCKET, "events/"))
    assert sorted(again["event_id"].to_pylist()) == sorted(ids)


def test_a_late_event_in_a_compacted_hour_is_merged_into_it(s3):
    hour = (NOW - timedelta(days=40)).replace(minute=0)
    first = [make_event(timestamp=hour + timedelta(minutes=i)) for i in range(3)]
    archive(s3, first, start=100)
    compact_partition(s3, BUCKET, partition_prefix(hour))
    late = make_event(timestamp=hour + timedelta(minutes=30))
    archive(s3, [late], start=700)

    (result,) = compact_closed_hours(s3, BUCKET, NOW)

    prefix = partition_prefix(hour)
    assert result.prefix == prefix and result.rows_written == 4
    assert list_archive_keys(s3, BUCKET, prefix) == [compacted_key(prefix)]


def test_a_second_compaction_of_an_hour_keeps_every_event(s3):
    hour = (NOW - timedelta(days=2)).replace(minute=0)
    prefix = partition_prefix(hour)
    events = [make_event(timestamp=hour + timedelta(minutes=i)) for i in range(5)]
    archive(s3, events, start=100)
    first = compact_partition(s3, BUCKET, prefix)
    assert first is not None and first.rows_written == 5
    # the compacted file alone: nothing to do, nothing lost
    assert compact_partition(s3, BUCKET, prefix) is None
    archive(s3, events[:2], start=100)  # a redelivery after compaction
    second = compact_partition(s3, BUCKET, prefix)
    assert second is not None and (second.rows_read, second.rows_written) == (7, 5)
    assert (second.objects_read, second.duplicates_removed) == (2, 2)  # compacted + redelivered
    assert list_archive_keys(s3, BUCKET, prefix) == [compacted_key(prefix)]
    rows = read_parquet_objects(s3, BUCKET, [compacted_key(prefix)])
    assert sorted(rows["event_id"].to_pylist()) == sorted(e.event_id for e in events)


def test_the_earliest_position_wins_when_sequence_numbers_differ_in_length(s3):
    """Kinesis sequence numbers are decimal strings: "999" comes before "1000", though it
    sorts after it as text."""
    hour = (NOW - timedelta(days=1)).replace(minute=0)
    events = [make_event(timestamp=hour + timedelta(minutes=i)) for i in range(3)]
    archive(s3, events, start=999)  # 999, 1000, 1001
    archive(s3, events, start=10_000)  # a later copy of each
    (result,) = compact_closed_hours(s3, BUCKET, NOW)
    rows = read_parquet_objects(s3, BUCKET, [compacted_key(result.prefix)])
    assert sorted(rows["sequence_number"].to_pylist(), key=int) == ["999", "1000", "1001"]


@pytest.mark.parametrize(
    ("hour", "now", "closed"),
    [
        ("12:00", "12:30", False),  # the open hour
        ("11:00", "12:09", False),  # ended 9 minutes ago: its own batches may still land
        ("11:00", "12:10", True),
        ("11:00", "12:30", True),
    ],
)
def test_an_hour_is_closed_ten_minutes_after_its_end(hour, now, closed):
    def at(clock: str) -> datetime:
        hours, minutes = map(int, clock.split(":"))
        return NOW.replace(hour=hours, minute=minutes)

    prefix = partition_prefix(at(hour))
    assert (touched_partitions([f"{prefix}s-1-2.parquet"], at(now)) == [prefix]) is closed


def test_only_hours_with_new_objects_are_touched():
    old, new = partition_prefix(NOW - timedelta(days=2)), partition_prefix(NOW - timedelta(days=1))
    keys = [compacted_key(old), compacted_key(new), f"{new}s-5-9.parquet", "bad/shard=s/1.bin"]
    assert touched_partitions(keys, NOW) == [new]


class Locks:
    """A JobStore's lock interface over a dict: who holds which hour."""

    def __init__(self) -> None:
        self.held: dict[str, str] = {}

    def lock(self, prefix: str, owner: str) -> bool:
        if self.held.get(prefix, owner) != owner:
            return False
        self.held[prefix] = owner
        return True

    def unlock(self, prefix: str, owner: str) -> None:
        if self.held.get(prefix) == owner:
            del self.held[prefix]


def test_compaction_leaves_erased_users_out_and_skips_an_hour_an_erasure_holds(s3):
    from clickstream.store import user_hash

    hour = NOW - timedelta(hours=3)
    busy = NOW - timedelta(hours=2)
    archive(s3, [make_event(timestamp=hour, user_id=u) for u in ("gone", "kept", "gone")], 1)
    archive(s3, [make_event(timestamp=busy, user_id="gone")], 10)
    archive(s3, [make_event(timestamp=hour, user_id="kept")], 20)  # a second object
    archive(s3, [make_event(timestamp=busy, user_id="kept")], 30)
    locks = Locks()
    locks.held[partition_prefix(busy)] = "era-an-erasure"

    results = compact_closed_hours(s3, BUCKET, NOW, erased={user_hash("gone")}, locks=locks)

    assert [result.prefix for result in results] == [partition_prefix(hour)]
    kept = read_parquet_objects(s3, BUCKET, [compacted_key(partition_prefix(hour))])
    assert kept["user_id"].to_pylist() == ["kept", "kept"]
    assert len(list_archive_keys(s3, BUCKET, partition_prefix(busy))) == 2  # untouched
    assert locks.held == {partition_prefix(busy): "era-an-erasure"}  # its lock released


def test_each_scheduled_run_locks_the_hours_under_an_owner_of_its_own(s3):
    """Two overlapping runs must exclude each other: each takes every hour's lock under its
    own owner, and releases it under the same one."""

    class Locks:
        def __init__(self) -> None:
            self.calls: list[tuple[str, str, str]] = []

        def lock(self, prefix: str, owner: str) -> bool:
            self.calls.append(("lock", prefix, owner))
            return True

        def unlock(self, prefix: str, owner: str) -> None:
            self.calls.append(("unlock", prefix, owner))

    hour = (NOW - timedelta(days=1)).replace(minute=0)
    owners = []
    for start in (1, 100):
        archive(s3, [make_event(timestamp=hour)], start=start)
        locks = Locks()
        (result,) = compact_closed_hours(s3, BUCKET, NOW, locks=locks)
        assert [call[:2] for call in locks.calls] == [
            ("lock", result.prefix),
            ("unlock", result.prefix),
        ]
        (owner,) = {call[2] for call in locks.calls}
        assert isinstance(owner, str) and owner.startswith("compactor-")
        owners.append(owner)
    assert owners[0] != owners[1]


def test_compacting_a_range_of_hours_compacts_those_with_objects_and_no_other(s3):
    """``make compact`` and the soak: every hour from ``start`` to ``end`` inclusive, open or
    closed; an hour without objects has no result."""
    hours = [NOW.replace(minute=10) - timedelta(hours=h) for h in (5, 3, 2, 0)]
    for n, hour in enumerate(hours):
        archive(s3, [make_event(timestamp=hour) for _ in range(n + 1)], start=100 * (n + 1))
    results = compact_hours(s3, BUCKET, hours[1].replace(minute=59), NOW)
    assert [(r.prefix, r.rows_written) for r in results] == [
        (partition_prefix(hours[1]), 2),
        (partition_prefix(hours[2]), 3),
        (partition_prefix(hours[3]), 4),  # the open hour too, when asked for
    ]
    keys = list_archive_keys(s3, BUCKET)
    assert sorted(k for k in keys if k.endswith("compacted.parquet")) == [
        compacted_key(partition_prefix(hour)) for hour in hours[1:]
    ]
    assert sum(1 for k in keys if k.startswith(partition_prefix(hours[0]))) == 1  # untouched
