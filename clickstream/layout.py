"""Where things live in the archive bucket. Pure string functions (no pyarrow), so the API
and the aggregator can use them without loading the Parquet stack."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

ARCHIVE_PREFIX = "events/"
BAD_PREFIX = "bad/"
# The Hive partition columns of ``partition_prefix``, outermost first: integers, as the Glue
# table's PartitionKeys declare them.
PARTITION_COLUMNS = ("year", "month", "day", "hour")


def partition_prefix(ts: datetime) -> str:
    """Hive partitions by event hour (UTC): ``events/year=YYYY/month=MM/day=DD/hour=HH/``."""
    ts = ts.astimezone(UTC)
    return (
        f"{ARCHIVE_PREFIX}year={ts.year:04d}/month={ts.month:02d}/"
        f"day={ts.day:02d}/hour={ts.hour:02d}/"
    )


def partition_start(prefix: str) -> datetime:
    """The first instant of the hour a ``partition_prefix`` names."""
    parts = prefix[len(ARCHIVE_PREFIX) :].strip("/").split("/")
    fields = {name: int(value) for name, value in (part.split("=", 1) for part in parts)}
    return datetime(fields["year"], fields["month"], fields["day"], fields["hour"], tzinfo=UTC)


def hour_prefixes(start: datetime, end: datetime) -> list[str]:
    """Every hourly partition prefix from ``start`` to ``end`` inclusive."""
    cursor = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    prefixes = []
    while cursor <= end:
        prefixes.append(partition_prefix(cursor))
        cursor += timedelta(hours=1)
    return prefixes


def object_key(prefix: str, shard_id: str, first_sequence: str, last_sequence: str) -> str:
    """Derived from the shard and sequence range: a redelivered batch overwrites itself."""
    return f"{prefix}{shard_id}-{first_sequence}-{last_sequence}.parquet"


def compacted_key(prefix: str) -> str:
    return f"{prefix}compacted.parquet"


def partition_of(key: str) -> str | None:
    """The hour partition an archive object is in (its prefix), or None for any other key."""
    if not key.startswith(ARCHIVE_PREFIX) or "/hour=" not in key:
        return None
    return key.rsplit("/", 1)[0] + "/"


def is_archived_object(key: str) -> bool:
    """An archived Parquet object: a batch's, or an hour's ``compacted.parquet``."""
    return partition_of(key) is not None and key.endswith(".parquet")


def is_compacted(key: str) -> bool:
    return key.endswith("/compacted.parquet")


def bad_record_key(shard_id: str, sequence_number: str) -> str:
    return f"{BAD_PREFIX}shard={shard_id}/{sequence_number}.bin"
