"""The Parquet archive: explicit schema, Hive-partitioned layout by event hour, and object keys
derived from the shard and sequence range so a redelivered batch overwrites its own file
instead of adding a duplicate."""

from __future__ import annotations

import io
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from clickstream.aggregates import SequencedEvent
from clickstream.layout import ARCHIVE_PREFIX, object_key, partition_prefix
from clickstream.store import user_hash

COMPRESSION = "zstd"

PARQUET_SCHEMA = pa.schema(
    [
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("event_type", pa.string(), nullable=False),
        pa.field("timestamp", pa.timestamp("ms", tz="UTC"), nullable=False),
        pa.field("received_at", pa.timestamp("ms", tz="UTC")),
        pa.field("user_id", pa.string()),
        pa.field("session_id", pa.string()),
        pa.field("page", pa.string()),
        pa.field("page_url", pa.string()),
        pa.field("referrer", pa.string()),
        pa.field("product_id", pa.string()),
        pa.field("value", pa.float64()),
        pa.field("properties", pa.string()),  # JSON text: free-form, queryable with json_*()
        pa.field("device_type", pa.string()),
        pa.field("platform", pa.string()),
        pa.field("browser", pa.string()),
        pa.field("country", pa.string()),
        pa.field("city", pa.string()),
        pa.field("user_type", pa.string()),
        pa.field("user_agent", pa.string()),
        pa.field("ip_truncated", pa.string()),
        pa.field("schema_version", pa.int32()),
        pa.field("anonymous_id", pa.string()),
        pa.field("is_bot", pa.bool_()),
        pa.field("shard_id", pa.string()),
        pa.field("sequence_number", pa.string()),
    ]
)


def to_row(item: SequencedEvent, shard_id: str) -> dict[str, Any]:
    event = item.event
    return {
        "event_id": event.event_id,
        "event_type": event.event_type,
        "timestamp": event.timestamp,
        "received_at": event.received_at,
        "user_id": event.user_id,
        "session_id": event.session_id,
        "page": event.page,
        "page_url": event.page_url,
        "referrer": event.referrer,
        "product_id": event.product_id,
        "value": event.value,
        "properties": orjson.dumps(event.properties).decode() if event.properties else None,
        "device_type": event.device.device_type,
        "platform": event.device.platform,
        "browser": event.device.browser,
        "country": event.location.country,
        "city": event.location.city,
        "user_type": event.user_type,
        "user_agent": event.user_agent,
        "ip_truncated": event.ip_truncated,
        "schema_version": event.schema_version,
        "anonymous_id": event.anonymous_id,
        "is_bot": event.is_bot,
        "shard_id": shard_id,
        "sequence_number": item.sequence_number,
    }


def to_table(rows: Iterable[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(list(rows), schema=PARQUET_SCHEMA)


def to_parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression=COMPRESSION, use_dictionary=True)
    return sink.getvalue()


def plan_objects(
    events: Sequence[SequencedEvent],
    shard_id: str,
    erased: Collection[str] = (),
) -> dict[str, pa.Table]:
    """One Parquet object per event-hour partition touched by the batch, keyed by shard and
    the sequence range of its own records. Rows of users whose id hashes are in ``erased`` are
    left out (the key still follows the whole batch, so a redelivery overwrites the object);
    a partition left with no row gets no object."""
    by_partition: dict[str, list[SequencedEvent]] = defaultdict(list)
    for item in events:
        by_partition[partition_prefix(item.event.timestamp)].append(item)
    planned = {}
    for prefix, items in by_partition.items():
        key = object_key(prefix, shard_id, items[0].sequence_number, items[-1].sequence_number)
        kept = [
            item
            for item in items
            if not (erased and item.event.user_id and user_hash(item.event.user_id) in erased)
        ]
        if kept:
            planned[key] = to_table(to_row(item, shard_id) for item in kept)
    return planned


def write_objects(s3: Any, bucket: str, planned: dict[str, pa.Table]) -> int:
    """Upload the planned objects; returns bytes written."""
    written = 0
    for key, table in planned.items():
        body = to_parquet_bytes(table)
        s3.put_object(
            Bucket=bucket, Key=key, Body=body, ContentType="application/vnd.apache.parquet"
        )
        written += len(body)
    return written


def conform(table: pa.Table) -> pa.Table:
    """A table in today's schema: columns added since it was written are null."""
    columns = [
        table[name].cast(schema_field.type)
        if name in table.column_names
        else pa.nulls(table.num_rows, schema_field.type)
        for schema_field in PARQUET_SCHEMA
        for name in (schema_field.name,)
    ]
    return pa.Table.from_arrays(columns, schema=PARQUET_SCHEMA)


def read_parquet_objects(s3: Any, bucket: str, keys: Iterable[str]) -> pa.Table:
    tables = [
        conform(pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read())))
        for key in keys
    ]
    return pa.concat_tables(tables) if tables else PARQUET_SCHEMA.empty_table()


def delete_keys(s3: Any, bucket: str, keys: Sequence[str]) -> None:
    """Delete ``keys`` in DeleteObjects calls of at most 1,000 keys (the API's limit)."""
    for start in range(0, len(keys), 1000):
        s3.delete_objects(
            Bucket=bucket,
            Delete={"Objects": [{"Key": key} for key in keys[start : start + 1000]], "Quiet": True},
        )


def list_archive_keys(s3: Any, bucket: str, prefix: str = ARCHIVE_PREFIX) -> list[str]:
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(
            obj["Key"] for obj in page.get("Contents", []) if obj["Key"].endswith(".parquet")
        )
    return keys
