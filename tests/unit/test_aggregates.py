"""The pure aggregation of a batch: increments, sessions, client retries."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clickstream.aggregates import (
    DEDUPE_WINDOW,
    FEED_PAGE_CHARS,
    MAX_SEEN_IDS,
    SESSION_TIMEOUT,
    Delta,
    Goal,
    SessionState,
    aggregate,
    bucket_keys,
    compact_event,
    event_id_hash,
    expires_at,
    merge_sessions,
    newest_events,
    session_hash,
    visitor_of,
)
from clickstream.schema import FUNNEL_STEPS, Device, Location
from tests.factories import make_event
from tests.unit.zone_support import machine_zone

T0 = datetime(2026, 11, 24, 10, 30, 15, tzinfo=UTC)
ALL = ("all", "all")
DAY = ("day", "2026-11-24")


def run(batches, sessions=None):
    """Aggregate batches in order, carrying session state like the store does."""
    states = dict(sessions or {})
    deltas = []
    for batch in batches:
        delta = aggregate(batch, states)
        states.update(delta.sessions)
        deltas.append(delta)
    return deltas, states


def summed(deltas, key):
    total: dict[str, Decimal] = {}
    for delta in deltas:
        for name, amount in delta.counters.get(key, {}).items():
            total[name] = total.get(name, Decimal(0)) + amount
    return {name: amount for name, amount in total.items() if amount}


def test_a_batch_becomes_one_increment_per_bucket_and_one_count_per_page():
    delta = aggregate([make_event(page="/home") for _ in range(500)], {})
    assert set(delta.counters) == {
        ("minute", "2026-11-24T10:30"),
        ("hour", "2026-11-24T10"),
        DAY,
        ALL,
    }
    assert delta.counters[ALL]["events"] == 500
    assert delta.dimensions[("page", "2026-11-24T10")] == {"/home": 500}


def test_bucket_items_have_the_same_attributes_whatever_the_number_of_custom_types():
    delta = aggregate([make_event(event_type=f"custom_{i}") for i in range(3000)], {})
    assert set(delta.counters[ALL]) <= {"events", "type:custom", "sessions", "duration_s"}
    assert delta.counters[ALL]["type:custom"] == 3000
    assert len(delta.dimensions[("event_type", "2026-11-24T10")]) == 3000


def test_revenue_counts_purchase_values_only():
    delta = aggregate(
        [
            make_event(event_type="purchase", value=19.99),
            make_event(event_type="purchase", value=5.01),
            make_event(event_type="add_to_cart", value=100.0),
        ],
        {},
    )
    assert delta.counters[DAY]["revenue"] == Decimal("25.00")


def test_a_purchase_without_a_value_adds_no_revenue():
    delta = aggregate(
        [
            make_event(event_type="purchase"),
            make_event(event_type="purchase", value=0.0),
            make_event(event_type="purchase", value=2.5),
        ],
        {},
    )
    assert delta.counters[DAY]["revenue"] == Decimal("2.5")
    assert delta.counters[DAY]["type:purchase"] == 3


def test_funnel_counts_each_session_once_per_step_across_batches():
    (first, second), _ = run(
        [
            [
                make_event(session_id="a"),
                make_event(session_id="a"),
                make_event(session_id="b"),
            ],
            [make_event(session_id="a", event_type="add_to_cart"), make_event(session_id="a")],
        ]
    )
    assert first.counters[ALL]["funnel:page_view"] == 2
    assert first.counters[ALL]["sessions"] == 2
    assert "funnel:page_view" not in second.counters[ALL]
    assert "sessions" not in second.counters[ALL]
    assert second.counters[ALL]["funnel:add_to_cart"] == 1


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["s1", "s2", "s3"]),
            st.sampled_from(["page_view", "add_to_cart", "checkout", "purchase", "search"]),
        ),
        max_size=30,
    ),
    st.integers(1, 6),
)
def test_a_funnel_step_counts_the_visits_that_reached_it_and_every_step_before(sent, size):
    """In any order and batching: the expected counts are computed here from the steps each
    visit sent, so a purchase without a checkout never makes a step rate pass 100 %."""
    events = [
        make_event(session_id=session, event_type=kind, timestamp=T0 + timedelta(seconds=i))
        for i, (session, kind) in enumerate(sent)
    ]
    deltas, _ = run([events[start : start + size] for start in range(0, len(events), size)])
    reached = {session: {kind for s, kind in sent if s == session} for session, _ in sent}
    for depth, step in enumerate(FUNNEL_STEPS, start=1):
        expected = sum(1 for kinds in reached.values() if set(FUNNEL_STEPS[:depth]) <= kinds)
        assert summed(deltas, ALL).get(f"funnel:{step}", 0) == expected, step


def test_a_purchase_without_a_checkout_is_revenue_but_not_the_funnels_last_step():
    (delta,), states = run([[make_event(session_id="s", event_type="purchase", value=5.0)]])
    assert delta.counters[ALL]["revenue"] == Decimal("5")
    assert not any(name.startswith("funnel:") for name in delta.counters[ALL])
    # the steps before it, sent later (out of order): now it is the last step too
    (later,), _ = run(
        [[make_event(session_id="s", event_type=kind) for kind in FUNNEL_STEPS[:3]]], states
    )
    assert {name: n for name, n in later.counters[ALL].items() if name.startswith("funnel")} == {
        f"funnel:{step}": 1 for step in FUNNEL_STEPS
    }


def test_a_visit_ends_exactly_at_the_timeout_in_the_sessions_own_time():
    at_timeout = aggregate(
        [
            make_event(session_id="s", timestamp=T0),
            make_event(session_id="s", timestamp=T0 + SESSION_TIMEOUT),
        ],
        {},
    )
    past_timeout = aggregate(
        [
            make_event(session_id="s", timestamp=T0),
            make_event(session_id="s", timestamp=T0 + SESSION_TIMEOUT + timedelta(seconds=1)),
        ],
        {},
    )
    assert at_timeout.counters[ALL]["sessions"] == 1
    assert past_timeout.counters[ALL]["sessions"] == 2


def test_a_visit_lasts_thirty_minutes_of_idleness_by_the_clock_the_events_carry():
    """The session's clock is its events' own timestamps (injected by the test, no wall clock):
    idle 29:59 or exactly 30:00 is the same visit, a second more is a new one. The figures are
    written out, not taken from SESSION_TIMEOUT, so a changed timeout fails here."""

    def visits_after_idling(idle: timedelta) -> int:
        events = [
            make_event(session_id="s", timestamp=T0),
            make_event(session_id="s", timestamp=T0 + idle),
        ]
        return aggregate(events, {}).counters[ALL]["sessions"]

    assert visits_after_idling(timedelta(minutes=29, seconds=59)) == 1
    assert visits_after_idling(timedelta(minutes=30)) == 1
    assert visits_after_idling(timedelta(minutes=30, seconds=1)) == 2
    # the same boundary across batches, with the state carried as the store carries it
    first = aggregate([make_event(session_id="s", timestamp=T0)], {})
    at_29_59 = aggregate(
        [make_event(session_id="s", timestamp=T0 + timedelta(minutes=29, seconds=59))],
        first.sessions,
    )
    at_30_00 = aggregate(
        [make_event(session_id="s", timestamp=T0 + timedelta(minutes=30))], first.sessions
    )
    assert "sessions" not in at_29_59.counters[ALL]
    assert "sessions" not in at_30_00.counters[ALL]


def test_a_times_buckets_are_its_utc_minute_hour_and_day_whatever_zone_it_is_given_in(
    monkeypatch,
):
    utc = datetime(2026, 11, 24, 23, 59, 30, tzinfo=UTC)
    expected = ("2026-11-24T23:59", "2026-11-24T23", "2026-11-24")
    kathmandu = utc.astimezone(timezone(timedelta(hours=5, minutes=45)))  # the 25th there
    with machine_zone(monkeypatch):  # 5 hours behind UTC: the 24th, 18:59
        assert bucket_keys(utc) == bucket_keys(kathmandu) == expected
        assert bucket_keys(utc.astimezone().replace(tzinfo=None)) == expected  # naive: local


def test_an_earlier_event_arriving_late_lengthens_the_visit_only_within_thirty_minutes():
    def duration_with_one_late_by(early: timedelta) -> int:
        deltas, _ = run(
            [
                [make_event(session_id="s", timestamp=T0)],
                [make_event(session_id="s", timestamp=T0 - early)],
            ]
        )
        return sum(d.counters.get(ALL, {}).get("duration_s", 0) for d in deltas)

    assert duration_with_one_late_by(timedelta(minutes=29, seconds=59)) == 1799
    assert duration_with_one_late_by(timedelta(minutes=30)) == 1800  # as idle 30:00 is
    assert duration_with_one_late_by(timedelta(minutes=30, seconds=1)) == 0


def test_a_client_two_hours_ahead_leaves_every_other_session_alone():
    live = [make_event(session_id=f"live-{i}", timestamp=T0) for i in range(100)]
    ahead = make_event(session_id="skewed", timestamp=T0 + timedelta(hours=2))
    again = [
        make_event(session_id=f"live-{i}", timestamp=T0 + timedelta(minutes=5)) for i in range(100)
    ]
    deltas, _ = run([live, [ahead], again])
    assert summed(deltas, ALL)["sessions"] == 101


def test_the_same_event_id_again_inside_the_window_changes_nothing():
    first = make_event(session_id="s", received_at=T0)
    retry = first.model_copy(update={"received_at": T0 + DEDUPE_WINDOW - timedelta(seconds=1)})
    (_, second), _ = run([[first], [retry]])
    assert second.counters == {} and second.dimensions == {}
    assert (second.applied, second.duplicates) == (0, 1)


def test_an_event_id_is_forgotten_after_the_window():
    first = make_event(session_id="s", received_at=T0)
    late = first.model_copy(update={"received_at": T0 + DEDUPE_WINDOW + timedelta(seconds=1)})
    (_, second), _ = run([[first], [late]])
    assert second.applied == 1


def test_an_event_id_is_remembered_to_the_last_second_of_the_window():
    first = make_event(session_id="s", received_at=T0)
    at_edge = first.model_copy(update={"received_at": T0 + DEDUPE_WINDOW})
    (_, again), _ = run([[first], [at_edge]])
    assert (again.applied, again.duplicates) == (0, 1)
    # another event of the session at that second keeps the first id remembered too
    other = make_event(session_id="s", received_at=T0 + DEDUPE_WINDOW)
    (_, _, retried), _ = run([[first], [other], [at_edge]])
    assert (retried.applied, retried.duplicates) == (0, 1)


def test_every_copy_of_an_event_after_the_first_is_counted_as_a_duplicate():
    sent = make_event(session_id="s", received_at=T0)
    delta = aggregate([sent, sent, sent, make_event(session_id="s", received_at=T0)], {})
    assert (delta.applied, delta.duplicates) == (2, 2)


def test_a_session_remembers_at_most_the_newest_ids_and_counts_what_it_dropped():
    events = [make_event(session_id="busy", received_at=T0) for _ in range(MAX_SEEN_IDS + 5)]
    delta = aggregate(events, {})
    assert len(delta.sessions[session_hash("busy")].seen_ids) == MAX_SEEN_IDS
    assert delta.dedupe_ids_dropped == 5


def test_bounces_duration_and_a_second_page_view():
    (delta,), _ = run(
        [
            [
                make_event(session_id="bounce", timestamp=T0),
                make_event(session_id="stay", timestamp=T0),
                make_event(session_id="stay", timestamp=T0 + timedelta(seconds=90)),
                make_event(
                    session_id="stay", event_type="click", timestamp=T0 + timedelta(seconds=100)
                ),
            ]
        ]
    )
    assert delta.counters[ALL]["bounces"] == 1
    assert delta.counters[ALL]["duration_s"] == 100


def test_recent_feed_keeps_the_newest_fifty_by_arrival():
    events = [make_event(received_at=T0 + timedelta(seconds=i)) for i in range(80)]
    delta = aggregate(events, {})
    assert len(delta.recent) == 50
    assert delta.recent[0]["received_at"] == (T0 + timedelta(seconds=79)).isoformat().replace(
        "+00:00", "Z"
    )


def test_minute_and_hour_buckets_expire_but_days_and_totals_do_not():
    assert expires_at(("minute", "2026-11-24T10:30")) == int(
        (datetime(2026, 11, 27, 10, 30, tzinfo=UTC)).timestamp()
    )
    assert expires_at(("hour", "2026-11-24T10")) == int(
        (datetime(2027, 2, 22, 10, tzinfo=UTC)).timestamp()
    )
    assert expires_at(DAY) is None and expires_at(ALL) is None


def test_bucket_expiry_is_read_in_utc_whatever_the_machines_time_zone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with machine_zone(monkeypatch):
        assert expires_at(("minute", "2026-11-24T10:30")) == 1795775400  # 2026-11-27T10:30Z
        assert expires_at(("hour", "2026-11-24T10")) == 1803290400  # 2027-02-22T10:00Z


def test_a_delta_survives_its_encoding():
    (delta,), _ = run(
        [
            [make_event(event_type=t, value=1.5) for t in ("purchase", "x_y", "page_view")]
            + [make_event(is_bot=True, session_id="crawler")]
        ]
    )
    assert delta.bots == 1
    assert Delta.from_json(delta.to_json()) == delta


def test_a_delta_written_before_dimensions_visitors_or_bots_were_kept_still_reads():
    (delta,), _ = run([[make_event()]])
    encoded = delta.to_json()
    older = {key: value for key, value in encoded.items() if key not in ("h", "v")}
    older["n"] = encoded["n"][:3]  # no bot count
    read = Delta.from_json(older)
    assert (read.dimensions, read.visitors, read.bots) == ({}, {}, 0)
    assert (read.counters, read.sessions, read.recent) == (
        delta.counters,
        delta.sessions,
        delta.recent,
    )
    assert (read.applied, read.duplicates, read.dedupe_ids_dropped) == (1, 0, 0)


def test_the_newest_session_state_wins_when_merging():
    old, new = SessionState(version=3), SessionState(version=9)
    a, b = Delta(sessions={1: new}), Delta(sessions={1: old})
    assert merge_sessions([a, b])[1] == new


def test_each_event_makes_its_session_state_newer_so_merging_batches_keeps_the_last():
    batches = [[make_event(page=f"/p{i}", timestamp=T0 + timedelta(seconds=i))] for i in range(3)]
    deltas, states = run(batches)
    (key,) = states
    assert [delta.sessions[key].version for delta in deltas] == [1, 2, 3]
    merged = merge_sessions(reversed(deltas))[key]
    assert (merged.page_views, merged.last_page) == (3, "/p2")


event_strategy = st.builds(
    lambda kind, minute, session, page, value, event_id: make_event(
        event_id=event_id,
        event_type=kind,
        timestamp=T0 + timedelta(minutes=minute),
        received_at=T0 + timedelta(minutes=minute),
        session_id=session,
        page=page,
        value=value if kind == "purchase" else None,
    ),
    st.sampled_from(["page_view", "click", "add_to_cart", "checkout", "purchase", "signup"]),
    st.integers(0, 200),
    st.sampled_from(["s1", "s2", "s3", "s4"]),
    st.sampled_from(["/", "/home", "/p/1", "/p/2"]),
    st.decimals(0, 1000, places=2).map(float),
    st.sampled_from([f"00000000-0000-4000-8000-{i:012d}" for i in range(40)]),
)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(event_strategy, max_size=120).map(lambda es: sorted(es, key=lambda e: e.received_at)),
    st.integers(1, 119),
)
def test_splitting_a_batch_anywhere_gives_the_same_totals(events, cut):
    (whole,), _ = run([events])
    parts, _ = run([events[:cut], events[cut:]])
    for key in set(whole.counters) | {k for part in parts for k in part.counters}:
        assert summed(parts, key) == summed([whole], key)
    assert sum(p.applied for p in parts) == whole.applied


@settings(max_examples=60, deadline=None)
@given(st.lists(event_strategy, max_size=120))
def test_type_counts_add_up_to_the_counted_events_in_every_bucket(events):
    delta = aggregate(events, {})
    for counters in delta.counters.values():
        by_type = sum(amount for name, amount in counters.items() if name.startswith("type:"))
        assert by_type == counters["events"]
    assert delta.counters.get(ALL, {}).get("events", 0) == delta.applied
    assert delta.applied + delta.duplicates == len(events)


def dimension(deltas, name, day="2026-11-24"):
    """A dimension's counts over one day (deltas keep them per hour)."""
    total: dict[str, int] = {}
    for delta in deltas:
        for (dim, hour), counts in delta.dimensions.items():
            if dim != name or hour[:10] != day:
                continue
            for value, count in counts.items():
                total[value] = total.get(value, 0) + count
    return {value: count for value, count in total.items() if count}


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["s1", "s2", "s3"]), st.sampled_from(["/a", "/b", "/c"])),
        min_size=1,
        max_size=40,
    ),
    st.integers(1, 5),
)
def test_entry_and_exit_pages_are_each_visits_first_and_last_page(views, batch_size):
    events = [
        make_event(session_id=session, page=page, timestamp=T0 + timedelta(seconds=i))
        for i, (session, page) in enumerate(views)
    ]
    deltas, _ = run([events[i : i + batch_size] for i in range(0, len(events), batch_size)])
    first: dict[str, str] = {}
    last: dict[str, str] = {}
    for session, page in views:
        first.setdefault(session, page)
        last[session] = page
    assert dimension(deltas, "entry_page") == dict(Counter(first.values()))
    assert dimension(deltas, "exit_page") == dict(Counter(last.values()))
    bounced = sum(1 for s in first if [v for v in views if v[0] == s].__len__() == 1)
    assert summed(deltas, DAY).get("bounces", 0) == bounced


def test_a_page_view_without_a_page_is_counted_under_its_urls_path():
    """Ingest fills ``page`` from the URL; a record on the stream from another producer may
    carry only the URL."""
    event = make_event(page=None, page_url="https://shop.example/pricing?plan=pro#faq")
    deltas, _ = run([[event]])
    assert dimension(deltas, "page") == {"/pricing": 1}
    assert dimension(deltas, "entry_page") == {"/pricing": 1}


def test_a_visit_is_counted_once_under_where_it_came_from_and_on_what():
    landing = "https://shop.example/?utm_source=newsletter&utm_medium=email&utm_campaign=bf"
    events = [
        make_event(session_id="s1", page_url=landing, referrer="https://mail.google.com/",
                   device=Device(device_type="mobile", browser="Safari", platform="iOS"),
                   location=Location(country="FR", city="Lyon")),
        make_event(session_id="s1", page="/p2", referrer=landing),
        make_event(session_id="s2", referrer="https://www.google.com/"),
    ]  # fmt: skip
    deltas, _ = run([events])
    assert dimension(deltas, "channel") == {"Email": 1, "Organic Search": 1}
    assert dimension(deltas, "source") == {"newsletter": 1, "google.com": 1}
    assert dimension(deltas, "utm_campaign") == {"bf": 1}
    assert dimension(deltas, "utm_medium") == {"email": 1}
    # each counted under its visit's hour, which the hour ranges read
    assert {hour for delta in deltas for _, hour in delta.dimensions} == {"2026-11-24T10"}
    assert dimension(deltas, "referrer") == {"mail.google.com": 1, "google.com": 1}
    assert dimension(deltas, "device_type") == {"mobile": 1, "desktop": 1}
    assert dimension(deltas, "os") == {"iOS": 1}
    assert dimension(deltas, "browser") == {"Safari": 1}
    assert dimension(deltas, "country") == {"FR": 1, "US": 1}
    assert dimension(deltas, "city") == {"Lyon": 1}
    later = make_event(session_id="s1", timestamp=T0 + SESSION_TIMEOUT + timedelta(minutes=5))
    deltas, _ = run([events, [later]])
    assert dimension(deltas, "channel") == {"Email": 1, "Organic Search": 1, "Direct": 1}


def test_a_sessions_visit_after_the_timeout_starts_afresh():
    """Its exit page, goals, visitor, duration and bounce are the new visit's alone."""
    later = T0 + SESSION_TIMEOUT + timedelta(minutes=10)
    first = make_event(page="/a", timestamp=T0)
    second = make_event(page="/b", timestamp=later, user_id="u9")  # signed in since
    batches = [
        [first, make_event(event_type="signup", page=None, timestamp=T0 + timedelta(seconds=10))],
        [second, make_event(event_type="signup", page=None, timestamp=later + timedelta(seconds=10))],
        # late: before the visit's first event, within the timeout of it
        [make_event(event_type="click", page=None, timestamp=later - timedelta(minutes=1))],
    ]  # fmt: skip
    deltas, _ = run(batches)
    totals = summed(deltas, DAY)
    assert (totals["sessions"], totals["bounces"], totals["duration_s"]) == (2, 2, 10 + 70)
    assert dimension(deltas, "exit_page") == {"/a": 1, "/b": 1}
    assert dimension(deltas, "goal") == {"signup": 2, "click": 1}
    visitors = set().union(*(day for delta in deltas for day in delta.visitors.values()))
    assert visitors == {visitor_of(first, ""), visitor_of(second, "")}


def test_a_visit_of_one_page_view_among_other_events_is_a_bounce_entering_on_that_page():
    events = [
        make_event(event_type="click", page=None, timestamp=T0),
        make_event(event_type="page_view", page="/a", timestamp=T0 + timedelta(seconds=1)),
        make_event(event_type="add_to_cart", page=None, timestamp=T0 + timedelta(seconds=2)),
    ]
    deltas, _ = run([events])
    assert summed(deltas, DAY)["bounces"] == 1
    assert dimension(deltas, "entry_page") == dimension(deltas, "exit_page") == {"/a": 1}


def test_goals_count_visits_that_convert_once_each():
    pro = Goal("Pro signup", "signup", {"plan": "pro"})
    events = [
        make_event(session_id="s1", event_type="signup", properties={"plan": "pro"}),
        make_event(session_id="s1", event_type="signup", properties={"plan": "pro"}),
        make_event(session_id="s2", event_type="signup", properties={"plan": "free"}),
        make_event(session_id="s3", event_type="page_view"),
        make_event(session_id="s4", event_type="signup", properties={"plan": "pro"}),
        make_event(session_id="s5", event_type="page_view", properties={"plan": "pro"}),
        make_event(session_id="s6", event_type="signup"),
    ]
    delta = aggregate(events, {}, goals=[pro])
    assert dict(delta.dimensions[("goal", "2026-11-24T10")]) == {"signup": 4, "Pro signup": 2}


def test_a_property_goal_matches_only_its_type_with_every_value_given():
    goal = Goal("Big pro", "signup", {"plan": "pro", "seats": 10})
    assert goal.matches(make_event(event_type="signup", properties={"plan": "pro", "seats": 10}))
    assert goal.matches(make_event(event_type="signup", properties={"plan": "pro", "seats": "10"}))
    assert not goal.matches(make_event(event_type="signup", properties={"plan": "pro"}))
    assert not goal.matches(
        make_event(event_type="signup", properties={"plan": "free", "seats": 10})
    )
    assert not goal.matches(make_event(event_type="click", properties={"plan": "pro", "seats": 10}))
    assert Goal("Any signup", "signup").matches(make_event(event_type="signup"))


def test_session_and_event_id_hashes_are_the_ones_earlier_releases_stored():
    # Session states are keyed by the session hash, and the dedupe window holds event id
    # hashes: a release computing them differently would lose every session in the table.
    assert session_hash("s1") == 3032292063650762948  # blake2b("s1", 8 bytes), little-endian, >> 1
    assert event_id_hash("e1") == 5246921796680503344  # the same, personalised "event-id"


def test_a_visits_converted_goals_are_stored_as_the_32_bit_hashes_earlier_releases_wrote():
    # A state written by an earlier release must still mark its goals: the ids never change.
    _, states = run([[make_event(session_id="s1", event_type="signup")]])
    (state,) = states.values()
    assert state.goals == (345842596,)  # blake2b("signup", 4 bytes), little-endian
    again, _ = run([[make_event(session_id="s1", event_type="signup")]], states)
    assert ("goal", "2026-11-24T10") not in again[0].dimensions


def test_bots_are_counted_as_bots_and_nothing_else():
    events = [make_event(is_bot=True, session_id=f"bot{i}") for i in range(3)] + [make_event()]
    delta = aggregate(events, {})
    assert delta.bots == 3 and delta.applied == 1
    assert delta.counters[ALL]["bots"] == 3 and delta.counters[ALL]["events"] == 1
    assert sum(map(len, delta.visitors.values())) == 1
    # a bot's session remembers its event ids, and nothing of a visit
    bot_states = [state for key, state in delta.sessions.items() if key != session_hash("s1")]
    assert [(state.steps, state.visitor, len(state.seen_ids)) for state in bot_states] == [
        (0, 0, 1)
    ] * 3


def test_a_bot_sessions_state_counts_its_events_and_what_its_id_memory_dropped():
    """Each bot event is one more version of its session's state (the newest state wins a
    fold), and ids past the memory's bound are counted dropped, over batches as in one."""
    crawl = [make_event(is_bot=True, session_id="crawler", received_at=T0) for _ in range(3)]
    first = aggregate(crawl, {})
    (state,) = first.sessions.values()
    assert (state.version, first.dedupe_ids_dropped) == (3, 0)
    more = [
        make_event(is_bot=True, session_id="crawler", received_at=T0)
        for _ in range(MAX_SEEN_IDS + 4)
    ]
    second = aggregate(more, first.sessions)
    (state,) = second.sessions.values()
    assert state.version == 3 + MAX_SEEN_IDS + 4
    assert second.dedupe_ids_dropped == 3 + 4  # the 3 earlier ids, then 4 of this batch's
    assert len(state.seen_ids) == MAX_SEEN_IDS


def test_a_retried_bot_event_is_a_duplicate_not_another_bot():
    """Sent again in the same batch or a later one (a crawler's tracker retrying), a bot's
    event counts once, as the archive keeps it once."""
    crawl = make_event(is_bot=True, session_id="crawler", received_at=T0)
    later = make_event(is_bot=True, session_id="crawler", received_at=T0 + timedelta(minutes=1))
    (first, again), _ = run([[crawl, crawl], [crawl, later]])
    assert (first.bots, first.duplicates, again.bots, again.duplicates) == (1, 1, 1, 1)
    assert summed([first, again], ALL)["bots"] == 2
    assert first.applied == again.applied == 0


def test_visitors_are_hashes_of_the_user_the_device_or_the_salted_address():
    events = [
        make_event(user_id="u1", session_id="a"),
        make_event(user_id="u1", session_id="b"),  # one person, two visits
        make_event(user_id=None, anonymous_id="device-9", session_id="c"),
        make_event(user_id=None, ip_truncated="203.0.113.0", user_agent="UA", session_id="d"),
        make_event(user_id=None, ip_truncated="203.0.113.0", user_agent="UA", session_id="e"),
    ]
    delta = aggregate(events, {}, visitor_secret="s")
    (hashes,) = delta.visitors.values()
    assert len(hashes) == 3
    assert all(isinstance(h, int) for h in hashes)  # no id is kept, only 64-bit hashes
    assert Delta.from_json(delta.to_json()).visitors == delta.visitors


def test_a_session_state_written_before_exits_and_goals_still_reads():
    old = [3, 1, 100, 200, 2, ""]
    assert SessionState.from_json(old) == SessionState(3, 1, 100, 200, 2, (), "", ())


def test_a_visit_is_one_visitor_even_when_later_events_lack_the_user_agent_or_sign_in():
    first = make_event(user_id=None, session_id="v", ip_truncated="198.51.100.0", user_agent="UA")
    later = [
        make_event(user_id=None, session_id="v", event_type="signup"),  # server-side, no UA
        make_event(user_id="u-new", session_id="v", timestamp=T0 + timedelta(minutes=3)),
    ]
    deltas, _ = run([[first], later])
    hashes = set().union(*(h for d in deltas for h in d.visitors.values()))
    assert len(hashes) == 1


@settings(max_examples=80, deadline=None)
@given(st.permutations(range(6)), st.integers(1, 6))
def test_a_visit_in_any_order_has_the_same_source_duration_and_client(order, batch_size):
    """Retries and parallel batches bring a visit's events out of order: its source still
    comes from its landing event and its duration is latest minus earliest."""
    site = "https://shop.example"
    visit = [
        make_event(session_id="v", page=f"/p{i}", page_url=f"{site}/p{i}",
                   referrer="https://www.google.com/" if i == 0 else f"{site}/p{i - 1}",
                   timestamp=T0 + timedelta(seconds=17 * i))
        for i in range(6)
    ]  # fmt: skip
    shuffled = [visit[i] for i in order]
    deltas, _ = run([shuffled[i : i + batch_size] for i in range(0, 6, batch_size)])
    assert dimension(deltas, "channel") == {"Organic Search": 1}
    assert dimension(deltas, "source") == {"google.com": 1}
    assert dimension(deltas, "device_type") == {"desktop": 1}
    assert summed(deltas, DAY)["duration_s"] == 17 * 5


def test_a_visit_is_placed_by_its_ids_whether_or_not_its_events_carry_address_or_browser():
    """A server-side event (no address, no user agent) of a user or device joins the visit its
    browser's events began; a cookieless event with only a user agent, or only an address,
    is a visit of that browser, not one visit per event."""

    def event(minutes: float, **fields: Any) -> Any:
        return make_event(
            timestamp=T0 + timedelta(minutes=minutes), **{"session_id": None, **fields}
        )

    for ids in ({"user_id": "u"}, {"user_id": None, "anonymous_id": "device-1"}):
        (delta,), _ = run(
            [
                [
                    event(0, ip_truncated="203.0.113.0", user_agent="Firefox/120", **ids),
                    event(1, **ids),
                ]
            ]
        )
        assert delta.counters[ALL]["sessions"] == 1, ids
    for browser in ({"user_agent": "Firefox/120"}, {"ip_truncated": "203.0.113.0"}):
        (delta,), _ = run([[event(0, user_id=None, **browser), event(1, user_id=None, **browser)]])
        assert delta.counters[ALL]["sessions"] == 1, browser


def test_an_event_naming_no_one_and_carrying_no_address_or_browser_is_a_visit_of_its_own():
    bare = {"session_id": None, "user_id": None, "ip_truncated": None, "user_agent": None}
    (delta,), _ = run([[make_event(**bare), make_event(**bare, page="/b")]])
    assert delta.counters[ALL]["sessions"] == 2
    assert len(set().union(*delta.visitors.values())) == 2  # and two visitors, not one


def test_the_feed_shows_each_events_fields_and_leaves_out_those_it_lacks():
    sent = make_event(
        event_id="e-1",
        event_type="purchase",
        timestamp=T0,
        received_at=T0 + timedelta(seconds=2),
        page="/checkout/" + "x" * 600,
        product_id="sku-9",
        value=12.5,
        location=Location(country="FR"),
    )
    assert compact_event(sent) == {
        "event_id": "e-1",
        "event_type": "purchase",
        "timestamp": "2026-11-24T10:30:15Z",
        "received_at": "2026-11-24T10:30:17Z",
        "user_id": "u1",
        "session_id": "s1",
        "page": ("/checkout/" + "x" * 600)[:FEED_PAGE_CHARS],
        "product_id": "sku-9",
        "value": 12.5,
        "device_type": "desktop",
        "country": "FR",
    }
    bare = make_event(event_id="e-2", user_id=None, page=None, location=Location(), timestamp=T0)
    assert set(compact_event(bare)) == {
        "event_id", "event_type", "timestamp", "received_at", "session_id", "device_type",
    }  # fmt: skip


def test_cookieless_events_are_visits_of_their_address_and_browser_not_one_visit_each():
    def anonymous(minutes: float, user_agent: str = "Firefox/120", page: str = "/") -> Any:
        return make_event(
            session_id=None,
            user_id=None,
            ip_truncated="203.0.113.0",
            user_agent=user_agent,
            page=page,
            timestamp=T0 + timedelta(minutes=minutes),
        )

    (delta,), _ = run(
        [
            [
                anonymous(0),
                anonymous(1, page="/pricing"),
                anonymous(2, user_agent="Safari/17"),
                anonymous(45),  # idle past the timeout: a second visit of the first browser
            ]
        ]
    )
    assert delta.counters[ALL]["sessions"] == 3
    assert delta.counters[ALL]["bounces"] == 2


def test_the_feed_shows_newest_arrivals_first_and_one_requests_events_newest_first():
    received = "2026-11-24T10:40:00Z"
    events = [
        {"event_id": eid, "timestamp": ts, "received_at": at}
        for eid, ts, at in [
            ("a", "2026-11-24T10:31:00Z", received),
            ("b", "2026-11-24T10:39:00Z", received),
            ("c", "2026-11-24T10:35:00Z", received),
            ("d", "2026-11-24T09:00:00Z", "2026-11-24T10:45:00Z"),  # late: arrived last
        ]
    ]
    assert [e["event_id"] for e in newest_events(events)] == ["d", "b", "c", "a"]


def test_a_feed_event_kept_without_its_arrival_time_is_placed_by_its_own_time():
    """A feed an earlier version stored holds events without ``received_at``."""
    events = [
        {"event_id": "new", "timestamp": "2026-11-24T10:31:00Z", "received_at": "2026-11-24T10:32:00Z"},
        {"event_id": "kept", "timestamp": "2026-11-24T10:30:00Z"},
        {"event_id": "later", "timestamp": "2026-11-24T10:40:00Z"},
    ]  # fmt: skip
    assert [e["event_id"] for e in newest_events(events)] == ["later", "new", "kept"]
