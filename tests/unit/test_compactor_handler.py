"""The hourly compactor's handler (consumers/compactor.py) over moto, fed by the archiver's
and the aggregator's own handlers: each closed hour becomes one file holding each event once,
and the deltas left pending are folded."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import boto3
import pyarrow.parquet as pq

from tests.factories import make_event
from tests.unit.route_support import ARCHIVE_BUCKET, deliver_to_consumers


def archived() -> dict[str, list[str]]:
    """Each Parquet object of the archive and the event ids in it."""
    s3 = boto3.client("s3")
    objects = s3.list_objects_v2(Bucket=ARCHIVE_BUCKET, Prefix="events/").get("Contents", [])
    return {
        item["Key"]: pq.read_table(
            io.BytesIO(s3.get_object(Bucket=ARCHIVE_BUCKET, Key=item["Key"])["Body"].read())
        )
        .column("event_id")
        .to_pylist()
        for item in objects
    }


def test_a_closed_hour_becomes_one_file_with_each_event_once_and_pending_deltas_fold(api):
    from consumers.compactor import handler

    three_hours_ago = (datetime.now(UTC) - timedelta(hours=3)).replace(minute=10)
    events = [
        make_event(session_id=f"s{i}", timestamp=three_hours_ago, received_at=three_hours_ago)
        for i in range(5)
    ]
    deliver_to_consumers(events[:3], 1000)
    deliver_to_consumers(events, 1000)  # the source's redelivery of the first three, then two more
    before = archived()
    assert sum(len(ids) for ids in before.values()) == 8 and len(before) == 2

    result = handler({}, None)

    assert result["partitions"] == 1
    assert (result["rows_written"], result["duplicates_removed"]) == (5, 3)
    assert result["deltas_folded"] == 2  # one delta per batch that brought new events
    after = archived()
    assert len(after) == 1
    assert sorted(next(iter(after.values()))) == sorted(event.event_id for event in events)
    # nothing new since: the next run has nothing to do
    assert handler({}, None) == {
        "partitions": 0, "rows_written": 0, "duplicates_removed": 0, "deltas_folded": 0,
    }  # fmt: skip
