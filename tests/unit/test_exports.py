"""Exports: ``GET /export`` pages through a large archive with an opaque cursor, each event
once, every response under 5 MB, the memory of one page bounded whatever the range holds; the
four formats carry the same events; ``POST /exports`` writes the whole range to S3 as a job.

The archive is written directly with the archiver's own functions (``to_table``,
``to_parquet_bytes``, ``object_key``) into moto, with a redelivered copy of part of an hour."""

from __future__ import annotations

import csv
import io
import json
import os
import threading
import time
import tracemalloc
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import requests

from clickstream.archive import object_key, to_parquet_bytes, to_table
from clickstream.layout import partition_prefix
from tests.unit.route_support import ARCHIVE_BUCKET, run_jobs

START = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)
# 30,000 in the fast tier; `make soak` runs the same test with 200,000
# (CLICKSTREAM_EXPORT_TEST_EVENTS), which takes about a minute on two busy cores.
EVENTS = int(os.environ.get("CLICKSTREAM_EXPORT_TEST_EVENTS", "30000"))
HOURS = 6
MAX_RESPONSE = 5_000_000


def write_archive(count: int, hours: int = HOURS) -> list[str]:
    """``count`` events over ``hours`` hours, two shards' objects per hour, and a re-cut batch
    that archived 1,000 rows of the first hour a second time. Returns the event ids."""
    s3 = boto3.client("s3")
    ids = [str(uuid.UUID(int=i + 1)) for i in range(count)]
    per_hour = count // hours
    for hour in range(hours):
        chunk = ids[hour * per_hour : count if hour == hours - 1 else (hour + 1) * per_hour]
        base = START + timedelta(hours=hour)
        step = timedelta(hours=1) / (len(chunk) + 1)
        rows = [
            {
                "event_id": event_id,
                "event_type": "page_view" if index % 3 else "click",
                "timestamp": base + step * index,
                "received_at": base + step * index,
                "user_id": f"user-{index % 5000}",
                "session_id": f"session-{index % 20000}",
                "page": f"/products/{index % 300}",
                "page_url": f"https://shop.example/products/{index % 300}?ref=mail",
                "referrer": "https://search.example/?q=shoes",
                "properties": json.dumps({"index": index, "tag": "export"}),
                "device_type": "desktop",
                "browser": "Firefox",
                "country": "DE",
                "user_agent": "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101",
                "ip_truncated": "203.0.113.0",
                "schema_version": 2,
                "is_bot": False,
                "shard_id": f"shardId-00000000000{index % 2}",
                "sequence_number": str(10**20 + hour * 10**6 + index),
            }
            for index, event_id in enumerate(chunk)
        ]
        prefix = partition_prefix(base)
        for shard in (0, 1):
            mine = [row for row in rows if row["shard_id"].endswith(str(shard))]
            key = object_key(prefix, f"shardId-00000000000{shard}", mine[0]["sequence_number"],
                             mine[-1]["sequence_number"])  # fmt: skip
            s3.put_object(Bucket=ARCHIVE_BUCKET, Key=key, Body=to_parquet_bytes(to_table(mine)))
        if hour == 0:  # a bisected batch's second copy: later stream positions
            again = [dict(row, sequence_number=str(int(row["sequence_number"]) + 10**9))
                     for row in rows[:1000]]  # fmt: skip
            key = object_key(prefix, "shardId-000000000000", again[0]["sequence_number"],
                             again[-1]["sequence_number"])  # fmt: skip
            s3.put_object(Bucket=ARCHIVE_BUCKET, Key=key, Body=to_parquet_bytes(to_table(again)))
    return ids


def iso(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")


class ArrowPeak:
    """The peak of pyarrow's allocations while running, sampled every millisecond."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()

    def __enter__(self) -> ArrowPeak:
        self._base = pa.total_allocated_bytes()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.001):
            self.peak = max(self.peak, pa.total_allocated_bytes() - self._base)

    def __exit__(self, *_: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, pa.total_allocated_bytes() - self._base)


def page_through(
    api, export_format: str, limit: int, hours: int = HOURS
) -> tuple[list[bytes], list[int], int]:
    """Every page of the range, following the Link header; (bodies, their sizes, the largest
    Python + Arrow memory one request needed)."""
    path = (
        f"/export?format={export_format}&limit={limit}"
        f"&from={iso(START)}&to={iso(START + timedelta(hours=hours) - timedelta(milliseconds=1))}"
    )
    bodies, sizes, peak = [], [], 0
    headers = {"X-Api-Key": api["read"], "Accept": "application/vnd.apache.parquet"}
    if export_format != "parquet":
        headers.pop("Accept")
    # Warm: the clients and modules a first request loads are not the export's memory.
    api["client"].http.get(path + "&limit=1", headers=headers)
    tracemalloc.start()
    try:
        while path:
            before = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            with ArrowPeak() as arrow:
                response = api["client"].http.get(path, headers=headers)
            python_peak = tracemalloc.get_traced_memory()[1] - before
            peak = max(peak, python_peak + arrow.peak)
            assert response.status_code == 200, response.body[:300]
            body = response.body
            sizes.append(len(body))
            bodies.append(body)
            link = response.headers.get("Link") or response.headers.get("link")
            path = link[1 : link.index(">")] if link else ""
            if export_format == "json":
                assert json.loads(body)["next"] == (path or None)
    finally:
        tracemalloc.stop()
    return bodies, sizes, peak


def ids_of(export_format: str, body: bytes) -> list[str]:
    if export_format == "json":
        return [row["event_id"] for row in json.loads(body)["events"]]
    if export_format == "ndjson":
        return [json.loads(line)["event_id"] for line in body.splitlines() if line]
    if export_format == "csv":
        return [row["event_id"] for row in csv.DictReader(io.StringIO(body.decode()))]
    return pq.read_table(io.BytesIO(body), columns=["event_id"])["event_id"].to_pylist()


def test_a_large_range_pages_out_each_event_once_under_5_mb_with_bounded_memory(api):
    ids = write_archive(EVENTS)
    started = time.perf_counter()
    bodies, sizes, peak = page_through(api, "ndjson", 10_000)
    exported = [event_id for body in bodies for event_id in ids_of("ndjson", body)]
    assert len(exported) == len(ids) and set(exported) == set(ids)  # all, each once
    assert max(sizes) <= MAX_RESPONSE
    whole = sum(sizes)
    # Bounded: a request over the 6-hour range needs no more memory than one over one hour
    # (the old export loaded the whole range: six times as much), and far less than the
    # whole answer.
    _, _, one_hour_peak = page_through(api, "ndjson", 10_000, hours=1)
    assert peak < 1.5 * one_hour_peak, (peak, one_hour_peak)
    assert peak < 120_000_000, peak
    print(f"\n{len(ids)} events, {len(sizes)} pages, largest {max(sizes):,} B, whole "
          f"{whole / 1e6:.0f} MB; peak {peak / 1e6:.1f} MB per request (one hour's range: "
          f"{one_hour_peak / 1e6:.1f} MB), {time.perf_counter() - started:.1f} s")  # fmt: skip


@pytest.mark.parametrize("export_format", ["json", "ndjson", "csv", "parquet"])
def test_every_format_pages_the_same_events_in_the_same_order(api, export_format):
    ids = write_archive(3_000)
    bodies, sizes, _ = page_through(api, export_format, 350)
    exported = [event_id for body in bodies for event_id in ids_of(export_format, body)]
    assert exported == sorted(ids, key=ids.index)  # time order = the order written
    assert len(bodies) == -(-3_000 // 350)
    assert max(sizes) <= MAX_RESPONSE


def test_pages_stop_at_the_byte_budget_before_the_row_limit(api, monkeypatch):
    write_archive(3_000, hours=1)
    from clickstream import exports

    monkeypatch.setattr(exports, "MAX_PAGE_BYTES", 200_000)
    bodies, sizes, _ = page_through(api, "json", 10_000)
    assert len(bodies) > 3 and max(sizes) <= 200_000
    assert sum(len(ids_of("json", body)) for body in bodies) == 3_000


def test_a_parquet_page_needs_an_accept_header_naming_it(api):
    response = api["client"].http.get("/export?format=parquet", headers={"X-Api-Key": api["read"]})
    assert response.status_code == 406
    assert json.loads(response.body)["field"] == "Accept"


def test_a_cursor_that_was_not_given_out_is_a_400_naming_it(api):
    for cursor in ("nonsense", "eyJ2IjoyfQ", "e30"):
        response = api["client"].http.get(
            f"/export?cursor={cursor}", headers={"X-Api-Key": api["read"]}
        )
        assert response.status_code == 400
        assert json.loads(response.body)["field"] == "cursor"


def test_a_new_event_in_a_paged_hour_and_a_compaction_between_pages_change_nothing(api):
    """The cursor is a position, not an offset: the hour compacted between two pages (its
    redelivered copies gone) neither repeats nor skips an event."""
    from clickstream.compaction import compact_hours

    ids = write_archive(3_000, hours=1)
    path = f"/export?format=ndjson&limit=1000&from={iso(START)}"
    seen: list[str] = []
    pages = 0
    while path:
        response = api["client"].http.get(path, headers={"X-Api-Key": api["read"]})
        seen += ids_of("ndjson", response.body)
        if pages == 0:
            compact_hours(boto3.client("s3"), ARCHIVE_BUCKET, START, START)
        pages += 1
        link = response.headers.get("Link")
        path = link[1 : link.index(">")] if link else ""
    assert len(seen) == len(set(seen)) == len(ids)


@pytest.mark.parametrize("export_format", ["json", "ndjson", "csv", "parquet"])
def test_an_export_job_writes_the_range_to_s3_and_answers_a_presigned_url(api, export_format):
    ids = write_archive(3_000, hours=3)
    headers = {"X-Api-Key": api["read"], "Content-Type": "application/json"}
    body = {"format": export_format, "from": START.isoformat(), "to": "2026-11-21T00:00:00Z"}
    answer = api["client"].http.post("/exports", body=json.dumps(body), headers=headers)
    assert answer.status_code == 202, answer.body
    job = json.loads(answer.body)
    assert answer.headers["Location"] == job["status_url"] == f"/exports/{job['job_id']}"
    status = json.loads(api["client"].http.get(job["status_url"], headers=headers).body)
    assert status["status"] == "queued" and "url" not in status

    assert run_jobs() == 1

    status = json.loads(api["client"].http.get(job["status_url"], headers=headers).body)
    assert status["status"] == "succeeded", status
    assert status["result"]["rows"] == len(ids)
    url = urlparse(status["url"])
    assert "X-Amz-Signature" in parse_qs(url.query) or "Signature" in parse_qs(url.query)
    data = requests.get(status["url"], timeout=30).content
    assert len(data) == status["result"]["bytes"]
    assert sorted(ids_of(export_format, data)) == sorted(ids)


def test_export_status_of_an_unknown_job_is_a_404(api):
    headers = {"X-Api-Key": api["read"]}
    for job_id in ("exp-" + "0" * 32, "nonsense", "era-" + "1" * 32):
        response = api["client"].http.get(f"/exports/{job_id}", headers=headers)
        assert response.status_code == 404


class UploadsCounted:
    """The S3 client, but a multipart upload's parts are counted, not kept: moto would hold
    the whole file in this process's memory, which is S3's, not the job's."""

    def __init__(self, s3: Any) -> None:
        self.s3, self.bytes = s3, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.s3, name)

    def create_multipart_upload(self, **_: Any) -> dict[str, str]:
        return {"UploadId": "counted"}

    def upload_part(self, **kwargs: Any) -> dict[str, str]:
        self.bytes += len(kwargs["Body"])
        return {"ETag": "counted"}

    def complete_multipart_upload(self, **_: Any) -> None:
        return None


def test_an_export_jobs_memory_does_not_grow_with_its_range(api, monkeypatch):
    """The job streams hour by hour into parts: six hours need what one hour does. (Parts of
    1 MB here, so that one hour's file fills parts too; the job's are 8 MB.)"""
    from clickstream import exports
    from clickstream.exports import ExportRange, write_export

    monkeypatch.setattr(exports, "PART_BYTES", 1024 * 1024)
    write_archive(EVENTS)
    peaks = {}
    for hours in (1, HOURS):
        s3 = UploadsCounted(boto3.client("s3"))
        window = ExportRange(START, START + timedelta(hours=hours) - timedelta(milliseconds=1))
        tracemalloc.start()
        with ArrowPeak() as arrow:
            written = write_export(s3, ARCHIVE_BUCKET, "k", export_format="ndjson", window=window)
        peaks[hours] = tracemalloc.get_traced_memory()[1] + arrow.peak
        tracemalloc.stop()
        assert written.bytes == s3.bytes and written.rows == (
            EVENTS if hours == HOURS else EVENTS // HOURS
        )
    print(f"\nexport job peak: {peaks[1] / 1e6:.1f} MB for one hour, "
          f"{peaks[HOURS] / 1e6:.1f} MB for {HOURS} ({s3.bytes / 1e6:.0f} MB written)")  # fmt: skip
    assert peaks[HOURS] < 1.5 * peaks[1], peaks
