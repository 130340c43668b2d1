"""Figure 2 — aggregator writes: DynamoDB write units (what AWS bills) and items per 1,000
events at batch sizes 100, 1,000 and 10,000 on simulator traffic, against the naive design
(one ``UpdateItem`` per event per counter it touches). The aggregate store runs against moto
in-process and folds as it would in production; write units are counted from the size of
every item it writes. Also how large the largest item gets as live sessions grow (DynamoDB
refuses items over 400 KB)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from bench import awsmock, traffic
from bench.config import RunConfig
from bench.report import FigureResult, Row, md_table
from bench.stats import median, per_thousand
from clickstream.aggregates import DIMENSIONS, GRANULARITIES
from clickstream.schema import Event
from clickstream.store import DynamoAggregateStore
from infra.cost import EventClock

BATCH_SIZES = (100, 1_000, 10_000)
TARGET_WU_PER_1000 = 1_000.0
RATE = 100.0  # simulated events/s of the traffic (sets how many minute buckets a batch spans)
SHARD = "shardId-000000000000"


def naive_writes(events: list[Event]) -> int:
    """One UpdateItem per event per counter item: each time bucket, and each dimension."""
    return len(events) * (len(GRANULARITIES) + len(DIMENSIONS))


def measure(events: list[Event], batch_size: int, table: str) -> dict[str, float]:
    dynamodb = awsmock.client("dynamodb")
    awsmock.create_aggregates_table(dynamodb, table)
    clock = EventClock()
    store = DynamoAggregateStore(dynamodb, table, stream_name="bench-stream", clock=clock)
    sequenced = traffic.sequenced(events)
    deltas = 0
    for start in range(0, len(sequenced), batch_size):
        batch = sequenced[start : start + batch_size]
        clock.now = batch[-1].event.received_at.timestamp()
        deltas += store.apply(SHARD, batch).deltas_written
    store.fold(SHARD)
    n = len(sequenced)
    return {
        "wu": per_thousand(store.meter.units, n),
        "items": per_thousand(store.meter.items, n),
        "deltas": per_thousand(deltas, n),
        "naive": per_thousand(naive_writes(events), n),
        "largest_kb": max(awsmock.item_sizes(dynamodb, table).values(), default=0) / 1024,
    }


def largest_item_growth(
    records: list[dict[str, Any]], table: str, step: int = 1_000
) -> list[tuple[int, int]]:
    """Feed events that each start a new session, all within a few minutes, in batches of
    ``step``, folding after each; after each batch size the largest item in the table.
    Returns ``[(sessions so far, largest item bytes)]``."""
    dynamodb = awsmock.client("dynamodb")
    awsmock.create_aggregates_table(dynamodb, table)
    store = DynamoAggregateStore(dynamodb, table, stream_name="bench-stream")
    fresh = [
        {**record, "session_id": str(uuid.UUID(int=index + 1, version=4))}
        for index, record in enumerate(records)
    ]
    events = traffic.sequenced(traffic.to_events(fresh))
    growth: list[tuple[int, int]] = []
    for start in range(0, len(events), step):
        store.apply(SHARD, events[start : start + step])
        store.fold(SHARD)
        growth.append((start + step, max(awsmock.item_sizes(dynamodb, table).values())))
    return growth


def run(config: RunConfig) -> FigureResult:
    result = FigureResult(2, "Aggregator DynamoDB write units per 1,000 events")
    count = config.pick(10_000, 5_000)
    repeats = config.pick(3, 3)
    runs: dict[int, list[dict[str, float]]] = {size: [] for size in BATCH_SIZES}
    shapes = []
    with awsmock.in_process_aws():
        for repeat in range(repeats):
            start = datetime.now(UTC) - timedelta(seconds=count / RATE)
            records = traffic.records(count, seed=config.seed + repeat, start=start, rate=RATE)
            events = traffic.to_events(records)
            shapes.append(
                (
                    len({e.session_key for e in events}),
                    len({e.page for e in events}),
                    len({e.product_id for e in events if e.product_id}),
                )
            )
            for size in BATCH_SIZES:
                runs[size].append(measure(events, size, f"bench-writes-{repeat}-{size}"))
        probe_events = config.pick(15_000, 6_000)
        probe_records = traffic.records(
            probe_events,
            seed=config.seed,
            start=datetime.now(UTC) - timedelta(minutes=10),
            rate=probe_events / 600,
        )
        growth = largest_item_growth(
            probe_records, "bench-session-growth", step=config.pick(3_000, 2_000)
        )
    med = {size: {k: median(r[k] for r in runs[size]) for k in runs[size][0]} for size in runs}
    for size in BATCH_SIZES:
        m = med[size]
        result.rows.append(
            Row(
                f"batch {size:,}: write units / 1,000 ev",
                m["wu"],
                "",
                m["naive"],
                "naive UpdateItems (1 WU each)",
                target=f"<= {TARGET_WU_PER_1000:,.0f}" if size == 100 else "",
                holds=m["wu"] <= TARGET_WU_PER_1000 if size == 100 else None,
            )
        )
        result.rows.append(
            Row(f"batch {size:,}: items written / 1,000 ev", m["items"], "", m["naive"], "naive")
        )
    sessions, pages, products = (median(s[i] for s in shapes) for i in range(3))
    result.method = (
        f"{count:,} events per run from the {traffic.source().detail} at {RATE:.0f} events/s "
        f"of simulated time ending now (~{sessions:,.0f} sessions, {pages:.0f} pages, "
        f"{products:.0f} products), validated and enriched by the real ingest path, given "
        "sequence numbers and applied with `DynamoAggregateStore.apply` to one shard, in "
        "batches of each size, against moto in-process, the store's clock following the "
        "events (so it folds as it would live), and one last fold. Write units are what "
        "DynamoDB bills: each item written, 1 per KB rounded up (the store's own meter, from "
        "the size of each item it writes). Naive baseline: one `UpdateItem` per event per "
        "counter item it touches (each time bucket and each dimension), 1 WU each. "
        f"{repeats} runs with different seeds, median."
    )
    result.details += md_table(
        ("batch", "WU/1k ev", "items/1k ev", "deltas/1k ev", "naive/1k ev", "largest item KB"),
        [
            (f"{size:,}", m["wu"], m["items"], m["deltas"], m["naive"], m["largest_kb"])
            for size, m in med.items()
        ],
    )
    result.details += [
        "",
        "Largest item in the table as live sessions grow (each event a new session, all "
        "within 10 minutes), folded and measured after each batch:",
        "",
        *md_table(
            ("new sessions applied", "largest item KB"),
            [(n, size / 1024) for n, size in growth],
        ),
    ]
    largest = max((size for _, size in growth), default=0)
    first = growth[0][1] if growth else 0
    result.findings.append(
        f"The largest item does not grow with live sessions: {first / 1024:.1f} KB after "
        f"{growth[0][0] if growth else 0:,} sessions, {largest / 1024:.1f} KB after "
        f"{growth[-1][0] if growth else 0:,} (each session is its own item)."
    )
    m = med[100]
    result.findings.append(
        f"At batch 100 (about what a 1 s window delivers at 100 events/s) a 1,000 events cost "
        f"{m['wu']:.0f} write units, against {m['naive']:.0f} for one UpdateItem per counter."
    )
    return result
