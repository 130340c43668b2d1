"""Rebuilding the aggregates from the archive: every archived event once, and a second run
changes nothing (the first layout's items going is the store's, in test_store)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import pytest
from moto import mock_aws

from clickstream.archive import plan_objects, write_objects
from clickstream.rebuild import rebuild
from tests.factories import make_event, sequenced
from tests.unit.store_support import counted

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


@pytest.fixture
def archive(aggregates_table):
    with mock_aws():
        s3 = boto3.client(
            "s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
        )
        s3.create_bucket(Bucket="archive")
        yield s3


def test_the_archive_replays_into_the_store_once(store, archive):
    events = sequenced(
        [
            make_event(session_id=f"s{i % 5}", timestamp=T0 + timedelta(minutes=7 * i))
            for i in range(40)
        ]
    )
    write_objects(archive, "archive", plan_objects(events, "shardId-000000000000"))
    write_objects(archive, "archive", plan_objects(events[:10], "shardId-000000000009"))  # a copy
    end = T0 + timedelta(days=1)
    assert rebuild(archive, "archive", store, T0, end) == 40
    assert counted(store)["events"] == 40
    assert rebuild(archive, "archive", store, T0, end) == 0
    assert counted(store)["events"] == 40
