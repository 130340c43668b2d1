"""What the deployed product costs per day, from the requests the code really makes:
``python -m infra.cost --events-per-day 1000000`` (how: docs/cost.md)."""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.console import Console
from rich.table import Table

from clickstream.aggregates import SequencedEvent
from clickstream.archive import plan_objects, to_parquet_bytes
from clickstream.ingest import validate_records
from clickstream.store import FOLD_AFTER_S, DynamoAggregateStore
from infra.template import load_template, table_arguments

# Public on-demand prices, us-east-1, USD (AWS price pages, 2025).
PRICES = {
    "api_gateway_rest_per_million": 3.50,
    "lambda_per_million_requests": 0.20,
    "lambda_per_gb_second": 0.0000166667,
    "kinesis_shard_hour": 0.015,
    "kinesis_put_units_per_million": 0.014,
    "dynamodb_wru_per_million": 0.625,
    "dynamodb_rru_per_million": 0.125,
    "s3_put_per_thousand": 0.005,
    "s3_storage_gb_month": 0.023,
    "cloudwatch_alarm_month": 0.10,
    "cloudwatch_custom_metric_month": 0.30,
    "cloudwatch_logs_ingest_gb": 0.50,
    "fargate_vcpu_hour": 0.04048,
    "fargate_gb_hour": 0.004445,
}
# Lambda durations (ms) and memory (MB): measured locally per invocation (make bench) and
# rounded up for cold starts and network round trips to the AWS services.
DURATIONS_MS = {"api": 25, "aggregator": 60, "archiver": 400}
MEMORY_MB = {"api": 128, "aggregator": 256, "archiver": 512}
LOG_BYTES_PER_INVOCATION = 600  # one structured line plus the EMF line
CUSTOM_METRICS = 27  # metric x service combinations the code emits (docs/CONTRACT.md)
DASHBOARD_READS_PER_POLL = 1  # GET /dashboard
POLL_SAMPLE = timedelta(minutes=5)  # how often the replay measures a dashboard poll's reads


@dataclass
class Counts:
    events: int = 0
    api_requests: float = 0
    aggregator_invocations: int = 0
    archiver_invocations: int = 0
    deltas: int = 0
    aggregator_read_units: float = 0.0
    poll_read_units: float = 0.0
    polls_sampled: int = 0
    items_written: int = 0
    write_units_by_kind: Counter[str] = field(default_factory=Counter)
    write_units: int = 0
    s3_puts: int = 0
    parquet_bytes: int = 0


def simulated_hour(rate: float, seed: int) -> list[dict[str, Any]]:
    command = [
        sys.executable, "-m", "simulator", "--dry-run", "--flat-out", "--quiet",
        "--rate", f"{rate}", "--max-events", str(int(rate * 3600)), "--seed", str(seed),
    ]  # fmt: skip
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def shard_of(partition_key: str, shards: int) -> int:
    digest = int.from_bytes(hashlib.md5(partition_key.encode()).digest(), "big")
    return digest * shards >> 128


def batches(events: list[SequencedEvent], window_s: float, size: int) -> list[list[SequencedEvent]]:
    """What a mapping with this batching window and size delivers from one shard."""
    cut: list[list[SequencedEvent]] = []
    current: list[SequencedEvent] = []
    opened: datetime | None = None
    for item in events:
        ts = item.event.timestamp
        if current and (
            len(current) >= size or opened is None or (ts - opened).total_seconds() >= window_s
        ):
            cut.append(current)
            current = []
        if not current:
            opened = ts
        current.append(item)
    if current:
        cut.append(current)
    return cut


# The dashboard's cadence (web/api.js): the fast sections every poll, all of them every 8th.
FAST_SECTIONS = ("stats", "timeseries", "realtime")
FULL_EVERY = 8


def dashboard_poll_read_units(store: DynamoAggregateStore) -> float:
    """Read units of an average dashboard poll (one GET /dashboard: seven of eight ask for
    the fast sections only), measured on the store."""
    from clickstream import queries

    now = datetime.fromtimestamp(store.clock(), UTC)
    before = store.reads.units
    queries.dashboard(store, 10, now=now)
    full = store.reads.units - before
    queries.dashboard(store, 10, now=now, sections=FAST_SECTIONS)
    fast = store.reads.units - before - full
    return (full + fast * (FULL_EVERY - 1)) / FULL_EVERY


class EventClock:
    """The store's clock during a replay: the time of the batch being applied."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def count_aggregator(
    counts: Counts, store: DynamoAggregateStore, clock: EventClock, shard: str,
    batch: list[SequencedEvent],
) -> None:  # fmt: skip
    counts.aggregator_invocations += 1
    clock.now = batch[-1].event.received_at.timestamp()
    result = store.apply(shard, batch)
    counts.deltas += result.deltas_written
    counts.items_written += result.items_written
    counts.write_units += result.write_units


def aggregate_store(clock: EventClock, fold_after_s: float) -> DynamoAggregateStore:
    """The aggregator's store on an in-process moto table (only its sizes are measured)."""
    import os

    import boto3
    from moto import mock_aws

    os.environ.pop("AWS_ENDPOINT_URL", None)
    mock = mock_aws()
    mock.start()
    dynamodb = boto3.client(
        "dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    dynamodb.create_table(**table_arguments("AggregatesTable", "cost-model"))
    # One writer a fold: moto in process is not thread-safe (a query beside a write raised
    # "dictionary changed size during iteration"), and what is written does not depend on it.
    return DynamoAggregateStore(
        dynamodb,
        "cost-model",
        stream_name="cost",
        clock=clock,
        fold_after_s=fold_after_s,
        fold_writers=1,
    )


def measure(
    events_per_day: int,
    seed: int,
    events_per_request: float,
    window_s: float | None = None,
    *,
    fold_after_s: float = FOLD_AFTER_S,
    shards: int | None = None,
) -> tuple[Counts, int]:
    loaded = load_template()
    template = loaded["Resources"]
    shards = shards or int(loaded["Parameters"]["ShardCount"]["Default"])
    aggregator = template["AggregatorEventSourceMapping"]["Properties"]
    archiver = template["ArchiverEventSourceMapping"]["Properties"]
    rate = events_per_day / 86_400
    records = simulated_hour(rate, seed)
    validated = validate_records(records, received_at=datetime.now().astimezone()).events
    per_shard: dict[int, list[SequencedEvent]] = defaultdict(list)
    for index, (_, event) in enumerate(validated):
        # the simulator's flat-out run is timed by its events: they arrive when they happen
        timed = event.model_copy(update={"received_at": event.timestamp})
        per_shard[shard_of(event.partition_key, shards)].append(
            SequencedEvent(str(index + 1), timed)
        )
    counts = Counts(events=len(validated), api_requests=len(validated) / events_per_request)
    clock = EventClock()
    store = aggregate_store(clock, fold_after_s)
    window = window_s or float(aggregator["MaximumBatchingWindowInSeconds"])
    delivered = sorted(
        (
            (batch[-1].event.received_at, f"shardId-{shard:012d}", batch)
            for shard, items in per_shard.items()
            for batch in batches(items, window, int(aggregator["BatchSize"]))
        ),
        key=lambda entry: entry[0],
    )
    next_poll = delivered[0][0] if delivered else None
    for delivered_at, shard_id, batch in delivered:
        count_aggregator(counts, store, clock, shard_id, batch)
        if next_poll is not None and delivered_at >= next_poll:
            counts.poll_read_units += dashboard_poll_read_units(store)
            counts.polls_sampled += 1
            next_poll = delivered_at + POLL_SAMPLE
    counts.aggregator_read_units = store.reads.units - counts.poll_read_units
    counts.write_units_by_kind = store.meter.units_by_kind
    for shard, items in per_shard.items():
        for batch in batches(
            items, float(archiver["MaximumBatchingWindowInSeconds"]), int(archiver["BatchSize"])
        ):
            counts.archiver_invocations += 1
            planned = plan_objects(batch, f"shardId-{shard:012d}")
            counts.s3_puts += len(planned)
            counts.parquet_bytes += sum(len(to_parquet_bytes(table)) for table in planned.values())
    return counts, shards


def template_alarms() -> int:
    """The alarms the template deploys (each priced per month)."""
    resources = load_template()["Resources"].values()
    return sum(1 for resource in resources if resource["Type"] == "AWS::CloudWatch::Alarm")


def daily_cost(counts: Counts, shards: int, dashboards: int) -> list[tuple[str, str, float]]:
    scale = 24  # an hour measured, a day priced
    p = PRICES

    def lambda_cost(function: str, invocations: float) -> float:
        gb_seconds = invocations * DURATIONS_MS[function] / 1000 * MEMORY_MB[function] / 1024
        return (
            invocations * p["lambda_per_million_requests"] / 1e6
            + gb_seconds * p["lambda_per_gb_second"]
        )

    api_requests = counts.api_requests * scale
    polls = dashboards * 86_400 / 2
    per_poll = counts.poll_read_units / max(1, counts.polls_sampled)
    dashboard_reads = polls * DASHBOARD_READS_PER_POLL
    invocations = (
        api_requests + (counts.aggregator_invocations + counts.archiver_invocations) * scale
    )
    log_gb = invocations * LOG_BYTES_PER_INVOCATION / 1e9
    alarms = template_alarms()
    monitoring = (
        alarms * p["cloudwatch_alarm_month"] + CUSTOM_METRICS * p["cloudwatch_custom_metric_month"]
    )
    s3_puts = counts.s3_puts * scale
    rows = [
        ("API Gateway (REST) requests", f"{api_requests + dashboard_reads:,.0f} requests",
         (api_requests + dashboard_reads) * p["api_gateway_rest_per_million"] / 1e6),
        ("Lambda: API", f"{api_requests + dashboard_reads:,.0f} invocations",
         lambda_cost("api", api_requests + dashboard_reads)),
        ("Lambda: aggregator", f"{counts.aggregator_invocations * scale:,} invocations",
         lambda_cost("aggregator", counts.aggregator_invocations * scale)),
        ("Lambda: archiver", f"{counts.archiver_invocations * scale:,} invocations",
         lambda_cost("archiver", counts.archiver_invocations * scale)),
        ("Kinesis shards", f"{shards} shards x 24 h", shards * 24 * p["kinesis_shard_hour"]),
        ("Kinesis PUT payload units", f"{counts.events * scale:,} units",
         counts.events * scale * p["kinesis_put_units_per_million"] / 1e6),
        ("DynamoDB writes (aggregator)",
         f"{counts.deltas * scale:,} deltas, {counts.items_written * scale:,} items, "
         f"{counts.write_units * scale:,} WRU "
         f"({counts.write_units * 1000 / max(1, counts.events):,.0f} per 1,000 events)",
         counts.write_units * scale * p["dynamodb_wru_per_million"] / 1e6),
        ("DynamoDB reads (aggregator)", f"{counts.aggregator_read_units * scale:,.0f} RRU",
         counts.aggregator_read_units * scale * p["dynamodb_rru_per_million"] / 1e6),
        ("DynamoDB reads (dashboards)", f"{polls * per_poll:,.0f} RRU ({per_poll:.0f} a poll)",
         polls * per_poll * p["dynamodb_rru_per_million"] / 1e6),
        ("S3 PUTs (archive)", f"{s3_puts:,} PUTs", s3_puts * p["s3_put_per_thousand"] / 1000),
        ("S3 storage (30 days kept)", f"{counts.parquet_bytes * scale / 1e6:,.1f} MB/day",
         counts.parquet_bytes * scale * 30 / 1e9 * p["s3_storage_gb_month"] / 30),
        ("CloudWatch logs", f"{log_gb:.2f} GB", log_gb * p["cloudwatch_logs_ingest_gb"]),
        ("CloudWatch alarms and custom metrics", f"{alarms} alarms, {CUSTOM_METRICS} metrics",
         monitoring / 30),
    ]  # fmt: skip
    return rows


# --- Lambda consumers or KCL consumers (README "Lambda or KCL consumers") --------------------
# What differs between the two: the consumers' compute and the KCL's own coordination. The
# rest (API, stream, the aggregates' writes per batch, the archive) is the same store code on
# batches of about the same size, priced above by `python -m infra.cost` at each volume.
RECORDS_PER_SHARD_S = 1000  # Kinesis' write limit per shard: the shards a volume needs
# Consumer CPU per record (make bench, figure 3: 51.9 ms aggregator + 28.4 ms archiver per
# 1,000 records) and each Lambda invocation's fixed part (DURATIONS_MS, at a few records).
CPU_MS_PER_RECORD = {"aggregator": 0.0519, "archiver": 0.0284}
# The MultiLangDaemon's own CPU, measured on the local stack (tests/kcl): 61 s of CPU in
# 706 s, 0.09 of a core, polling every 200 ms; an upper bound for the 1 s default.
DAEMON_VCPU = 0.09
# Fargate task sizes (infra/template.yaml KclCpu / KclMemory): the cheapest that fits.
KCL_TASK_SIZES = ((0.5, 1.0), (1.0, 2.0), (2.0, 4.0))
KCL_TASK_UTILIZATION = 0.5  # headroom for catching up after a failover
KCL_MIN_TASKS = 2  # a second worker takes a dead one's leases within the failover time
# The KCL's DynamoDB calls (its defaults, consumers/kcl_daemon.py): each lease renewed every
# failoverTime/3 (10 s), a checkpoint per batch, each worker's metrics every 30 s, the
# leader's lock heartbeat and its assignment scan of the lease and metrics tables every 20 s.
KCL_RENEW_S = 10 / 3
KCL_POLL_S = {"aggregator": 1.0, "archiver": 10.0}
KCL_MAX_RECORDS = {"aggregator": 1000, "archiver": 10000}
KCL_WORKER_METRICS_S = 30
KCL_LEADER_S = 20


def shards_for(events_per_day: int) -> int:
    peak = events_per_day / 86_400 * 2  # daily peak about twice the mean
    return max(1, -(-int(peak) // RECORDS_PER_SHARD_S))


def lambda_consumers(events_per_day: int, shards: int) -> list[tuple[str, str, float]]:
    """The consumer Lambdas with the template's mappings: a batch per window per shard, or
    per BatchSize records when the window holds more."""
    template = load_template()["Resources"]
    rows = []
    rate = events_per_day / 86_400 / shards
    for function, mapping in (
        ("aggregator", "AggregatorEventSourceMapping"),
        ("archiver", "ArchiverEventSourceMapping"),
    ):
        properties = template[mapping]["Properties"]
        window, size = (
            float(properties["MaximumBatchingWindowInSeconds"]),
            int(properties["BatchSize"]),
        )
        per_batch = min(size, max(1.0, rate * window))
        invocations = events_per_day / per_batch
        duration_ms = DURATIONS_MS[function] + per_batch * CPU_MS_PER_RECORD[function]
        gb_s = invocations * duration_ms / 1000 * MEMORY_MB[function] / 1024
        usd = (
            invocations * PRICES["lambda_per_million_requests"] / 1e6
            + gb_s * PRICES["lambda_per_gb_second"]
            + invocations * LOG_BYTES_PER_INVOCATION / 1e9 * PRICES["cloudwatch_logs_ingest_gb"]
        )
        rows.append(
            (f"Lambda: {function}", f"{invocations:,.0f} invocations of {per_batch:,.0f}", usd)
        )
    return rows


def kcl_consumers(events_per_day: int, shards: int) -> list[tuple[str, str, float]]:
    """The same consumers under the KCL on Fargate: tasks for the CPU, and the KCL's tables."""
    rate = events_per_day / 86_400
    vcpu = rate * sum(CPU_MS_PER_RECORD.values()) / 1000

    def fleet(task_vcpu: float, task_gb: float) -> tuple[float, int, float, float]:
        tasks = KCL_MIN_TASKS  # each task: both daemons, then the processors' share
        while vcpu + 2 * DAEMON_VCPU * tasks > tasks * task_vcpu * KCL_TASK_UTILIZATION:
            tasks += 1
        per_hour = task_vcpu * PRICES["fargate_vcpu_hour"] + task_gb * PRICES["fargate_gb_hour"]
        return tasks * 24 * per_hour, tasks, task_vcpu, task_gb

    fargate, tasks, task_vcpu, task_gb = min(fleet(*size) for size in KCL_TASK_SIZES)
    leases = shards * 2
    batches = sum(
        min(86_400 / KCL_POLL_S[c], events_per_day / shards) * shards
        + events_per_day / KCL_MAX_RECORDS[c]
        for c in KCL_POLL_S
    )
    writes = (
        leases * 86_400 / KCL_RENEW_S  # renewals
        + batches  # checkpoints
        + tasks * 2 * 86_400 / KCL_WORKER_METRICS_S
        + 2 * 86_400 / KCL_LEADER_S  # the leaders' lock heartbeats
    )
    reads = 2 * 2 * 86_400 / KCL_LEADER_S * max(1, -(-leases // 8))  # scans, 4 KB a page
    logs_gb = batches * LOG_BYTES_PER_INVOCATION / 1e9
    return [
        (
            "Fargate: KCL workers",
            f"{tasks} tasks x {task_vcpu:g} vCPU, {task_gb:g} GB x 24 h",
            fargate,
        ),
        (
            "DynamoDB: KCL leases",
            f"{writes:,.0f} WRU, {reads:,.0f} RRU ({leases} leases)",
            writes * PRICES["dynamodb_wru_per_million"] / 1e6
            + reads * PRICES["dynamodb_rru_per_million"] / 1e6,
        ),
        (
            "CloudWatch logs: KCL",
            f"{logs_gb:.2f} GB",
            logs_gb * PRICES["cloudwatch_logs_ingest_gb"],
        ),
    ]


CONSUMER_VOLUMES = (1_000_000, 100_000_000, 1_000_000_000)  # the README's comparison


def consumer_comparison(volumes: tuple[int, ...] | list[int]) -> list[dict[str, Any]]:
    """The consumers priced both ways at each volume: shards, and per runtime its rows
    (item, volume, USD/day) and total."""
    comparison = []
    for volume in volumes:
        shards = shards_for(volume)
        runtimes = {
            "lambda": lambda_consumers(volume, shards),
            "kcl": kcl_consumers(volume, shards),
        }
        comparison.append(
            {
                "events_per_day": volume,
                "shards": shards,
                **{
                    name: {
                        "rows": [[item, text, round(usd, 4)] for item, text, usd in rows],
                        "total": round(sum(usd for *_, usd in rows), 2),
                    }
                    for name, rows in runtimes.items()
                },
            }
        )
    return comparison


def compare_consumers(volumes: list[int]) -> Table:
    table = Table(title="the consumers per day: Lambda or KCL (us-east-1; the rest is the same)")
    for column in ("events/day", "shards", "Lambda", "USD/day", "KCL on Fargate", "USD/day"):
        table.add_column(column)
    for row in consumer_comparison(volumes):
        table.add_row(
            f"{row['events_per_day']:,}",
            str(row["shards"]),
            "; ".join(text for _, text, _ in row["lambda"]["rows"]),
            f"{row['lambda']['total']:.2f}",
            "; ".join(text for _, text, _ in row["kcl"]["rows"]),
            f"{row['kcl']['total']:.2f}",
        )
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--events-per-day", type=int, default=1_000_000)
    parser.add_argument("--events-per-request", type=float, default=1.0,
                        help="1 = one beacon per event; a batching SDK sends 10-25")  # fmt: skip
    parser.add_argument("--dashboards", type=int, default=1, help="dashboards open all day")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--aggregator-window", type=float, default=None,
                        help="seconds; default: the template's batching window")  # fmt: skip
    parser.add_argument("--fold-after", type=float, default=FOLD_AFTER_S,
                        help="seconds a shard's deltas wait before they are folded")  # fmt: skip
    parser.add_argument("--shards", type=int, default=None,
                        help="stream shards; default: the template's ShardCount")  # fmt: skip
    parser.add_argument("--compare-consumers", action="store_true",
                        help="price the consumers on Lambda and under the KCL at 1M, 100M and "
                        "1B events/day (or --events-per-day)")  # fmt: skip
    args = parser.parse_args(argv)
    if args.compare_consumers:
        explicit = "--events-per-day" in " ".join(argv or sys.argv[1:])
        volumes = [args.events_per_day] if explicit else list(CONSUMER_VOLUMES)
        Console(width=200).print(compare_consumers(volumes))
        return
    counts, shards = measure(
        args.events_per_day,
        args.seed,
        args.events_per_request,
        args.aggregator_window,
        fold_after_s=args.fold_after,
        shards=args.shards,
    )
    rows = daily_cost(counts, shards, args.dashboards)
    table = Table(title=f"cost per day at {args.events_per_day:,} events/day (us-east-1)")
    for column in ("item", "requests the code makes", "USD/day"):
        table.add_column(column)
    for name, volume, usd in rows:
        table.add_row(name, volume, f"{usd:.2f}")
    total = sum(usd for *_, usd in rows)
    table.add_row(
        "total", f"{counts.events * 24:,} events", f"{total:.2f} (~{total * 30:.0f}/month)"
    )
    Console().print(table)
    per_kind = ", ".join(
        f"{kind} {units * 1000 / max(1, counts.events):,.0f}"
        for kind, units in counts.write_units_by_kind.most_common()
    )
    Console().print(f"DynamoDB write units per 1,000 events by item kind: {per_kind}")


if __name__ == "__main__":
    main()
