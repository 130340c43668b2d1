"""End to end through real HTTP: the API on ``chalice local``, Kinesis/DynamoDB/S3 on moto's
server, the consumers behind the local event-source runner."""

from __future__ import annotations

import io
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import duckdb
import pytest
import requests

from clickstream.store import DynamoAggregateStore
from tests.factories import seed_payloads
from tests.integration.consumers_idle import settled

pytestmark = pytest.mark.integration


def _unique() -> str:
    return uuid.uuid4().hex[:8]


def _journey(tag: str, sessions: int) -> list[dict]:
    """Sessions on pages unique to this test: every session views, half add to cart,
    a quarter check out and buy."""
    records = []
    for index in range(sessions):
        session = f"{tag}-s{index}"
        steps = ["page_view", "page_view"]
        if index % 2 == 0:
            steps.append("add_to_cart")
        if index % 4 == 0:
            steps += ["checkout", "purchase"]
        for step in steps:
            record = {
                "event_type": step,
                "session_id": session,
                "user_id": f"{tag}-u{index}",
                "page": f"/{tag}/p{index % 3}",
                "product_id": f"sku-{index % 5}",
            }
            if step == "purchase":
                record["value"] = 12.5
            records.append(record)
    return records


def _archive_rows(stack, tmp_path: Path, event_ids: list[str]) -> tuple[int, int]:
    """Rows and distinct ids among ``event_ids`` in the Parquet archive, read with DuckDB."""
    if not stack.download_archive(tmp_path):  # nothing written yet: nothing for DuckDB
        return 0, 0
    ids = ", ".join(f"'{event_id}'" for event_id in event_ids)
    return duckdb.sql(
        f"select count(*), count(distinct event_id) from read_parquet('{tmp_path}/events/**/*.parquet', "
        f"hive_partitioning=true) where event_id in ({ids})"
    ).fetchall()[0]


def test_events_flow_from_api_to_aggregates_and_parquet(local_stack, tmp_path):
    # GIVEN the current totals, once earlier tests' events have all been counted
    settled(local_stack.metrics_urls["consumers"], local_stack)
    before = local_stack.get("/stats")
    funnel_before = {step["step"]: step["sessions"] for step in local_stack.get("/funnel")["steps"]}
    tag = _unique()
    records = (
        _journey(tag, sessions=40) + list(seed_payloads().values()) + [{"event_type": "Bad Name!"}]
    )

    # WHEN they are posted (in two requests) and one more event is tracked
    first = local_stack.post_events(records[:60])
    second = local_stack.post_events(records[60:])
    tracked = requests.post(
        f"{local_stack.api_url}/track",
        json=seed_payloads()["seed003_track"],
        headers=local_stack.write_headers,
        timeout=30,
    )

    # THEN the API accepted every valid record and named the invalid one
    assert first["_status"] == 200 and second["_status"] == 200 and tracked.status_code == 200
    assert first["failed"] == 0
    assert second["errors"] == [
        {
            "index": len(records) - 61,
            "field": "event_type",
            "message": second["errors"][0]["message"],
        }
    ]
    accepted_ids = first["event_ids"] + second["event_ids"] + [tracked.json()["event_id"]]
    accepted = len(accepted_ids)
    assert accepted == len(records) - 1 + 1

    # AND the aggregates count each of them once
    after = local_stack.wait_until(
        lambda: (
            (s := local_stack.get("/stats"))["total_events"] >= before["total_events"] + accepted
            and s
        ),
        timeout=60,
    )
    assert after["total_events"] == before["total_events"] + accepted
    sent_types: dict[str, int] = {}
    for record in records[:-1]:
        kind = {"view": "page_view"}.get(
            record.get("event_type", "click"), record.get("event_type", "click")
        )
        sent_types[kind] = sent_types.get(kind, 0) + 1
    sent_types["click"] += 1  # the tracked seed-003 event
    for kind, count in sent_types.items():
        assert after["events_by_type"][kind] - before["events_by_type"].get(kind, 0) == count, kind
    assert after["revenue"] - before["revenue"] == pytest.approx(10 * 12.5)

    # AND per-page views, funnel sessions and top pages agree with what was sent
    views = local_stack.get("/analytics/page-views/" + quote(f"/{tag}/p0", safe=""))
    expected_p0 = sum(
        1 for r in records if r.get("page") == f"/{tag}/p0" and r["event_type"] == "page_view"
    )
    assert views == {"page": f"/{tag}/p0", "page_views": expected_p0}
    funnel = {step["step"]: step["sessions"] for step in local_stack.get("/funnel")["steps"]}
    assert funnel["add_to_cart"] - funnel_before.get("add_to_cart", 0) == 20
    assert funnel["purchase"] - funnel_before.get("purchase", 0) == 10
    top = {
        page["page"]: page["views"] for page in local_stack.get("/pages/top", limit=100)["pages"]
    }
    assert top[f"/{tag}/p0"] == expected_p0

    # AND the table's minute buckets add up to the same total as its all-time counters
    store = DynamoAggregateStore(local_stack.client("dynamodb"), local_stack.aggregates_table)
    with store.snapshot():
        by_minute = store.total("minute", "0000", "9999").get("events")
        all_time = store.total("all", "all", "all").get("events")
    assert by_minute == all_time >= after["total_events"]

    # AND the Parquet archive holds every accepted event exactly once (DuckDB reads it back)
    rows = local_stack.wait_until(
        lambda: (
            (found := _archive_rows(local_stack, tmp_path, accepted_ids))[1] == accepted and found
        ),
        timeout=60,
    )
    assert rows == (accepted, accepted)


def test_recent_events_feed_shows_the_latest_events_newest_first(local_stack):
    tag = _unique()
    body = local_stack.post_events(
        [{"event_type": "search", "session_id": tag, "properties": {"q": tag}}]
    )
    event_id = body["event_ids"][0]
    stats = local_stack.wait_until(
        lambda: (
            (s := local_stack.get("/stats"))
            and any(e["event_id"] == event_id for e in s["recent_events"])
            and s
        )
    )
    arrivals = [event["received_at"] for event in stats["recent_events"]]
    assert arrivals == sorted(arrivals, reverse=True)
    assert len(stats["recent_events"]) <= 50


def test_timeseries_buckets_count_events_by_minute(local_stack):
    tag = _unique()
    stamp = "2026-01-02T03:04:30Z"
    local_stack.post_events([{"event_type": "click", "session_id": tag, "timestamp": stamp}] * 3)
    series = local_stack.wait_until(
        lambda: (
            (
                s := local_stack.get(
                    "/metrics/timeseries",
                    granularity="minute",
                    **{"from": "2026-01-02T03:03:00Z", "to": "2026-01-02T03:05:00Z"},
                )
            )
            and s["points"][1]["events"] >= 3
            and s
        )
    )
    assert [point["bucket"] for point in series["points"]] == [
        "2026-01-02T03:03",
        "2026-01-02T03:04",
        "2026-01-02T03:05",
    ]
    assert series["points"][1]["by_type"]["click"] >= 3


def test_poison_record_is_quarantined_and_does_not_block_the_shard(local_stack):
    # GIVEN a record that is not JSON, written straight to the stream, and a good event after it
    kinesis = local_stack.client("kinesis")
    partition = f"poison-{_unique()}"
    poison = kinesis.put_record(
        StreamName=local_stack.stream_name, Data=b"\xff not json", PartitionKey=partition
    )
    good = local_stack.post_events([{"event_type": "click", "session_id": partition}])
    good_id = good["event_ids"][0]

    # THEN the good event is counted and archived (the shard moved on) ...
    local_stack.wait_until(
        lambda: any(e["event_id"] == good_id for e in local_stack.get("/stats")["recent_events"])
    )
    # ... and the poison record's raw bytes are under bad/ with the reason in the DLQ
    s3 = local_stack.client("s3")
    key = f"bad/shard={poison['ShardId']}/{poison['SequenceNumber']}.bin"
    local_stack.wait_until(
        lambda: s3.list_objects_v2(Bucket=local_stack.archive_bucket, Prefix=key).get("KeyCount")
    )
    assert (
        s3.get_object(Bucket=local_stack.archive_bucket, Key=key)["Body"].read() == b"\xff not json"
    )
    sqs = local_stack.client("sqs")
    queue_url = local_stack.resources["DeadLetterQueueUrl"]
    messages = []

    def poison_messages() -> list:
        batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        messages.extend(json.loads(m["Body"]) for m in batch.get("Messages", []))
        return [m for m in messages if m.get("sequenceNumber") == poison["SequenceNumber"]]

    found = local_stack.wait_until(poison_messages)
    assert {m["consumer"] for m in found} <= {"aggregator", "archiver"}
    assert found[0]["reason"].startswith("undecodable")
    assert found[0]["payloadLocation"].endswith(key)


@pytest.mark.parametrize(
    ("body", "content_type", "status", "field"),
    [
        (b"{not json", "application/json", 400, "body"),
        (b"[]", "application/json", 400, "body"),
        (b"", "application/json", 400, "body"),
        (b'{"records": {}}', "application/json", 400, "records"),
        (b'{"records": []}', "application/json", 400, "records"),
        (
            json.dumps({"records": [{"event_type": "click"}] * 501}).encode(),
            "application/json",
            413,
            "records",
        ),
        (
            json.dumps(
                {"records": [{"event_type": "click", "properties": {"x": "y" * 1_100_000}}]}
            ).encode(),
            "application/json",
            413,
            "body",
        ),
    ],
)
def test_whole_request_errors_are_clear_4xx(local_stack, body, content_type, status, field):
    response = requests.post(
        f"{local_stack.api_url}/events",
        data=body,
        headers={"Content-Type": content_type, **local_stack.write_headers},
        timeout=30,
    )
    assert response.status_code == status
    assert response.json()["errors"][0]["field"] == field


def test_a_request_with_no_valid_record_is_a_400_listing_each_error(local_stack):
    body = local_stack.post_events([{"event_type": "click", "value": -3}, "x"])
    assert body["_status"] == 400
    assert [(e["index"], e["field"]) for e in body["errors"]] == [(0, "value"), (1, "record")]
    assert body["processed"] == 0


def test_read_endpoints_reject_bad_parameters_with_400(local_stack):
    for path, params, field in [
        ("/metrics/timeseries", {"granularity": "week"}, "granularity"),
        ("/metrics/timeseries", {"from": "yesterday"}, "from"),
        ("/pages/top", {"limit": "lots"}, "limit"),
        ("/export", {"format": "xml"}, "format"),
    ]:
        response = requests.get(
            f"{local_stack.api_url}{path}",
            params=params,
            headers=local_stack.read_headers,
            timeout=30,
        )
        assert response.status_code == 400, path
        assert response.json()["field"] == field


def test_export_returns_archived_events_as_ndjson(local_stack):
    tag = _unique()
    # the range starts here: the first page (1,000 rows) of a day that other tests filled,
    # in whatever order they ran, need not reach this test's events
    since = (datetime.now(UTC) - timedelta(seconds=5)).isoformat()
    body = local_stack.post_events(
        [{"event_type": "click", "session_id": tag, "properties": {"tag": tag}}] * 2
    )
    wanted = set(body["event_ids"])

    def exported() -> list:
        response = requests.get(
            f"{local_stack.api_url}/export",
            params={"format": "ndjson", "from": since},
            headers=local_stack.read_headers,
            timeout=30,
        )
        rows = [json.loads(line) for line in io.StringIO(response.text) if line.strip()]
        return [row for row in rows if row["event_id"] in wanted]

    rows = local_stack.wait_until(lambda: len(found := exported()) == 2 and found, timeout=60)
    assert all(row["properties"] == {"tag": tag} for row in rows)
    assert not any("ip_address" in row for row in rows)


def test_an_export_job_and_paged_exports_carry_the_archived_events(local_stack):
    """What a user of `make local` does: page GET /export by its Link header, and ask for a
    CSV export job that the jobs function (on the jobs queue) writes to S3."""
    tag = _unique()
    since = (datetime.now(UTC) - timedelta(seconds=5)).isoformat()
    body = local_stack.post_events(
        [{"event_type": "click", "session_id": tag, "properties": {"tag": tag}}] * 3
    )
    wanted = set(body["event_ids"])

    def paged(params: dict[str, str | int]) -> dict[str, str]:
        """Every page by the Link header: event id -> timestamp, of this test's events."""
        found: dict[str, str] = {}
        response = requests.get(
            f"{local_stack.api_url}/export",
            params={"format": "ndjson", **params},
            headers=local_stack.read_headers,
            timeout=30,
        )
        while True:
            assert response.status_code == 200 and len(response.content) < 5_000_000
            for line in response.text.splitlines():
                row = json.loads(line)
                assert row["event_id"] not in found, "an event on two pages"
                found[row["event_id"]] = row["timestamp"]
            following = response.links.get("next", {}).get("url")
            if not following:
                return {key: ts for key, ts in found.items() if key in wanted}
            response = requests.get(
                local_stack.api_url + following, headers=local_stack.read_headers, timeout=30
            )

    # Other tests' events share the stack: the range is this test's own seconds, then exactly
    # its events' span, paged two rows at a time.
    times = local_stack.wait_until(
        lambda: (found := paged({"from": since})).keys() == wanted and found, timeout=60
    )
    span = {"from": min(times.values()), "to": max(times.values()), "limit": 2}
    assert paged(span).keys() == wanted
    accepted = requests.post(
        f"{local_stack.api_url}/exports",
        json={"format": "csv"},
        headers=local_stack.read_headers,
        timeout=30,
    )
    assert accepted.status_code == 202, accepted.text

    def finished() -> dict | None:
        status = requests.get(
            local_stack.api_url + accepted.json()["status_url"],
            headers=local_stack.read_headers,
            timeout=30,
        ).json()
        assert status["status"] != "failed", status
        return status if status["status"] == "succeeded" else None

    status = local_stack.wait_until(finished, timeout=90)
    csv_text = requests.get(status["url"], timeout=30).text  # the presigned URL, on moto
    assert wanted <= {line.split(",", 1)[0] for line in csv_text.splitlines()[1:]}


def test_kinesis_records_carry_the_canonical_event_and_session_partition_key(local_stack):
    tag = _unique()
    local_stack.post_events([{"event_type": "click", "session_id": tag}])
    found = local_stack.stream_records({tag})
    assert len(found) == 1
    event = found[0]
    assert event["session_id"] == tag and event["event_type"] == "click"
