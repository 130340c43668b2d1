"""The aggregate store on DynamoDB: every event counted once whatever the
redelivery, retries, folds, crashes, reshards and cardinality; shard-local writes; bounded
items. Each test runs on moto in-process and on dynalite (see tests/unit/conftest.py)."""

from __future__ import annotations

import re
import secrets
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import orjson
import pytest
from botocore.exceptions import ClientError

from clickstream import queries
from clickstream.aggregates import SESSION_TIMEOUT, Delta, Goal, aggregate, visit_state_key
from clickstream.schema import Location
from clickstream.store import (
    MAX_KEY_BYTES,
    DynamoAggregateStore,
    ReadMeter,
    StoreConflict,
    TopValues,
    WriteMeter,
    _encode,
    _item_bytes,
)
from infra.cost import EventClock
from infra.template import table_arguments
from tests.factories import make_event, sequenced
from tests.unit.store_support import (
    ALL_TIME,
    ITEM_LIMIT,
    SKETCH_BOUND,
    counted,
    largest_items,
    written_keys,
)

T0 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
SHARD = "shardId-000000000000"
OTHER = "shardId-000000000001"


def test_the_same_batch_delivered_twice_counts_once(store):
    batch = sequenced([make_event(session_id=f"s{i}") for i in range(20)])
    first = store.apply(SHARD, batch)
    again = store.apply(SHARD, batch)
    assert (first.applied, again.applied, again.skipped_duplicates) == (20, 0, 20)
    assert counted(store)["events"] == 20


def test_a_recut_batch_overlapping_the_last_one_counts_only_the_new_records(store):
    events = sequenced([make_event(session_id=f"s{i}") for i in range(30)])
    store.apply(SHARD, events[:20])
    result = store.apply(SHARD, events[10:30])
    assert (result.applied, result.skipped_duplicates) == (10, 10)
    assert counted(store)["events"] == 30


@pytest.mark.parametrize("folded", [False, True], ids=["pending", "folded"])
def test_a_fresh_process_finds_the_watermark_in_the_table(store, new_store, folded):
    events = sequenced([make_event(session_id=f"s{i}") for i in range(30)])
    store.apply(SHARD, events[:20])
    if folded:  # every delta folded: the watermark is the cursor's
        assert store.fold(SHARD) == 1
    restarted = new_store()
    result = restarted.apply(SHARD, events)
    # the first 20 skipped by their sequence numbers, before their event ids are looked up
    assert (result.applied, result.skipped_duplicates, result.duplicate_event_ids) == (10, 20, 0)
    assert counted(restarted)["events"] == 30


def test_the_watermark_is_the_last_record_written_per_shard_folded_or_not(store, new_store):
    # what the KCL soak compares with the lease table's checkpoint
    events = sequenced([make_event(session_id=f"s{i}") for i in range(30)])
    assert store.watermark(SHARD) is None
    store.apply(SHARD, events[:20])
    assert new_store().watermark(SHARD) == events[19].sequence_number
    store.apply(SHARD, events[20:])
    store.fold(SHARD)
    assert new_store().watermark(SHARD) == events[29].sequence_number
    assert new_store().watermark(OTHER) is None


def test_a_clients_retry_of_an_event_counts_once_however_it_is_sequenced(store):
    event = make_event(session_id="retrying", received_at=T0)
    retry = event.model_copy(update={"received_at": T0 + timedelta(minutes=10)})
    store.apply(SHARD, sequenced([event], start=1))
    result = store.apply(SHARD, sequenced([retry], start=50))
    assert (result.applied, result.duplicate_event_ids, result.skipped_duplicates) == (0, 1, 0)
    assert counted(store)["events"] == 1
    assert store.dimension_count("page", "/home", "0000", "9999") == 1


def test_a_retry_after_a_fold_and_a_restart_still_counts_once(store, new_store):
    event = make_event(session_id="retrying", received_at=T0)
    store.apply(SHARD, sequenced([event], start=1))
    store.fold(SHARD)
    retry = event.model_copy(update={"received_at": T0 + timedelta(minutes=12)})
    assert new_store().apply(SHARD, sequenced([retry], start=9)).duplicate_event_ids == 1
    assert counted(store)["events"] == 1


def test_folding_changes_no_number(store):
    events = [
        make_event(session_id=f"s{i % 7}", page=f"/p{i % 5}", timestamp=T0 + timedelta(minutes=i))
        for i in range(200)
    ]
    for start in range(0, 200, 25):
        store.apply(SHARD, sequenced(events[start : start + 25], start=start + 1))
    before = counted(store), store.top("page", None, None, 10), store.recent(50)
    assert store.fold(SHARD) == 8
    assert (counted(store), store.top("page", None, None, 10), store.recent(50)) == before
    assert store.fold(SHARD) == 0


def test_a_fold_that_crashed_half_way_is_finished_by_the_next_without_double_counting(
    store, monkeypatch
):
    events = [make_event(session_id=f"s{i % 9}", page=f"/p{i % 4}") for i in range(60)]
    store.apply(SHARD, sequenced(events[:30], start=1))
    store.apply(SHARD, sequenced(events[30:], start=31))
    expected = counted(store), store.dimension_count("page", "/p1", "0000", "9999")

    def crash(*_args):
        raise RuntimeError("the fold's Lambda timed out")

    with monkeypatch.context() as patched:
        patched.setattr(DynamoAggregateStore, "_fold_sessions", crash)
        with pytest.raises(RuntimeError):
            store.fold(SHARD)
    assert (counted(store), store.dimension_count("page", "/p1", "0000", "9999")) == expected
    store.fold(SHARD)
    assert (counted(store), store.dimension_count("page", "/p1", "0000", "9999")) == expected


def test_a_fold_overtaken_by_another_fold_half_way_counts_every_delta_once(
    store, new_store, monkeypatch
):
    for start in range(1, 400, 20):
        store.apply(
            SHARD, sequenced([make_event(session_id=f"s{start}-{i}") for i in range(20)], start)
        )
    store.fold(SHARD, max_deltas=5)  # a cursor that is not at the start
    store.apply(SHARD, sequenced([make_event(session_id="late")], 1000))
    expected = counted(store), store.top("page", None, None, 3)
    slow, fast = new_store(), new_store()
    run_all = DynamoAggregateStore._run_all

    def overtaken(self, writes):
        if self is not slow:
            return run_all(self, writes)
        half = len(writes) // 2  # half of its item writes done, another fold runs whole
        run_all(self, writes[:half])
        fast.fold(SHARD)
        return run_all(self, writes[half:])

    monkeypatch.setattr(DynamoAggregateStore, "_run_all", overtaken)
    slow.fold(SHARD)
    assert (counted(store), store.top("page", None, None, 3)) == expected
    assert store.fold(SHARD) == 0


def before_its_writes(
    monkeypatch: pytest.MonkeyPatch, folder: DynamoAggregateStore, action: Callable[[], None]
) -> None:
    """Run ``action`` once, after ``folder``'s next fold has read its deltas and before it
    writes any item."""
    run_all = DynamoAggregateStore._run_all
    waiting = [action]

    def overtaken(self: DynamoAggregateStore, writes: Sequence[Callable[[], object]]) -> None:
        if self is folder and waiting:
            waiting.pop()()
        run_all(self, writes)

    monkeypatch.setattr(DynamoAggregateStore, "_run_all", overtaken)


@pytest.mark.parametrize("overtaking", ["part of its deltas", "past its last delta"])
def test_a_fold_overtaken_before_it_writes_adds_only_what_the_other_fold_left(
    store_with, monkeypatch, overtaking
):
    """Between a fold's read of its deltas and its writes, another fold folds some of them
    (its items' ``w`` now between the first's base and top: the first adds only the rest),
    or all of them and newer ones (the first adds nothing): every count, the top pages, their
    total and the feed are as sent, and stay so after the next fold."""
    writer = store_with(fold_after_deltas=10**6, fold_after_s=10**6)
    sent = []

    def send(n: int) -> None:
        events = [
            make_event(page=f"/p{(n + i) % 4}", session_id=f"s{i}",
                       timestamp=T0 + timedelta(minutes=n), event_type=kind)
            for i, kind in enumerate(["page_view", "page_view", "purchase"])
        ]  # fmt: skip
        sent.extend(events)
        writer.apply(SHARD, sequenced(events, 10 * n))

    for n in range(1, 11):
        send(n)
    slow, fast = store_with(), store_with()

    def overtake() -> None:
        if overtaking == "part of its deltas":
            fast.fold(SHARD, max_deltas=4)
        else:
            send(11)
            send(12)
            fast.fold(SHARD)

    before_its_writes(monkeypatch, slow, overtake)
    assert slow.fold(SHARD) == 10
    views = Counter(e.page for e in sent if e.event_type == "page_view")
    hour = T0.strftime("%Y-%m-%dT%H")
    for _ in ("folded", "folded again"):
        assert counted(writer)["events"] == len(sent)
        for low, high in ((None, None), ("2026-11-24", "2026-11-24"), (hour, hour)):
            top = writer.top("page", low, high, 10)
            assert {row.value: row.count for row in top.rows} == views, (low, high)
            assert top.total == sum(views.values()), (low, high)
        feed = [event["event_id"] for event in writer.recent()]
        assert sorted(feed) == sorted({event.event_id for event in sent})
        writer.fold(SHARD)


def test_two_writers_of_one_shard_cannot_both_append(store, new_store):
    zombie = new_store()
    batch = sequenced([make_event(session_id=f"z{i}") for i in range(10)])
    zombie.apply(SHARD, batch[:5])  # the zombie's head is now stale for the live writer...
    store.apply(SHARD, batch)  # ...which re-reads it after its append is refused
    with pytest.raises(StoreConflict):
        zombie._append(store.shard(SHARD), 2, "99", zombie_delta(), b"x")
    assert counted(store)["events"] == 10


def test_a_writer_with_a_stale_head_rereads_it_and_appends_only_what_is_new(store, new_store):
    # GIVEN two processes of one shard, each of which has appended once
    events = sequenced([make_event(session_id=f"w{i}") for i in range(30)])
    store.apply(SHARD, events[:10])
    other = new_store()
    assert other.apply(SHARD, events[:15]).applied == 5  # its head is now the newest
    # WHEN the first, whose head is stale, applies a batch overlapping what the other appended
    result = store.apply(SHARD, events[:20])
    # THEN its append was refused (the ordinal is taken), it re-read the head and appended
    # only the records past the watermark
    assert (result.applied, result.skipped_duplicates, result.deltas_written) == (5, 15, 1)
    # AND the same for the other, now stale in turn, with a re-cut batch
    result = other.apply(SHARD, events[15:30])
    assert (result.applied, result.skipped_duplicates, result.deltas_written) == (10, 5, 1)
    # each event counted once
    assert counted(store)["events"] == 30
    assert store.dimension_count("page", "/home", "0000", "9999") == 30


def test_a_writer_that_keeps_losing_the_race_gives_up_and_its_batch_is_retried(
    store, new_store, monkeypatch
):
    events = sequenced([make_event(session_id=f"l{i}") for i in range(20)])
    store.apply(SHARD, events[:5])
    loser = new_store()
    append = DynamoAggregateStore._append

    tries = []

    def always_taken(self, shard, n, upto, delta, body):
        if self is loser:
            tries.append(n)
            raise StoreConflict(shard)
        return append(self, shard, n, upto, delta, body)

    monkeypatch.setattr(DynamoAggregateStore, "_append", always_taken)
    with pytest.raises(StoreConflict):
        loser.apply(SHARD, events)
    assert tries == [2, 2, 2, 2]  # the first try and three retries, each from the head re-read
    monkeypatch.undo()
    assert loser.apply(SHARD, events).applied == 15  # Lambda's retry of the batch
    assert counted(store)["events"] == 20


def test_concurrent_writers_of_one_shard_count_every_event_once(store_with):
    """Four processes of one shard (a zombie Lambda, overlapping retries) apply the same
    stream at once, each in its own batches: each event is counted exactly once."""
    import threading

    events = sequenced([make_event(session_id=f"c{i % 25}", page=f"/c{i % 7}") for i in range(240)])
    writers = [store_with(fold_after_deltas=10**6, fold_after_s=10**6) for _ in range(4)]
    errors: list[BaseException] = []

    def deliver(store, size):
        try:
            for start in range(0, len(events), size):
                while True:
                    try:
                        store.apply(SHARD, events[start : start + size])
                        break
                    except StoreConflict:
                        continue  # as Lambda retries a batch that raised
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=deliver, args=(writer, size), daemon=True)
        for writer, size in zip(writers, (7, 11, 13, 40), strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a writer never got its batch in"
    assert not errors
    reader = store_with()
    assert counted(reader)["events"] == 240
    assert sum(reader.dimension_count("page", f"/c{i}", "0000", "9999") for i in range(7)) == 240
    reader.fold(SHARD)
    assert counted(reader)["events"] == 240


def test_a_batch_too_large_for_one_item_is_cut_into_deltas_under_the_limit(store, monkeypatch):
    # a limit small enough that one delta cannot hold the batch's increments (the real one,
    # 300 KB compressed, needs tens of thousands of distinct values to reach)
    monkeypatch.setattr("clickstream.store.MAX_DELTA_BYTES", 1_500)
    events = sequenced(
        [make_event(session_id=f"big{i}", page=f"/p/{i:04d}-{'x' * 40}") for i in range(60)]
    )
    result = store.apply(SHARD, events)
    assert result.applied == 60 and result.deltas_written > 2
    deltas = store.dynamodb.query(
        TableName=store.table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": "delta"}},
    )["Items"]
    assert len(deltas) == result.deltas_written
    assert max(len(item["body"]["B"]) for item in deltas) <= 1_500
    assert counted(store)["events"] == 60
    assert store.apply(SHARD, events).skipped_duplicates == 60  # the watermark is the last chunk's


def test_a_batch_twice_what_one_delta_holds_is_cut_in_two_at_the_limit_itself(store, monkeypatch):
    events = [make_event(event_id=f"e{i}", session_id=f"v{i}", page=f"/p{i}") for i in range(8)]
    halves = [_encode(aggregate(half, {}).to_json()) for half in (events[:4], events[4:])]
    limit = max(len(body) for body in halves)  # each half fits, at most exactly
    assert len(_encode(aggregate(events, {}).to_json())) > limit
    monkeypatch.setattr("clickstream.store.MAX_DELTA_BYTES", limit)
    result = store.apply(SHARD, sequenced(events))
    assert (result.applied, result.deltas_written) == (8, 2)
    assert counted(store)["events"] == 8


def test_a_batch_cut_into_deltas_reads_each_shards_pending_deltas_once(store_with, monkeypatch):
    store_with().apply(OTHER, sequenced([make_event()]))  # another shard's delta pending
    monkeypatch.setattr("clickstream.store.MAX_DELTA_BYTES", 1)  # a delta for each event
    cut = store_with(client=DeltaReads, fold_after_deltas=10**6)
    events = [make_event(session_id=f"v{i}", page=f"/p{i}") for i in range(8)]
    assert cut.apply(SHARD, sequenced(events)).deltas_written == 8
    assert list(cut.dynamodb.ranges.values()) == [1, 1]


def test_events_each_over_the_limit_are_a_delta_each(store, monkeypatch):
    monkeypatch.setattr("clickstream.store.MAX_DELTA_BYTES", 1)  # no cut can meet it
    result = store.apply(SHARD, sequenced([make_event(session_id=f"o{i}") for i in range(4)]))
    assert (result.applied, result.deltas_written) == (4, 4)
    assert counted(store)["events"] == 4


def zombie_delta():
    from clickstream.aggregates import Delta

    return Delta()


def test_every_item_a_shard_writes_is_its_own(store):
    store.apply(SHARD, sequenced([make_event(session_id=f"a{i}") for i in range(50)], 1))
    store.apply(OTHER, sequenced([make_event(session_id=f"b{i}") for i in range(50)], 1))
    store.fold(SHARD)
    store.fold(OTHER)
    for pk, sk in written_keys(store):
        if pk.startswith(("session#", "erased")):
            continue  # a session lives on one shard at a time (its partition key)
        if pk == "layout":
            continue  # put once per table if absent, never updated: nothing to contend on
        assert sk.endswith((SHARD, OTHER)) or SHARD in sk or OTHER in sk, (pk, sk)
    assert counted(store)["events"] == 100


def test_sessions_continue_across_a_split_without_being_counted_again(store):
    # The parent shard's last deltas are not folded when the child starts (Lambda starts a
    # child only after its parent is finished, but nothing folds the parent in between).
    store.apply(
        SHARD, sequenced([make_event(session_id=f"s{i}", timestamp=T0) for i in range(40)], 1)
    )
    child = "shardId-000000000002"
    later = [
        make_event(
            session_id=f"s{i}", event_type="add_to_cart", timestamp=T0 + timedelta(minutes=3)
        )
        for i in range(40)
    ]
    store.apply(child, sequenced(later, 100))
    totals = counted(store)
    assert (totals["sessions"], totals["funnel:add_to_cart"], totals["events"]) == (40, 40, 80)
    store.fold_all()
    assert counted(store) == totals


def traffic_with(pages: int, types: int) -> list:
    slug = "a-rather-long-product-slug-for-the-catalogue"
    events = [
        make_event(session_id=f"s{i % 300}", page=f"/products/{i:06d}-{slug}") for i in range(pages)
    ]
    return events + [
        make_event(session_id=f"t{i % 300}", event_type=f"custom_type_{i}") for i in range(types)
    ]


# The heavy tests run on dynalite alone: it is the engine that refuses oversize items, and
# three times faster than moto in-process at thousands of writes.
ON_DYNALITE = pytest.mark.parametrize("aggregates_table", ["dynalite"], indirect=True)


@ON_DYNALITE
def test_no_item_grows_with_the_number_of_pages_or_event_types(store):
    scale = 3
    events = traffic_with(pages=300 * scale, types=150 * scale)
    for start in range(0, len(events), 500):
        store.apply(SHARD, sequenced(events[start : start + 500], start + 1))
    while store.fold(SHARD):
        pass
    totals = counted(store)
    assert totals["events"] == len(events)
    assert (totals["type:page_view"], totals["type:custom"]) == (300 * scale, 150 * scale)
    assert store.dimension_count("page", events[123].page, "0000", "9999") == 1
    assert store.dimension_count("event_type", "custom_type_77", "0000", "9999") == 1
    sizes = largest_items(store, count=1_000_000)
    # the largest item of each kind stays under its bound, whatever the cardinality
    assert max(size for pk, size in sizes if pk.startswith("c#")) < 1024
    assert max(size for pk, size in sizes if pk.startswith(("k#", "kh#"))) < 1024
    assert max(size for pk, size in sizes if pk.startswith(("top#", "toph#"))) < SKETCH_BOUND
    assert max(size for _, size in sizes) < ITEM_LIMIT


def test_a_page_longer_than_a_key_is_counted_under_its_digest(store):
    long_page = "/search/" + "x" * (MAX_KEY_BYTES * 3)
    store.apply(
        SHARD, sequenced([make_event(page=long_page, session_id=f"s{i}") for i in range(3)])
    )
    store.fold(SHARD)
    assert store.dimension_count("page", long_page, "0000", "9999") == 3
    assert store.top("page", None, None, 5).rows[0].value == long_page


@ON_DYNALITE
def test_top_pages_find_the_heavy_hitters_among_thousands_with_exact_counts(store):
    heavy = {f"/hot/{i}": 400 - 30 * i for i in range(10)}
    events = [make_event(page=page, session_id="h") for page, n in heavy.items() for _ in range(n)]
    events += [make_event(page=f"/cold/{i}", session_id=f"c{i}") for i in range(400)]
    for start in range(0, len(events), 1000):
        store.apply(SHARD, sequenced(events[start : start + 1000], start + 1))
        store.fold(SHARD)
    top = store.top("page", None, None, 10)
    assert {row.value: row.count for row in top.rows} == heavy
    assert top.total == len(events)


def test_top_rows_are_exact_with_evicting_summaries_on_two_shards_and_deltas_pending(store):
    """Rows come from folded summaries that evicted values and from pending deltas of two
    shards; every row shown gets its exact count, and none left out has more than the bound."""
    exact = {f"/hot/{i}": 90 - 7 * i for i in range(8)} | {
        f"/cold/{i}": 1 + i % 3 for i in range(600)
    }
    events = [
        make_event(page=page, session_id=f"s{i % 50}")
        for page, n in exact.items()
        for i in range(n)
    ]
    events.sort(key=lambda event: event.event_id)  # hot and cold interleaved
    halves = {SHARD: events[::2], OTHER: events[1::2]}
    for shard, part in halves.items():
        store.apply(shard, sequenced(part[: len(part) // 2]))
        store.fold(shard)
        store.apply(shard, sequenced(part[len(part) // 2 :], 1000 + len(part) // 2))  # pending
    top = store.top("page", None, None, 12)
    assert {row.value: row.count for row in top.rows} == {
        row.value: exact[row.value] for row in top.rows
    }
    assert {f"/hot/{i}" for i in range(8)} <= {row.value for row in top.rows}
    assert top.total == len(events)
    shown = {row.value for row in top.rows}
    assert max(n for page, n in exact.items() if page not in shown) <= max(
        top.max_error, top.rows[-1].count
    )


def test_a_fold_writes_no_item_whose_deltas_net_to_nothing(store):
    """A visit through /a, /b and /c: its exit page passes on twice within one fold, so only
    /c's exit item is written, and the counts read the same before and after the fold."""
    pages = ["/a", "/b", "/c"]
    visit = [
        make_event(page=page, session_id="v", timestamp=T0 + timedelta(minutes=i))
        for i, page in enumerate(pages)
    ]
    for i, event in enumerate(visit):  # one delta each
        store.apply(SHARD, sequenced([event], 1000 + i))
    before = {page: store.dimension_count("exit_page", page, "0000", "9999") for page in pages}
    store.fold(SHARD)
    exits = {pk for pk, _ in written_keys(store) if pk.startswith("k#exit_page#")}
    assert exits == {"k#exit_page#/c"}
    after = {page: store.dimension_count("exit_page", page, "0000", "9999") for page in pages}
    assert before == after == {"/a": 0, "/b": 0, "/c": 1}


def test_exit_pages_a_visit_passed_on_are_not_listed_with_nothing(store):
    """Exit pages net to zero when the visit moves on: their summaries saw them, and the top
    rows leave them out, pending and folded (over days: exit pages keep no all-time summary,
    the queries read them from the days). The total is the one visit: each move lowers it
    as much as it raised it."""
    visit = [
        make_event(page=page, session_id="v", timestamp=T0 + timedelta(minutes=i))
        for i, page in enumerate(["/a", "/b", "/c"])
    ]
    for i, event in enumerate(visit):  # one delta each: the summaries see /a and /b too
        store.apply(SHARD, sequenced([event], 1 + i))
    for _ in ("pending", "folded"):
        top = store.top("exit_page", "2026-11-24", "2026-11-24", 10)
        assert ([(row.value, row.count) for row in top.rows], top.total) == ([("/c", 1)], 1)
        store.fold(SHARD)


def test_max_error_is_what_a_value_never_read_can_have_and_nothing_when_nothing_is_seen(store):
    """The rows are read from the candidates, the summaries' heaviest values, at least twice
    the limit and at least ten more; a value outside them has at most the last candidate's
    count, which is the answer's ``max_error``. An empty store has no error."""
    assert store.top("utm_campaign", None, None, 5) == TopValues([], 0, 0)
    assert store.top("page", "2026-11-24", "2026-11-24", 5) == TopValues([], 0, 0)
    counts = {f"/p/{i:02d}": 40 - i for i in range(40)}  # /p/00 40 times ... /p/39 once
    events = [
        make_event(page=page, session_id=f"s{i % 30}")
        for page, n in counts.items()
        for i in range(n)
    ]
    store.apply(SHARD, sequenced(events, 1))
    for _ in ("pending", "folded"):
        for limit, candidates in ((5, 15), (12, 24)):
            top = store.top("page", None, None, limit)
            assert [(row.value, row.count) for row in top.rows] == list(counts.items())[:limit]
            assert top.max_error == 40 - (candidates - 1), limit
        store.fold(SHARD)


def test_counters_hold_the_counts_alone_as_integers_folded_and_pending(store):
    """A bucket's counters are its counts, whole numbers as ints (the answers' JSON says 3,
    not 3.0), without the items' own attributes (the shard's watermark, the expiry)."""
    store.apply(SHARD, sequenced([make_event(session_id=f"s{i}") for i in range(3)], 1))
    for _ in ("pending", "folded"):
        for granularity, bucket in (
            ("minute", "2026-11-24T10:30"), ("hour", "2026-11-24T10"), ("day", "2026-11-24")
        ):  # fmt: skip
            (counters,) = store.counters(granularity, bucket, bucket).values()
            assert not {"pk", "sk", "w", "expires_at"} & set(counters.values), granularity
            events = counters.get("events")
            assert (events, type(events)) == (3, int)
        store.fold(SHARD)


def test_an_hour_range_counts_only_its_hours_folded_pending_and_over_shards(store):
    """Breakdowns of hours: a visit 10:00-10:10 on one shard, one 11:00-11:05 on another,
    and one 11:20 still pending; an hour's rows hold only its visits, and exit pages (which
    move) are exact per hour as well. A day's range reads no hour twice."""

    def visit(session: str, start: datetime, pages: list[str]) -> list:
        return [
            make_event(page=page, session_id=session, timestamp=start + timedelta(minutes=i))
            for i, page in enumerate(pages)
        ]

    store.apply(SHARD, sequenced(visit("a", T0, ["/home", "/a", "/x"]), 1))
    store.apply(OTHER, sequenced(visit("b", T0 + timedelta(hours=1), ["/home", "/b"]), 1))
    store.fold(SHARD)
    store.fold(OTHER)
    store.apply(OTHER, sequenced(visit("c", T0 + timedelta(minutes=80), ["/b", "/c"]), 10))

    def rows(dimension: str, low: str, high: str) -> dict[str, int]:
        return {row.value: row.count for row in store.top(dimension, low, high, 10).rows}

    ten, eleven = "2026-11-24T10", "2026-11-24T11"
    assert rows("page", ten, ten) == {"/home": 1, "/a": 1, "/x": 1}
    assert rows("page", eleven, eleven) == {"/home": 1, "/b": 2, "/c": 1}
    assert rows("exit_page", ten, ten) == {"/x": 1}
    assert rows("exit_page", eleven, eleven) == {"/b": 1, "/c": 1}
    assert rows("entry_page", eleven, eleven) == {"/home": 1, "/b": 1}
    assert rows("page", ten, eleven) == rows("page", "2026-11-24", "2026-11-24")
    assert rows("page", "2026-11-24", "2026-11-25") == {
        "/home": 2,
        "/b": 2,
        "/a": 1,
        "/x": 1,
        "/c": 1,
    }
    assert rows("exit_page", "2026-11-24", "2026-11-24") == {"/x": 1, "/b": 1, "/c": 1}
    assert store.top("page", "2026-11-24T12", "2026-11-24T23", 10).rows == []


def test_a_visit_across_the_hour_folds_its_exit_under_its_first_hour_and_its_page_under_its_own(
    store,
):
    """A visit's exit page is counted in the hour it began; a page view in its own. A delta
    of the visit's second view alone holds each dimension under another hour."""
    start = T0.replace(minute=59)
    store.apply(SHARD, sequenced([make_event(page="/a", session_id="v", timestamp=start)], 1))
    store.fold(SHARD)
    later = make_event(page="/b", session_id="v", timestamp=start + timedelta(minutes=2))
    store.apply(SHARD, sequenced([later], 2))
    ten, eleven = "2026-11-24T10", "2026-11-24T11"

    def rows(dimension: str, hour: str) -> dict[str, int]:
        return {row.value: row.count for row in store.top(dimension, hour, hour, 10).rows}

    for _ in ("pending", "folded"):
        assert (rows("exit_page", ten), rows("exit_page", eleven)) == ({"/b": 1}, {})
        assert (rows("page", ten), rows("page", eleven)) == ({"/a": 1}, {"/b": 1})
        store.fold(SHARD)


def test_a_feed_an_earlier_version_wrote_without_a_generation_takes_the_next_fold(store):
    """Feeds written before erasures bumped a generation ``g`` have none: the next fold
    adds to such a feed (its condition: the same ``w``, still no ``g``)."""
    first, second = make_event(session_id="a"), make_event(session_id="b")
    store.apply(SHARD, sequenced([first], 1))
    store.fold(SHARD)
    store.dynamodb.update_item(
        TableName=store.table,
        Key={"pk": {"S": "recent"}, "sk": {"S": store.shard(SHARD)}},
        UpdateExpression="REMOVE g",
    )
    store.apply(SHARD, sequenced([second], 2))
    assert store.fold(SHARD) == 1
    assert {event["event_id"] for event in store.recent()} == {first.event_id, second.event_id}
    assert store.pending()[store.shard(SHARD)] == []


def test_every_item_the_store_writes_expires_as_its_kind_says(store_with):
    """Minutes' counters and sketches live 3 days from their minute, hours' 90 days from
    their hour (their summaries and exact counts too), days' and all time's forever; a
    session item a day from its fold; a delta 7 days from its arrival, folded or not; exact
    counts per hour only for a net dimension (exit pages), the others kept per day alone;
    the cursor, the feed and the layout forever."""
    clock = EventClock(T0.timestamp() + 600)
    store = store_with(clock=clock)
    visit = [make_event(page=p, session_id="v", timestamp=T0) for p in ("/a", "/b")]
    store.apply(SHARD, sequenced(visit))
    arrived = int(clock.now)
    clock.now += 60
    store.fold(SHARD)
    minute, hour = T0.strftime("%Y-%m-%dT%H:%M"), T0.strftime("%Y-%m-%dT%H")
    in_3_days = str(int((T0 + timedelta(days=3)).timestamp()))
    in_90_days = str(int((T0 + timedelta(days=90)).timestamp()))
    expiry: dict[str, set] = {}
    for item in store.dynamodb.scan(TableName=store.table)["Items"]:
        pk, sk = item["pk"]["S"], item["sk"]["S"]
        if pk.startswith(("c#", "hll#", "kh#")):
            kind = f"{'#'.join(pk.split('#')[:2])} {sk.split('#')[0]}"  # kh#<dimension>#<value>
        else:
            kind = pk.split("#")[0]
        expiry.setdefault(kind, set()).add(item.get("expires_at", {}).get("N"))
    assert expiry == {
        f"c#minute {minute}": {in_3_days},
        f"c#hour {hour}": {in_90_days},
        "c#day 2026-11-24": {None},
        "c#all all": {None},
        f"hll#minute {minute}": {in_3_days},
        f"hll#hour {hour}": {in_90_days},
        "hll#day 2026-11-24": {None},
        "hll#all all": {None},
        f"kh#exit_page {hour}": {in_90_days},
        "toph": {in_90_days},
        "top": {None},
        "k": {None},
        "session": {str(int(clock.now) + 86_400)},
        "delta": {str(arrived + 7 * 86_400)},
        "cursor": {None},
        "recent": {None},
        "layout": {None},
    }


def test_a_delta_of_this_version_fails_in_an_earlier_versions_folder():
    """Earlier versions read day-keyed counts from "d": this version's deltas carry hours
    under "h" only, so an earlier folder still running during a deploy fails on them (and
    leaves them to this version) instead of folding hours as days."""
    encoded = aggregate([make_event()], {}).to_json()
    assert "d" not in encoded and encoded["h"][0] == [
        "event_type",
        "2026-11-24T10",
        {"page_view": 1},
    ]


@pytest.fixture
def local_zone_kathmandu():
    """The process's local time zone 5:45 off UTC, as on a developer's machine; the store's
    hours must not move with it. (Its own monkeypatch: the zone is read again once undone.)"""
    with pytest.MonkeyPatch.context() as zone:
        zone.setenv("TZ", "Asia/Kathmandu")
        time.tzset()
        yield
    time.tzset()


def test_the_first_hour_kept_is_the_utc_hour_after_the_first_delta_at_its_last_second(
    store_with, local_zone_kathmandu
):
    """On a table an earlier version wrote (deltas there, no layout item), a delta arriving
    at 10:59:59 UTC marks 11:00 UTC as the first hour kept, whatever the local zone."""
    clock = EventClock((T0 + timedelta(minutes=59, seconds=59)).timestamp())
    store_with(clock=clock).apply(SHARD, sequenced([make_event(session_id="o")], 1))
    store = store_with(clock=clock)
    store.dynamodb.delete_item(
        TableName=store.table, Key={"pk": {"S": "layout"}, "sk": {"S": "hours"}}
    )
    store.apply(SHARD, sequenced([make_event(session_id="n")], 2))
    assert store_with().hours_kept_since() == "2026-11-24T11"


def test_a_table_an_earlier_version_wrote_is_read_in_days_until_its_hours_are_all_kept(
    store_with, monkeypatch
):
    """An earlier version counted dimensions per day only. After the upgrade, breakdowns are
    read in hours only from the hour after this version's first delta: before it, hours
    would miss what the earlier version counted, so "right now" falls back to the day."""
    clock = EventClock(T0.timestamp())
    real_to_json = Delta.to_json

    def day_keyed(delta: Delta) -> dict:
        value = real_to_json(delta)
        days: dict = {}
        for dimension, hour, counts in value.pop("h"):
            merged = days.setdefault((dimension, hour[:10]), {})
            for name, count in counts.items():
                merged[name] = merged.get(name, 0) + count
        value["d"] = [[dim, day, counts] for (dim, day), counts in days.items()]
        return value

    with monkeypatch.context() as earlier:
        earlier.setattr(Delta, "to_json", day_keyed)
        earlier.setattr(DynamoAggregateStore, "_mark_hours_kept", lambda *_, **__: None)
        old = store_with(clock=clock)
        old.apply(SHARD, sequenced([make_event(page="/old", session_id="o", timestamp=T0)], 1))
        old.fold(SHARD)
    assert old.hours_kept_since() is None
    clock.now = (T0 + timedelta(minutes=90)).timestamp()  # 11:30: this version's first delta
    store = store_with(clock=clock)
    late = make_event(page="/new", session_id="n", timestamp=T0 + timedelta(minutes=95))
    store.apply(SHARD, sequenced([late], 10))
    assert store.hours_kept_since() == "2026-11-24T12"
    assert store.top("page", "2026-11-24T10", "2026-11-24T10", 10).rows == []  # not kept

    def pages(at: datetime) -> tuple[str, set[str]]:
        period = queries.resolve_period("realtime", now=at)
        found = queries.breakdown(store, "page", period, 10)
        return found["resolution"], {row["value"] for row in found["rows"]}

    assert pages(T0 + timedelta(minutes=100)) == ("day", {"/old", "/new"})
    store.apply(
        SHARD,
        sequenced(
            [make_event(page="/noon", session_id="m", timestamp=T0 + timedelta(minutes=140))], 20
        ),
    )
    assert pages(T0 + timedelta(minutes=155)) == ("hour", {"/noon"})
    store.fold(SHARD)
    assert store.dimension_count("page", "/old", "2026-11-24", "2026-11-24") == 1


def test_a_day_range_counts_only_its_days(store):
    days = [make_event(timestamp=T0 + timedelta(days=d), session_id=f"d{d}") for d in range(5)]
    store.apply(SHARD, sequenced(days))
    store.fold(SHARD)
    assert store.total("day", "2026-11-25", "2026-11-27").get("events") == 3
    assert store.dimension_count("page", "/home", "2026-11-25", "2026-11-26") == 2


def test_an_erased_user_stays_out_of_the_feed_whatever_the_aggregator_writes_next(store):
    store.apply(SHARD, sequenced([make_event(user_id="gone", session_id="g")], 1))
    assert store.erase_user("gone", "2026-11-24T10:00:00Z") == 1
    store.apply(SHARD, sequenced([make_event(user_id="gone", session_id="g2")], 2))
    assert all(e.get("user_id") != "gone" for e in store.recent())
    store.fold(SHARD)
    assert all(e.get("user_id") != "gone" for e in store.recent())
    assert counted(store)["events"] == 2  # counters hold no ids and stay
    assert store.erase_user("gone", "2026-11-24T11:00:00Z") == 0


def test_erasing_removes_the_users_events_from_the_stored_feed_even_when_retried(store):
    store.apply(SHARD, sequenced([make_event(user_id="gone", session_id="g")], 1))
    store.apply(SHARD, sequenced([make_event(user_id="kept", session_id="k")], 2))
    store.fold(SHARD)
    assert store.shown_in_feed("gone") == 1
    assert store.erase_user("gone", "2026-11-24T10:00:00Z") == 1
    assert store.shown_in_feed("gone") == 0  # gone from the item, not only hidden on read
    store.apply(SHARD, sequenced([make_event(user_id="late", session_id="l")], 3))
    store.fold(SHARD)
    # an erasure whose first attempt recorded the marker and stopped: the retry still cleans
    assert store.mark_erased("late", "2026-11-24T10:05:00Z")
    assert store.shown_in_feed("late") == 1
    assert store.erase_user("late", "2026-11-24T10:06:00Z") == 0
    assert store.shown_in_feed("late") == 0
    assert store.shown_in_feed("kept") == 1


FIRST_LAYOUT = ("total", "minute", "hour", "day", "pages", "shard")


class ClientDouble:
    """The table's real client, with the calls a subclass defines answered its own way."""

    def __init__(self, client):
        self._client = client

    def __getattr__(self, name):
        return getattr(self._client, name)


def client_error(code, operation):
    return ClientError({"Error": {"Code": code, "Message": code}}, operation)


class DeltaReads(ClientDouble):
    """Records each query of the delta chain: whether it was consistent, and the ordinals it
    returned; ``lagging`` ordinals are left out of eventually consistent answers, once each,
    as a replica behind would."""

    def __init__(self, client):
        super().__init__(client)
        self.reads: list[tuple[bool, list[int]]] = []
        self.ranges: Counter[str] = Counter()  # how often each range of a chain was read
        self.lagging: set[int] = set()

    def query(self, **kwargs):
        page = self._client.query(**kwargs)
        if kwargs["ExpressionAttributeValues"][":pk"]["S"] != "delta":
            return page
        if ":low" in kwargs["ExpressionAttributeValues"]:
            self.ranges[kwargs["ExpressionAttributeValues"][":low"]["S"]] += 1
        if not kwargs["ConsistentRead"]:
            lagged = {int(item["n"]["N"]) for item in page["Items"]} & self.lagging
            self.lagging -= lagged
            page = {**page, "Items": [i for i in page["Items"] if int(i["n"]["N"]) not in lagged]}
        self.reads.append((kwargs["ConsistentRead"], [int(i["n"]["N"]) for i in page["Items"]]))
        return page


class ThrottledSessionReads(ClientDouble):
    """Records the keys and consistency of each read of items; answers each batch of session
    reads for ``served`` keys at most, the rest unprocessed, as DynamoDB does when throttled
    (a batch it served none of has no ``Responses``)."""

    def __init__(self, client, served=40):
        super().__init__(client)
        self.served = served
        self.batches: list[tuple[bool, int]] = []
        self.gets: list[bool] = []
        self.queries: list[bool] = []
        self.asked: Counter[str] = Counter()

    def get_item(self, **kwargs):
        self.gets.append(kwargs.get("ConsistentRead", False))
        return self._client.get_item(**kwargs)

    def query(self, **kwargs):
        self.queries.append(kwargs.get("ConsistentRead", False))
        return self._client.query(**kwargs)

    def batch_get_item(self, RequestItems):
        ((table, request),) = RequestItems.items()
        keys = request["Keys"]
        self.batches.append((request.get("ConsistentRead", False), len(keys)))
        served, left = keys[: self.served], keys[self.served :]
        self.served = self.served or 40  # a first batch served nothing; the rest, some
        response: dict[str, Any] = {"UnprocessedKeys": {}}
        if served:
            response = self._client.batch_get_item(
                RequestItems={table: {**request, "Keys": served}}
            )
            self.asked.update(key["pk"]["S"] for key in served)
        if left:
            response["UnprocessedKeys"] = {table: {**request, "Keys": left}}
        return response


def test_a_new_process_reads_every_sessions_state_consistently_whatever_dynamodb_leaves_unread(
    store, store_with
):
    visits = 250  # past the 100 keys one batch may ask for
    first = [make_event(session_id=f"s{i}", timestamp=T0) for i in range(visits)]
    store.apply(SHARD, sequenced(first, 1))
    store.fold(SHARD)
    restarted = store_with(client=lambda real: ThrottledSessionReads(real, served=0))
    later = [
        make_event(session_id=f"s{i}", timestamp=T0 + timedelta(minutes=5)) for i in range(visits)
    ]
    restarted.apply(SHARD, sequenced(later, 1000))
    reads = restarted.dynamodb
    # the visits go on: each one's folded state was read, though DynamoDB served some late
    assert counted(restarted)["sessions"] == visits
    assert len(reads.asked) == visits and set(reads.asked.values()) == {1}
    assert max(keys for _, keys in reads.batches) <= 100
    # and every read a write is based on sees the last write: strongly consistent
    assert all(consistent for consistent, _ in reads.batches)
    assert all(reads.gets) and all(reads.queries)
    assert reads.gets and reads.batches and reads.queries


class SmallPages(ClientDouble):
    """Answers a query in pages of two items, each with the key to go on from, as DynamoDB
    answers one whose items pass 1 MB."""

    def query(self, **kwargs):
        return self._client.query(**{"Limit": 2, **kwargs})


def test_every_page_of_a_long_answer_is_read(store, store_with):
    for n in range(1, 8):
        store.apply(SHARD, sequenced([make_event(session_id=f"s{n}", page=f"/p{n}")], n))
    reader = store_with(client=SmallPages)
    period = queries.resolve_period("today", now=T0 + timedelta(hours=1))
    assert counted(reader)["events"] == 7  # seven deltas pending
    store.fold(SHARD)
    assert counted(reader)["events"] == 7
    pages = queries.breakdown(reader, "page", period, 10)["rows"]  # seven items a value
    assert {row["value"]: row["count"] for row in pages} == {f"/p{n}": 1 for n in range(1, 8)}


def test_a_reader_reads_each_pending_delta_once_and_eventually_consistent_in_a_snapshot(
    store, store_with
):
    for n in range(1, 6):
        store.apply(SHARD, sequenced([make_event(session_id=f"s{n}")], n))
    reader = store_with(client=DeltaReads)
    with reader.snapshot():
        assert counted(reader)["events"] == 5
    for n in range(6, 8):
        store.apply(SHARD, sequenced([make_event(session_id=f"s{n}")], n))
    with reader.snapshot():
        assert counted(reader)["events"] == 7
    assert reader.pending()[reader.shard(SHARD)][-1].n == 7  # outside a snapshot: consistent
    # the dashboard's reads pay half (eventually consistent), and no delta is read twice
    assert reader.dynamodb.reads == [(False, [1, 2, 3, 4, 5]), (False, [6, 7]), (True, [])]


def test_the_shards_writer_continues_its_sessions_without_reading_the_chain_again(store_with):
    writer = store_with(client=DeltaReads, fold_after_deltas=10**6, fold_after_s=10**6)
    writer.apply(SHARD, sequenced([make_event(session_id="a"), make_event(session_id="b")], 1))
    writer.dynamodb.reads.clear()
    later = T0 + timedelta(minutes=40)
    writer.apply(SHARD, sequenced([make_event(session_id="a", timestamp=later)], 3))
    writer.apply(SHARD, sequenced([make_event(session_id="b", timestamp=later)], 4))
    assert writer.dynamodb.reads == []  # its own deltas are the newest: kept in memory
    assert counted(writer)["sessions"] == 2


def test_a_writers_session_memory_past_its_bound_is_dropped_for_what_the_table_holds(
    store_with, monkeypatch
):
    monkeypatch.setattr("clickstream.store.SESSION_CACHE_MAX", 3)
    writer = store_with(client=DeltaReads, fold_after_deltas=10**6, fold_after_s=10**6)
    writer.apply(SHARD, sequenced([make_event(session_id=f"s{i}") for i in range(3)], 1))
    writer.dynamodb.reads.clear()
    writer.apply(SHARD, sequenced([make_event(session_id="s0")], 4))
    assert writer.dynamodb.reads == []  # three sessions held, at the bound: kept
    writer.apply(SHARD, sequenced([make_event(session_id="s3")], 5))
    writer.fold(SHARD)
    writer.dynamodb.reads.clear()
    writer.apply(SHARD, sequenced([make_event(session_id="s0")], 6))
    assert writer.dynamodb.reads  # four sessions held, over the bound: read afresh
    assert len(writer._sessions[writer.shard(SHARD)].states) <= 3
    assert counted(writer)["sessions"] == 4


def test_a_snapshot_read_that_lags_shows_the_unbroken_run_and_the_rest_next_time(store, store_with):
    for n in range(1, 6):
        store.apply(SHARD, sequenced([make_event(session_id=f"s{n}")], n))
    reader = store_with(client=DeltaReads)
    reader.dynamodb.lagging = {3}  # a replica that has 1, 2, 4 and 5 but not yet 3
    with reader.snapshot():
        assert counted(reader)["events"] == 2  # 4 and 5 wait for 3: no gap in the view
    with reader.snapshot():
        assert counted(reader)["events"] == 5
    assert [n for _, ns in reader.dynamodb.reads for n in ns] == [1, 2, 4, 5, 3, 4, 5]


def test_a_shard_with_hundreds_of_deltas_pending_counts_and_folds_them_all(store_with):
    store = store_with(fold_after_deltas=10**6, fold_after_s=10**6)
    batches = 260  # past every power of ten and of two a chain's ordinals might be cut at
    for n in range(1, batches + 1):
        store.apply(SHARD, sequenced([make_event(session_id=f"s{n % 7}")], n))
    assert counted(store)["events"] == batches
    assert store.fold(SHARD) == batches
    assert counted(store)["events"] == batches


class ThrottledWrites(ClientDouble):
    """A batch write of several requests carries out all but its last, which it reports
    unprocessed, as DynamoDB does when a partition is throttled; more than 25 are refused, as
    DynamoDB does (dynalite too; moto does not)."""

    def batch_write_item(self, RequestItems):  # boto3 names its arguments so
        ((table, requests),) = RequestItems.items()
        if len(requests) > 25:
            raise client_error("ValidationException", "BatchWriteItem")
        if len(requests) == 1:
            return self._client.batch_write_item(RequestItems=RequestItems)
        self._client.batch_write_item(RequestItems={table: requests[:-1]})
        return {"UnprocessedItems": {table: requests[-1:]}}


def test_the_first_layouts_items_are_dropped_and_nothing_else(store_with):
    store = store_with(client=ThrottledWrites)
    for pk in FIRST_LAYOUT:  # 26 of each: every kind takes two batches of at most 25
        for n in range(26):
            item = {"pk": {"S": pk}, "sk": {"S": f"{pk}#{n:02d}"}, "events": {"N": "9"}}
            store.dynamodb.put_item(TableName=store.table, Item=item)
    store.apply(SHARD, sequenced([make_event()]))
    store.fold(SHARD)
    kept = [key for key in written_keys(store) if key[0] not in FIRST_LAYOUT]
    assert store.drop_first_layout() == 6 * 26
    assert sorted(written_keys(store)) == sorted(kept)
    assert counted(store)["events"] == 1
    assert store.drop_first_layout() == 0


def test_unique_visitors_count_each_visitor_once_per_range_folded_pending_and_across_shards(
    store,
):
    def visit(user, minutes, session):
        return make_event(
            user_id=user, session_id=session, timestamp=T0 + timedelta(minutes=minutes)
        )

    store.apply(
        SHARD, sequenced([visit("a", 0, "s1"), visit("b", 1, "s2"), visit("a", 1, "s1")], 1)
    )
    store.fold(SHARD)
    store.apply(SHARD, sequenced([visit("c", 1, "s3"), visit("b", 1, "s2")], 4))  # pending
    store.apply(OTHER, sequenced([visit("a", 2, "s4"), visit("d", 60, "s5")], 1))  # pending
    by_minute = {
        "2026-11-24T10:00": 1,
        "2026-11-24T10:01": 3,
        "2026-11-24T10:02": 1,
        "2026-11-24T11:00": 1,
    }

    def answers():
        sketches = store.visitor_sketches("minute", "2026-11-24T10:00", "2026-11-24T11:00")
        return (
            {bucket: sketch.count() for bucket, sketch in sketches.items()},
            store.unique_visitors("minute", "2026-11-24T10:01", "2026-11-24T10:01"),
            store.unique_visitors("minute", "2026-11-24T10:01", "2026-11-24T10:02"),
            store.unique_visitors("minute", "2026-11-24T10:00", "2026-11-24T10:59"),
            store.unique_visitors("hour", "2026-11-24T10", "2026-11-24T10"),
            store.unique_visitors("hour", "2026-11-24T10", "2026-11-24T11"),
            store.unique_visitors("day", "2026-11-24", "2026-11-24"),
            store.unique_visitors("day", "2026-11-25", "2026-11-30"),
            store.unique_visitors("all", "all", "all"),
        )

    expected = (by_minute, 3, 3, 3, 3, 4, 4, 0, 4)
    assert answers() == expected
    store.fold(OTHER)  # one shard folded, the other's delta still pending
    assert answers() == expected
    store.fold(SHARD)
    assert answers() == expected


def test_folding_every_shard_folds_each_ones_pending_deltas_and_counts_them(store):
    store.apply(SHARD, sequenced([make_event(session_id="a")], 1))
    store.apply(SHARD, sequenced([make_event(session_id="b")], 2))
    store.apply(OTHER, sequenced([make_event(session_id="c")], 1))
    assert store.fold_all() == 3
    assert store.pending() == {store.shard(SHARD): [], store.shard(OTHER): []}
    assert store.fold_all() == 0
    assert counted(store)["events"] == 3


def test_folding_every_shard_takes_one_calls_worth_of_each_and_the_rest_next_time(
    store, monkeypatch
):
    monkeypatch.setattr("clickstream.store.FOLD_MAX_DELTAS", 2)
    for n in (1, 2, 3):
        store.apply(SHARD, sequenced([make_event(session_id=f"a{n}")], n))
    store.apply(OTHER, sequenced([make_event(session_id="b")], 1))
    assert [store.fold_all() for _ in range(3)] == [3, 1, 0]  # 2 + 1, then the third of SHARD
    assert counted(store)["events"] == 4


def test_cleaning_the_feeds_counts_what_it_removed_from_each_shard(store):
    store.apply(
        SHARD, sequenced([make_event(user_id="gone", session_id=f"g{i}") for i in range(3)], 1)
    )
    store.apply(OTHER, sequenced([make_event(user_id="kept", session_id="k")], 1))
    store.apply(OTHER, sequenced([make_event(user_id="gone", session_id="g9")], 2))
    store.apply("shardId-000000000002", sequenced([make_event(user_id="kept", session_id="j")], 1))
    store.fold_all()
    assert store.clean_feeds("gone") == 4
    assert store.clean_feeds("gone") == 0  # twice: the second finds nothing to remove
    assert store.clean_feeds("nobody") == 0
    assert store.shown_in_feed("kept") == 2


def test_a_feed_written_before_generations_were_kept_is_cleaned_and_kept_consistent(store):
    store.apply(SHARD, sequenced([make_event(user_id="gone", session_id="g")], 1))
    store.apply(SHARD, sequenced([make_event(user_id="kept", session_id="k")], 2))
    store.fold(SHARD)
    key = {"pk": {"S": "recent"}, "sk": {"S": store.shard(SHARD)}}
    older = store.dynamodb.get_item(TableName=store.table, Key=key)["Item"]
    del older["g"]  # the feed as a version before erasure wrote it
    store.dynamodb.put_item(TableName=store.table, Item=older)
    assert store.clean_feeds("gone") == 1
    assert store.shown_in_feed("gone") == 0
    store.apply(SHARD, sequenced([make_event(user_id="later", session_id="l")], 3))
    store.fold(SHARD)  # the next fold writes over the cleaned feed, conditions and all
    assert store.clean_feeds("later") == 1
    assert store.shown_in_feed("kept") == 1 and store.shown_in_feed("later") == 0


class LosingFeedWrites(ClientDouble):
    """Every write of a feed item fails its condition, as if a fold wrote the feed each time
    between the cleaning's read and its write."""

    def __init__(self, client):
        super().__init__(client)
        self.attempts = 0

    def put_item(self, **kwargs):
        if kwargs["Item"]["pk"]["S"] != "recent":
            return self._client.put_item(**kwargs)
        self.attempts += 1
        raise client_error("ConditionalCheckFailedException", "PutItem")


def test_a_cleaning_that_keeps_losing_to_folds_gives_up_after_eight_tries(store, store_with):
    store.apply(SHARD, sequenced([make_event(user_id="gone", session_id="g")], 1))
    store.fold(SHARD)
    losing = store_with(client=LosingFeedWrites)
    with pytest.raises(StoreConflict, match=f"^recent {re.escape(store.shard(SHARD))}$"):
        losing.clean_feeds("gone")
    assert losing.dynamodb.attempts == 8
    assert store.shown_in_feed("gone") == 1


class EraseBetweenReadAndWrite(ClientDouble):
    """The first read of a feed returns what it read after another erasure has rewritten the
    feed, as when two erasures clean one shard's feed at once."""

    def __init__(self, client, meanwhile):
        super().__init__(client)
        self.meanwhile = meanwhile

    def get_item(self, **kwargs):
        read = self._client.get_item(**kwargs)
        if kwargs["Key"]["pk"]["S"] == "recent" and self.meanwhile is not None:
            meanwhile, self.meanwhile = self.meanwhile, None
            meanwhile()
        return read


@pytest.mark.parametrize("cleaned_before", [True, False])
def test_two_erasures_cleaning_one_feed_at_once_both_hold(store, store_with, cleaned_before):
    """The second writer's copy, read before the first one's rewrite, must not be written
    over it: that would bring back the events the first erasure removed. Each rewrite is
    conditional on the feed's generation, which every rewrite changes, cleaned before or not."""
    users = ("earlier", "one", "other", "kept")
    events = [make_event(user_id=user, session_id=f"s-{user}") for user in users]
    store.apply(SHARD, sequenced(events, 1))
    store.fold(SHARD)
    if cleaned_before:
        assert store.clean_feeds("earlier") == 1
    racing = store_with(
        client=lambda real: EraseBetweenReadAndWrite(real, lambda: store.clean_feeds("other"))
    )
    assert racing.clean_feeds("one") == 1
    assert [store.shown_in_feed(user) for user in ("one", "other", "kept")] == [0, 0, 1]
    assert store.clean_feeds("one") == store.clean_feeds("other") == 0


class FeedGoneBeforeItsRead(ClientDouble):
    """Every feed item is gone by the time it is read (listed, then deleted)."""

    def get_item(self, **kwargs):
        if kwargs["Key"]["pk"]["S"] == "recent":
            return {}
        return self._client.get_item(**kwargs)


def test_a_feed_gone_before_its_cleaning_read_has_nothing_removed(store, store_with):
    store.apply(SHARD, sequenced([make_event(user_id="gone", session_id="g")], 1))
    store.fold(SHARD)
    assert store_with(client=FeedGoneBeforeItsRead).clean_feeds("gone") == 0


class FailingCursorMoves(ClientDouble):
    """A fold's move of the shard's cursor fails, as when the folding Lambda times out after
    writing the items and before moving the cursor; until ``failing`` is set False."""

    failing = True

    def put_item(self, **kwargs):
        if self.failing and kwargs["Item"]["pk"]["S"] == "cursor" and "upto" in kwargs["Item"]:
            raise client_error("InternalServerError", "PutItem")
        return self._client.put_item(**kwargs)


def test_a_fold_due_by_age_that_fails_is_reported_and_tried_again_with_the_next_batch(
    store_with,
):
    """The batch is stored whatever its fold does: the fold's error comes back with the
    batch's result, and the fold is tried again with the next batch, not after another wait."""
    clock = EventClock(T0.timestamp())
    store = store_with(
        client=FailingCursorMoves, clock=clock, fold_after_deltas=10**6, fold_after_s=60
    )
    assert store.apply(SHARD, sequenced([make_event(session_id="a")], 1)).folded == 0
    clock.now += 61
    failed = store.apply(SHARD, sequenced([make_event(session_id="b")], 2))
    assert (failed.applied, failed.folded) == (1, 0)
    assert failed.fold_error.startswith("ClientError: An error occurred (InternalServerError)")
    store.dynamodb.failing = False
    clock.now += 1
    assert store.apply(SHARD, sequenced([make_event(session_id="c")], 3)).folded == 3
    assert counted(store)["events"] == 3


def top_page_rows(store):
    """The top pages of all time as (value, count); the events' day (T0's) must read the same."""
    all_time = store.top("page", None, None, 10).rows
    assert all_time == store.top("page", "2026-11-24", "2026-11-24", 10).rows
    return [(row.value, row.count) for row in all_time]


def test_a_fold_stopped_before_moving_its_cursor_shows_and_counts_each_event_once(
    store, store_with
):
    pages = ["/a", "/b", "/a"]
    events = [make_event(session_id=f"s{i}", user_id=f"u{i}", page=p) for i, p in enumerate(pages)]
    store.apply(SHARD, sequenced(events[:2], 1))
    store.apply(SHARD, sequenced(events[2:], 3))

    with pytest.raises(ClientError, match="InternalServerError"):
        store_with(client=FailingCursorMoves).fold(SHARD)
    sent = sorted(str(event.event_id) for event in events)
    assert sorted(e["event_id"] for e in store.recent()) == sent
    assert counted(store)["events"] == 3
    # the summaries hold both deltas, still pending too: each is counted once
    assert top_page_rows(store) == [("/a", 2), ("/b", 1)]
    # and so do the exact counts of one value, or of several read side by side
    assert store.dimension_count("page", "/a", "0000-00-00", "9999-99-99") == 2
    several = store.dimension_counts("page", ["/a", "/b"], "0000-00-00", "9999-99-99")
    assert several == {"/a": 2, "/b": 1}
    assert store.fold(SHARD) == 2  # the next fold finishes what the first began
    assert store.pending() == {store.shard(SHARD): []}
    assert store.fold(SHARD) == 0
    assert sorted(e["event_id"] for e in store.recent()) == sent
    assert counted(store)["events"] == 3
    assert top_page_rows(store) == [("/a", 2), ("/b", 1)]


def test_a_value_kept_by_its_digest_is_named_in_full_in_the_top_rows_folded_or_pending(store):
    long_page = "/p/" + "x" * (MAX_KEY_BYTES + 1)
    events = [
        make_event(page=page, session_id=f"s{i}")
        for i, page in enumerate([long_page, "/a", long_page])
    ]

    store.apply(SHARD, sequenced(events, 1))
    assert top_page_rows(store) == [(long_page, 2), ("/a", 1)]  # pending
    store.fold(SHARD)
    assert top_page_rows(store) == [(long_page, 2), ("/a", 1)]  # folded
    store.apply(SHARD, sequenced([make_event(page=long_page, session_id="t")], 4))
    assert top_page_rows(store) == [(long_page, 3), ("/a", 1)]  # both


def test_a_new_process_given_only_a_redelivery_folds_nothing_before_it_is_due(store_with):
    options = {"fold_after_deltas": 5, "fold_after_s": 60, "clock": EventClock(1_000.0)}
    batch = sequenced([make_event(session_id="s1")], 1)
    store_with(**options).apply(SHARD, batch)
    restarted = store_with(**options)
    result = restarted.apply(SHARD, batch)
    assert (result.skipped_duplicates, result.folded) == (1, 0)
    assert len(restarted.pending()[restarted.shard(SHARD)]) == 1


def test_a_lone_delta_past_its_time_is_folded_with_the_next_batch_even_one_of_nothing_new(
    store_with,
):
    clock = EventClock(1_000.0)
    store = store_with(clock=clock, fold_after_deltas=5, fold_after_s=60)
    batch = sequenced([make_event(session_id="s1")], 1)
    assert store.apply(SHARD, batch).folded == 0
    clock.now += 60
    assert store.apply(SHARD, batch).folded == 1  # a redelivery: skipped, and the fold due
    assert store.pending()[store.shard(SHARD)] == []


def test_a_shard_folds_on_its_own_after_enough_deltas_or_time(store_with):
    clock = EventClock(1_000.0)
    store = store_with(clock=clock, fold_after_deltas=5, fold_after_s=60)
    for n in range(1, 5):
        assert store.apply(SHARD, sequenced([make_event(session_id=f"s{n}")], n)).folded == 0
    assert store.apply(SHARD, sequenced([make_event(session_id="s5")], 5)).folded == 5
    store.apply(SHARD, sequenced([make_event(session_id="s6")], 6))  # pending since 1,000 s
    clock.now += 59.999
    assert store.apply(SHARD, sequenced([make_event(session_id="s7")], 7)).folded == 0
    clock.now = 1_060.0  # a minute, to the millisecond
    assert store.apply(SHARD, sequenced([make_event(session_id="s8")], 8)).folded == 3


def test_a_fold_takes_at_most_the_deltas_it_is_given_and_leaves_the_rest_pending(store):
    for n in range(1, 8):  # seven batches, one delta each
        store.apply(SHARD, sequenced([make_event(session_id=f"s{n}")], n))
    assert store.fold(SHARD, max_deltas=3) == 3
    assert [pending.n for pending in store.pending()[store.shard(SHARD)]] == [4, 5, 6, 7]
    assert counted(store)["events"] == 7  # three folded, four pending: each counted once
    assert store.fold(SHARD, max_deltas=3) == 3
    assert store.fold(SHARD, max_deltas=3) == 1
    assert (store.pending()[store.shard(SHARD)], counted(store)["events"]) == ([], 7)


def test_a_writer_that_finds_its_deltas_folded_by_another_counts_from_there(store_with):
    """A fold that finds nothing (another process folded the shard) still learns where the
    shard stands: the writer's next automatic fold comes after its own next deltas, not at
    once on every batch."""
    writer = store_with(fold_after_deltas=3, fold_after_s=10**6)
    for n in (1, 2):
        assert writer.apply(SHARD, sequenced([make_event(session_id=f"s{n}")], n)).folded == 0
    assert store_with().fold(SHARD) == 2
    assert writer.fold(SHARD) == 0
    folded = [
        writer.apply(SHARD, sequenced([make_event(session_id=f"s{n}")], n)).folded
        for n in (3, 4, 5)
    ]
    assert folded == [0, 0, 3]


def test_a_shards_wait_for_a_timed_fold_starts_at_its_oldest_delta_left_unfolded(store_with):
    """After a fold that leaves deltas (its limit), the rest are due by time from then;
    after one that leaves none, the wait starts again at the next delta."""
    clock = EventClock(1_000.0)
    store = store_with(clock=clock, fold_after_deltas=100, fold_after_s=60)
    for n in range(1, 6):
        store.apply(SHARD, sequenced([make_event(session_id=f"s{n}")], n))
    assert store.fold(SHARD, max_deltas=2) == 2
    clock.now += 61
    assert store.apply(SHARD, sequenced([make_event(session_id="s6")], 6)).folded == 4
    clock.now += 61  # all folded a minute ago: the next delta waits its own minute
    assert store.apply(SHARD, sequenced([make_event(session_id="s7")], 7)).folded == 0
    clock.now += 59
    assert store.apply(SHARD, sequenced([make_event(session_id="s8")], 8)).folded == 0
    clock.now += 2
    assert store.apply(SHARD, sequenced([make_event(session_id="s9")], 9)).folded == 3


def test_a_writer_whose_fold_was_overtaken_counts_its_next_fold_from_where_the_other_left(
    store_with, monkeypatch
):
    """The shard's writer folds deltas 1-2; meanwhile another process appends delta 3 and
    folds all three, so the writer's cursor write fails: it learns the shard is folded to 3,
    and its next automatic fold comes after two deltas of its own past that."""
    writer, other = store_with(), store_with()
    for n in (1, 2):
        writer.apply(SHARD, sequenced([make_event(session_id=f"s{n}")], 10 * n))

    def overtake() -> None:
        other.apply(SHARD, sequenced([make_event(session_id="s3")], 30))
        other.fold(SHARD)

    before_its_writes(monkeypatch, writer, overtake)
    assert writer.fold(SHARD) == 2
    writer.fold_after_deltas = 2
    folded = [
        writer.apply(SHARD, sequenced([make_event(session_id=f"s{n}")], 10 * n)).folded
        for n in (4, 5)
    ]
    assert folded == [0, 2]
    assert counted(writer)["events"] == 5


def test_sessions_time_out_in_the_table_too(store, new_store):
    store.apply(SHARD, sequenced([make_event(session_id="s", timestamp=T0)], 1))
    store.fold(SHARD)
    late = make_event(session_id="s", timestamp=T0 + SESSION_TIMEOUT + timedelta(minutes=1))
    new_store().apply(SHARD, sequenced([late], 2))
    assert counted(store)["sessions"] == 2


def test_two_streams_on_one_table_count_the_same_shard_id_apart(store_with):
    """Shard ids and sequence numbers are unique only within a stream: a table kept while its
    stack's stream is replaced, or shared by two, counts each stream's shard on its own."""
    first, second = store_with(stream_name="first"), store_with(stream_name="second")
    first.apply(SHARD, sequenced([make_event(session_id="a")], 1))
    second.apply(SHARD, sequenced([make_event(session_id="b"), make_event(session_id="c")], 1))
    assert counted(first)["events"] == 3
    assert first.fold(SHARD) == 1 and second.fold(SHARD) == 1
    counts = counted(second)
    assert (counts["events"], counts["sessions"]) == (3, 3)


def test_a_cookieless_visit_across_batches_is_one_visit_under_the_deployments_salt(store_with):
    """A visit without session, device or user id is placed by the salted hash of its address
    and user agent: with a salt set, its later batch continues the visit, by the same key
    the store looks its state up by."""
    store = store_with(visitor_secret="the-deployments-salt")

    def cookieless(minutes: int):
        return make_event(user_id=None, session_id=None, ip_truncated="203.0.113.0",
                          user_agent="UA", timestamp=T0 + timedelta(minutes=minutes))  # fmt: skip

    store.apply(SHARD, sequenced([cookieless(0), cookieless(1)], 1))
    store.apply(SHARD, sequenced([cookieless(5)], 3))
    counts = counted(store)
    assert (counts["events"], counts["sessions"]) == (3, 1)
    store.fold(SHARD)
    store_with(visitor_secret="the-deployments-salt").apply(SHARD, sequenced([cookieless(9)], 4))
    counts = counted(store)
    assert (counts["events"], counts["sessions"]) == (4, 1)
    assert store.unique_visitors("day", "2026-11-24", "2026-11-24") == 1


def test_the_deployments_goals_are_counted_by_the_store(store_with):
    store = store_with(goals=(Goal("Pro signup", "signup", {"plan": "pro"}),))
    signups = [
        make_event(session_id=f"s{plan}", event_type="signup", properties={"plan": plan})
        for plan in ("pro", "free")
    ]
    store.apply(SHARD, sequenced(signups))
    assert store.dimension_count("goal", "Pro signup", "2026-11-24", "2026-11-24") == 1
    store.fold(SHARD)
    assert [(row.value, row.count) for row in store.top("goal", None, None, 5).rows] == [
        ("signup", 2),
        ("Pro signup", 1),
    ]


def test_all_time_counts_merge_every_shard(store):
    store.apply(SHARD, sequenced([make_event(session_id="a")], 1))
    store.apply(OTHER, sequenced([make_event(session_id="b")], 1))
    store.fold(SHARD)
    assert store.total(*ALL_TIME).get("events") == 2


@pytest.fixture
def billed_table(dynalite_endpoint, request):
    """A client and a new aggregates table on dynalite, which reports the capacity each write
    consumed, by the item's size as DynamoDB counts it."""
    dynamodb = boto3.client(
        "dynamodb",
        region_name="us-east-1",
        endpoint_url=dynalite_endpoint,
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    table = f"billed-writes-{uuid.uuid4().hex[:12]}"  # the server may be shared by a whole run
    dynamodb.create_table(**table_arguments("AggregatesTable", table))
    request.addfinalizer(lambda: dynamodb.delete_table(TableName=table))
    return dynamodb, table


LONGEST_NUMBER = "-1" + "1" * 37  # 38 digits and a sign: 21 bytes, the most a number takes


@pytest.mark.parametrize(
    ("attributes", "size"),
    [
        # the item's key takes 6 bytes: "pk" "x" "sk" "y"; each attribute here adds its name
        ({"v": {"S": "a" * 1017}}, 1024),
        ({"v": {"S": "a" * 1018}}, 1025),
        ({"v": {"S": "é" * 508 + "a"}}, 1024),  # two bytes each in UTF-8, as DynamoDB counts
        ({"v": {"S": "é" * 509}}, 1025),
        ({"v": {"B": b"\x00" * 1017}}, 1024),
        ({"v": {"B": b"\x00" * 2041}}, 2048),
        ({"v": {"B": b"\x00" * 2042}}, 2049),
        ({"v": {"N": LONGEST_NUMBER}, "w": {"S": "a" * 995}}, 1024),
        ({"v": {"N": LONGEST_NUMBER}, "w": {"S": "a" * 996}}, 1025),
    ],
    ids=[
        "S-1024",
        "S-1025",
        "S-utf8-1024",
        "S-utf8-1025",
        "B-1024",
        "B-2048",
        "B-2049",
        "N-1024",
        "N-1025",
    ],
)
def test_an_items_write_units_are_billed_by_the_started_kilobyte(billed_table, attributes, size):
    dynamodb, table = billed_table
    item = {"pk": {"S": "x"}, "sk": {"S": "y"}, **attributes}
    billed = dynamodb.put_item(TableName=table, Item=item, ReturnConsumedCapacity="TOTAL")
    meter = WriteMeter()
    meter.add(_item_bytes(item), "x")
    assert _item_bytes(item) == size
    assert meter.units == -(-size // 1024)
    assert (meter.items, dict(meter.units_by_kind)) == (1, {"x": meter.units})
    # dynalite counts a string's UTF-16 units, where DynamoDB counts its UTF-8 bytes
    if all(value.get("S", "").isascii() for value in attributes.values()):
        assert billed["ConsumedCapacity"]["CapacityUnits"] == meter.units


@pytest.mark.parametrize("size", [4096, 4097, 8193])
def test_an_items_read_units_are_billed_by_the_started_four_kilobytes(billed_table, size):
    dynamodb, table = billed_table
    item = {"pk": {"S": "x"}, "sk": {"S": "y"}, "v": {"S": "a" * (size - 7)}}
    assert _item_bytes(item) == size
    dynamodb.put_item(TableName=table, Item=item)
    key = {"pk": item["pk"], "sk": item["sk"]}
    reads = ReadMeter()
    for _ in range(2):
        got = dynamodb.get_item(
            TableName=table, Key=key, ConsistentRead=True, ReturnConsumedCapacity="TOTAL"
        )
        reads.add([got["Item"]])
    # a batch of it and a key with no item, twice
    keys = [key, {"pk": {"S": "none"}, "sk": {"S": "y"}}]
    batched = ReadMeter()
    billed = 0.0
    for _ in range(2):
        batch = dynamodb.batch_get_item(
            RequestItems={table: {"Keys": keys, "ConsistentRead": True}},
            ReturnConsumedCapacity="TOTAL",
        )
        batched.add_batch(batch["Responses"][table], len(keys))
        billed += batch["ConsumedCapacity"][0]["CapacityUnits"]
    units = -(-size // 4096)
    assert reads.units == 2 * got["ConsumedCapacity"]["CapacityUnits"] == 2 * units
    eventual = dynamodb.get_item(
        TableName=table, Key=key, ConsistentRead=False, ReturnConsumedCapacity="TOTAL"
    )
    halves = ReadMeter()
    halves.add([eventual["Item"]], consistent=False)
    assert halves.units == eventual["ConsumedCapacity"]["CapacityUnits"] == units / 2
    assert batched.units == billed == 2 * (units + 1)
    assert (reads.requests, batched.requests) == (2, 2)


def test_the_stores_write_meter_matches_what_the_engine_bills(billed_table):
    # GIVEN a store on dynalite, which reports the capacity each write consumed, by size
    dynamodb, table = billed_table
    billed = []
    billed_by_kind: Counter[str] = Counter()  # by the item's kind: its pk up to the first #

    def ask_for_capacity(params, context, model, **_):
        params["ReturnConsumedCapacity"] = "TOTAL"
        context["kind"] = (params.get("Item") or params["Key"])["pk"]["S"].split("#", 1)[0]

    def record_capacity(parsed, context, **_):
        billed.append(parsed.get("ConsumedCapacity", {}).get("CapacityUnits", 0))
        billed_by_kind[context["kind"]] += billed[-1]

    for operation in ("PutItem", "UpdateItem"):
        dynamodb.meta.events.register(
            f"provide-client-params.dynamodb.{operation}", ask_for_capacity
        )
        dynamodb.meta.events.register(f"after-call.dynamodb.{operation}", record_capacity)
    store = DynamoAggregateStore(dynamodb, table, stream_name="stream")
    # WHEN ordinary traffic is applied and folded
    events = [
        make_event(session_id=f"s{i % 40}", page=f"/p/{i % 90}", event_type=kind)
        for i, kind in enumerate(["page_view", "click", "add_to_cart", "purchase"] * 150)
    ]
    for start in range(0, len(events), 7):
        store.apply(SHARD, sequenced(events[start : start + 7], start + 1))
    store.fold(SHARD)
    # THEN the store's own count of write units is what the engine billed, within 10 %
    assert store.meter.units == pytest.approx(sum(billed), rel=0.10)
    assert store.meter.items == len(billed)
    # and each kind's, which the cost model reports, is billed under that kind
    assert store.meter.units_by_kind.keys() == billed_by_kind.keys()
    for kind, units in billed_by_kind.items():
        assert store.meter.units_by_kind[kind] == pytest.approx(units, rel=0.10), kind


READS = ("GetItem", "BatchGetItem", "Query")


def test_the_stores_read_meter_matches_what_the_engine_bills(billed_table):
    # GIVEN stores on dynalite, which reports the capacity each read consumed, one call at a
    # time (folds write one item after another), so that each call's metering is its own
    dynamodb, table = billed_table
    billed: Counter[str] = Counter()  # by operation, and consistency for a query
    metered: Counter[str] = Counter()
    stores: list[DynamoAggregateStore] = []
    last: dict[str, Any] = {"operation": None, "units": 0.0}

    def meter_so_far(operation: str | None) -> None:
        units = sum(store.reads.units for store in stores)
        if last["operation"]:
            metered[last["operation"]] += units - last["units"]
        last.update(operation=operation, units=units)

    def ask_for_capacity(params, context, model, **_):
        context["consistent"] = params.get("ConsistentRead", False)
        context["name"] = model.name
        if model.name == "Query" and not context["consistent"]:
            context["name"] = "Query, eventually consistent"
        meter_so_far(context["name"])
        if model.name in READS:
            params["ReturnConsumedCapacity"] = "TOTAL"

    def record_capacity(parsed, model, context, **_):
        consumed = parsed.get("ConsumedCapacity", {})
        for capacity in consumed if isinstance(consumed, list) else [consumed]:
            billed[context["name"]] += capacity.get("CapacityUnits", 0)
        if model.name == "Query" and not parsed["Count"]:
            # DynamoDB bills a query that finds nothing the least a read costs; dynalite, 0
            billed[context["name"]] += 1 if context["consistent"] else 0.5

    dynamodb.meta.events.register("provide-client-params.dynamodb", ask_for_capacity)
    for operation in ("GetItem", "BatchGetItem", "Query"):
        dynamodb.meta.events.register(f"after-call.dynamodb.{operation}", record_capacity)
    clock = EventClock(T0.timestamp())
    store = DynamoAggregateStore(dynamodb, table, stream_name="stream", clock=clock, fold_writers=1)
    stores.append(store)
    # WHEN visits arrive in batches (sessions new and known), are folded and read
    pages = [f"/p/{secrets.token_urlsafe(150)}" for _ in range(90)]  # a feed of kilobytes
    events = [
        make_event(session_id=f"s{i % 150}", page=pages[i % 90], event_type=kind,
                   timestamp=T0 + timedelta(seconds=i))
        for i, kind in enumerate(["page_view", "click", "add_to_cart", "purchase"] * 100)
    ]  # fmt: skip
    for start in range(0, len(events), 130):
        store.apply(SHARD, sequenced(events[start : start + 130], start + 1))
    store.fold(SHARD)
    # and a new process continues folded sessions (read back, found, some of them late, as
    # DynamoDB leaves keys unprocessed) and new ones
    restarted = DynamoAggregateStore(
        ThrottledSessionReads(dynamodb, served=0),
        table,
        stream_name="stream",
        clock=clock,
        fold_writers=1,
    )
    stores.append(restarted)
    later = [
        make_event(session_id=f"s{i}", timestamp=T0 + timedelta(minutes=9)) for i in range(140, 160)
    ]
    restarted.apply(SHARD, sequenced(later, 1000))
    restarted.fold(SHARD)  # reading the shard's feed back: an item of several kilobytes
    queries.dashboard(restarted, 10, now=T0 + timedelta(minutes=10))
    meter_so_far(None)
    # THEN the stores' own count of each operation's read units is what the engine billed
    assert metered["GetItem"] == billed["GetItem"]
    assert metered["BatchGetItem"] == billed["BatchGetItem"]
    # (dynalite sizes a number by its digits, where the meter takes the most it can be)
    assert metered["Query"] == pytest.approx(billed["Query"], rel=0.02)
    eventual = "Query, eventually consistent"  # the dashboard's, half the units
    assert metered[eventual] == pytest.approx(billed[eventual], rel=0.02) and billed[eventual]
    assert sum(metered.values()) == sum(store.reads.units for store in stores)


def test_the_feed_and_session_items_stay_bounded_with_the_longest_multibyte_fields(store):
    events = [
        make_event(
            user_id="😀" * 256,
            session_id=f"{i:03d}" + "😀" * 253,
            product_id="😀" * 256,
            page="/" + "漢" * 2047,
            received_at=T0 + timedelta(seconds=i),
        )
        for i in range(60)
    ]
    store.apply(SHARD, sequenced(events))
    store.fold(SHARD)
    sizes = largest_items(store, count=1_000)
    assert max(size for pk, size in sizes if pk == "recent") < 240 * 1024
    assert max(size for pk, size in sizes if pk.startswith("session#")) < 80 * 1024


def test_a_new_process_continues_a_session_from_the_newest_state_after_a_split(
    store, new_store, store_with
):
    # GIVEN a parent shard's delta for a session, and the child's newer state of it, folded
    # into the session item before the parent's
    store.apply("parent", sequenced([make_event(session_id="s", timestamp=T0)], 1))
    on_child = make_event(session_id="s", timestamp=T0 + timedelta(minutes=20), page="/b")
    store_with(fold_after_deltas=1).apply("child", sequenced([on_child], 100))
    # (the parent's older state folded after the child's: it must not replace it)
    store.fold("parent")
    # WHEN a fresh process takes the child over and gets a retry of that event, and a later one
    retry = on_child.model_copy(update={"received_at": on_child.received_at + timedelta(minutes=1)})
    later = make_event(session_id="s", timestamp=T0 + timedelta(minutes=45), page="/c")
    result = new_store().apply("child", sequenced([retry, later], 200))
    # THEN the retry is recognised and the visit goes on from the child's state
    assert (result.applied, result.duplicate_event_ids) == (1, 1)
    totals = counted(store)
    assert (totals["events"], totals["sessions"], totals["bounces"]) == (3, 1, 0)
    assert totals["duration_s"] == 45 * 60


def test_a_new_process_continues_a_session_from_its_pending_state_newer_than_the_folded(
    store_with, new_store
):
    writer = store_with(fold_after_deltas=10**6, fold_after_s=10**6)
    writer.apply(SHARD, sequenced([make_event(session_id="s", timestamp=T0, page="/a")], 1))
    writer.fold(SHARD)  # the session item: one page view
    second = make_event(session_id="s", timestamp=T0 + timedelta(minutes=1), page="/b")
    writer.apply(SHARD, sequenced([second], 2))  # a delta pending: two
    third = make_event(session_id="s", timestamp=T0 + timedelta(minutes=2), page="/c")
    new_store().apply(SHARD, sequenced([third], 3))
    totals = counted(writer)
    assert (totals["events"], totals["sessions"], totals["bounces"]) == (3, 1, 0)
    assert totals["duration_s"] == 120


def test_a_session_state_in_the_tables_layout_goes_on_after_a_deploy(store):
    """The session items' layout outlives a release: a visit in progress during a deploy is
    continued by the new code, not counted again."""
    first = make_event(session_id="s", timestamp=T0)
    key = visit_state_key(first, store.visitor_secret)
    state = aggregate([first], {}).sessions[key]
    store.dynamodb.put_item(
        TableName=store.table,
        Item={
            "pk": {"S": f"session#{key:016x}"},
            "sk": {"S": "state"},
            "version": {"N": str(state.version)},
            "state": {"B": orjson.dumps(state.to_json())},
        },
    )
    later = make_event(session_id="s", timestamp=T0 + timedelta(minutes=3), page="/b")
    store.apply(SHARD, sequenced([later], 1))
    totals = counted(store)  # (the visit's start was counted by the release before)
    assert (totals["events"], totals["sessions"], totals["bounces"]) == (1, 0, -1)
    assert totals["duration_s"] == 180


def test_a_purchase_too_small_for_dynamodb_counts_as_no_revenue_and_folds(store):
    tiny = make_event(event_type="purchase", value=1e-200, session_id="tiny")
    store.apply(SHARD, sequenced([tiny]))
    assert store.fold(SHARD) == 1
    assert counted(store)["revenue"] == 0


def test_a_retried_event_shows_once_in_the_feed(store):
    event = make_event(session_id="r", received_at=T0)
    retry = event.model_copy(update={"received_at": T0 + timedelta(minutes=2)})
    store.apply(SHARD, sequenced([event, retry]))
    assert [e["event_id"] for e in store.recent()] == [event.event_id]


def test_one_shard_failing_to_fold_does_not_stop_the_others(store, monkeypatch):
    store.apply(SHARD, sequenced([make_event(session_id="a")]))
    store.apply(OTHER, sequenced([make_event(session_id="b")]))
    fold = DynamoAggregateStore._fold

    def failing(self, shard, max_deltas):
        if shard.endswith(SHARD):
            raise StoreConflict(shard)
        return fold(self, shard, max_deltas)

    monkeypatch.setattr(DynamoAggregateStore, "_fold", failing)
    with pytest.raises(ExceptionGroup) as raised:
        store.fold_all()
    assert len(raised.value.exceptions) == 1
    monkeypatch.undo()
    assert store.fold(OTHER) == 0  # the other shard was folded all the same
    assert store.fold(SHARD) == 1


@ON_DYNALITE
def test_visitor_sketches_breakdowns_and_goals_stay_bounded_at_any_cardinality(store):
    """Adversarial web traffic: every visit from its own referrer, campaign, city and
    visitor, each visit sending 100 distinct custom types (goals)."""
    events = []
    for i in range(600):  # past the summaries' 128 values many times over
        landing = f"https://shop.example/?utm_source=s{i}&utm_campaign={'c' * 150}{i}"
        events.append(
            make_event(
                session_id=f"v{i}", user_id=f"u{i}", page_url=landing,
                referrer=f"https://ref{i}.example.org/" + "p" * 150,
                location=Location(country=f"C{i % 250}", city=f"city-{i}-" + "y" * 100),
            )
        )  # fmt: skip
    events += [make_event(session_id="v0", event_type=f"goal_{g}") for g in range(100)]
    for start in range(0, len(events), 400):
        store.apply(SHARD, sequenced(events[start : start + 400], start + 1))
    while store.fold(SHARD):
        pass
    sizes = largest_items(store, count=1_000_000)
    assert max(size for pk, size in sizes if pk.startswith(("top#", "toph#"))) < SKETCH_BOUND
    assert max(size for pk, size in sizes if pk.startswith("hll#")) < 17 * 1024
    assert max(size for pk, size in sizes if pk.startswith("session#")) < 85 * 1024
    assert store.unique_visitors("all", "all", "all") == pytest.approx(600, rel=0.02)
    assert store.top("utm_campaign", None, None, 5).max_error > 0  # past 128: estimates
