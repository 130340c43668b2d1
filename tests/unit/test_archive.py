from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb
import pyarrow.parquet as pq

from clickstream.archive import PARQUET_SCHEMA, plan_objects, to_parquet_bytes
from clickstream.layout import hour_prefixes, partition_prefix
from tests.factories import make_event, sequenced

T0 = datetime(2026, 11, 24, 10, 59, 0, tzinfo=UTC)


def test_partition_prefix_is_hive_style_by_event_hour():
    assert partition_prefix(T0) == "events/year=2026/month=11/day=24/hour=10/"


def test_hour_prefixes_cover_the_range_inclusively():
    assert hour_prefixes(T0, T0 + timedelta(hours=2)) == [
        "events/year=2026/month=11/day=24/hour=10/",
        "events/year=2026/month=11/day=24/hour=11/",
        "events/year=2026/month=11/day=24/hour=12/",
    ]


def test_a_batch_spanning_two_hours_becomes_one_object_per_partition_keyed_by_sequence_range():
    items = sequenced(
        [
            make_event(timestamp=T0),
            make_event(timestamp=T0 + timedelta(seconds=30)),
            make_event(timestamp=T0 + timedelta(minutes=2)),
        ],
        start=500,
    )
    planned = plan_objects(items, "shardId-000000000001")
    assert sorted(planned) == [
        "events/year=2026/month=11/day=24/hour=10/shardId-000000000001-500-501.parquet",
        "events/year=2026/month=11/day=24/hour=11/shardId-000000000001-502-502.parquet",
    ]


def test_redelivered_batch_plans_the_same_keys():
    items = sequenced([make_event(timestamp=T0) for _ in range(5)])
    assert plan_objects(items, "s").keys() == plan_objects(items, "s").keys()


def test_parquet_round_trip_through_duckdb_keeps_every_row(tmp_path):
    events = [
        make_event(timestamp=T0 + timedelta(seconds=i), properties={"i": i}) for i in range(250)
    ]
    for key, table in plan_objects(sequenced(events), "shardId-0").items():
        path = tmp_path / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(to_parquet_bytes(table))
    rows = duckdb.sql(
        "select count(*), count(distinct event_id), min(year), min(hour), "
        "max(json_extract(properties, '$.i')::int) "
        f"from read_parquet('{tmp_path}/events/**/*.parquet', hive_partitioning=true)"
    ).fetchall()[0]
    assert rows == (250, 250, 2026, 10, 249)


def test_files_carry_the_explicit_schema_and_zstd(tmp_path):
    table = next(iter(plan_objects(sequenced([make_event()]), "s").values()))
    path = tmp_path / "x.parquet"
    path.write_bytes(to_parquet_bytes(table))
    assert pq.read_schema(path).equals(PARQUET_SCHEMA, check_metadata=False)
    assert pq.ParquetFile(path).metadata.row_group(0).column(0).compression == "ZSTD"


def test_deduplicate_keeps_one_row_per_event_and_the_earliest_position():
    from clickstream.compaction import deduplicate

    events = [make_event(timestamp=T0 + timedelta(seconds=i)) for i in range(5)]
    first = next(iter(plan_objects(sequenced(events, start=100), "s").values()))
    replay = next(iter(plan_objects(sequenced(events[2:], start=900), "s").values()))
    import pyarrow as pa

    unique = deduplicate(pa.concat_tables([replay, first]))
    assert unique.num_rows == 5
    assert unique["sequence_number"].to_pylist() == ["100", "101", "102", "103", "104"]
