"""The archive as one SQL view in DuckDB, named like the Glue table Athena queries.

Read path: pyarrow's ``S3FileSystem`` + ``pyarrow.dataset`` registered in DuckDB, rather
than DuckDB's httpfs, whose extension is downloaded at run time from extensions.duckdb.org;
pyarrow ships in the wheel, uses the AWS SDK's default credential chain and takes the
emulator's endpoint, and DuckDB still pushes filters (partition pruning) and projections
into the dataset scan.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from clickstream.archive import PARQUET_SCHEMA
from clickstream.layout import (
    ARCHIVE_PREFIX,
    PARTITION_COLUMNS,
    is_archived_object,
    is_compacted,
    partition_of,
)

# The Glue catalog's names (infra/template.yaml GlueDatabaseName / GlueTableName defaults).
DEFAULT_DATABASE = "clickstream"
DEFAULT_TABLE = "events"
EMULATOR_CREDENTIALS = "test"  # moto and LocalStack take any key; the SDK needs one
COMPACTED_SCAN = "compacted_hours"
UNCOMPACTED_SCAN = "uncompacted_objects"
RAW_VIEW = "archive_objects"  # every archived row, copies too

PARTITIONING = ds.partitioning(
    pa.schema([pa.field(name, pa.int32()) for name in PARTITION_COLUMNS]), flavor="hive"
)
ARCHIVE_SCHEMA = pa.schema([*PARQUET_SCHEMA, *PARTITIONING.schema])

# No extension is fetched from the network: a query needing one fails with DuckDB's message.
_DUCKDB_CONFIG: dict[str, str | bool | int | float | list[str]] = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
}


class SqlError(Exception):
    """A query or the archive could not be read; the message says why, for the user."""


@dataclass(frozen=True)
class ArchiveLocation:
    """Where the archive is: a bucket, reached through AWS or an emulator's endpoint."""

    bucket: str
    region: str
    endpoint_url: str | None = None
    emulator_credentials: bool = False


def s3_endpoint(explicit: str | None = None) -> str | None:
    """The S3 endpoint the SDKs would use: an explicit one, else their own variables."""
    return (
        explicit
        or os.environ.get("AWS_ENDPOINT_URL_S3")
        or os.environ.get("AWS_ENDPOINT_URL")
        or None
    )


def s3_filesystem(location: ArchiveLocation) -> pafs.FileSystem:
    options: dict[str, Any] = {
        "region": location.region,
        "connect_timeout": 5,
        "request_timeout": 30,
    }
    if location.endpoint_url:
        parts = urlsplit(location.endpoint_url)
        options |= {"endpoint_override": parts.netloc, "scheme": parts.scheme or "https"}
    if location.emulator_credentials:
        options |= {"access_key": EMULATOR_CREDENTIALS, "secret_key": EMULATOR_CREDENTIALS}
    return pafs.S3FileSystem(**options)


@dataclass(frozen=True)
class ArchiveObjects:
    """The archive's objects as two scans: the hours that hold only their
    ``compacted.parquet`` (every event once already), and every other object."""

    compacted: ds.Dataset
    uncompacted: ds.Dataset

    @classmethod
    def uncompacted_only(cls, dataset: ds.Dataset) -> ArchiveObjects:
        return cls(ds.dataset(ARCHIVE_SCHEMA.empty_table()), dataset)


def _dataset(filesystem: pafs.FileSystem, bucket: str, keys: list[str]) -> ds.Dataset:
    return ds.dataset(
        [f"{bucket}/{key}" for key in keys],
        schema=ARCHIVE_SCHEMA,
        format="parquet",
        filesystem=filesystem,
        partitioning=PARTITIONING,
        partition_base_dir=f"{bucket}/{ARCHIVE_PREFIX.rstrip('/')}",
    )


def archive_objects(filesystem: pafs.FileSystem, bucket: str) -> ArchiveObjects:
    """Every archived object in ``bucket`` (listed once, recursively), partitioned by the
    layout's hive columns; an empty archive is two empty scans."""
    root = f"{bucket}/{ARCHIVE_PREFIX.rstrip('/')}"
    try:
        if filesystem.get_file_info(bucket).type == pafs.FileType.NotFound:
            raise SqlError(f"there is no bucket {bucket!r} (--bucket, CLICKSTREAM_ARCHIVE_BUCKET)")
        listed = filesystem.get_file_info(
            pafs.FileSelector(root, recursive=True, allow_not_found=True)
        )
    except (OSError, pa.ArrowException) as exc:
        raise SqlError(f"cannot list the archive at {root}: {exc}") from exc
    keys = sorted(
        key
        for info in listed
        if info.is_file and is_archived_object(key := info.path.removeprefix(f"{bucket}/"))
    )
    by_hour: dict[str | None, list[str]] = defaultdict(list)
    for key in keys:
        by_hour[partition_of(key)].append(key)
    settled = {hour for hour, held in by_hour.items() if len(held) == 1 and is_compacted(held[0])}
    return ArchiveObjects(
        compacted=_dataset(filesystem, bucket, [k for k in keys if partition_of(k) in settled]),
        uncompacted=_dataset(
            filesystem, bucket, [k for k in keys if partition_of(k) not in settled]
        ),
    )


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def view_sql(database: str, table: str) -> str:
    """The view: each event once, and times as UTC ``TIMESTAMP``, Glue's column type.

    Compacted hours are read as they are. Other objects may hold copies (re-cut batches,
    late objects beside a compacted one): of those the view keeps the copy compaction keeps
    (``clickstream.compaction.deduplicate``: the first to arrive, then the lowest shard and
    sequence number; Kinesis's have 56 digits, past DECIMAL(38), so they compare by length,
    then text). Copies of an event are in one hour (its event time places it), so the window
    is partitioned by hour too, and DuckDB pushes filters on the partition columns through it
    into the scans."""
    hours = ", ".join(PARTITION_COLUMNS)
    return (
        f"CREATE VIEW {_identifier(database)}.{_identifier(table)} AS "
        'SELECT * REPLACE (CAST("timestamp" AS TIMESTAMP) AS "timestamp", '
        "CAST(received_at AS TIMESTAMP) AS received_at) FROM ("
        f"SELECT * FROM {COMPACTED_SCAN} UNION ALL ("
        f"SELECT * FROM {UNCOMPACTED_SCAN} "
        f"QUALIFY row_number() OVER (PARTITION BY {hours}, event_id "
        "ORDER BY received_at, shard_id, length(sequence_number), sequence_number) = 1))"
    )


def connect(
    objects: ArchiveObjects, database: str = DEFAULT_DATABASE, table: str = DEFAULT_TABLE
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the archive as ``<database>.<table>``, and as ``<table>``
    for queries written for Athena with the Glue database as the default one; every
    archived row, copies too, as ``archive_objects``."""
    con = duckdb.connect(config=_DUCKDB_CONFIG)
    con.execute("SET TimeZone = 'UTC'")  # dates and hours of event time, as partitioned
    con.execute("SET enable_progress_bar = false")  # drawn on stdout, into the CSV or JSON
    con.register(COMPACTED_SCAN, objects.compacted)
    con.register(UNCOMPACTED_SCAN, objects.uncompacted)
    con.execute(
        f"CREATE VIEW {RAW_VIEW} AS "
        f"SELECT * FROM {COMPACTED_SCAN} UNION ALL SELECT * FROM {UNCOMPACTED_SCAN}"
    )
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {_identifier(database)}")
    con.execute(view_sql(database, table))
    if database != "main":
        con.execute(
            f"CREATE VIEW main.{_identifier(table)} AS "
            f"SELECT * FROM {_identifier(database)}.{_identifier(table)}"
        )
    return con


def open_archive(
    location: ArchiveLocation,
    *,
    database: str = DEFAULT_DATABASE,
    table: str = DEFAULT_TABLE,
    filesystem: pafs.FileSystem | None = None,
) -> duckdb.DuckDBPyConnection:
    """DuckDB over the archive at ``location`` (``filesystem`` replaces S3, e.g. in tests)."""
    fs = filesystem if filesystem is not None else s3_filesystem(location)
    return connect(archive_objects(fs, location.bucket), database, table)


def query(
    con: duckdb.DuckDBPyConnection, sql: str, batch_rows: int = 10_000
) -> pa.RecordBatchReader | None:
    """The result of ``sql`` as Arrow batches, or None for a statement that returns none."""
    try:
        relation = con.sql(sql)
        return None if relation is None else relation.to_arrow_reader(batch_rows)
    except duckdb.Error as exc:
        raise SqlError(str(exc)) from exc
