"""A user's erasure as an asynchronous, resumable job: a step per archive hour, each audited;
no race with the aggregator (the feed's generation check), the archiver (the marker, then a
sweep once every batch that read the markers before it has landed) or the compactor (the
hour's lock, and erased users filtered at compaction). The consumers' own handlers run, on
the archive and tables in moto, while the erasure runs."""

from __future__ import annotations

import io
import itertools
import json
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import boto3
import pyarrow.parquet as pq
import pytest

from clickstream.archive import list_archive_keys, plan_objects, write_objects
from clickstream.aws import aggregate_store, client
from clickstream.compaction import compact_closed_hours
from clickstream.jobs import JobStore
from clickstream.privacy import ErasureContext, erase_now
from clickstream.store import _decode
from tests.factories import make_event, sequenced
from tests.unit.route_support import (
    ARCHIVE_BUCKET,
    deliver_to_consumers,
    in_process_api,
    run_jobs,
)

GONE = "erase-me"
T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=30)
FUTURE = datetime.now(UTC) + timedelta(days=2)  # every hour is closed for the compactor


@pytest.fixture
def api(monkeypatch):
    monkeypatch.setenv("CLICKSTREAM_ERASURE_SETTLE_S", "0")
    yield from in_process_api(monkeypatch)


class Stream:
    """Batches handed to the real consumer handlers, as their event source would: one shard,
    rising sequence numbers."""

    def __init__(self) -> None:
        self.sequence = 10**20
        self.lock = threading.Lock()

    def deliver(self, events: list[Any]) -> None:
        with self.lock:
            first = self.sequence + 1
            self.sequence += len(events)
        deliver_to_consumers(events, first)


def traffic(hours: int, per_hour: int, start: datetime = T0) -> list[Any]:
    """Events of the erased user and of others over ``hours`` hours."""
    return [
        make_event(
            timestamp=start + timedelta(hours=hour, seconds=index),
            user_id=GONE if index % 3 == 0 else f"other-{index}",
            session_id=f"s-{hour}-{index}",
        )
        for hour in range(hours)
        for index in range(per_hour)
    ]


def archived_user_ids() -> list[str | None]:
    s3 = boto3.client("s3")
    ids: list[str | None] = []
    for key in list_archive_keys(s3, ARCHIVE_BUCKET):
        body = s3.get_object(Bucket=ARCHIVE_BUCKET, Key=key)["Body"].read()
        ids += pq.read_table(io.BytesIO(body), columns=["user_id"])["user_id"].to_pylist()
    return ids


def stored_feed_user_ids() -> list[str | None]:
    """The user ids in the stored feed items themselves (not only what reads show)."""
    store = aggregate_store()
    items = boto3.client("dynamodb").query(
        TableName=store.table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": "recent"}},
    )["Items"]
    return [e.get("user_id") for item in items for e in _decode(item["events"]["B"])]


def context(**overrides: Any) -> ErasureContext:
    from clickstream.settings import get_settings

    settings = get_settings()
    values: dict[str, Any] = {
        "s3": client("s3"),
        "dynamodb": client("dynamodb"),
        "store": aggregate_store(),
        "jobs": JobStore(client("dynamodb"), settings.jobs_table),
        "queue": None,
        "bucket": settings.archive_bucket,
        "keys_table": settings.keys_table,
        "settle_s": 0,
        "sleep": time.sleep,
    }
    return ErasureContext(**(values | overrides))


def audit_items() -> list[dict[str, Any]]:
    items = boto3.client("dynamodb").scan(TableName="keys")["Items"]
    return [item for item in items if item["pk"]["S"].startswith("audit#")]


def test_an_hour_an_erasure_rewrites_holds_each_event_once_as_compaction_leaves_it(api):
    """A client's resend is a second stream record of an event; until compaction the hour
    holds both. The erasure's rewrite is the hour's compacted object, so it dedupes too."""
    stream = Stream()
    events = traffic(hours=1, per_hour=12)
    stream.deliver(events)
    stream.deliver(events[1:4])  # resent after a timeout: the same ids, later positions
    erase_now(context(), GONE, {"by": "test"})
    compact_closed_hours(boto3.client("s3"), ARCHIVE_BUCKET, datetime.now(UTC))
    s3 = boto3.client("s3")
    [key] = list_archive_keys(s3, ARCHIVE_BUCKET)
    rows = pq.read_table(io.BytesIO(s3.get_object(Bucket=ARCHIVE_BUCKET, Key=key)["Body"].read()))
    kept = [event.event_id for event in events if event.user_id != GONE]
    assert sorted(rows["event_id"].to_pylist()) == sorted(kept)


def test_delete_answers_202_and_the_job_erases_every_hour_with_an_audit_item_per_step(api):
    stream = Stream()
    stream.deliver(traffic(hours=5, per_hour=30))
    aggregate_store().fold_all()
    assert GONE in archived_user_ids() and GONE in stored_feed_user_ids()
    headers = {"X-Api-Key": api["admin"]}

    answer = api["client"].http.delete(f"/users/{GONE}", headers=headers)
    assert answer.status_code == 202, answer.body
    job = json.loads(answer.body)
    assert answer.headers["Location"] == job["status_url"] == f"/erasures/{job['job_id']}"
    assert GONE not in json.dumps(job)  # only its hash
    queued = json.loads(api["client"].http.get(job["status_url"], headers=headers).body)
    assert queued["status"] == "queued"
    reader = api["client"].http.get(job["status_url"], headers={"X-Api-Key": api["read"]})
    assert reader.status_code == 403  # erasures are for admins

    run_jobs()

    done = json.loads(api["client"].http.get(job["status_url"], headers=headers).body)
    assert done["status"] == "succeeded", done
    assert done["result"]["archive_rows_removed"] == 50
    assert done["progress"]["partitions_checked"] == 5
    archived = archived_user_ids()
    assert GONE not in archived and len(archived) == 100
    assert GONE not in stored_feed_user_ids()
    steps = [item for item in audit_items() if item["job_id"]["S"] == job["job_id"]]
    # the marker, one per hour, the sweep, and the summary
    assert sorted(item.get("step", {}).get("S", "summary") for item in steps) == sorted(
        ["mark", *["partition"] * 5, "sweep", "summary"]
    )
    assert GONE not in json.dumps(steps)
    summary = next(item for item in steps if item["action"]["S"] == "delete_user")
    assert json.loads(summary["requested_by"]["S"])["role"] == "admin"
    # the user is never archived or shown again
    stream.deliver(traffic(hours=1, per_hour=9, start=T0 + timedelta(hours=2)))
    assert GONE not in archived_user_ids()
    assert all(e.get("user_id") != GONE for e in aggregate_store().recent())


def test_a_step_resumes_after_a_crash_without_redoing_the_hours_done(api, monkeypatch):
    stream = Stream()
    stream.deliver(traffic(hours=4, per_hour=12))
    from clickstream import privacy

    real, calls = privacy.rewrite_partition_without, []

    def crash_on_the_third(*args: Any) -> Any:
        calls.append(args[2])
        if len(calls) == 3:
            raise RuntimeError("the function died")
        return real(*args)

    monkeypatch.setattr(privacy, "rewrite_partition_without", crash_on_the_third)
    answer = api["client"].http.delete(f"/users/{GONE}", headers={"X-Api-Key": api["admin"]})
    job_id = json.loads(answer.body)["job_id"]
    run_jobs()  # the failed message is visible again at once in moto's queue (no wait)
    job = JobStore(client("dynamodb"), "jobs").get(job_id)
    assert job is not None and job.status == "succeeded", job
    assert job.progress["partitions_checked"] == 4
    assert len(calls) == 5 and len(set(calls)) == 4  # only the failed hour again
    assert GONE not in archived_user_ids()


def test_an_erasure_over_a_year_continues_in_new_messages_and_checks_every_hour(api, monkeypatch):
    """A year of archive takes more than one invocation: when an invocation's time runs
    short, the job goes on in a new message from the last hour done. Here every invocation
    is short of time, so each message takes one hour."""
    from clickstream import privacy

    start = T0 - timedelta(days=360)
    hours = [start + timedelta(days=15 * n, hours=n % 24) for n in range(25)]
    Stream().deliver([make_event(timestamp=h, user_id=GONE if n % 2 else "kept",
                                 session_id=f"y{n}") for n, h in enumerate(hours)])  # fmt: skip
    monkeypatch.setattr(privacy, "STEP_BUDGET_MS", 10**12)
    answer = api["client"].http.delete(f"/users/{GONE}", headers={"X-Api-Key": api["admin"]})
    job_id = json.loads(answer.body)["job_id"]
    messages = run_jobs()
    job = JobStore(client("dynamodb"), "jobs").get(job_id)
    assert job is not None and job.status == "succeeded", job
    assert job.progress["partitions_checked"] == 25 and job.result["archive_rows_removed"] == 12
    # mark and the first hour; one message per later hour; one finding no hour left; the sweep
    assert messages == 1 + 24 + 1 + 1
    partitions = [i for i in audit_items() if i.get("step", {}).get("S") == "partition"]
    assert len({i["partition"]["S"] for i in partitions}) == 25  # a step, audited, per hour
    assert GONE not in archived_user_ids() and archived_user_ids().count("kept") == 13


def test_an_hour_being_compacted_is_erased_once_the_compactor_lets_go(api):
    stream = Stream()
    stream.deliver(traffic(hours=2, per_hour=12))
    jobs = JobStore(client("dynamodb"), "jobs")
    first = list_archive_keys(client("s3"), ARCHIVE_BUCKET)[0].rsplit("/", 1)[0] + "/"
    assert jobs.lock(first, "compactor")
    waits: list[float] = []

    def compactor_finishes(seconds: float) -> None:
        waits.append(seconds)
        jobs.unlock(first, "compactor")

    result = erase_now(context(sleep=compactor_finishes), GONE, {"auth": "test"})
    assert waits and waits[0] > 0  # it waited for the lock, not rewrote beside it
    assert result["status"] == "succeeded" and result["archive_rows_removed"] == 8
    assert GONE not in archived_user_ids()


def test_a_batch_archived_with_markers_read_before_the_erasure_is_swept(api):
    """An archiver invocation that read the markers just before the erasure writes its
    object after the erasure passed that hour: the sweep, once such an invocation must have
    ended, finds it."""
    Stream().deliver(traffic(hours=3, per_hour=12))
    late = sequenced(traffic(hours=1, per_hour=6, start=T0 + timedelta(minutes=30)), start=5)

    def straggler_lands(_seconds: float) -> None:
        write_objects(client("s3"), ARCHIVE_BUCKET, plan_objects(late, "shardId-000000000009"))

    result = erase_now(context(sleep=straggler_lands), GONE, {"auth": "test"})
    assert result["status"] == "succeeded"
    assert result["archive_rows_removed"] == 12 + 2
    assert GONE not in archived_user_ids()


@pytest.mark.parametrize("with_others", [True, False], ids=["with-others", "only-the-erased"])
def test_a_fold_that_read_the_markers_before_the_erasure_cannot_put_the_feed_back(api, with_others):
    """Whether or not the fold also kept others' events, it cleans what it wrote."""
    events = [e for e in traffic(hours=1, per_hour=6) if with_others or e.user_id == GONE]
    others = sorted(e.user_id for e in events if e.user_id != GONE)
    store = aggregate_store()
    store.apply("shardId-000000000000", sequenced(events, start=1))
    real_erased, raced = store._erased, []

    def erasure_lands_between_read_and_write() -> set[str]:
        seen = real_erased()
        if not raced:  # the fold has read the markers; the erasure runs before its put
            raced.append(True)
            store.mark_erased(GONE, "2026-11-30T00:00:00Z")
            store.clean_feeds(GONE)
        return seen

    store._erased = erasure_lands_between_read_and_write  # type: ignore[method-assign]
    store.fold("shardId-000000000000")
    store._erased = real_erased  # type: ignore[method-assign]
    assert raced and sorted(stored_feed_user_ids()) == others  # type: ignore[type-var]


def test_an_erasure_racing_live_traffic_and_compactions_leaves_no_event_of_the_user(api):
    stream = Stream()
    stream.deliver(traffic(hours=12, per_hour=24))
    aggregate_store().fold_all()
    stop = threading.Event()
    errors: list[BaseException] = []
    delivered: list[int] = []
    compacted: list[Any] = []
    jobs = JobStore(client("dynamodb"), "jobs")

    def live() -> None:  # the user and others keep sending into the hours being erased
        hour = 0
        while not stop.is_set():
            # new event ids each time (make_event), into hours being erased and compacted
            stream.deliver(traffic(hours=1, per_hour=9, start=T0 + timedelta(hours=hour % 12)))
            aggregate_store().fold_all()
            hour += 1
            delivered.append(hour)

    def compactions() -> None:
        while not stop.is_set():
            compacted.extend(compact_closed_hours(client("s3"), ARCHIVE_BUCKET, FUTURE,
                             erased=aggregate_store().erased_users(), locks=jobs))  # fmt: skip

    def guarded(run: Any) -> Any:
        def wrapper() -> None:
            try:
                run()
            except BaseException as exc:
                errors.append(exc)

        return wrapper

    threads = [threading.Thread(target=guarded(run), daemon=True) for run in (live, compactions)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.5)
        waits: list[float] = []

        def short_wait(seconds: float) -> None:  # a lock retry in 0.1 s, not 30
            waits.append(seconds)
            time.sleep(min(seconds, 0.1))

        result = erase_now(context(settle_s=1.0, sleep=short_wait), GONE, {"auth": "test"})
        time.sleep(0.5)  # more traffic and compactions after the erasure
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
    assert not any(thread.is_alive() for thread in threads), "traffic or compaction never stopped"
    assert not errors, errors
    assert result["status"] == "succeeded", result
    assert len(delivered) > 3 and len(compacted) > 3, (len(delivered), len(compacted))
    print(f"\n{len(delivered)} batches and {len(compacted)} hour compactions beside the "
          f"erasure; it waited {len(waits)} times (the compactor's lock, the settling)")  # fmt: skip
    compact_closed_hours(client("s3"), ARCHIVE_BUCKET, FUTURE,
                         erased=aggregate_store().erased_users(), locks=jobs)  # fmt: skip
    archived = archived_user_ids()
    assert GONE not in archived and len(archived) > 12 * 16  # everyone else is still there
    keys = list_archive_keys(client("s3"), ARCHIVE_BUCKET)
    assert all(key.endswith("compacted.parquet") for key in keys)  # compacted files too
    assert GONE not in stored_feed_user_ids()
    assert all(e.get("user_id") != GONE for e in aggregate_store().recent())


def _start_export(api: dict[str, Any], start: datetime, end: datetime, fmt: str = "ndjson") -> str:
    body = {"from": start.isoformat(), "to": end.isoformat(), "format": fmt}
    answer = api["client"].http.post(
        "/exports", body=json.dumps(body),
        headers={"X-Api-Key": api["read"], "Content-Type": "application/json"},
    )  # fmt: skip
    assert answer.status_code == 202, answer.body
    return str(json.loads(answer.body)["job_id"])


def _export_job(api: dict[str, Any], job_id: str) -> dict[str, Any]:
    answer = api["client"].http.get(f"/exports/{job_id}", headers={"X-Api-Key": api["read"]})
    assert answer.status_code == 200, answer.body
    return dict(json.loads(answer.body))


def _export_user_ids(key: str) -> list[str | None]:
    body = boto3.client("s3").get_object(Bucket=ARCHIVE_BUCKET, Key=key)["Body"].read()
    return [json.loads(line).get("user_id") for line in body.splitlines()]


def test_export_files_written_before_an_erasure_over_the_users_hours_are_withdrawn(api):
    """A finished export is a copy of the archive: the erasure deletes the files that cover
    the user's hours (and says so on their jobs); a file over other hours stays."""
    stream = Stream()
    stream.deliver(traffic(hours=3, per_hour=12))  # the user has rows in each of the 3 hours
    later = T0 + timedelta(hours=10)
    stream.deliver([make_event(timestamp=later + timedelta(seconds=i), user_id=f"k-{i}",
                               session_id=f"k-{i}") for i in range(5)])  # fmt: skip
    hour_1 = (T0 + timedelta(hours=1), T0 + timedelta(hours=1, minutes=1))  # 12 rows, 4 the user's
    covering = _start_export(api, *hour_1)
    elsewhere = _start_export(api, later, later + timedelta(minutes=5))
    run_jobs()
    first = _export_job(api, covering)
    assert first["status"] == "succeeded"
    assert sorted(_export_user_ids(first["result"]["key"])).count(GONE) == 4
    kept = _export_job(api, elsewhere)
    assert kept["status"] == "succeeded" and kept["result"]["rows"] == 5

    answer = api["client"].http.delete(f"/users/{GONE}", headers={"X-Api-Key": api["admin"]})
    assert answer.status_code == 202
    run_jobs()

    erasure = json.loads(api["client"].http.get(
        json.loads(answer.body)["status_url"], headers={"X-Api-Key": api["admin"]}).body)  # fmt: skip
    assert erasure["status"] == "succeeded" and erasure["result"]["exports_withdrawn"] == 1
    withdrawn = _export_job(api, covering)
    assert withdrawn["status"] == "withdrawn" and "url" not in withdrawn
    assert erasure["job_id"] in withdrawn["error"]
    listed = boto3.client("s3").list_objects_v2(Bucket=ARCHIVE_BUCKET, Prefix="exports/")
    assert [o["Key"] for o in listed["Contents"]] == [kept["result"]["key"]]
    assert _export_job(api, elsewhere)["status"] == "succeeded"
    # the same range exported again holds everyone else's rows and none of the user's
    again = _start_export(api, *hour_1)
    run_jobs()
    ids = _export_user_ids(_export_job(api, again)["result"]["key"])
    assert GONE not in ids and len(ids) == 8


def test_exports_leave_an_erased_user_out_before_the_archive_is_rewritten(api):
    """Between the mark and the rewrite of the user's hours (hours, for a year of archive),
    pages and export jobs already leave the user out."""
    stream = Stream()
    stream.deliver(traffic(hours=2, per_hour=9))
    assert aggregate_store().mark_erased(GONE, "2026-11-30T00:00:00Z")
    assert GONE in archived_user_ids()  # not rewritten yet
    window = {"from": T0.isoformat(), "to": (T0 + timedelta(hours=3)).isoformat()}
    for fmt in ("ndjson", "csv"):
        page = api["client"].http.get(
            "/export?" + "&".join(f"{k}={quote(v)}" for k, v in {**window, "format": fmt}.items()),
            headers={"X-Api-Key": api["read"]},
        )
        assert page.status_code == 200 and page.headers["X-Export-Rows"] == "12", page.body
        assert GONE not in page.body.decode()
    job = _start_export(api, T0, T0 + timedelta(hours=3))
    run_jobs()
    ids = _export_user_ids(_export_job(api, job)["result"]["key"])
    assert len(ids) == 12 and GONE not in ids


def test_an_export_job_writes_its_file_again_when_an_erasure_arrives_while_it_runs(api):
    from clickstream.exports import (
        ErasedDuringExport,
        ExportRange,
        write_export_without_erased,
    )
    from clickstream.store import user_hash

    Stream().deliver(traffic(hours=1, per_hour=9))
    s3, window = client("s3"), ExportRange(T0, T0 + timedelta(hours=1))
    readings = iter([set(), {user_hash(GONE)}, {user_hash(GONE)}])  # marked during the 1st write
    written = write_export_without_erased(
        s3, ARCHIVE_BUCKET, "exports/exp-1/events.ndjson", export_format="ndjson",
        window=window, erased=lambda: next(readings),
    )  # fmt: skip
    ids = _export_user_ids(written.key)
    assert written.rows == len(ids) == 6 and GONE not in ids
    readings_made = itertools.count()  # every reading finds one more erasure
    with pytest.raises(ErasedDuringExport):
        write_export_without_erased(
            s3, ARCHIVE_BUCKET, "exports/exp-2/events.ndjson", export_format="ndjson",
            window=window, erased=lambda: set(map(str, range(next(readings_made)))),
        )  # fmt: skip
