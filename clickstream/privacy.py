"""Privacy: erasing a user's events, and keeping raw IP addresses and keys out of logs.

``delete_user`` removes every event of a ``user_id`` from

- the Parquet archive: each hour partition holding any of the user's rows is rewritten the
  way compaction rewrites it (all its objects read, the user's rows dropped, the rest
  written as ``compacted.parquet``, the objects read deleted; a partition left empty is just
  deleted), then checked again, so an archiver or compaction run that raced the rewrite
  cannot bring rows back unnoticed;
- the recent-events feed: the aggregate store records the erasure (the user id only as its
  SHA-256) and leaves the user's events out of every feed it serves or folds from then on;
  the aggregator never writes that record, so no concurrent batch can undo it.

Aggregated counters (totals, per-minute/hour/day counts, page views, funnel session bits)
hold no user id and stay. Events still in the Kinesis stream (24 h retention) cannot be
edited; were they re-delivered to the archiver, a second erasure after the retention period
removes them. The erasure is recorded as an audit item in the keys table (the user id only
as its SHA-256) and as a structured log line.

Command line, for archives too large for one API call's time limit::

    python -m clickstream.privacy delete-user <user_id>
"""

from __future__ import annotations

import io
import sys
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from clickstream.store import DynamoAggregateStore, user_hash

MAX_USER_ID_LENGTH = 256
VERIFY_PASSES = 3


class ErasureError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass
class ErasureResult:
    user_hash: str
    partitions_rewritten: list[str] = field(default_factory=list)
    objects_deleted: int = 0
    archive_rows_removed: int = 0
    feed_events_removed: int = 0
    audit_id: str = ""
    completed_at: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_user_id(user_id: str) -> str:
    if not user_id or len(user_id) > MAX_USER_ID_LENGTH:
        raise ErasureError("user_id", f"must be 1 to {MAX_USER_ID_LENGTH} characters")
    return user_id


# --- archive ---------------------------------------------------------------------------------


def _read_user_ids(s3: Any, bucket: str, key: str) -> Any:
    import pyarrow.parquet as pq

    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return pq.read_table(io.BytesIO(body), columns=["user_id"])["user_id"]


def partitions_with_user(s3: Any, bucket: str, user_id: str) -> dict[str, list[str]]:
    """Every archive partition (prefix -> all its object keys) with a row of the user."""
    import pyarrow.compute as pc

    from clickstream.archive import list_archive_keys

    by_partition: dict[str, list[str]] = defaultdict(list)
    for key in list_archive_keys(s3, bucket):
        by_partition[key.rsplit("/", 1)[0] + "/"].append(key)
    affected = {}
    for prefix, keys in sorted(by_partition.items()):
        for key in keys:
            if pc.any(pc.equal(_read_user_ids(s3, bucket, key), user_id)).as_py():
                affected[prefix] = keys
                break
    return affected


def rewrite_partition_without(
    s3: Any, bucket: str, prefix: str, keys: Sequence[str], user_id: str
) -> tuple[int, int]:
    """Rewrite one partition without the user's rows; returns (rows removed, objects
    deleted)."""
    import pyarrow.compute as pc

    from clickstream.archive import delete_keys, read_parquet_objects, to_parquet_bytes
    from clickstream.layout import compacted_key

    table = read_parquet_objects(s3, bucket, keys)
    keep = pc.invert(pc.fill_null(pc.equal(table["user_id"], user_id), False))
    kept = table.filter(keep)
    removed = table.num_rows - kept.num_rows
    target = compacted_key(prefix)
    if kept.num_rows:
        s3.put_object(Bucket=bucket, Key=target, Body=to_parquet_bytes(kept))
    stale = [key for key in keys if key != target or not kept.num_rows]
    delete_keys(s3, bucket, stale)
    return removed, len(stale)


def erase_from_archive(s3: Any, bucket: str, user_id: str, result: ErasureResult) -> None:
    for _ in range(VERIFY_PASSES):
        affected = partitions_with_user(s3, bucket, user_id)
        if not affected:
            return
        for prefix, keys in affected.items():
            removed, deleted = rewrite_partition_without(s3, bucket, prefix, keys, user_id)
            result.archive_rows_removed += removed
            result.objects_deleted += deleted
            if prefix not in result.partitions_rewritten:
                result.partitions_rewritten.append(prefix)
    if partitions_with_user(s3, bucket, user_id):
        raise RuntimeError("the archive still holds the user's rows after repeated rewrites")


# --- the whole erasure -----------------------------------------------------------------------


def record_audit(
    dynamodb: Any, keys_table: str, result: ErasureResult, requested_by: dict[str, str]
) -> str:
    audit_id = f"audit#{result.completed_at}#{uuid.uuid4()}"
    item = {
        "pk": {"S": audit_id},
        "action": {"S": "delete_user"},
        "user_hash": {"S": result.user_hash},
        "completed_at": {"S": result.completed_at},
        "archive_rows_removed": {"N": str(result.archive_rows_removed)},
        "partitions_rewritten": {"N": str(len(result.partitions_rewritten))},
        "feed_events_removed": {"N": str(result.feed_events_removed)},
        "requested_by": {"S": orjson.dumps(requested_by).decode()},
    }
    dynamodb.put_item(TableName=keys_table, Item=item)
    return audit_id


def delete_user(
    *,
    s3: Any,
    dynamodb: Any,
    store: DynamoAggregateStore,
    bucket: str,
    keys_table: str,
    user_id: str,
    requested_by: dict[str, str],
    now: datetime | None = None,
) -> ErasureResult:
    check_user_id(user_id)
    result = ErasureResult(user_hash=user_hash(user_id))
    started = (now or datetime.now(UTC)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    result.feed_events_removed = store.erase_user(user_id, started)
    erase_from_archive(s3, bucket, user_id, result)
    result.completed_at = (
        (now or datetime.now(UTC)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )
    result.audit_id = record_audit(dynamodb, keys_table, result, requested_by)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    from clickstream.aws import aggregate_store, client
    from clickstream.settings import get_settings

    parser = argparse.ArgumentParser(prog="python -m clickstream.privacy")
    commands = parser.add_subparsers(dest="command", required=True)
    delete = commands.add_parser("delete-user", help="erase a user's events")
    delete.add_argument("user_id")
    args = parser.parse_args(argv)
    settings = get_settings()
    result = delete_user(
        s3=client("s3"),
        dynamodb=client("dynamodb"),
        store=aggregate_store(),
        bucket=settings.archive_bucket,
        keys_table=settings.keys_table,
        user_id=args.user_id,
        requested_by={"auth": "cli"},
    )
    print(orjson.dumps(result.as_dict(), option=orjson.OPT_INDENT_2).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
