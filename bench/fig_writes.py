"""Figure 2 — aggregator writes: DynamoDB requests per 1,000 events at batch sizes 100,
1,000 and 10,000 on simulator traffic, against the naive design (one ``UpdateItem`` per
event per item it touches). ``apply_events`` runs against moto in-process; a botocore hook
counts the requests. Also the write *capacity* those requests cost, and how large the shard
item grows with the number of live sessions (DynamoDB refuses items over 400 KB)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from bench import awsmock, traffic
from bench.config import RunConfig
from bench.report import FigureResult, Row, md_table
from bench.stats import median, per_thousand
from clickstream.aggregates import (
    MAX_SESSIONS_PER_SHARD,
    SESSION_MEMORY,
    apply_events,
    item_keys,
    shard_item_key,
)
from clickstream.schema import Event

BATCH_SIZES = (100, 1_000, 10_000)
TARGET_PER_1000 = 20.0
RATE = 100.0  # simulated events/s of the traffic (sets how many minute buckets a batch spans)


def naive_writes(events: list[Event]) -> int:
    return sum(len(item_keys(event)) for event in events)


def measure(events: list[Event], batch_size: int, table: str) -> dict[str, float]:
    dynamodb = awsmock.client("dynamodb")
    awsmock.create_aggregates_table(dynamodb, table)
    calls = awsmock.DynamoCalls().attach(dynamodb)
    shard = shard_item_key("bench-stream", "shardId-000000000000")
    sequenced = traffic.sequenced(events)
    for start in range(0, len(sequenced), batch_size):
        apply_events(dynamodb, table, shard, sequenced[start : start + batch_size])
    sizes = awsmock.item_sizes(dynamodb, table)
    update_units = sum(
        awsmock.write_units(sizes.get(key, 0), transactional=True) for key in calls.update_keys
    )
    put_units = sum(awsmock.write_units(size, transactional=True) for size in calls.put_sizes)
    naive_units = sum(
        awsmock.write_units(sizes.get(key, 0), transactional=False)
        for event in events
        for key in item_keys(event)
    )
    n = len(sequenced)
    return {
        "transactions": per_thousand(calls.operations["TransactWriteItems"], n),
        "items": per_thousand(calls.transaction_items, n),
        "reads": per_thousand(calls.operations["GetItem"], n),
        "naive": per_thousand(naive_writes(events), n),
        "wcu": per_thousand(update_units + put_units, n),
        "wcu_shard": per_thousand(put_units, n),
        "naive_wcu": per_thousand(naive_units, n),
        "max_put_kb": max(calls.put_sizes, default=0) / 1024,
    }


def shard_item_growth(
    records: list[dict[str, Any]], table: str, step: int = 1_000
) -> tuple[list[tuple[int, int]], str]:
    """Feed events that each start a new session, all within a few minutes (so none is
    forgotten as idle), in batches of ``step``; after each batch read the shard item back
    and size it. Returns ``[(sessions so far, shard item bytes)]`` and the error that
    stopped ``apply_events``, if any (DynamoDB refuses items over 400 KB)."""
    dynamodb = awsmock.client("dynamodb")
    awsmock.create_aggregates_table(dynamodb, table)
    shard = shard_item_key("bench-stream", "shardId-000000000001")
    fresh = [
        {**record, "session_id": str(uuid.UUID(int=index + 1, version=4))}
        for index, record in enumerate(records)
    ]
    events = traffic.sequenced(traffic.to_events(fresh))
    growth: list[tuple[int, int]] = []
    key = {"pk": {"S": shard[0]}, "sk": {"S": shard[1]}}
    for start in range(0, len(events), step):
        try:
            apply_events(dynamodb, table, shard, events[start : start + step])
        except ClientError as exc:
            return growth, exc.response["Error"].get("Message", str(exc))
        item = dynamodb.get_item(TableName=table, Key=key)["Item"]
        growth.append((start + step, awsmock.item_size(item)))
    return growth, ""


def run(config: RunConfig) -> FigureResult:
    result = FigureResult(2, "Aggregator DynamoDB writes per 1,000 events")
    count = config.pick(20_000, 10_000)
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
        probe_events = MAX_SESSIONS_PER_SHARD + 5_000
        probe_records = traffic.records(
            probe_events,
            seed=config.seed,
            start=datetime.now(UTC) - timedelta(minutes=10),
            rate=probe_events / 600,
        )
        growth, error = shard_item_growth(
            probe_records, "bench-session-growth", step=config.pick(1_000, 2_500)
        )
    med = {size: {k: median(r[k] for r in runs[size]) for k in runs[size][0]} for size in runs}
    for size in BATCH_SIZES:
        m = med[size]
        for label, key in (("items written", "items"), ("TransactWriteItems", "transactions")):
            result.rows.append(
                Row(
                    f"batch {size:,}: {label} / 1,000 ev",
                    m[key],
                    "",
                    m["naive"],
                    "naive UpdateItems",
                    target=f"<= {TARGET_PER_1000:.0f}" if size == 1_000 else "",
                    holds=m[key] <= TARGET_PER_1000 if size == 1_000 else None,
                )
            )
    sessions, pages, products = (median(s[i] for s in shapes) for i in range(3))
    result.method = (
        f"{count:,} events per run from the {traffic.source().detail} at {RATE:.0f} events/s "
        f"of simulated time ending now (~{sessions:,.0f} sessions, {pages:.0f} pages, "
        f"{products:.0f} products), validated and enriched by the real ingest path, given "
        "sequence numbers and applied with `clickstream.aggregates.apply_events` to one "
        "shard, in batches of each size, against moto in-process. A botocore "
        "`provide-client-params.dynamodb` hook counts every request and the actions inside "
        "each `TransactWriteItems` (the shard/watermark item included). Naive baseline: "
        "`sum(len(item_keys(e)))`, one `UpdateItem` per event per item it touches. "
        f"{repeats} runs with different seeds, median. Write units: 2 per KB per "
        "transactional item (update items sized as stored at the end, the shard item "
        "exactly as put), 1 per KB for the naive updates."
    )
    result.details += md_table(
        (
            "batch",
            "TWI/1k ev",
            "items/1k ev",
            "GetItem/1k ev",
            "naive/1k ev",
            "WCU/1k ev",
            "of which shard item",
            "naive WCU/1k ev",
            "largest shard item KB",
        ),
        [
            (
                f"{size:,}",
                m["transactions"],
                m["items"],
                m["reads"],
                m["naive"],
                m["wcu"],
                m["wcu_shard"],
                m["naive_wcu"],
                m["max_put_kb"],
            )
            for size, m in med.items()
        ],
    )
    shown = {n for n, _ in growth if n in (1_000, 2_500, 5_000, 10_000, 15_000, 20_000)}
    shown |= {growth[-1][0]} if growth else set()
    result.details += [
        "",
        "Shard item size as live sessions grow (each event a new session, all within 10 "
        f"minutes; `MAX_SESSIONS_PER_SHARD` = {MAX_SESSIONS_PER_SHARD:,}, `SESSION_MEMORY` = "
        f"{SESSION_MEMORY}), read back after each batch of {config.pick(1_000, 2_500):,}:",
        "",
        *md_table(
            ("new sessions applied", "shard item KB", "transactional WCU to rewrite it"),
            [
                (n, size / 1024, awsmock.write_units(size, transactional=True))
                for n, size in growth
                if n in shown
            ],
        ),
    ]
    largest = max((size for _, size in growth), default=0)
    if error:
        result.findings.append(
            f"The shard item outgrows DynamoDB's 400 KB item limit: after "
            f"{growth[-1][0] if growth else 0:,} live sessions `apply_events` failed with "
            f"'{error}' (largest accepted item {largest / 1024:.0f} KB); such a batch can "
            "never be applied (retried, then discarded)."
        )
    else:
        result.findings.append(
            f"The shard item stays under DynamoDB's 400 KB limit with "
            f"{growth[-1][0] if growth else 0:,} live sessions fed (largest "
            f"{largest / 1024:.0f} KB, capped by `MAX_SESSIONS_PER_SHARD`), but rewriting it "
            f"costs up to {awsmock.write_units(largest, transactional=True)} WCU per "
            "transaction, and one item takes at most 1,000 WCU/s (one partition)."
        )
    m = med[1_000]
    result.findings.append(
        f"Requests are low ({m['items']:.1f} items / 1,000 events at batch 1,000), but write "
        f"capacity is dominated by rewriting the shard item (sessions + recent feed) in every "
        f"transaction: {m['wcu_shard']:.0f} of {m['wcu']:.0f} WCU per 1,000 events."
    )
    return result
