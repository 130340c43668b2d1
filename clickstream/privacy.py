"""Privacy: erasing a user's events, and keeping raw IP addresses and keys out of logs.

An erasure is an asynchronous job (``clickstream.jobs``), resumable step by step:

1. **mark**: the aggregate store records the erasure (the user id only as its SHA-256). From
   then on no recent feed shows or folds the user's events, the archiver writes none of them
   (a batch's rows are filtered), and the compactor drops them from what it compacts. The
   stored feeds are cleaned with conditional writes that bump the feed's generation, which
   every fold's write is conditional on (``DynamoAggregateStore.clean_feeds``).
2. **one step per archive hour**, oldest first, resuming after the last hour done: under the
   hour's lock (the compactor takes the same one), the hour's objects are checked (only the
   ``user_id`` column is read) and, when any holds the user, rewritten the way compaction
   rewrites an hour (``compacted.parquet``, the objects read then deleted). Each step writes
   an audit item and advances the job's position with a conditional update.
3. **sweep**, once ``erasure_settle_s`` (longer than an archiver invocation can run) has
   passed since the marker: every object written since the marker is checked again, so a
   batch that read the markers just before the erasure cannot leave a row behind.
4. **done**: a summary audit item (``action = delete_user``) and the job's result.

Aggregated counters (totals, per-minute/hour/day counts, page views, funnel session bits)
hold no user id and stay. Events still in the Kinesis stream are filtered when they are
archived or folded.

Command line (runs the same steps in-process, without the queue)::

    python -m clickstream.privacy delete-user <user_id>
"""

from __future__ import annotations

import io
import sys
import uuid
from collections import defaultdict
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from clickstream.errors import RequestError
from clickstream.jobs import JobQueue, JobStore, now_iso
from clickstream.store import DynamoAggregateStore, user_hash

MAX_USER_ID_LENGTH = 256
SWEEP_MARGIN = timedelta(minutes=5)  # clock skew between S3's LastModified and ours
LOCK_RETRY_S = 30  # an hour being compacted: try again in this many seconds
STEP_BUDGET_MS = 120_000  # stop taking hours when less than this is left of the invocation


def check_user_id(user_id: str) -> str:
    if not user_id or len(user_id) > MAX_USER_ID_LENGTH:
        raise RequestError("user_id", f"must be 1 to {MAX_USER_ID_LENGTH} characters")
    return user_id


# --- the archive ---------------------------------------------------------------------------


def _read_user_ids(s3: Any, bucket: str, key: str) -> Any:
    import pyarrow.parquet as pq

    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return pq.read_table(io.BytesIO(body), columns=["user_id"])["user_id"]


def holds_user(s3: Any, bucket: str, keys: Sequence[str], user_id: str) -> bool:
    import pyarrow.compute as pc

    return any(pc.any(pc.equal(_read_user_ids(s3, bucket, key), user_id)).as_py() for key in keys)


def without_users(table: Any, hashes: Collection[str]) -> Any:
    """``table`` without the rows of the users whose id hashes are in ``hashes``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not hashes or table.num_rows == 0:
        return table
    present = [u for u in pc.unique(table["user_id"]).to_pylist() if u is not None]
    gone = [u for u in present if user_hash(u) in hashes]
    if not gone:
        return table
    drop = pc.fill_null(pc.is_in(table["user_id"], value_set=pa.array(gone, pa.string())), False)
    return table.filter(pc.invert(drop))


def rewrite_partition_without(
    s3: Any, bucket: str, prefix: str, keys: Sequence[str], user_id: str
) -> tuple[int, int]:
    """Rewrite one partition without the user's rows; returns (rows removed, objects
    deleted). Call it holding the hour's lock."""
    import pyarrow.compute as pc

    from clickstream.archive import delete_keys, read_parquet_objects, to_parquet_bytes
    from clickstream.compaction import deduplicate
    from clickstream.layout import compacted_key

    table = read_parquet_objects(s3, bucket, keys)
    keep = pc.invert(pc.fill_null(pc.equal(table["user_id"], user_id), False))
    kept = table.filter(keep)
    removed = table.num_rows - kept.num_rows
    # The rewrite is the hour's compacted object, which compaction then leaves alone: it holds
    # each event once, as compaction's would (a resent event's copies were still there).
    kept = deduplicate(kept)
    target = compacted_key(prefix)
    if kept.num_rows:
        s3.put_object(Bucket=bucket, Key=target, Body=to_parquet_bytes(kept))
    stale = [key for key in keys if key != target or not kept.num_rows]
    delete_keys(s3, bucket, stale)
    return removed, len(stale)


def next_partition(s3: Any, bucket: str, after: str) -> tuple[str, list[str]] | None:
    """The first archive hour after the hour prefix ``after`` ("" = the oldest), with all its
    keys; None past the last."""
    from clickstream.archive import list_archive_keys
    from clickstream.layout import ARCHIVE_PREFIX, partition_of

    kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": ARCHIVE_PREFIX, "MaxKeys": 1000}
    if after:
        kwargs["StartAfter"] = after + "~"  # '~' sorts after every key inside the hour
    while True:
        page = s3.list_objects_v2(**kwargs)
        for obj in page.get("Contents", []):
            prefix = partition_of(obj["Key"])
            if prefix is not None and obj["Key"].endswith(".parquet") and prefix > after:
                return prefix, list_archive_keys(s3, bucket, prefix)
        if not page.get("IsTruncated"):
            return None
        kwargs["ContinuationToken"] = page["NextContinuationToken"]


def written_since(s3: Any, bucket: str, since: datetime) -> dict[str, list[str]]:
    """Hours holding an object written at or after ``since`` (one listing of the archive;
    a year of compacted hours is nine LIST calls), each with all its keys."""
    from clickstream.layout import ARCHIVE_PREFIX, partition_of

    recent: set[str] = set()
    by_partition: dict[str, list[str]] = defaultdict(list)
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=ARCHIVE_PREFIX):
        for obj in page.get("Contents", []):
            prefix = partition_of(obj["Key"])
            if prefix is None or not obj["Key"].endswith(".parquet"):
                continue
            by_partition[prefix].append(obj["Key"])
            if obj["LastModified"] >= since:
                recent.add(prefix)
    return {prefix: by_partition[prefix] for prefix in sorted(recent)}


# --- audit -----------------------------------------------------------------------------------


def audit(
    dynamodb: Any, keys_table: str, action: str, job_id: str, the_hash: str, **fields: Any
) -> str:
    """One audit item per step (the user id only as its SHA-256)."""
    at = now_iso()
    audit_id = f"audit#{at}#{uuid.uuid4()}"
    item: dict[str, Any] = {
        "pk": {"S": audit_id},
        "action": {"S": action},
        "job_id": {"S": job_id},
        "user_hash": {"S": the_hash},
        "at": {"S": at},
    }
    for name, value in fields.items():
        if isinstance(value, bool) or value is None:
            item[name] = {"S": str(value).lower()}
        elif isinstance(value, int | float):
            item[name] = {"N": str(value)}
        elif isinstance(value, str):
            item[name] = {"S": value}
        else:
            item[name] = {"S": orjson.dumps(value).decode()}
    dynamodb.put_item(TableName=keys_table, Item=item)
    return audit_id


# --- the job's steps -------------------------------------------------------------------------


@dataclass
class ErasureContext:
    s3: Any
    dynamodb: Any
    store: DynamoAggregateStore
    jobs: JobStore
    queue: JobQueue | None  # None: run every step in-process (the CLI, tests)
    bucket: str
    keys_table: str
    settle_s: float
    remaining_ms: Callable[[], int] = lambda: 10**9
    sleep: Callable[[float], None] = lambda seconds: None


def start_erasure(
    jobs: JobStore, queue: JobQueue, user_id: str, requested_by: dict[str, Any]
) -> Any:
    """Create the job and queue its first step; the caller answers 202."""
    check_user_id(user_id)
    job = jobs.create("erasure", {"user_hash": user_hash(user_id), "requested_by": requested_by})
    queue.send({"job": job.job_id, "kind": "erasure", "step": "mark", "user_id": user_id})
    return job


def _progress(job: Any) -> dict[str, Any]:
    defaults = {
        "phase": "mark",
        "position": "",
        "partitions_checked": 0,
        "partitions_rewritten": 0,
        "objects_deleted": 0,
        "archive_rows_removed": 0,
        "feed_events_removed": 0,
        "steps": 0,
    }
    return {**defaults, **job.progress}


def run_erasure_step(ctx: ErasureContext, message: dict[str, Any]) -> None:
    """Handle one queue message of an erasure job: carry the job on from where its item says
    it is. A redelivered message resumes a step that failed; a duplicate chain loses the
    conditional update of the job's position at its first step and stops."""
    job = ctx.jobs.get(message["job"])
    if job is None or job.status in ("succeeded", "failed"):
        return
    user_id = check_user_id(str(message["user_id"]))
    if user_hash(user_id) != job.params["user_hash"]:
        return
    progress = _progress(job)
    if progress["phase"] == "mark":
        at = now_iso()
        shown = ctx.store.shown_in_feed(user_id)  # what the feed stops showing now
        if not ctx.store.mark_erased(user_id, at):
            shown = 0  # an earlier erasure hid them already
        ctx.store.clean_feeds(user_id)
        audit(ctx.dynamodb, ctx.keys_table, "erasure_step", job.job_id, job.params["user_hash"],
              step="mark", feed_events_removed=shown)  # fmt: skip
        progress |= {
            "phase": "partitions",
            "marked_at": at,
            "feed_events_removed": shown,
            "steps": progress["steps"] + 1,
        }
        ctx.jobs.update(job.job_id, status="running", progress=progress)
    if progress["phase"] == "partitions":
        _partitions(ctx, job, user_id, progress)
    elif progress["phase"] == "sweep":
        _sweep(ctx, job, user_id, progress)


def _continue(ctx: ErasureContext, job: Any, user_id: str, step: str, delay: float) -> None:
    """The job's next message (after ``delay`` seconds); in-process, the next step itself."""
    message = {"job": job.job_id, "kind": "erasure", "step": step, "user_id": user_id}
    if ctx.queue is not None:
        ctx.queue.send(message, delay_s=delay)
    else:
        ctx.sleep(delay)
        run_erasure_step(ctx, message)


def _erase_hour(
    ctx: ErasureContext, job: Any, user_id: str, prefix: str, keys: list[str]
) -> tuple[int, int] | None:
    """Check and rewrite one hour under its lock; None when the compactor holds it."""
    if not ctx.jobs.lock(prefix, job.job_id):
        return None
    try:
        from clickstream.archive import list_archive_keys

        keys = list_archive_keys(ctx.s3, ctx.bucket, prefix)  # what is there under the lock
        if not keys or not holds_user(ctx.s3, ctx.bucket, keys, user_id):
            return 0, 0
        return rewrite_partition_without(ctx.s3, ctx.bucket, prefix, keys, user_id)
    finally:
        ctx.jobs.unlock(prefix, job.job_id)


def _partitions(ctx: ErasureContext, job: Any, user_id: str, progress: dict[str, Any]) -> None:
    """One step per hour, oldest first, while the invocation has time; then the sweep."""
    while True:
        after = progress["position"]
        found = next_partition(ctx.s3, ctx.bucket, after)
        if found is None:
            progress["phase"] = "sweep"
            if not ctx.jobs.update(job.job_id, progress=progress, expect_position=after):
                return
            marked = _time(progress["marked_at"])
            wait = ctx.settle_s - (datetime.now(UTC) - marked).total_seconds()
            _continue(ctx, job, user_id, "sweep", max(0.0, wait))
            return
        prefix, keys = found
        outcome = _erase_hour(ctx, job, user_id, prefix, keys)
        if outcome is None:  # being compacted: this hour again, a little later
            _continue(ctx, job, user_id, "partitions", LOCK_RETRY_S)
            return
        removed, deleted = outcome
        audit(ctx.dynamodb, ctx.keys_table, "erasure_step", job.job_id, job.params["user_hash"],
              step="partition", partition=prefix, archive_rows_removed=removed,
              objects_deleted=deleted)  # fmt: skip
        if removed:
            _held(progress, prefix)
        progress |= {
            "position": prefix,
            "partitions_checked": progress["partitions_checked"] + 1,
            "partitions_rewritten": progress["partitions_rewritten"] + (1 if removed else 0),
            "objects_deleted": progress["objects_deleted"] + deleted,
            "archive_rows_removed": progress["archive_rows_removed"] + removed,
            "steps": progress["steps"] + 1,
        }
        if not ctx.jobs.update(job.job_id, progress=progress, expect_position=after):
            return  # another delivery of this step got there first
        if ctx.remaining_ms() < STEP_BUDGET_MS:
            _continue(ctx, job, user_id, "partitions", 0)
            return


def _sweep(ctx: ErasureContext, job: Any, user_id: str, progress: dict[str, Any]) -> None:
    marked = _time(progress["marked_at"])
    wait = ctx.settle_s - (datetime.now(UTC) - marked).total_seconds()
    if wait > 0:
        _continue(ctx, job, user_id, "sweep", wait)
        return
    removed_total = deleted_total = rewritten = 0
    for prefix, keys in written_since(ctx.s3, ctx.bucket, marked - SWEEP_MARGIN).items():
        outcome = _erase_hour(ctx, job, user_id, prefix, keys)
        if outcome is None:
            _continue(ctx, job, user_id, "sweep", LOCK_RETRY_S)
            return
        removed, deleted = outcome
        removed_total += removed
        deleted_total += deleted
        rewritten += 1 if removed else 0
        if removed:
            _held(progress, prefix)
    ctx.store.clean_feeds(user_id)  # nothing left to clean, by design; checked anyway
    feed_removed = 0
    withdrawn = _withdraw_exports(ctx, job, marked, progress)
    audit(ctx.dynamodb, ctx.keys_table, "erasure_step", job.job_id, job.params["user_hash"],
          step="sweep", archive_rows_removed=removed_total, objects_deleted=deleted_total,
          feed_events_removed=feed_removed, exports_withdrawn=len(withdrawn))  # fmt: skip
    progress |= {
        "phase": "done",
        "partitions_rewritten": progress["partitions_rewritten"] + rewritten,
        "objects_deleted": progress["objects_deleted"] + deleted_total,
        "archive_rows_removed": progress["archive_rows_removed"] + removed_total,
        "feed_events_removed": progress["feed_events_removed"] + feed_removed,
        "exports_withdrawn": len(withdrawn),
        "steps": progress["steps"] + 1,
    }
    completed = now_iso()
    audit_id = audit(
        ctx.dynamodb,
        ctx.keys_table,
        "delete_user",
        job.job_id,
        job.params["user_hash"],
        completed_at=completed,
        archive_rows_removed=progress["archive_rows_removed"],
        partitions_rewritten=progress["partitions_rewritten"],
        partitions_checked=progress["partitions_checked"],
        feed_events_removed=progress["feed_events_removed"],
        steps=progress["steps"],
        requested_by=orjson.dumps(job.params.get("requested_by") or {}).decode(),
    )
    result = {
        "user_hash": job.params["user_hash"],
        "archive_rows_removed": progress["archive_rows_removed"],
        "partitions_checked": progress["partitions_checked"],
        "partitions_rewritten": progress["partitions_rewritten"],
        "objects_deleted": progress["objects_deleted"],
        "feed_events_removed": progress["feed_events_removed"],
        "exports_withdrawn": len(withdrawn),
        "audit_id": audit_id,
        "completed_at": completed,
    }
    ctx.jobs.update(job.job_id, status="succeeded", progress=progress, result=result)


def _held(progress: dict[str, Any], prefix: str) -> None:
    """Widen the span of hours the user had rows in (what exports are checked against)."""
    progress["first_hour"] = min(progress.get("first_hour") or prefix, prefix)
    progress["last_hour"] = max(progress.get("last_hour") or prefix, prefix)


def _withdraw_exports(
    ctx: ErasureContext, job: Any, marked: datetime, progress: dict[str, Any]
) -> list[str]:
    """Export files written before the mark over hours the user had rows in are deleted and
    their jobs say so (files written since leave erased users out)."""
    from clickstream.exports import ExportRange, withdraw_exports
    from clickstream.layout import partition_start

    if not progress.get("first_hour"):
        return []
    span = ExportRange(
        partition_start(progress["first_hour"]),
        partition_start(progress["last_hour"]) + timedelta(hours=1),
    )

    def window_of(job_id: str) -> ExportRange | None:
        export = ctx.jobs.get(job_id)
        if export is None or export.kind != "export":
            return None
        return ExportRange(_time(export.params["from"]), _time(export.params["to"]))

    withdrawn = withdraw_exports(
        ctx.s3, ctx.bucket, written_before=marked + SWEEP_MARGIN, overlapping=span,
        window_of=window_of,
    )  # fmt: skip
    for export_id in withdrawn:
        ctx.jobs.update(
            export_id,
            status="withdrawn",
            error=f"withdrawn by erasure {job.job_id}: the file held rows of an erased user; "
            "start the export again",
        )
    return withdrawn


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def erase_now(ctx: ErasureContext, user_id: str, requested_by: dict[str, Any]) -> dict[str, Any]:
    """The whole job in-process (the CLI and tests): every step, waits included."""
    check_user_id(user_id)
    params = {"user_hash": user_hash(user_id), "requested_by": requested_by}
    job = ctx.jobs.create("erasure", params)
    run_erasure_step(
        ctx, {"job": job.job_id, "kind": "erasure", "step": "mark", "user_id": user_id}
    )
    done = ctx.jobs.get(job.job_id)
    assert done is not None
    return {"job_id": job.job_id, "status": done.status, **done.result}


def main(argv: Sequence[str] | None = None) -> int:
    import argparse
    import time

    from clickstream.aws import aggregate_store, client
    from clickstream.settings import get_settings

    parser = argparse.ArgumentParser(prog="python -m clickstream.privacy")
    commands = parser.add_subparsers(dest="command", required=True)
    delete = commands.add_parser("delete-user", help="erase a user's events")
    delete.add_argument("user_id")
    args = parser.parse_args(argv)
    settings = get_settings()
    ctx = ErasureContext(
        s3=client("s3"),
        dynamodb=client("dynamodb"),
        store=aggregate_store(),
        jobs=JobStore(client("dynamodb"), settings.jobs_table),
        queue=None,
        bucket=settings.archive_bucket,
        keys_table=settings.keys_table,
        settle_s=settings.erasure_settle_s,
        sleep=time.sleep,
    )
    result = erase_now(ctx, args.user_id, {"auth": "cli"})
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
