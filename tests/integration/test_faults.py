"""Fault injection against the local stack. Each scenario runs on a stack of its own and ends
in a reconciliation: accepted == aggregated == archived (after compaction, each event once)."""

from __future__ import annotations

import json
import os
import signal
import uuid
from pathlib import Path

import duckdb
import pytest
import requests

from clickstream.compaction import compact_hours
from tests.conftest import LoopbackStackHandle, start_loopback_stack
from tests.delivery import wait_for_consumers_at_the_tip

pytestmark = pytest.mark.integration


def traffic(count: int) -> list[dict]:
    kinds = ["page_view", "page_view", "click", "add_to_cart", "checkout", "purchase"]
    return [
        {
            "event_id": str(uuid.uuid4()),
            "event_type": kinds[i % len(kinds)],
            "session_id": f"s{i % 37}",
            "user_id": f"u{i % 37}",
            "page": f"/p{i % 11}",
            **({"value": 10.0} if i % 6 == 5 else {}),
        }
        for i in range(count)
    ]


def post_all(
    stack: LoopbackStackHandle, records: list[dict], batch: int = 100
) -> tuple[list[str], list[str]]:
    """Post in batches; returns (accepted ids, ids reported not accepted)."""
    accepted, rejected = [], []
    for start in range(0, len(records), batch):
        chunk = records[start : start + batch]
        body = stack.post_events(chunk)
        accepted += body.get("event_ids", [])
        rejected += [chunk[error["index"]]["event_id"] for error in body.get("errors", [])]
    return accepted, rejected


def archive_counts(stack: LoopbackStackHandle, workdir: Path) -> tuple[int, set[str]]:
    if not stack.download_archive(workdir):
        return 0, set()
    rows = duckdb.sql(
        f"select event_id from read_parquet('{workdir}/events/**/*.parquet')"
    ).fetchall()
    return len(rows), {row[0] for row in rows}


def reconcile(stack: LoopbackStackHandle, accepted: list[str], workdir: Path) -> dict[str, int]:
    """Wait for the consumers, then check every accepted event is counted and archived once."""
    expected = len(accepted)
    stack.wait_until(lambda: stack.get("/stats")["total_events"] >= expected, timeout=120)
    _, ids = stack.wait_until(
        lambda: (found := archive_counts(stack, workdir))[1] >= set(accepted) and found, timeout=120
    )
    # Late redeliveries come before every consumer has checkpointed the stream's last record.
    wait_for_consumers_at_the_tip(stack)
    assert stack.get("/stats")["total_events"] == expected, "aggregates counted an event twice"
    assert ids == set(accepted), "the archive holds events that were not accepted"
    compact_hours(stack.client("s3"), stack.archive_bucket, _earliest(), _latest())
    rows, ids = archive_counts(stack, workdir)
    assert (rows, len(ids)) == (expected, expected), "after compaction each event appears once"
    return {
        "accepted": expected,
        "aggregated": stack.get("/stats")["total_events"],
        "archived": rows,
    }


def _earliest():
    from datetime import UTC, datetime, timedelta

    return datetime.now(UTC) - timedelta(hours=2)


def _latest():
    from datetime import UTC, datetime, timedelta

    return datetime.now(UTC) + timedelta(hours=1)


@pytest.fixture
def faulty_stack(request, tmp_path):
    stack = start_loopback_stack(
        tmp_path / "stack",
        {"CLICKSTREAM_FAULTS": request.param, "CLICKSTREAM_ESM_BATCH_SIZE": "50"},
    )
    try:
        yield stack
    finally:
        stack.stop()


@pytest.mark.parametrize(
    "faulty_stack", ["duplicate_batches", "fail_every=4", "crash_every=5"], indirect=True
)
def test_consumer_faults_still_count_and_archive_each_event_once(faulty_stack, tmp_path):
    accepted, rejected = post_all(faulty_stack, traffic(1200))
    assert not rejected
    figures = reconcile(faulty_stack, accepted, tmp_path / "archive")
    assert figures == {"accepted": 1200, "aggregated": 1200, "archived": 1200}


@pytest.mark.parametrize("faulty_stack", ["throttle_put=0.4"], indirect=True)
def test_throttled_put_records_are_retried_and_only_stream_records_are_reported_accepted(
    faulty_stack, tmp_path
):
    records = traffic(1000)
    accepted, rejected = post_all(faulty_stack, records)
    assert len(accepted) + len(rejected) == 1000
    assert len(accepted) > 900  # per-record retries get almost everything through
    figures = reconcile(faulty_stack, accepted, tmp_path / "archive")
    assert figures["aggregated"] == len(accepted)
    api_log = (faulty_stack.state_dir / "logs" / "api.log").read_text()
    throttled = [
        json.loads(line) for line in api_log.splitlines() if '"PutRecordsThrottled"' in line
    ]
    assert sum(sum(entry["PutRecordsThrottled"]) for entry in throttled) > 0


@pytest.mark.parametrize("faulty_stack", [""], indirect=True)
def test_a_consumer_killed_mid_stream_is_restarted_and_resumes_without_double_counting(
    faulty_stack, tmp_path
):
    records = traffic(1500)
    accepted, _ = post_all(faulty_stack, records[:500])
    os.kill(faulty_stack.info["pids"]["aggregator"], signal.SIGKILL)
    os.kill(faulty_stack.info["pids"]["archiver"], signal.SIGKILL)
    more, _ = post_all(faulty_stack, records[500:])
    figures = reconcile(faulty_stack, accepted + more, tmp_path / "archive")
    assert figures["aggregated"] == 1500
    launcher_output = "".join(faulty_stack.output)
    assert "aggregator exited" in launcher_output and "restarting" in launcher_output


@pytest.mark.parametrize("faulty_stack", [""], indirect=True)
def test_poison_in_the_middle_of_a_batch_goes_to_the_dlq_and_the_rest_is_counted(
    faulty_stack, tmp_path
):
    good = traffic(20)
    from datetime import UTC, datetime

    from clickstream.ingest import encode_event, validate_records

    events = validate_records(good, received_at=datetime.now(UTC)).records
    entries = [{"Data": encode_event(event), "PartitionKey": "one-shard"} for _, event in events]
    entries.insert(10, {"Data": b'{"event_type": 42}', "PartitionKey": "one-shard"})
    response = faulty_stack.client("kinesis").put_records(
        StreamName=faulty_stack.stream_name, Records=entries
    )
    assert response.get("FailedRecordCount", 0) == 0
    figures = reconcile(
        faulty_stack, [event["event_id"] for _, event in events], tmp_path / "archive"
    )
    assert figures["aggregated"] == 20
    sqs = faulty_stack.client("sqs")
    body = json.loads(
        sqs.receive_message(
            QueueUrl=faulty_stack.resources["DeadLetterQueueUrl"], WaitTimeSeconds=2
        )["Messages"][0]["Body"]
    )
    assert body["reason"].startswith("schema-invalid")
    assert body["sequenceNumber"] == response["Records"][10]["SequenceNumber"]
    stats = requests.get(
        f"{faulty_stack.api_url}/stats", headers=faulty_stack.read_headers, timeout=10
    ).json()
    assert stats["total_events"] == 20
