"""Figure 4 — archive size: Parquet bytes per event as the archiver writes them
(``clickstream.archive.plan_objects`` + ``to_parquet_bytes``), against gzip NDJSON of the same
events — the stream records, one per line, which is what Kinesis Data Firehose would store."""

from __future__ import annotations

import gzip
import io
import uuid
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.parquet as pq

from bench import traffic
from bench.config import RunConfig
from bench.report import FigureResult, Row, md_table
from bench.stats import median
from clickstream.aggregates import SequencedEvent
from clickstream.archive import plan_objects, to_parquet_bytes, to_row, to_table
from clickstream.ingest import encode_event

BATCH_SIZES = (100, 1_000, 10_000)
DEPLOYED_BATCH = 1_000  # infra/template.yaml: ArchiverEventSourceMapping BatchSize
FIREHOSE_BUFFER_EVENTS = 10_000  # ~5-6 MB of NDJSON: Firehose's default 5 MB buffer
TARGET = 0.40
GZIP_LEVEL = 6


def parquet_bytes(events: list[SequencedEvent], batch: int) -> tuple[int, int]:
    """(bytes, objects) the archiver writes for these events in batches of ``batch``."""
    total = objects = 0
    for start in range(0, len(events), batch):
        planned = plan_objects(events[start : start + batch], "shardId-000000000000")
        for table in planned.values():
            total += len(to_parquet_bytes(table))
            objects += 1
    return total, objects


def gzip_ndjson_bytes(lines: list[bytes], group: int) -> int:
    return sum(
        len(gzip.compress(b"\n".join(lines[i : i + group]) + b"\n", compresslevel=GZIP_LEVEL))
        for i in range(0, len(lines), group)
    )


def compacted_table(events: list[SequencedEvent]) -> pa.Table:
    """What hourly compaction leaves: one table, each event once, sorted by time (uses
    ``clickstream.compaction.deduplicate`` when present)."""
    table = to_table(to_row(item, "shardId-000000000000") for item in events)
    try:
        from clickstream.compaction import deduplicate
    except ImportError:
        return table.sort_by([("timestamp", "ascending"), ("event_id", "ascending")])
    return deduplicate(table)


def column_bytes(data: bytes) -> dict[str, int]:
    metadata = pq.ParquetFile(io.BytesIO(data)).metadata
    sizes: dict[str, int] = {}
    for group in range(metadata.num_row_groups):
        for index in range(metadata.num_columns):
            column = metadata.row_group(group).column(index)
            name = column.path_in_schema
            sizes[name] = sizes.get(name, 0) + column.total_compressed_size
    return sizes


def with_binary_uuids(table: pa.Table) -> pa.Table:
    """``event_id`` and ``session_id`` as 16-byte binary instead of 36-character text."""
    for name in ("event_id", "session_id"):
        values = []
        for text in table[name].to_pylist():
            try:
                values.append(uuid.UUID(text).bytes if text else None)
            except ValueError:
                values.append(text.encode()[:16].ljust(16, b"\0"))
        index = table.schema.get_field_index(name)
        table = table.set_column(index, name, pa.array(values, pa.binary(16)))
    return table


def parquet_with(table: pa.Table, level: int | None = None) -> int:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd", compression_level=level, use_dictionary=True)
    return len(sink.getvalue())


def run(config: RunConfig) -> FigureResult:
    result = FigureResult(4, "Archive size: Parquet vs gzip NDJSON")
    count = config.pick(20_000, 10_000)
    repeats = 3
    rate = 100.0
    samples: dict[str, list[float]] = {}
    raw_sizes: list[float] = []
    for repeat in range(repeats):
        start = datetime.now(UTC) - timedelta(seconds=count / rate)
        records = traffic.records(count, seed=config.seed + repeat, start=start, rate=rate)
        events = traffic.sequenced(traffic.to_events(records))
        lines = [encode_event(item.event.model_dump(exclude_none=True)) for item in events]
        raw_sizes.append(sum(len(line) + 1 for line in lines) / count)
        samples.setdefault("firehose", []).append(
            gzip_ndjson_bytes(lines, FIREHOSE_BUFFER_EVENTS) / count
        )
        compacted = compacted_table(events)
        compacted_bytes = to_parquet_bytes(compacted)
        samples.setdefault("compacted", []).append(len(compacted_bytes) / count)
        if repeat == 0:
            columns = column_bytes(compacted_bytes)
        binary = with_binary_uuids(compacted)
        samples.setdefault("binary uuids", []).append(parquet_with(binary) / count)
        samples.setdefault("binary uuids zstd9", []).append(parquet_with(binary, 9) / count)
        for batch in BATCH_SIZES:
            size, objects = parquet_bytes(events, batch)
            samples.setdefault(f"parquet {batch}", []).append(size / count)
            samples.setdefault(f"objects {batch}", []).append(objects)
            samples.setdefault(f"gzip {batch}", []).append(gzip_ndjson_bytes(lines, batch) / count)
    med = {name: median(values) for name, values in samples.items()}
    firehose = med["firehose"]
    for label, key in (
        (f"Parquet at the archiver's batch ({DEPLOYED_BATCH:,})", f"parquet {DEPLOYED_BATCH}"),
        ("Parquet at batch 100", "parquet 100"),
        ("Parquet after hourly compaction", "compacted"),
    ):
        result.rows.append(
            Row(
                f"{label}: bytes / event",
                med[key],
                "B",
                firehose,
                f"gzip NDJSON, {FIREHOSE_BUFFER_EVENTS:,}-event buffer",
                target=f"<= {TARGET:.0%}",
                holds=med[key] <= TARGET * firehose,
            )
        )
    result.method = (
        f"{count:,} simulator events at {rate:.0f}/s ending now (so a batch can straddle an "
        "hour partition, as in production), validated and enriched by the ingest path, in "
        "stream order. Parquet: `plan_objects` (one object per hour partition per batch, "
        "the archiver's columns incl. shard id and sequence number) + `to_parquet_bytes` "
        "(zstd, dictionary encoding), summed over the batches. Baseline: the same events' "
        f"stream records (`encode_event`) as NDJSON, gzip level {GZIP_LEVEL}, in buffers of "
        f"{FIREHOSE_BUFFER_EVENTS:,} events (~{raw_sizes[0] * FIREHOSE_BUFFER_EVENTS / 1e6:.1f}"
        " MB raw, Firehose's default 5 MB buffer). "
        f"Median of {repeats} runs with different seeds. 'After hourly compaction': all "
        "the run's events as one object per hour, deduplicated and time-sorted by "
        "`clickstream.compaction.deduplicate`, written by `to_parquet_bytes`."
    )
    result.details += [
        f"Raw NDJSON: {median(raw_sizes):.0f} bytes/event.",
        "",
        *md_table(
            (
                "batch",
                "Parquet objects",
                "Parquet B/event",
                "gzip NDJSON B/event (same batches)",
                "Parquet / gzip same batches",
                f"Parquet / gzip {FIREHOSE_BUFFER_EVENTS:,}-buffer",
            ),
            [
                (
                    f"{batch:,}",
                    int(med[f"objects {batch}"]),
                    med[f"parquet {batch}"],
                    med[f"gzip {batch}"],
                    f"{med[f'parquet {batch}'] / med[f'gzip {batch}']:.0%}",
                    f"{med[f'parquet {batch}'] / firehose:.0%}",
                )
                for batch in BATCH_SIZES
            ],
        ),
        "",
        f"Where the compacted object's bytes go ({count:,} events, B/event per column, "
        "largest first):",
        "",
        *md_table(
            ("column", "B/event", "share"),
            [
                (name, size / count, f"{size / sum(columns.values()):.0%}")
                for name, size in sorted(columns.items(), key=lambda kv: -kv[1])[:8]
            ],
        ),
        "",
        "Candidate layout changes on the compacted object (measured here, not applied):",
        "",
        *md_table(
            ("variant", "B/event", "vs gzip NDJSON buffer"),
            [
                (label, med[key], f"{med[key] / firehose:.0%}")
                for label, key in (
                    ("compacted, today's schema (zstd default level)", "compacted"),
                    ("+ event_id, session_id as binary(16)", "binary uuids"),
                    ("+ zstd level 9", "binary uuids zstd9"),
                )
            ],
        ),
    ]
    return result
