"""Figure 6 — read latency: ``/stats``, ``/metrics/timeseries``, ``/funnel``, the web-analytics
reads (``/breakdown``, ``/goals``, ``/realtime``, ``/dashboard`` by period) p50/p99 with
10^4 and then 10^5 events' aggregates in the table (written directly with
``DynamoAggregateStore.apply`` — the same items the aggregator writes, folded as it folds —
because 10^5 events cannot go through HTTP in the bench's time); must be flat in the number
of events. Baseline: ``GET /`` (health).

Why not 10^6: every session is its own item, folded with one conditional ``UpdateItem``.
Measured here, the emulator wrote the first 10^5 events in about 70 s and each further 10^5
in about 230 s as its table filled, so 10^6 would take about 35 minutes."""

from __future__ import annotations

import itertools
import time
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from bench import procstat, traffic
from bench.config import RunConfig
from bench.report import FigureResult, Row, md_table
from bench.stack import Stack
from bench.stats import percentile
from clickstream.aggregates import SequencedEvent
from clickstream.schema import Event
from clickstream.store import DynamoAggregateStore

# One busy hour: spreading 10^5 events over a day through the emulator would take far longer
# than the bench's budget. Reads cover the same buckets at both sizes either way.
SPAN = timedelta(hours=1)
SHARDS = 2
APPLY_BATCH = 10_000
FLAT = 1.5  # p50 at 10^5 may be at most this times p50 at 10^4


def endpoints(now: datetime) -> dict[str, str]:
    start = (now - timedelta(days=29)).strftime("%Y-%m-%d")
    end = now.strftime("%Y-%m-%d")
    return {
        "health": "/",
        "/stats": "/stats",
        "/metrics/timeseries (minute, last 60)": "/metrics/timeseries",
        "/metrics/timeseries (hour, last 48)": "/metrics/timeseries?granularity=hour",
        "/metrics/timeseries (day, last 30)": "/metrics/timeseries?granularity=day",
        "/funnel (all time)": "/funnel",
        "/funnel (30-day range)": f"/funnel?from={start}&to={end}",
        "/pages/top": "/pages/top",
        "/stats (today)": "/stats?period=today",
        "/breakdown channel (7d)": "/breakdown?dimension=channel&period=7d",
        "/breakdown page (all time)": "/breakdown?dimension=page",
        "/breakdown exit_page (today)": "/breakdown?dimension=exit_page&period=today",
        "/goals (30d)": "/goals?period=30d",
        "/realtime": "/realtime",
        "/dashboard (all time)": "/dashboard",
        "/dashboard (today)": "/dashboard?period=today",
    }


def measure_reads(
    stacks: dict[str, Stack], paths: dict[str, str], samples: int
) -> dict[tuple[str, str], list[float]]:
    """Sequential GETs, alternating between the stacks and round-robin over the endpoints
    (so machine noise hits both data sets alike), after two warm-up calls each."""
    for stack in stacks.values():
        for path in paths.values():
            for _ in range(2):
                stack.timed_get(path)
    timings: dict[tuple[str, str], list[float]] = {
        (label, name): [] for label in stacks for name in paths
    }
    for _ in range(samples):
        for name, path in paths.items():
            for label, stack in stacks.items():
                elapsed, status = stack.timed_get(path)
                if status != 200:
                    raise RuntimeError(f"GET {path} answered {status}")
                timings[(label, name)].append(elapsed)
    return timings


def _chunks(events: Iterator[Event], size: int) -> Iterator[list[Event]]:
    while chunk := list(itertools.islice(events, size)):
        yield chunk


class Backfill:
    """Writes events' aggregates to the stack's table as the aggregator would, spread over
    ``SHARDS`` synthetic shards by session (a shard's sequence numbers keep increasing)."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.store = DynamoAggregateStore(
            stack.client("dynamodb"), stack.aggregates_table, stream_name=stack.stream_name
        )
        self.next_index = dict.fromkeys(range(SHARDS), 0)
        self.deltas = 0
        self.events = 0

    def write(self, count: int, seed: int, end: datetime) -> float:
        started = time.monotonic()
        events = traffic.synthetic_events(count, seed=seed, start=end - SPAN, end=end)
        for chunk in _chunks(events, APPLY_BATCH * SHARDS):
            per_shard: dict[int, list[SequencedEvent]] = {shard: [] for shard in range(SHARDS)}
            for event in chunk:
                shard = zlib.crc32(event.session_key.encode()) % SHARDS
                per_shard[shard].append(
                    SequencedEvent(traffic.sequence_number(self.next_index[shard]), event)
                )
                self.next_index[shard] += 1
            for shard, items in per_shard.items():
                if items:
                    result = self.store.apply(f"bench-backfill-{shard}", items)
                    self.deltas += result.deltas_written
                    self.events += result.applied
        # What the aggregator leaves when its stream goes quiet: every delta folded, so the
        # reads measure the items, not a backlog of deltas added up at read time.
        self.store.fold_all()
        return time.monotonic() - started


def run(small_stack: Stack, large_stack: Stack, config: RunConfig) -> FigureResult:
    result = FigureResult(6, "Read latency at 10^4 and 10^5 events (local stack)")
    small, large = 10_000, config.pick(100_000, 30_000)
    samples = config.pick(60, 15)
    now = datetime.now(UTC)
    paths = endpoints(now)
    small_label, large_label = f"{small:,}", f"{large:,}"
    writes = {}
    for stack, count in ((small_stack, small), (large_stack, large)):
        stack.wait_idle(quiet_s=1.0)
        backfill = Backfill(stack)
        seconds = backfill.write(count, config.seed, now)
        writes[count] = (seconds, backfill.deltas, stack.total_events())
    pids = {f"{k} ({small_label})": v for k, v in small_stack.pids.items()}
    pids |= {f"{k} ({large_label})": v for k, v in large_stack.pids.items()}
    before = procstat.snapshot(pids)
    timings = measure_reads({small_label: small_stack, large_label: large_stack}, paths, samples)
    contention = procstat.usage(before, procstat.snapshot(pids))

    def p(label: str, name: str, q: float) -> float:
        return percentile(timings[(label, name)], q) * 1000

    health = p(large_label, "health", 50)
    checked = (
        "/stats", "/metrics/timeseries (minute, last 60)", "/funnel (all time)",
        "/breakdown channel (7d)", "/realtime", "/dashboard (today)",
    )  # fmt: skip
    for name in checked:
        p50_small, p50_large = p(small_label, name, 50), p(large_label, name, 50)
        result.rows.append(
            Row(
                f"{name} p50 ms at {large_label} events (at {small_label}: {p50_small:.1f}; "
                f"p99 {p(large_label, name, 99):.0f} vs {p(small_label, name, 99):.0f})",
                p50_large,
                "ms",
                health,
                "GET / p50",
                target=f"flat: <= {FLAT}x the {small_label} p50",
                holds=p50_large <= FLAT * p50_small,
            )
        )
    result.method = (
        "Two fresh local stacks side by side. Synthetic canonical events "
        "(`bench.traffic.synthetic_events`: ~6-event sessions, the simulator's type mix, "
        "Zipf pages, purchase values) spread evenly over the last "
        f"{SPAN.total_seconds() / 3600:.0f} h, split over {SHARDS} shards by session, "
        f"applied with `apply_events` in batches of {APPLY_BATCH:,} per shard to each "
        f"stack's DynamoDB (the emulator): {small_label} events into one, {large_label} into "
        f"the other, over the same time buckets. Then {samples} rounds of sequential GETs over "
        "HTTP, each round every endpoint on both stacks alternately (machine noise hits "
        "both alike), after 2 warm-ups each; p50/p99. Baseline: `GET /` in the same rounds."
    )
    rows = []
    for name in paths:
        rows.append(
            (
                name,
                p(small_label, name, 50),
                p(small_label, name, 99),
                p(large_label, name, 50),
                p(large_label, name, 99),
                f"{p(large_label, name, 50) / p(small_label, name, 50):.2f}x",
            )
        )
    result.details += [
        "Aggregates written: "
        + "; ".join(
            f"{count:,} events in {seconds:.1f} s ({deltas:,} deltas, folded as they went and "
            "then all), "
            f"`/stats` `total_events` + `bots_excluded` read back {total:,}"
            for count, (seconds, deltas, total) in writes.items()
        )
        + ".",
        "",
        f"Machine during the reads: {contention.machine_busy_cores:.2f} of "
        f"{contention.machine_cores} cores busy, {contention.others_cores:.2f} of them by "
        "processes outside this bench and its stacks.",
        "",
        *md_table(
            (
                "endpoint",
                f"p50 ms @{small_label}",
                f"p99 ms @{small_label}",
                f"p50 ms @{large_label}",
                f"p99 ms @{large_label}",
                "p50 ratio",
            ),
            rows,
        ),
    ]
    for count, (_, _, total) in writes.items():
        if total < count:
            result.findings.append(
                f"`/stats` total_events read back {total:,}, expected at least {count:,}."
            )
    return result
