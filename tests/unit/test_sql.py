"""SQL over the archive (``clickstream.sql``): simulated journeys archived by the archiver's
own functions, read back through the view. The view holds each event once (the copy
compaction keeps), reads only the hour partitions a query filters on, and the shipped sample
queries give the numbers the simulator's ledger gives, for several seeds. Each sample also
parses as Athena's SQL, and sqlglot's Athena-to-DuckDB reading of it gives the same rows.

The ledger tests read a directory laid out as the bucket (pyarrow's local filesystem, fast);
the S3 tests read moto's server on loopback through pyarrow's S3 client, as the CLI does."""

from __future__ import annotations

import itertools
import json
import re
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import boto3
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pytest
import sqlglot
from hypothesis import given, settings
from hypothesis import strategies as st

from clickstream.aggregates import SequencedEvent
from clickstream.archive import (
    list_archive_keys,
    plan_objects,
    read_parquet_objects,
    write_objects,
)
from clickstream.compaction import compact_partition, deduplicate
from clickstream.enrich import to_event
from clickstream.layout import ARCHIVE_PREFIX, PARTITION_COLUMNS, compacted_key, partition_prefix
from clickstream.schema import Event, parse_incoming
from clickstream.sql import (
    DEFAULT_DATABASE,
    DEFAULT_TABLE,
    ArchiveLocation,
    ArchiveObjects,
    SqlError,
    archive_objects,
    connect,
    open_archive,
    query,
    sample_queries,
)
from clickstream.sql.__main__ import location, main, parser
from clickstream.sql.view import ARCHIVE_SCHEMA, PARTITIONING
from infra.template import load_template
from localdev.harness import embedded_emulator
from simulator.catalogue import SOURCES
from simulator.config import SimulatorConfig
from simulator.journeys import Simulation
from simulator.ledger import BOT_AGENTS, Delivery, Ledger, Tally

BUCKET = "archive"
START = datetime(2026, 11, 23, 20, tzinfo=UTC)
# Kinesis's sequence numbers have 56 digits: longer than DECIMAL(38) holds.
FIRST_SEQUENCE = 49590338271490256608559692538361571095921575989136588898


# --- archiving simulated journeys as the archiver does -------------------------------------


class DirectoryBucket:
    """The ``put_object`` the archiver's ``write_objects`` calls, into ``root/<bucket>/``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def put_object(self, *, Bucket: str, Key: str, Body: bytes, **_: Any) -> None:
        target = self.root / Bucket / Key
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(Body)


def simulated_records(seed: int, users: int, count: int) -> list[dict[str, Any]]:
    """About three days of shoppers (20:00 on the 23rd to the 26th): returning visitors,
    bots, every journey kind."""
    sim = Simulation(SimulatorConfig(), seed=seed, start=START, users=users, rate=0.01)
    return [event.record for event in itertools.islice(sim, count)]


def canonical(records: list[dict[str, Any]]) -> list[Event]:
    """What ingest puts on the stream for each record."""
    events = []
    for index, record in enumerate(records):
        incoming = parse_incoming(index, record)
        assert not isinstance(incoming, list), incoming
        received = datetime.fromisoformat(record["timestamp"]) + timedelta(milliseconds=150)
        events.append(to_event(incoming, received_at=received))
    return events


def archive_events(
    bucket: Any, events: list[Event], *, shards: int = 2, batch_size: int = 100
) -> None:
    """Each shard's records in Lambda-sized batches, one object per hour a batch touches; a
    batch in five is bisected after an error and its second half archived again (the only
    way the archive gets a second copy of a record)."""
    by_shard: dict[str, list[SequencedEvent]] = defaultdict(list)
    for event in events:
        shard = f"shardId-{zlib.crc32(event.partition_key.encode()) % shards:012d}"
        position = FIRST_SEQUENCE + 1000 * len(by_shard[shard])
        by_shard[shard].append(SequencedEvent(str(position), event))
    for shard, stream in by_shard.items():
        for number, start in enumerate(range(0, len(stream), batch_size)):
            batch = stream[start : start + batch_size]
            write_objects(bucket, BUCKET, plan_objects(batch, shard))
            if number % 5 == 2:
                write_objects(bucket, BUCKET, plan_objects(batch[len(batch) // 2 :], shard))


# --- what the ledger says, computed from the records, without SQL --------------------------


def _human(record: dict[str, Any]) -> bool:
    return record.get("user_agent") not in BOT_AGENTS


def _day(record: dict[str, Any]) -> date:
    return datetime.fromisoformat(record["timestamp"]).date()


def _order(record: dict[str, Any]) -> tuple[str, str]:
    return (record["timestamp"], record["event_id"])  # ISO strings in one format sort as times


def expected_funnel_by_day(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_day: dict[date, Tally] = defaultdict(Tally)
    for record in records:
        by_day[_day(record)].add(record)
    rows = []
    for day, tally in sorted(by_day.items()):
        funnel = tally.as_dict()["funnel"]
        if tally.events:
            rows.append(
                {
                    "event_date": day,
                    "viewed": funnel["page_view"],
                    "added_to_cart": funnel["add_to_cart"],
                    "checked_out": funnel["checkout"],
                    "purchased": funnel["purchase"],
                }
            )
    return rows


def expected_retention(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    active = {(r["user_id"], _day(r)) for r in records if _human(r) and r.get("user_id")}
    first: dict[str, date] = {}
    for user, day in active:
        first[user] = min(day, first.get(user, day))
    cells = Counter((first[user], (day - first[user]).days) for user, day in active)
    return [
        {"cohort_date": cohort, "days_since_first": days, "users": users}
        for (cohort, days), users in sorted(cells.items())
    ]


def _sessions(records: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    sessions: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        if _human(record) and record.get("session_id"):
            sessions[record["session_id"]].append(record)
    return {session: sorted(events, key=_order) for session, events in sessions.items()}


def _nulls_last(value: str | None) -> tuple[bool, str]:
    return (value is None, value or "")


def expected_top_paths(records: list[dict[str, Any]], limit: int = 25) -> list[dict[str, Any]]:
    paths: Counter[tuple[str | None, ...]] = Counter()
    for events in _sessions(records).values():
        pages = [e["page"] for e in events if e["event_type"] == "page_view" and e.get("page")]
        if pages:
            paths[tuple([*pages, None, None][:3])] += 1
    ranked = sorted(
        paths.items(),
        key=lambda item: (-item[1], item[0][0], _nulls_last(item[0][1]), _nulls_last(item[0][2])),
    )
    return [
        {"first_page": a, "second_page": b, "third_page": c, "sessions": n}
        for (a, b, c), n in ranked[:limit]
    ]


def _source(referrer: str | None) -> str:
    return (urlsplit(referrer).hostname or referrer) if referrer else "(direct)"


def expected_sessions_per_source(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    sessions: Counter[str] = Counter()
    purchasing: Counter[str] = Counter()
    for events in _sessions(records).values():
        source = _source(events[0].get("referrer"))
        sessions[source] += 1
        purchasing[source] += any(e["event_type"] == "purchase" for e in events)
    return [
        {"source": source, "sessions": n, "purchasing_sessions": purchasing[source]}
        for source, n in sorted(sessions.items(), key=lambda item: (-item[1], item[0]))
    ]


EXPECTED = {
    "funnel_by_day": expected_funnel_by_day,
    "retention_cohorts": expected_retention,
    "top_paths": expected_top_paths,
    "sessions_per_source": expected_sessions_per_source,
}


# --- the simulated archives ------------------------------------------------------------------


@dataclass
class SimulatedArchive:
    records: list[dict[str, Any]]
    ledger: Ledger
    con: Any
    answers: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def rows(self, sql: str) -> list[dict[str, Any]]:
        """The rows of ``sql`` (asked once per archive: the archive does not change)."""
        if sql not in self.answers:
            reader = query(self.con, sql)
            assert reader is not None
            self.answers[sql] = reader.read_all().to_pylist()
        return self.answers[sql]


@pytest.fixture(scope="module", params=[(1, 20), (2, 35), (7, 12)], ids=lambda p: f"seed{p[0]}")
def simulated(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> SimulatedArchive:
    seed, users = request.param
    records = simulated_records(seed, users, count=2000)
    root = tmp_path_factory.mktemp(f"archive-{seed}")
    archive_events(DirectoryBucket(root), canonical(records))
    ledger = Ledger()
    ledger.record(records, Delivery(accepted_ids=[r["event_id"] for r in records]))
    filesystem = pafs.SubTreeFileSystem(str(root), pafs.LocalFileSystem())
    return SimulatedArchive(records, ledger, open_archive(_location(), filesystem=filesystem))


def _location(endpoint: str | None = None) -> ArchiveLocation:
    return ArchiveLocation(BUCKET, "us-east-1", endpoint, emulator_credentials=True)


def test_the_view_holds_every_accepted_event_once_though_the_archive_holds_copies(simulated):
    ids = [row["event_id"] for row in simulated.rows("SELECT event_id FROM events")]
    raw = simulated.rows("SELECT count(*) AS n FROM archive_objects")[0]["n"]
    assert sorted(ids) == sorted(simulated.ledger.accepted_ids)
    assert raw > len(ids)  # the re-cut batches' copies are there, and not in the view
    qualified = simulated.rows(f"SELECT count(*) AS n FROM {DEFAULT_DATABASE}.{DEFAULT_TABLE}")
    assert qualified == [{"n": len(ids)}]


def test_the_views_ledger_totals_match(simulated):
    accepted = simulated.ledger.accepted.as_dict()
    [totals] = simulated.rows(
        "SELECT count(*) AS events, count(DISTINCT session_id) AS sessions, "
        "round(sum(CASE WHEN event_type = 'purchase' THEN value END), 2) AS revenue "
        "FROM events WHERE NOT is_bot"
    )
    assert totals == {
        "events": accepted["events"],
        "sessions": accepted["sessions"],
        "revenue": accepted["revenue"],
    }


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_sample_query_gives_the_ledgers_numbers(simulated, name):
    expected = EXPECTED[name](simulated.records)
    assert len(expected) > 1
    assert simulated.rows(sample_queries()[name].sql) == expected


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_sample_query_read_as_athena_sql_gives_the_same_rows(simulated, name):
    """sqlglot parses the sample as Athena's SQL and writes it back as DuckDB's: the rows
    are those of the sample as written (the functions mean the same in both)."""
    sql = sample_queries()[name].sql
    [athena] = sqlglot.parse(sql, read="athena")
    assert athena is not None
    assert simulated.rows(athena.sql(dialect="duckdb")) == simulated.rows(sql)


def test_sessions_per_source_add_up_to_the_ledgers_channels_and_purchases(simulated):
    rows = simulated.rows(sample_queries()["sessions_per_source"].sql)
    channel_of_host = {_source(source.referrer): source.channel for source in SOURCES.items}
    channels: Counter[str] = Counter()
    for row in rows:
        channels[channel_of_host.get(row["source"], "Referral")] += row["sessions"]
    accepted = simulated.ledger.accepted.as_dict()
    assert dict(channels) == accepted["visits_by"]["channel"]
    purchased = simulated.ledger.accepted.funnel["purchase"]  # sessions with a purchase
    assert sum(row["purchasing_sessions"] for row in rows) == len(purchased)


def test_the_samples_cover_the_four_analyses_and_describe_themselves():
    samples = sample_queries()
    assert set(samples) == set(EXPECTED)
    for sample in samples.values():
        assert sample.description and "events" in sample.sql


# --- the view against the Glue table and the layout -----------------------------------------


def test_the_view_is_named_and_typed_like_the_glue_table():
    template = load_template()
    parameters, table = template["Parameters"], template["Resources"]["EventsTable"]
    assert parameters["GlueDatabaseName"]["Default"] == DEFAULT_DATABASE
    assert parameters["GlueTableName"]["Default"] == DEFAULT_TABLE
    table_input = table["Properties"]["TableInput"]
    glue = [c["Name"] for c in table_input["StorageDescriptor"]["Columns"]]
    keys = [c["Name"] for c in table_input["PartitionKeys"]]
    assert tuple(keys) == PARTITION_COLUMNS
    assert ARCHIVE_SCHEMA.names == glue + keys


@settings(max_examples=50, deadline=None)
@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31)))
def test_the_views_partitioning_reads_the_hour_the_layout_writes(moment):
    moment = moment.replace(tzinfo=UTC)
    key = compacted_key(partition_prefix(moment))  # the dataset's root is the prefix
    parsed = ds.get_partition_keys(PARTITIONING.parse(key.removeprefix(ARCHIVE_PREFIX)))
    assert parsed == {
        "year": moment.year,
        "month": moment.month,
        "day": moment.day,
        "hour": moment.hour,
    }


class RequestLog:
    """The emulator's request lines (werkzeug's access log): which objects a reader opened,
    counted outside this process, where no GIL is shared with Arrow's IO threads (a Python
    filesystem here once deadlocked against pyarrow's ``Scanner.to_reader``)."""

    _LINE = re.compile(r'"(?:\x1b\[[0-9;]*m)*(GET|HEAD) (/[^ ?"]+) HTTP/')

    def __init__(self, path: Path) -> None:
        self.path = path
        self.mark = 0

    def start(self) -> None:
        self.mark = self.path.stat().st_size

    def objects_read(self) -> set[str]:
        """``bucket/key`` of each object GET since ``start`` (listings carry a query)."""
        with self.path.open("rb") as log:
            log.seek(self.mark)
            lines = log.read().decode("utf-8", "replace")
        return {
            unquote(path.removeprefix("/"))
            for method, path in self._LINE.findall(lines)
            if method == "GET" and path.count("/") > 1
        }


# --- S3 through moto's server ---------------------------------------------------------------


@pytest.fixture(scope="module")
def emulator_requests(tmp_path_factory: pytest.TempPathFactory) -> RequestLog:
    return RequestLog(tmp_path_factory.mktemp("emulator") / "requests.log")


@pytest.fixture(scope="module")
def emulator(emulator_requests: RequestLog) -> Iterator[str]:
    """moto's server in its own process, as ``make sql`` meets it: in this one (a thread),
    DuckDB's scan, Arrow's reads and the server's request threads would contend for one GIL."""
    with embedded_emulator(request_log=emulator_requests.path) as url:
        yield url


@pytest.fixture
def s3(emulator: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    client = boto3.client("s3", endpoint_url=emulator, region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    yield client
    keys = list_archive_keys(client, BUCKET, "")
    if keys:
        client.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": k} for k in keys]})
    client.delete_bucket(Bucket=BUCKET)


def _events_across_days(count: int, hours: int) -> list[Event]:
    records = simulated_records(seed=11, users=15, count=count)
    events = canonical(records)
    first = min(e.timestamp for e in events)
    assert max(e.timestamp for e in events) - first > timedelta(hours=hours)
    return events


def test_a_query_on_some_hours_opens_only_their_objects(s3, emulator, emulator_requests):
    archive_events(s3, _events_across_days(600, hours=12), batch_size=40)
    keys = list_archive_keys(s3, BUCKET, "events/")
    con = open_archive(_location(emulator))
    hours = sorted({key.rsplit("/", 1)[0] for key in keys})
    assert len(hours) > 10
    for hour in (hours[3], hours[len(hours) // 2]):
        parts = dict(part.split("=") for part in hour.split("/")[1:])
        where = " AND ".join(f"{name} = {int(parts[name])}" for name in PARTITION_COLUMNS)
        emulator_requests.start()
        [row] = query(con, f"SELECT count(*) AS n FROM events WHERE {where}").read_all().to_pylist()
        in_hour = {f"{BUCKET}/{key}" for key in keys if key.startswith(hour + "/")}
        assert row["n"] > 0
        assert emulator_requests.objects_read() == in_hour
    day = hours[len(hours) // 2].split("/hour=")[0]
    parts = dict(part.split("=") for part in day.split("/")[1:])
    emulator_requests.start()
    query(
        con,
        f"SELECT count(*) FROM events WHERE year = {int(parts['year'])} "
        f"AND month = {int(parts['month'])} AND day = {int(parts['day'])}",
    ).read_all()
    assert emulator_requests.objects_read() == {
        f"{BUCKET}/{key}" for key in keys if key.startswith(day + "/")
    }
    emulator_requests.start()
    query(con, "SELECT count(*) FROM events").read_all()
    assert emulator_requests.objects_read() == {f"{BUCKET}/{key}" for key in keys}


def _s3_options(endpoint: str) -> dict[str, Any]:
    return {
        "endpoint_override": urlsplit(endpoint).netloc,
        "scheme": "http",
        "region": "us-east-1",
        "access_key": "test",
        "secret_key": "test",
    }


def test_compacted_hours_late_objects_and_copies_show_each_event_once_as_compaction_keeps_it(
    s3, emulator
):
    events = _events_across_days(300, hours=6)
    archive_events(s3, events[:200], batch_size=30)
    touched = sorted({partition_prefix(e.timestamp) for e in events[:200]})
    for prefix in touched[::2]:  # half the hours compacted, the others still small objects
        compact_partition(s3, BUCKET, prefix)
    archive_events(s3, events[150:], batch_size=30)  # late, and again part of what was there
    keys = list_archive_keys(s3, BUCKET, "events/")
    objects = archive_objects(pafs.S3FileSystem(**_s3_options(emulator)), BUCKET)
    assert objects.compacted.files  # hours read as they are
    assert any(path.endswith("compacted.parquet") for path in objects.uncompacted.files)
    con = open_archive(_location(emulator))
    viewed = query(con, "SELECT event_id, shard_id, sequence_number FROM events").read_all()
    kept = deduplicate(read_parquet_objects(s3, BUCKET, keys))
    assert sorted(viewed.to_pylist(), key=lambda r: r["event_id"]) == sorted(
        kept.select(["event_id", "shard_id", "sequence_number"]).to_pylist(),
        key=lambda r: r["event_id"],
    )
    assert sorted(viewed["event_id"].to_pylist()) == sorted(e.event_id for e in events)


COPIES = st.lists(
    st.tuples(
        st.integers(0, 2),  # seconds after the first arrival
        st.sampled_from(["shardId-000", "shardId-001"]),
        st.integers(1, 10**60),
    ),
    min_size=1,
    max_size=4,
    unique_by=lambda copy: copy[1:],
)


@settings(max_examples=25, deadline=None)
@given(st.lists(COPIES, min_size=1, max_size=20))
def test_the_view_and_compaction_keep_the_first_arrival_then_the_lowest_stream_position(
    events,
):
    """Each event's rows at (arrival, shard, sequence number): a copy of one record (one
    arrival), or two clients' events under one id, on two shards, whose positions say
    nothing of which came first. 56-digit numbers are Kinesis's, past DECIMAL(38)."""
    stamp = datetime(2026, 11, 24, 3, 5, tzinfo=UTC)
    rows = [
        {"event_id": f"e{index}", "event_type": "click", "timestamp": stamp, "shard_id": shard,
         "received_at": stamp + timedelta(seconds=arrival), "sequence_number": str(sequence),
         "year": 2026, "month": 11, "day": 24, "hour": 3}
        for index, copies in enumerate(events)
        for arrival, shard, sequence in copies
    ]  # fmt: skip
    table = pa.Table.from_pylist(rows, schema=ARCHIVE_SCHEMA)
    lowest = {
        f"e{index}": (min(copies)[1], str(min(copies)[2])) for index, copies in enumerate(events)
    }

    def kept(rows: list[dict[str, Any]]) -> dict[str, tuple[str, str]]:
        return {row["event_id"]: (row["shard_id"], row["sequence_number"]) for row in rows}

    con = connect(ArchiveObjects.uncompacted_only(ds.dataset(table)))
    viewed = query(con, "SELECT event_id, shard_id, sequence_number FROM events").read_all()
    assert viewed.num_rows == len(events)
    assert kept(viewed.to_pylist()) == lowest
    assert kept(deduplicate(table).to_pylist()) == lowest


# --- the command line -----------------------------------------------------------------------


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_command_line_writes_json_csv_and_a_table_from_s3(s3, emulator, capsys):
    events = _events_across_days(120, hours=1)
    archive_events(s3, events)
    sql = "SELECT event_type, count(*) AS n, min(timestamp) AS first FROM events GROUP BY 1 ORDER BY 1"
    common = ["--bucket", BUCKET, "--endpoint-url", emulator]

    code, out, err = _run(capsys, *common, "--format", "json", sql)
    assert code == 0, err
    rows = json.loads(out)
    expected = Counter(e.event_type for e in events)
    assert {row["event_type"]: row["n"] for row in rows} == dict(expected)
    assert all(row["first"].endswith("Z") for row in rows)

    code, out, err = _run(capsys, *common, "--format", "csv", sql)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "event_type,n,first"
    assert [line.split(",")[:2] for line in lines[1:]] == [
        [r["event_type"], str(r["n"])] for r in rows
    ]

    code, out, err = _run(capsys, *common, "--max-rows", "2", sql)
    assert code == 0, err
    assert "event_type" in out and rows[0]["event_type"] in out
    assert f"first 2 of {len(rows)} rows" in out


def test_the_command_line_runs_a_sample_by_name(s3, emulator, capsys):
    archive_events(s3, _events_across_days(120, hours=1))
    code, out, err = _run(
        capsys, "--bucket", BUCKET, "--endpoint-url", emulator, "--format", "json",
        "--sample", "funnel_by_day",
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(out) and set(json.loads(out)[0]) >= {"event_date", "viewed", "purchased"}


@pytest.mark.parametrize(
    ("sql", "says"),
    [
        ("SELEC 1", "syntax error"),
        ("SELECT nope FROM events", "nope"),
        ("SELECT * FROM read_csv('s3://elsewhere/x.csv')", "httpfs"),
        ("  ", "empty"),
    ],
)
def test_a_bad_query_is_one_line_of_error_and_exit_status_1(s3, emulator, capsys, sql, says):
    code, out, err = _run(capsys, "--bucket", BUCKET, "--endpoint-url", emulator, sql)
    assert code == 1
    assert err.startswith("error: ") and says in err
    assert "Traceback" not in err and out == ""


def test_a_missing_bucket_is_named(s3, emulator, capsys):
    code, _, err = _run(
        capsys, "--bucket", "no-such-bucket", "--endpoint-url", emulator, "SELECT 1"
    )
    assert code == 1 and "no-such-bucket" in err


def test_an_empty_archive_is_an_empty_view(s3, emulator, capsys):
    code, out, err = _run(
        capsys, "--bucket", BUCKET, "--endpoint-url", emulator, "--format", "json",
        "SELECT count(*) AS n FROM events",
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(out) == [{"n": 0}]


def test_local_means_the_emulator_of_make_local_unless_the_sdk_variables_say_otherwise(
    monkeypatch,
):
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ACCESS_KEY_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CLICKSTREAM_EMULATOR_PORT", "4999")
    local = location(parser().parse_args(["--local", "SELECT 1"]))
    assert (local.endpoint_url, local.emulator_credentials) == ("http://127.0.0.1:4999", True)
    aws = location(parser().parse_args(["SELECT 1"]))
    assert (aws.endpoint_url, aws.emulator_credentials) == (None, False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://localhost:4566")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "mine")
    chosen = location(parser().parse_args(["--local", "SELECT 1"]))
    assert (chosen.endpoint_url, chosen.emulator_credentials) == ("http://localhost:4566", False)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:5000")
    assert location(parser().parse_args(["SELECT 1"])).endpoint_url == "http://127.0.0.1:5000"


def test_nothing_but_the_rows_reaches_stdout_and_no_extension_is_downloaded(tmp_path):
    (tmp_path / BUCKET).mkdir()
    filesystem = pafs.SubTreeFileSystem(str(tmp_path), pafs.LocalFileSystem())
    con = open_archive(_location(), filesystem=filesystem)
    settings = "enable_progress_bar", "autoinstall_known_extensions", "autoload_known_extensions"
    for name in settings:
        assert con.execute(f"SELECT current_setting('{name}')").fetchall() == [(False,)]


def test_sql_errors_raise_sql_error_in_the_library(tmp_path):
    (tmp_path / BUCKET).mkdir()
    con = open_archive(
        _location(), filesystem=pafs.SubTreeFileSystem(str(tmp_path), pafs.LocalFileSystem())
    )
    with pytest.raises(SqlError, match="syntax"):
        query(con, "SELEC")
