from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from clickstream.aggregates import (
    MAX_TRANSACT_ITEMS,
    ShardState,
    aggregate,
    chunk_for_transactions,
    pack_sessions,
    page_shard,
    session_hash,
    unpack_sessions,
)
from tests.factories import make_event, sequenced

T0 = datetime(2026, 11, 24, 10, 30, 15, tzinfo=UTC)


def test_a_batch_becomes_one_update_per_distinct_item():
    events = [make_event(event_type="page_view", page="/home") for _ in range(500)]
    increments, _ = aggregate(events, ShardState())
    assert set(increments.counters) == {
        ("total", "all"),
        ("minute", "2026-11-24T10:30"),
        ("hour", "2026-11-24T10"),
        ("day", "2026-11-24"),
        ("pages", page_shard("/home")),
    }
    assert increments.counters[("total", "all")]["events"] == 500
    assert increments.counters[("pages", page_shard("/home"))]["p:/home"] == 500


def test_revenue_counts_purchase_values_only():
    events = [
        make_event(event_type="purchase", value=19.99),
        make_event(event_type="purchase", value=5.01),
        make_event(event_type="add_to_cart", value=100.0),
    ]
    increments, _ = aggregate(events, ShardState())
    assert increments.counters[("day", "2026-11-24")]["revenue"] == Decimal("25.00")


def test_funnel_counts_each_session_once_per_step_across_batches():
    first, state = aggregate(
        [
            make_event(session_id="a", event_type="page_view"),
            make_event(session_id="a", event_type="page_view"),
            make_event(session_id="b", event_type="page_view"),
        ],
        ShardState(),
    )
    second, _ = aggregate(
        [
            make_event(session_id="a", event_type="add_to_cart"),
            make_event(session_id="a", event_type="page_view"),
        ],
        state,
    )
    assert first.counters[("total", "all")]["funnel:page_view"] == 2
    assert first.counters[("total", "all")]["sessions"] == 2
    assert "funnel:page_view" not in second.counters[("total", "all")]
    assert "sessions" not in second.counters[("total", "all")]
    assert second.counters[("total", "all")]["funnel:add_to_cart"] == 1


def test_idle_sessions_are_forgotten_by_event_time():
    _, state = aggregate([make_event(session_id="old", timestamp=T0)], ShardState())
    _, state = aggregate(
        [make_event(session_id="new", timestamp=T0 + timedelta(minutes=31))], state
    )
    assert set(state.sessions) == {session_hash("new")}


def test_a_session_idle_past_the_timeout_counts_as_a_new_visit():
    increments, _ = aggregate(
        [
            make_event(session_id="s", timestamp=T0),
            make_event(session_id="s", timestamp=T0 + timedelta(minutes=45)),
        ],
        ShardState(),
    )
    assert increments.counters[("total", "all")]["sessions"] == 2


def test_session_state_packs_to_13_bytes_a_session_and_back():
    _, state = aggregate(
        [make_event(session_id=f"s{i}", event_type="add_to_cart") for i in range(100)], ShardState()
    )
    blob = pack_sessions(state.sessions)
    assert len(blob) == 1300
    assert unpack_sessions(blob) == state.sessions


def test_recent_feed_keeps_the_newest_fifty():
    events = [make_event(timestamp=T0 + timedelta(seconds=i)) for i in range(80)]
    _, state = aggregate(events, ShardState())
    assert len(state.recent) == 50
    assert state.recent[0]["timestamp"] == (T0 + timedelta(seconds=79)).isoformat().replace(
        "+00:00", "Z"
    )


def test_minute_and_hour_buckets_expire_but_days_do_not():
    increments, _ = aggregate([make_event()], ShardState())
    assert ("minute", "2026-11-24T10:30") in increments.expires_at
    assert ("hour", "2026-11-24T10") in increments.expires_at
    assert ("day", "2026-11-24") not in increments.expires_at


def test_backfill_spanning_many_minutes_is_chunked_to_fit_transactions():
    events = [make_event(timestamp=T0 + timedelta(minutes=i)) for i in range(300)]
    chunks = chunk_for_transactions(sequenced(events))
    assert sum(len(chunk) for chunk in chunks) == 300
    for chunk in chunks:
        increments, _ = aggregate([item.event for item in chunk], ShardState())
        assert len(increments.counters) + 1 <= MAX_TRANSACT_ITEMS


event_strategy = st.builds(
    lambda kind, minute, session, page, value: make_event(
        event_type=kind,
        timestamp=T0 + timedelta(minutes=minute),
        session_id=session,
        page=page,
        value=value if kind == "purchase" else None,
    ),
    st.sampled_from(["page_view", "click", "add_to_cart", "checkout", "purchase", "signup"]),
    st.integers(0, 200),
    st.sampled_from(["s1", "s2", "s3", "s4"]),
    st.sampled_from(["/", "/home", "/p/1", "/p/2"]),
    st.decimals(0, 1000, places=2).map(float),
)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(event_strategy, max_size=120).map(lambda es: sorted(es, key=lambda e: e.timestamp)),
    st.integers(1, 119),
)
def test_splitting_a_batch_anywhere_gives_the_same_totals(events, cut):
    # a shard delivers in order, and event time follows arrival within a shard
    whole, _ = aggregate(events, ShardState())
    first, state = aggregate(events[:cut], ShardState())
    second, _ = aggregate(events[cut:], state)
    for key in set(whole.counters) | set(first.counters) | set(second.counters):
        merged: dict[str, Decimal] = {}
        for part in (first, second):
            for name, amount in part.counters.get(key, {}).items():
                merged[name] = merged.get(name, Decimal(0)) + amount
        assert merged == dict(whole.counters.get(key, {}))


@settings(max_examples=60, deadline=None)
@given(st.lists(event_strategy, max_size=120))
def test_type_counts_add_up_to_the_event_count_in_every_bucket(events):
    increments, _ = aggregate(events, ShardState())
    for key, counters in increments.counters.items():
        if key[0] == "pages":
            continue
        by_type = sum(amount for name, amount in counters.items() if name.startswith("type:"))
        assert by_type == counters["events"]
    assert increments.counters.get(("total", "all"), {}).get("events", 0) == len(events)
