"""Ledger arithmetic and reconciliation logic. Pure (plus local Parquet files for DuckDB)."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.config import SimulatorConfig
from simulator.journeys import Simulation
from simulator.ledger import Delivery, Ledger, LedgerError, Tally, read_ledger
from simulator.pipeline import ArchiveSummary, PipelineState, summarize_parquet
from simulator.reconcile import (
    compare,
    diagnose,
    differences,
    reconcile_until_converged,
    render,
)

START = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)


def rec(event_id, event_type, session="s1", page="/home", value=None):
    record = {"event_id": event_id, "event_type": event_type, "session_id": session, "page": page}
    if value is not None:
        record["value"] = value
    return record


RECORDS = [
    rec("e1", "page_view", "s1", "/home"),
    rec("e2", "page_view", "s1", "/products/sku-1001"),
    rec("e3", "add_to_cart", "s1", "/products/sku-1001"),
    rec("e4", "checkout", "s1", "/checkout"),
    rec("e5", "purchase", "s1", "/checkout/confirmation", 0.1),
    rec("e6", "page_view", "s2", "/home"),
    rec("e7", "search", "s2", "/search"),
    rec("e8", "checkout", "s3", "/checkout"),
    rec("e9", "purchase", "s3", "/checkout/confirmation", 0.2),
    rec("e10", "purchase", "s3", "/checkout/confirmation", 19.99),
]


def test_tally_counts_like_the_pipeline():
    tally = Tally()
    tally.add_all(RECORDS)
    counts = tally.as_dict()
    assert counts["events"] == 10
    assert counts["events_by_type"] == {
        "add_to_cart": 1,
        "checkout": 2,
        "page_view": 3,
        "purchase": 3,
        "search": 1,
    }
    assert counts["page_views"] == {"/home": 2, "/products/sku-1001": 1}  # page_view only
    assert counts["sessions"] == 3
    # distinct sessions that reached the step and every one before: s1 all four, s2 the
    # first; s3 checked out and bought (twice) but never viewed a page or a cart
    assert counts["funnel"] == {"page_view": 2, "add_to_cart": 1, "checkout": 1, "purchase": 1}
    assert counts["revenue"] == 20.29  # exact decimal sum, not 20.290000000000003
    assert tally.revenue == Decimal("20.29")


def test_ledger_counts_only_what_was_accepted():
    ledger = Ledger()
    ledger.record(
        RECORDS[:5],
        Delivery(
            accepted_ids=["e1", "e2", "e4", "e5"], rejected=1, requests=1, errors=["200 page: bad"]
        ),
    )
    ledger.record(RECORDS[5:], Delivery(undelivered=5, retries=5, requests=6))
    data = ledger.as_dict()
    assert data["sent"]["events"] == 10
    assert data["accepted"]["events"] == 4
    assert data["accepted"]["funnel"] == {  # e3, the cart, was not accepted
        "page_view": 1,
        "add_to_cart": 0,
        "checkout": 0,
        "purchase": 0,
    }
    assert data["accepted"]["revenue"] == 0.1
    assert data["not_accepted"] == {"total": 6, "rejected": 1, "undelivered": 5}
    assert data["accepted_event_ids"] == ["e1", "e2", "e4", "e5"]
    assert data["requests"] == 7 and data["retries"] == 5
    assert data["errors"] == {"200 page: bad": 1}


def test_ledger_round_trips_through_json(tmp_path):
    ledger = Ledger(meta={"seed": 1})
    ledger.record(RECORDS, Delivery(accepted_ids=[r["event_id"] for r in RECORDS]))
    path = tmp_path / "sub" / "ledger.json"
    ledger.write(path)
    assert read_ledger(path) == json.loads(json.dumps(ledger.as_dict()))
    (tmp_path / "other.json").write_text("{}")
    with pytest.raises(LedgerError):
        read_ledger(tmp_path / "other.json")
    with pytest.raises(LedgerError):
        read_ledger(tmp_path / "missing.json")


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(1, 300),
    accepted_mask=st.lists(st.booleans(), min_size=300, max_size=300),
    batch=st.integers(1, 50),
)
def test_ledger_equals_a_tally_of_the_accepted_subset(seed, n, accepted_mask, batch):
    events = list(itertools.islice(Simulation(SimulatorConfig(), seed=seed, start=START), n))
    records = [e.record for e in events]
    ledger = Ledger()
    for index in range(0, n, batch):
        chunk = records[index : index + batch]
        mask = accepted_mask[index : index + batch]
        ids = [r["event_id"] for r, ok in zip(chunk, mask, strict=False) if ok]
        ledger.record(chunk, Delivery(accepted_ids=ids, rejected=len(chunk) - len(ids)))
    expected = Tally()
    expected.add_all(r for r, ok in zip(records, accepted_mask, strict=False) if ok)
    assert ledger.accepted.as_dict() == expected.as_dict()
    # crawler records are counted as bots, everything else as events
    assert ledger.sent.events + ledger.sent.bots == n
    assert ledger.accepted.events + ledger.accepted.bots + ledger.rejected == n
    funnel = ledger.accepted.as_dict()["funnel"]
    assert max(funnel.values()) <= ledger.accepted.as_dict()["sessions"]


# --- compare ---------------------------------------------------------------------------------


def ledger_dict(records=RECORDS) -> dict:
    ledger = Ledger()
    ledger.record(records, Delivery(accepted_ids=[r["event_id"] for r in records]))
    return ledger.as_dict()


def state(
    total, by_type, sessions, revenue, pages, funnel_sessions, funnel, *, bounces=11, direct=43
) -> PipelineState:
    """A reading; its visit numbers default to AFTER's (RECORDS add one bounce, s2, and three
    direct visits; they have no user, device or place)."""
    return PipelineState(
        total_events=total,
        events_by_type=by_type,
        sessions=sessions,
        revenue=revenue,
        page_views_total=by_type.get("page_view", 0),
        pages=pages,
        funnel_sessions=funnel_sessions,
        funnel=funnel,
        visitors=0,
        bounces=bounces,
        visit_duration_s=0,
        bots=0,
        visits_by={"channel": {"Direct": direct}},
    )


BASELINE = state(
    100,
    {"page_view": 80, "purchase": 20},
    40,
    1000.0,
    {"/home": 50, "/x": 30},
    40,
    {"page_view": 40, "add_to_cart": 10, "checkout": 5, "purchase": 5},
    bounces=10,
    direct=40,
)
AFTER = state(
    110,
    {"page_view": 83, "purchase": 23, "add_to_cart": 1, "checkout": 2, "search": 1},
    43,
    1020.29,
    {"/home": 52, "/x": 30, "/products/sku-1001": 1},
    43,
    {"page_view": 42, "add_to_cart": 11, "checkout": 6, "purchase": 6},
)


def test_compare_subtracts_the_baseline():
    metrics = compare(ledger_dict(), AFTER, BASELINE)
    assert not differences(metrics), [m for m in metrics if not m.ok]
    names = {m.name for m in metrics}
    assert {"stats.total_events", "funnel.purchase", "pages./home", "stats.revenue"} <= names


def test_compare_reports_each_difference():
    short = state(
        109,
        {**AFTER.events_by_type, "search": 0},
        43,
        1020.0,
        {**AFTER.pages, "/home": 53},
        43,
        AFTER.funnel,
    )
    bad = {m.name: m.difference for m in differences(compare(ledger_dict(), short, BASELINE))}
    assert bad == {
        "stats.total_events": -1,
        "stats.events_by_type.search": -1,
        "stats.revenue": pytest.approx(-0.29),
        "pages.views (all pages)": 1,
        "pages./home": 1,
    }


def test_pages_and_types_only_the_pipeline_has_are_differences():
    extra = state(
        111,
        {**AFTER.events_by_type, "click": 1},
        43,
        1020.29,
        {**AFTER.pages, "/elsewhere": 4},
        43,
        AFTER.funnel,
    )
    bad = {m.name for m in differences(compare(ledger_dict(), extra, BASELINE))}
    assert {"stats.events_by_type.click", "pages./elsewhere"} <= bad


def test_unreadable_numbers_are_differences():
    metrics = compare(ledger_dict(), PipelineState(), BASELINE, archive_expected=True)
    assert all(not m.ok for m in metrics if m.checked)
    assert {m.found for m in metrics} == {None}


def test_no_baseline_means_absolute_numbers():
    fresh = state(
        10,
        {"page_view": 3, "purchase": 3, "add_to_cart": 1, "checkout": 2, "search": 1},
        3,
        20.29,
        {"/home": 2, "/products/sku-1001": 1},
        3,
        {"page_view": 2, "add_to_cart": 1, "checkout": 1, "purchase": 1},
        bounces=1,
        direct=3,
    )
    assert not differences(compare(ledger_dict(), fresh, None))


def test_archive_metrics():
    good = ArchiveSummary(
        objects=2, rows=12, distinct_ids=12, run_rows=10, run_distinct_ids=10, missing_ids=0
    )
    metrics = compare(ledger_dict(), AFTER, BASELINE, good)
    assert not differences(metrics)  # 2 foreign rows are shown, not checked
    duplicated = ArchiveSummary(2, 12, 11, 11, 10, 0)
    missing = ArchiveSummary(1, 9, 9, 9, 9, 1)
    # a redelivered copy awaiting compaction is shown, not a difference: ids are what count
    assert not differences(compare(ledger_dict(), AFTER, BASELINE, duplicated))
    assert {m.name for m in differences(compare(ledger_dict(), AFTER, BASELINE, missing))} == {
        "archive.distinct event_ids (run's ids)",
        "archive.accepted ids missing",
    }


def test_a_loss_upstream_of_both_consumers_is_diagnosed():
    lossy = state(108, {**AFTER.events_by_type, "page_view": 81}, 43, 1020.29,
                  {**AFTER.pages, "/home": 50}, 43, AFTER.funnel)  # fmt: skip
    archive = ArchiveSummary(objects=2, rows=8, distinct_ids=8, run_rows=8, run_distinct_ids=8,
                             missing_ids=2)  # fmt: skip
    notes = diagnose(compare(ledger_dict(), lossy, BASELINE, archive))
    assert notes and "lack the same 2 accepted event(s)" in notes[0]
    assert not diagnose(
        compare(ledger_dict(), AFTER, BASELINE, ArchiveSummary(2, 10, 10, 10, 10, 0))
    )


def test_render_hides_matching_pages_unless_asked():
    from rich.console import Console

    metrics = compare(ledger_dict(), AFTER, BASELINE)
    console = Console(width=200, record=True)
    console.print(render(metrics))
    text = console.export_text()
    assert "pages./home" not in text and "2 pages match" in text
    console.print(render(metrics, show_all_pages=True))
    assert "pages./home" in console.export_text()


def test_a_row_shown_but_not_checked_says_so_in_plain_text():
    from rich.console import Console

    from simulator.reconcile import Metric

    metrics = [
        Metric("stats.visitors", 187, 190, tolerance=2, checked=False),  # a stack in use
        Metric("stats.total_events", 1193, 1193),
    ]
    console = Console(width=200, record=True, no_color=True)
    console.print(render(metrics))
    rows = {
        line.split()[1]: line for line in console.export_text().splitlines() if "stats." in line
    }
    assert "+3 (not checked)" in rows["stats.visitors"]
    assert "not checked" not in rows["stats.total_events"]
    assert not differences(metrics)


def test_reconcile_waits_for_the_numbers_to_converge():
    readings = iter([BASELINE, BASELINE, AFTER])
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds):
        slept.append(seconds)
        now[0] += seconds

    metrics, attempts, _ = reconcile_until_converged(
        lambda: compare(ledger_dict(), next(readings), BASELINE),
        wait=60,
        poll=2,
        clock=lambda: now[0],
        sleep=sleep,
    )
    assert attempts == 3 and slept == [2, 2] and not differences(metrics)


def test_reconcile_gives_up_after_wait():
    now = [0.0]

    def sleep(seconds):
        now[0] += seconds

    metrics, attempts, waited = reconcile_until_converged(
        lambda: compare(ledger_dict(), BASELINE, BASELINE),
        wait=5,
        poll=2,
        clock=lambda: now[0],
        sleep=sleep,
    )
    assert differences(metrics) and attempts == 4 and waited == 5


# --- the archive, read with DuckDB -----------------------------------------------------------


def write_parquet(path, ids):
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.table(
        {
            "event_id": pa.array(ids, pa.string()),
            "event_type": pa.array(["page_view"] * len(ids), pa.string()),
            "timestamp": pa.array([START] * len(ids), pa.timestamp("ms", tz="UTC")),
        }
    )
    pq.write_table(table, path)


def test_summarize_parquet(tmp_path):
    part = tmp_path / "events" / "year=2026" / "month=11" / "day=24" / "hour=02"
    write_parquet(part / "shard-1-1-5.parquet", ["a", "b", "c", "x"])
    write_parquet(part / "shard-2-1-5.parquet", ["c", "y"])  # c twice: a duplicate
    files = sorted(tmp_path.rglob("*.parquet"))
    summary = summarize_parquet(files, ["a", "b", "c", "d"])
    assert summary == ArchiveSummary(
        objects=2,
        rows=6,
        distinct_ids=5,
        run_rows=4,
        run_distinct_ids=3,
        missing_ids=1,
        missing_sample=("d",),
    )
    assert summarize_parquet([], ["a"]).missing_ids == 1


class FakeS3:
    """list_objects_v2 pages and download_file over an in-memory bucket of Parquet files."""

    def __init__(self, tmp_path):
        self.tmp = tmp_path
        self.objects: dict[str, tuple[str, list[str]]] = {}  # key -> (etag, event ids)
        self.downloads: list[str] = []

    def put(self, key, etag, ids):
        self.objects[key] = (etag, ids)

    def get_paginator(self, name):
        assert name == "list_objects_v2"
        fake = self

        class Paginator:
            def paginate(self, Bucket, Prefix):
                yield {"Contents": [{"Key": k, "ETag": e} for k, (e, _) in fake.objects.items()
                                    if k.startswith(Prefix)]}  # fmt: skip

        return Paginator()

    def download_file(self, bucket, key, target):
        self.downloads.append(key)
        write_parquet(Path(target), self.objects[key][1])


def test_archive_reader_follows_new_rewritten_and_deleted_objects(tmp_path, monkeypatch):
    from clickstream import aws
    from simulator.pipeline import ArchiveReader

    s3 = FakeS3(tmp_path)
    monkeypatch.setattr(aws, "client", lambda service: s3)
    hour = "events/year=2026/month=11/day=24/hour=02/"
    s3.put(hour + "compacted.parquet", '"old"', ["x1", "x2"])
    s3.put(hour + "s0-1-2.parquet", '"a"', ["x3"])
    reader = ArchiveReader(
        "bucket", {hour + "compacted.parquet": '"old"', hour + "s0-1-2.parquet": '"a"'}
    )
    try:
        s3.put(hour + "s0-3-4.parquet", '"b"', ["r1", "r2"])
        s3.put(hour + "s1-1-1.parquet", '"c"', ["r3"])
        reader.refresh()
        assert reader.summary(["r1", "r2", "r3"]).run_distinct_ids == 3
        # compaction: the hour becomes one rewritten compacted.parquet, the merged objects go
        del s3.objects[hour + "s0-3-4.parquet"], s3.objects[hour + "s1-1-1.parquet"]
        del s3.objects[hour + "s0-1-2.parquet"]
        s3.put(hour + "compacted.parquet", '"new"', ["x1", "x2", "x3", "r1", "r2", "r3"])
        reader.refresh()
        summary = reader.summary(["r1", "r2", "r3"])
        assert (summary.run_rows, summary.run_distinct_ids, summary.missing_ids) == (3, 3, 0)
        assert summary.rows == 6 and summary.objects == 1
        reader.refresh()  # nothing changed: nothing downloaded again
        assert s3.downloads.count(hour + "compacted.parquet") == 1
    finally:
        reader.close()
