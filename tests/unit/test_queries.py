"""The read answers over the store: the dashboard's one-request snapshot and its limits."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import ClientError

from clickstream import queries
from clickstream.errors import RequestError
from clickstream.schema import Location
from tests.factories import make_event, sequenced
from tests.unit.zone_support import machine_zone

NOW = datetime(2026, 11, 24, 10, 31, tzinfo=UTC)


def test_the_dashboard_answers_every_section_from_one_read_of_the_pending_deltas(store):
    store.apply(
        "shardId-000000000000", sequenced([make_event(session_id=f"s{i}") for i in range(12)])
    )
    before = store.reads.requests
    answer = queries.dashboard(store, 5, now=NOW)
    assert set(answer) == {
        "period", "stats", "timeseries", "funnel", "pages", "breakdowns", "goals", "realtime"
    }  # fmt: skip
    assert answer["stats"]["total_events"] == 12
    assert sum(point["events"] for point in answer["timeseries"]["points"]) == 12
    assert answer["funnel"]["sessions"] == 12
    assert answer["pages"]["pages"] == [{"page": "/home", "views": 12}]
    # one query of the cursors and one of the shard's deltas, shared by every section
    pending_reads = 2
    per_section_reads = {
        "stats": 8,  # counters, visitors, types, feed, erasures, last minute, realtime (2)
        "timeseries": 2,  # counters, visitor sketches
        "funnel": 1,
        "pages": 1,
        # one summary query each, and an exact count per listed exit page (one here)
        "breakdowns": len(queries.DASHBOARD_BREAKDOWNS) + 1,
        "goals": 3,
        "realtime": 2,
    }
    assert store.reads.requests - before <= pending_reads + sum(per_section_reads.values())


def test_a_section_whose_reads_fail_says_so_and_the_others_stand(store, monkeypatch):
    store.apply("shardId-000000000000", sequenced([make_event()]))

    refusal = ClientError({"Error": {"Code": "ProvisionedThroughputExceededException"}}, "Query")

    def throttled(*_args, **_kwargs):
        raise refusal

    monkeypatch.setattr(type(store), "top", throttled)
    answer = queries.dashboard(store, 5, now=NOW)
    assert answer["pages"] == {
        "error": f"the aggregates could not be read ({refusal})",
        "status": 503,
    }
    assert answer["stats"]["status"] == 503  # its event types come from the same summaries
    assert answer["funnel"]["sessions"] == 1
    assert sum(point["events"] for point in answer["timeseries"]["points"]) == 1


@pytest.mark.parametrize("limit", [0, 101])
def test_the_dashboards_page_limit_is_bounded(store, limit):
    with pytest.raises(RequestError) as error:
        queries.dashboard(store, limit, now=NOW)
    assert (error.value.field, error.value.message) == ("limit", "must be between 1 and 100")


def _visit(session: str, pages: list[str], start: datetime, **fields):
    return [
        make_event(
            session_id=session, page=page, timestamp=start + timedelta(seconds=20 * i), **fields
        )
        for i, page in enumerate(pages)
    ]


def test_web_analytics_over_two_shards_folded_and_pending_agree_with_what_was_sent(store):
    """Visits on two shards, half folded, half pending: every measure equals the exact
    answer computed from the events (visitors within the sketch's error, here exact)."""
    start = NOW - timedelta(minutes=20)
    shards = ["shardId-000000000000", "shardId-000000000001"]
    sent = []
    for i in range(40):
        pages = ["/", "/products/1", "/cart"][: 1 + i % 3]
        landing = "https://shop.example/?utm_source=google&utm_medium=cpc" if i % 4 == 0 else None
        referrer = "https://news.ycombinator.com/" if i % 4 == 1 else None
        events = _visit(f"s{i}", pages, start + timedelta(seconds=i), user_id=f"u{i % 25}",
                        page_url=landing, referrer=referrer,
                        location=Location(country=["FR", "US", "DE"][i % 3]))  # fmt: skip
        sent.append(events)
    for index, visit in enumerate(sent):
        store.apply(shards[index % 2], sequenced(visit, start=1000 + 10 * index))
        if index == 19:
            for shard in shards:
                store.fold(shard)
    period = queries.resolve_period("today", now=NOW)
    head = queries.headline(store, period)
    assert head["visits"] == 40 and head["visitors"] == 25
    assert head["bounce_rate"] == round(sum(len(v) == 1 for v in sent) / 40, 4)
    assert head["pages_per_visit"] == round(sum(map(len, sent)) / 40, 2)
    assert head["avg_visit_duration_s"] == round(sum(20 * (len(v) - 1) for v in sent) / 40, 1)
    exits = queries.breakdown(store, "exit_page", period, 10)
    assert {row["value"]: row["count"] for row in exits["rows"]} == dict(
        Counter(v[-1].page for v in sent)
    )
    channels = queries.breakdown(store, "channel", period, 2)
    assert channels["rows"] == [
        {"value": "Direct", "count": 20},
        {"value": "Organic Social", "count": 10},
    ]
    assert (channels["other"], channels["complete"]) == (10, False)
    countries = queries.breakdown(store, "country", period, 10)
    assert sum(row["count"] for row in countries["rows"]) == 40 and countries["max_error"] == 0
    live = queries.realtime(store, now=NOW)
    assert live["visitors_now"] == 0 and len(live["minutes"]) == 30  # last event 19 min ago
    assert sum(m["events"] for m in live["minutes"]) == sum(map(len, sent))


def test_a_breakdown_names_its_dimension_and_its_metric(store):
    store.apply("shardId-000000000000", sequenced(_visit("v", ["/a", "/b"], NOW.replace(hour=9))))
    today = queries.resolve_period("today", now=NOW)
    named = {}
    for dimension in ("page", "event_type", "goal", "country", "exit_page"):
        found = queries.breakdown(store, dimension, today, 10)
        named[dimension] = (found["dimension"], found["metric"])
    assert named == {
        "page": ("page", "views"),
        "event_type": ("event_type", "events"),
        "goal": ("goal", "visits"),
        "country": ("country", "visits"),
        "exit_page": ("exit_page", "visits"),
    }


def test_all_time_exit_pages_are_read_from_every_day_folded_or_pending(store):
    """Exit pages have no all-time summary (a visit's exit moves): all time reads the days."""
    days = [NOW - timedelta(days=400), NOW - timedelta(days=3), NOW - timedelta(hours=1)]
    for n, (day, pages) in enumerate(
        zip(days, [["/x", "/old"], ["/y", "/mid"], ["/new"]], strict=True)
    ):
        store.apply(
            "shardId-000000000000", sequenced(_visit(f"s{n}", pages, day), start=10 * n + 1)
        )
        if n < 2:
            store.fold("shardId-000000000000")
    found = queries.breakdown(store, "exit_page", queries.resolve_period("all", now=NOW), 10)
    assert (found["resolution"], found["covers_from"]) == ("day", None)
    assert {row["value"]: row["count"] for row in found["rows"]} == {
        "/old": 1,
        "/mid": 1,
        "/new": 1,
    }
    assert (found["total"], found["other"], found["complete"]) == (3, 0, True)


def test_breakdowns_of_right_now_and_of_hours_leave_out_the_rest_of_the_day(store):
    """Visits at 02:00 and 10:20, one folded, one pending: right now and a custom range of
    hours count only theirs; today counts both; a range ending before 10:00 has none."""
    early = _visit("early", ["/night", "/a"], NOW.replace(hour=2, minute=0), referrer=None)
    late = _visit("late", ["/now"], NOW - timedelta(minutes=11), referrer=None)
    store.apply("shardId-000000000000", sequenced(early, start=1))
    store.fold("shardId-000000000000")
    store.apply("shardId-000000000001", sequenced(late, start=1))

    def pages(period: queries.Period) -> tuple[str, dict[str, int]]:
        found = queries.breakdown(store, "page", period, 10)
        return found["resolution"], {row["value"]: row["count"] for row in found["rows"]}

    assert pages(queries.resolve_period("realtime", now=NOW)) == ("hour", {"/now": 1})
    assert pages(queries.resolve_period("today", now=NOW)) == (
        "day", {"/night": 1, "/a": 1, "/now": 1},
    )  # fmt: skip
    night = queries.resolve_period(
        "custom", NOW.replace(hour=1), NOW.replace(hour=3, minute=0), now=NOW
    )
    assert pages(night) == ("hour", {"/night": 1, "/a": 1})
    assert queries.breakdown(store, "entry_page", night, 10)["rows"] == [
        {"value": "/night", "count": 1}
    ]
    before = queries.resolve_period("custom", NOW.replace(hour=4), NOW.replace(hour=9), now=NOW)
    assert pages(before) == ("hour", {})
    found = queries.breakdown(store, "page", night, 10)
    assert (found["covers_from"], found["covers_to"]) == (
        "2026-11-24T01:00:00Z", "2026-11-24T04:00:00Z",
    )  # fmt: skip
    odd = queries.resolve_period(
        "custom",
        NOW.replace(hour=1, minute=15, second=30, microsecond=250),
        NOW.replace(hour=3),
        now=NOW,
    )
    found = queries.breakdown(store, "page", odd, 10)
    assert (found["covers_from"], found["covers_to"]) == (
        "2026-11-24T01:00:00Z", "2026-11-24T04:00:00Z",
    )  # fmt: skip
    today = queries.breakdown(store, "page", queries.resolve_period("today", now=NOW), 10)
    assert (today["covers_from"], today["covers_to"]) == (
        "2026-11-24T00:00:00Z", "2026-11-25T00:00:00Z",
    )  # fmt: skip


def test_right_nows_event_types_agree_with_its_page_views_though_read_in_whole_hours(store):
    """A page view at 10:05 is in the hour "right now" (10:01-10:30) touches, not in the
    period: the standard types come from the period's own counters, custom ones from the
    hour."""
    store.apply(
        "shardId-000000000000",
        sequenced([
            make_event(session_id="early", timestamp=NOW.replace(minute=0, second=30)),
            make_event(session_id="now", timestamp=NOW - timedelta(minutes=3)),
            make_event(session_id="now", event_type="wishlist", timestamp=NOW - timedelta(minutes=2)),
        ]),
    )  # fmt: skip
    answer = queries.stats(store, queries.resolve_period("realtime", now=NOW), now=NOW)
    assert answer["page_views"] == 1
    assert answer["events_by_type"] == {"page_view": 1, "wishlist": 1}


def test_breakdowns_are_read_in_hours_only_where_days_would_cover_more_and_hours_are_kept():
    def resolution(name, start=None, end=None, since="0000-00-00T00"):
        period = queries.resolve_period(name, start, end, now=NOW)
        return period.breakdown_range(since)[0]

    midnight = NOW.replace(hour=0, minute=0)
    assert resolution("realtime") == "hour"
    assert resolution("realtime", since="2026-11-24T11") == "day"  # hours not all kept yet
    assert resolution("realtime", since=None) == "day"
    assert [resolution(name) for name in ("today", "7d", "30d", "all")] == ["day"] * 4
    assert resolution("custom", NOW - timedelta(hours=20), NOW) == "hour"
    assert resolution("custom", NOW - timedelta(hours=25), NOW) == "day"  # > a day: days
    day_before = midnight - timedelta(days=1)
    assert resolution("custom", day_before, midnight - timedelta(minutes=1)) == "day"  # whole
    assert resolution("custom", day_before, day_before + timedelta(hours=6)) == "hour"
    old = NOW - timedelta(days=100)
    assert resolution("custom", old, old + timedelta(hours=2)) == "day"  # past hours' 90 days


def test_bots_are_left_out_of_every_measure_and_their_number_is_shown(store):
    store.apply(
        "shardId-000000000000",
        sequenced([make_event(is_bot=True, session_id=f"b{i}") for i in range(5)] + [make_event()]),
    )
    stats = queries.stats(store, queries.resolve_period("today", now=NOW), now=NOW)
    assert (stats["total_events"], stats["visitors"], stats["bots_excluded"]) == (1, 1, 5)


def test_goals_convert_visits_over_the_range(store):
    events = [make_event(session_id=f"s{i}") for i in range(4)]
    events += [make_event(session_id="s0", event_type="signup") for _ in range(2)]
    store.apply("shardId-000000000000", sequenced(events))
    answer = queries.goals(store, queries.resolve_period("7d", now=NOW))
    assert answer["goals"] == [{"goal": "signup", "visits": 1, "conversion_rate": 0.25}]


@pytest.mark.parametrize(
    ("period", "start", "end", "field", "message"),
    [
        ("yesterday", None, None, "period",
         "must be one of all, realtime, today, 7d, 30d, custom"),
        ("today", NOW, None, "period", "'from' and 'to' go with period=custom only"),
        ("7d", None, NOW, "period", "'from' and 'to' go with period=custom only"),
        ("custom", None, None, "from", "period=custom needs 'from'"),
        (None, None, NOW, "from", "period=custom needs 'from'"),  # 'to' alone: custom
        (None, NOW, NOW - timedelta(days=1), "from", "'from' is after 'to'"),
    ],
)  # fmt: skip
def test_a_bad_period_names_its_parameter_and_what_is_wrong(period, start, end, field, message):
    with pytest.raises(RequestError) as error:
        queries.resolve_period(period, start, end, now=NOW)
    assert (error.value.field, error.value.message) == (field, message)


def test_each_named_period_spans_what_its_name_says():
    def span(name):
        period = queries.resolve_period(name, now=NOW)
        return period.name, period.start, period.end, period.granularity

    day = NOW.replace(hour=0, minute=0)
    assert span("all") == ("all", None, NOW, "minute")
    assert span("realtime") == ("realtime", NOW.replace(minute=2), NOW, "minute")  # 30 minutes
    assert span("today") == ("today", day, NOW, "hour")
    assert span("7d") == ("7d", day - timedelta(days=6), NOW, "day")
    assert span("30d") == ("30d", day - timedelta(days=29), NOW, "day")
    assert span(None) == span("all")
    later = NOW.replace(second=42, microsecond=7)  # a period's edges are whole minutes, days
    assert queries.resolve_period("realtime", now=later).start == NOW.replace(minute=2)
    assert queries.resolve_period("today", now=later).start == day
    instant = queries.resolve_period("custom", NOW, NOW, now=NOW)  # from = to: one moment
    assert (instant.start, instant.end) == (NOW, NOW)
    since = queries.resolve_period(None, NOW - timedelta(hours=2), now=NOW)  # 'from' alone
    assert (since.name, since.start, since.end) == ("custom", NOW - timedelta(hours=2), NOW)


def test_a_period_without_a_time_given_is_of_now_in_utc_whatever_the_machines_zone(monkeypatch):
    with machine_zone(monkeypatch):
        before = datetime.now(UTC)
        today = queries.resolve_period("today")
        after = datetime.now(UTC)
    assert before <= today.end <= after and today.end.utcoffset() == timedelta(0)
    assert today.start == today.end.replace(hour=0, minute=0, second=0, microsecond=0)


def test_a_custom_range_is_read_at_the_finest_buckets_still_kept():
    def granularity(start, end):
        return queries.resolve_period("custom", start, end, now=NOW).granularity

    assert granularity(NOW - timedelta(hours=2), NOW) == "minute"
    assert granularity(NOW - timedelta(days=3), NOW) == "hour"
    assert granularity(NOW - timedelta(days=5), NOW - timedelta(days=4, hours=23)) == "hour"
    assert granularity(NOW - timedelta(days=200), NOW - timedelta(days=199)) == "day"


# --- expected values computed here, from what the test sent --------------------------------


def shop(sessions: int, reached: dict[str, int]) -> list:
    """``sessions`` visits; the first ``reached[step]`` of them reach each funnel step (in the
    funnel's order, on the same minute)."""
    events = []
    for i in range(sessions):
        events.append(make_event(session_id=f"v{i}", user_id=f"u{i}"))
        for step in ("add_to_cart", "checkout", "purchase"):
            if i < reached[step]:
                extra = {"value": 10.0} if step == "purchase" else {}
                events.append(
                    make_event(session_id=f"v{i}", user_id=f"u{i}", event_type=step, **extra)
                )
    return events


@pytest.mark.parametrize("folded", [False, True])
def test_the_funnels_rates_are_the_shares_of_visits_the_test_sent(store, folded):
    reached = {"add_to_cart": 10, "checkout": 6, "purchase": 3}
    store.apply("shardId-000000000000", sequenced(shop(20, reached)))
    if folded:
        store.fold("shardId-000000000000")
    answer = queries.funnel(store)
    assert answer["sessions"] == 20
    assert answer["conversion_rate"] == round(3 / 20, 4)  # purchases over visits
    assert [(s["step"], s["sessions"]) for s in answer["steps"]] == [
        ("page_view", 20),
        ("add_to_cart", 10),
        ("checkout", 6),
        ("purchase", 3),
    ]
    assert [s["rate_from_previous"] for s in answer["steps"]] == [1.0, 0.5, 0.6, 0.5]
    assert [s["rate_from_start"] for s in answer["steps"]] == [1.0, 0.5, 0.3, 0.15]
    ranged = queries.funnel(store, NOW - timedelta(days=1), NOW)
    assert ranged["conversion_rate"] == 0.15 and ranged["sessions"] == 20
    over_period = queries.funnel_for(store, queries.resolve_period("7d", now=NOW))
    assert over_period["conversion_rate"] == 0.15


def test_an_empty_funnel_has_no_rate_and_a_reversed_range_names_from(store):
    answer = queries.funnel(store)
    assert answer["conversion_rate"] == 0.0 and answer["sessions"] == 0
    assert all(s["rate_from_previous"] == 0.0 for s in answer["steps"])
    with pytest.raises(RequestError) as error:
        queries.funnel(store, NOW, NOW - timedelta(days=1))
    assert (error.value.field, error.value.message) == ("from", "'from' is after 'to'")


def test_top_pages_are_ordered_by_the_views_the_test_sent(store):
    views = {"/a": 7, "/b": 5, "/d": 4, "/c": 4, "/e": 1}  # /c before /d: ties go by name
    events = [
        make_event(session_id=f"{page}{i}", page=page)
        for page, count in views.items()
        for i in range(count)
    ]
    store.apply("shardId-000000000000", sequenced(events))
    expected = sorted(views.items(), key=lambda pair: (-pair[1], pair[0]))
    answer = queries.top_pages(store, 3)
    assert [(row["page"], row["views"]) for row in answer["pages"]] == expected[:3]
    assert answer["other_views"] == sum(views.values()) - sum(c for _, c in expected[:3])
    assert answer["complete"] is False
    # a page left out has at most the last listed page's views (the summaries are exact here)
    assert answer["max_error"] == 4
    whole = queries.top_pages(store, 10)
    assert [(row["page"], row["views"]) for row in whole["pages"]] == expected
    assert (whole["other_views"], whole["complete"], whole["max_error"]) == (0, True, 0)
    assert queries.page_views(store, "/b") == {"page": "/b", "page_views": 5}
    assert queries.page_views(store, "c?x=1") == {"page": "/c", "page_views": 4}


def test_top_pages_take_any_limit_from_one_to_the_most_and_ten_by_default(store):
    pages = [f"/p{n:02d}" for n in range(12)]
    events = [
        make_event(session_id=f"{page}-{i}", page=page)
        for rank, page in enumerate(pages)
        for i in range(20 - rank)
    ]
    store.apply("shardId-000000000000", sequenced(events))
    assert [row["page"] for row in queries.top_pages(store)["pages"]] == pages[:10]
    board = queries.dashboard(store, now=NOW, sections=("pages",))
    assert [row["page"] for row in board["pages"]["pages"]] == pages[:10]
    # without a time given, the dashboard's is now, in UTC
    assert queries.dashboard(store, sections=("pages",))["period"]["to"].endswith("Z")
    assert queries.top_pages(store, 1)["pages"] == [{"page": "/p00", "views": 20}]
    assert len(queries.top_pages(store, queries.MAX_TOP)["pages"]) == 12


def test_the_root_page_is_asked_for_by_an_empty_path(store):
    store.apply("shardId-000000000000", sequenced([make_event(page="/"), make_event(page="/")]))
    assert queries.page_views(store, "") == {"page": "/", "page_views": 2}


def test_events_by_type_say_whether_every_type_is_listed(store):
    sent = {"page_view": 3, "click": 2, "wishlist": 1}
    store.apply(
        "shardId-000000000000",
        sequenced(
            [
                make_event(session_id=f"{kind}{i}", event_type=kind)
                for kind, count in sent.items()
                for i in range(count)
            ]
        ),
    )
    assert queries.event_types(store) == {"by_type": sent, "complete": True}
    assert queries.event_types(store, 2) == {
        "by_type": {"page_view": 3, "click": 2},
        "complete": False,
    }
    answer = queries.stats(store, now=NOW)
    assert (answer["events_by_type"], answer["events_by_type_complete"]) == (sent, True)


@pytest.mark.parametrize("limit", [0, queries.MAX_TOP + 1])
def test_top_pages_limit_is_bounded(store, limit):
    with pytest.raises(RequestError) as error:
        queries.top_pages(store, limit)
    assert (error.value.field, error.value.message) == (
        "limit",
        f"must be between 1 and {queries.MAX_TOP}",
    )


def test_the_headline_figures_are_the_ones_the_test_sent(store):
    events = [make_event(session_id="one", page="/a"), make_event(session_id="one", page="/b")]
    events += [make_event(session_id=f"bounce{i}", user_id=f"b{i}") for i in range(3)]
    events.append(make_event(session_id="one", event_type="purchase", value=12.5))
    store.apply("shardId-000000000000", sequenced(events))
    figures = queries.headline(store, queries.resolve_period("today", now=NOW))
    assert (figures["visits"], figures["page_views"], figures["events"]) == (4, 5, 6)
    assert (figures["bounces"], figures["bounce_rate"]) == (3, 0.75)
    assert (figures["pages_per_visit"], figures["revenue"]) == (1.25, 12.5)


def test_a_custom_ranges_buckets_change_exactly_at_their_limits():
    def granularity(start, end):
        return queries.resolve_period("custom", start, end, now=NOW).granularity

    second = timedelta(seconds=1)
    # minutes: a span of at most 3 hours starting less than 2 days ago
    assert granularity(NOW - timedelta(hours=3), NOW) == "minute"
    assert granularity(NOW - timedelta(hours=3) - second, NOW) == "hour"
    start = NOW - timedelta(days=2)
    assert granularity(start + second, start + timedelta(hours=1)) == "minute"
    assert granularity(start, start + timedelta(hours=1)) == "hour"
    # hours: a span of at most 4 days starting less than 80 days ago
    assert granularity(NOW - timedelta(days=4), NOW) == "hour"
    assert granularity(NOW - timedelta(days=4) - second, NOW) == "day"
    start = NOW - timedelta(days=80)
    assert granularity(start + second, start + timedelta(days=1)) == "hour"
    assert granularity(start, start + timedelta(days=1)) == "day"


def test_the_series_is_dense_and_each_point_holds_what_the_test_sent_in_its_minute(store):
    minute = NOW.replace(second=0)
    store.apply(
        "shardId-000000000000",
        sequenced([
            make_event(session_id="a", timestamp=minute - timedelta(minutes=2, seconds=-5)),
            make_event(session_id="a", event_type="purchase", value=12.5,
                       timestamp=minute - timedelta(minutes=2, seconds=-9)),
            make_event(session_id="b", event_type="wishlist", timestamp=minute + timedelta(seconds=3)),
        ]),
    )  # fmt: skip
    series = queries.timeseries(
        store, "minute", minute - timedelta(minutes=2), minute + timedelta(seconds=59)
    )
    assert (series["granularity"], series["from"], series["to"]) == (
        "minute", "2026-11-24T10:29:00Z", "2026-11-24T10:31:59.999999Z",
    )  # fmt: skip
    assert series["points"] == [
        {
            "bucket": "2026-11-24T10:29",
            "start": "2026-11-24T10:29:00Z",
            "events": 2,
            "by_type": {"page_view": 1, "purchase": 1},
            "revenue": 12.5,
            "visitors": 1,
        },
        {
            "bucket": "2026-11-24T10:30",
            "start": "2026-11-24T10:30:00Z",
            "events": 0,
            "by_type": {},
            "revenue": 0,
            "visitors": 0,
        },
        {
            "bucket": "2026-11-24T10:31",
            "start": "2026-11-24T10:31:00Z",
            "events": 1,
            "by_type": {"custom": 1},
            "revenue": 0,
            "visitors": 1,
        },
    ]


def test_the_series_window_defaults_to_the_last_hour_48_hours_or_30_days(store):
    for granularity, points, first, last in (
        ("minute", 60, "2026-11-24T09:32:00Z", "2026-11-24T10:31:00Z"),
        ("hour", 48, "2026-11-22T11:00:00Z", "2026-11-24T10:00:00Z"),
        ("day", 30, "2026-10-26T00:00:00Z", "2026-11-24T00:00:00Z"),
    ):
        series = queries.timeseries(store, granularity, now=NOW)
        assert (len(series["points"]), series["from"]) == (points, first), granularity
        assert series["points"][-1]["start"] == last, granularity


def test_the_series_takes_up_to_1500_points_and_names_from_past_them(store):
    end = NOW.replace(second=0)
    widest = queries.timeseries(store, "minute", end - timedelta(minutes=1499), end)
    assert len(widest["points"]) == 1500
    with pytest.raises(RequestError) as error:
        queries.timeseries(store, "minute", end - timedelta(minutes=1500), end)
    assert (error.value.field, error.value.message) == (
        "from", "the range spans more than 1500 minutes",
    )  # fmt: skip
    with pytest.raises(RequestError) as error:
        queries.timeseries(store, "hour", end, end - timedelta(hours=1))
    assert (error.value.field, error.value.message) == ("from", "'from' is after 'to'")
    with pytest.raises(RequestError) as error:
        queries.timeseries(store, "week", now=NOW)
    assert (error.value.field, error.value.message) == (
        "granularity", "must be one of minute, hour, day",
    )  # fmt: skip


def test_right_nows_event_types_come_most_frequent_first(store):
    kinds = ["wishlist", "page_view", "share", "page_view", "share", "share"]
    store.apply(
        "shardId-000000000000",
        sequenced([
            make_event(session_id=f"s{i}", event_type=kind, timestamp=NOW - timedelta(minutes=2))
            for i, kind in enumerate(kinds)
        ]),
    )  # fmt: skip
    answer = queries.stats(store, queries.resolve_period("realtime", now=NOW), now=NOW)
    assert list(answer["events_by_type"].items()) == [
        ("share", 3),
        ("page_view", 2),
        ("wishlist", 1),
    ]


def test_a_funnel_over_days_counts_only_the_visits_of_those_days(store):
    day_before = NOW - timedelta(days=1)
    events = [make_event(session_id=f"old{i}", timestamp=day_before) for i in range(3)]
    events += [make_event(session_id="new", timestamp=NOW)]
    events += [make_event(session_id="new", event_type="add_to_cart", timestamp=NOW)]
    store.apply("shardId-000000000000", sequenced(events))

    def sessions(answer):
        return [step["sessions"] for step in answer["steps"]]

    assert sessions(queries.funnel(store)) == [4, 1, 0, 0]
    assert sessions(queries.funnel(store, NOW)) == [1, 1, 0, 0]  # from today on
    assert sessions(queries.funnel(store, None, day_before)) == [3, 0, 0, 0]  # up to yesterday
    assert sessions(queries.funnel(store, day_before, day_before)) == [3, 0, 0, 0]
    assert sessions(queries.funnel(store, NOW, NOW)) == [1, 1, 0, 0]


def test_a_funnel_asked_for_dates_says_its_days_and_for_times_counts_that_range(store):
    """``?from=2026-11-23`` is the contract's whole days, named in the answer; a time of day
    (or ``period``) is the exact range, as on the other read routes, never a day silently.
    Every answer names its range in one shape: the period, and its ends as instants."""
    day = NOW.date().isoformat()
    by_days = queries.funnel_requested(store, None, day, day)
    assert (by_days["period"], by_days["from"], by_days["to"], by_days["granularity"]) == (
        "custom",
        f"{day}T00:00:00Z",
        f"{day}T23:59:59.999999Z",
        "day",
    )
    all_time = queries.funnel_requested(store, None, None, None)
    assert (all_time["period"], all_time["from"]) == ("all", None)
    assert all_time.keys() == by_days.keys()
    open_end = queries.funnel_requested(store, None, day, None)
    assert open_end["from"] == f"{day}T00:00:00Z" and open_end["to"] > f"{day}T"  # now
    # a date as 'to' is that whole day on every read route, as here
    assert queries.parse_end(day) == NOW.replace(hour=23, minute=59, second=59, microsecond=999_999)
    assert queries.parse_end(f"{day}T10:00:00Z") == NOW.replace(
        hour=10, minute=0, second=0, microsecond=0
    )
    assert queries.parse_end(None) is None
    for field in ("to", "until"):
        with pytest.raises(RequestError) as refused:
            queries.parse_end("yesterday", *([field] if field != "to" else []))
        assert (refused.value.field, refused.value.message) == (
            field,
            "'yesterday' is not an ISO 8601 date or time",
        )
    exact = queries.funnel_requested(store, None, f"{day}T10:00:00Z", f"{day}T14:30:00Z")
    assert (exact["period"], exact["from"], exact["to"]) == (
        "custom",
        f"{day}T10:00:00Z",
        f"{day}T14:30:00Z",
    )
    # A date as 'to' beside a time as 'from' still counts that day, to its last moment.
    mixed = queries.funnel_requested(store, None, f"{day}T10:00:00Z", day)
    assert mixed["to"].startswith(f"{day}T23:59:59")
    compact = queries.funnel_requested(store, None, day.replace("-", ""), None)
    assert (compact["from"], compact["granularity"]) == (f"{day}T00:00:00Z", "day")
    for period, start, field in (("7d", day, "period"), (None, "yesterday", "from")):
        with pytest.raises(RequestError) as error:
            queries.funnel_requested(store, period, start, None)
        assert error.value.field == field


def test_the_dashboard_names_its_sections_when_asked_for_one_it_does_not_have():
    assert queries.parse_sections(None) == (
        "stats", "timeseries", "funnel", "pages", "breakdowns", "goals", "realtime",
    )  # fmt: skip
    assert queries.parse_sections(" funnel, stats,funnel ") == ("funnel", "stats")
    for raw in ("stats,weather", " , "):
        with pytest.raises(RequestError) as error:
            queries.parse_sections(raw)
        assert (error.value.field, error.value.message) == (
            "sections",
            "must be some of stats, timeseries, funnel, pages, breakdowns, goals, realtime",
        )


def test_goals_list_the_most_converted_first_up_to_the_limit_ten_by_default(store):
    converted = {f"goal{n:02d}": 12 - n for n in range(12)}  # goal00: 12 visits ... goal11: 1
    events = [make_event(session_id=f"v{i}") for i in range(40)]
    events += [
        make_event(session_id=f"v{i}", event_type=goal)
        for goal, visits in converted.items()
        for i in range(visits)
    ]
    store.apply("shardId-000000000000", sequenced(events))
    period = queries.resolve_period("7d", now=NOW)
    answer = queries.goals(store, period)
    assert (answer["visits"], answer["complete"]) == (40, False)
    assert answer["goals"][:2] == [
        {"goal": "goal00", "visits": 12, "conversion_rate": 0.3},
        {"goal": "goal01", "visits": 11, "conversion_rate": 0.275},
    ]
    assert [row["goal"] for row in answer["goals"]] == [f"goal{n:02d}" for n in range(10)]
    two = queries.goals(store, period, 2)
    assert ([row["goal"] for row in two["goals"]], two["complete"]) == (["goal00", "goal01"], False)
    every = queries.goals(store, period, 12)
    assert (len(every["goals"]), every["complete"]) == (12, True)


def test_the_dashboard_over_a_period_answers_only_the_sections_asked_each_as_sent(store):
    views = {"/a": 3, "/b": 2, "/c": 1}
    events = [make_event(session_id=f"{p}{i}", page=p) for p, n in views.items() for i in range(n)]
    events += [make_event(session_id="/a0", event_type="signup")]
    store.apply("shardId-000000000000", sequenced(events))
    period = queries.resolve_period("7d", now=NOW)
    answer = queries.dashboard(store, 2, period, now=NOW, sections=("pages", "goals", "timeseries"))
    assert set(answer) == {"period", "pages", "goals", "timeseries"}
    assert answer["period"] == {
        "period": "7d", "from": "2026-11-18T00:00:00Z", "to": "2026-11-24T10:31:00Z",
        "granularity": "day",
    }  # fmt: skip
    # the two most viewed of the week; no page left out has more views than the last listed
    assert answer["pages"] == {
        "pages": [{"page": "/a", "views": 3}, {"page": "/b", "views": 2}],
        "other_views": 1,
        "complete": False,
        "max_error": 2,
    }
    assert answer["goals"]["goals"] == [{"goal": "signup", "visits": 1, "conversion_rate": 0.1667}]
    series = answer["timeseries"]
    assert (series["granularity"], series["from"], series["to"]) == (
        "day", "2026-11-18T00:00:00Z", "2026-11-24T23:59:59.999999Z",
    )  # fmt: skip
    assert [point["events"] for point in series["points"]] == [0] * 6 + [7]
    widest = queries.dashboard(store, queries.MAX_TOP, period, now=NOW, sections=("pages",))
    assert len(widest["pages"]["pages"]) == 3 and widest["pages"]["complete"] is True
    one = queries.dashboard(store, 1, now=NOW, sections=("pages",))
    assert one["pages"]["pages"] == [{"page": "/a", "views": 3}]


def test_events_in_the_last_minute_weigh_the_previous_minute_by_its_share_still_inside(store):
    current = NOW.replace(second=0)
    events = [
        make_event(session_id=f"old{i}", timestamp=current - timedelta(seconds=30))
        for i in range(8)
    ]
    events += [make_event(session_id=f"new{i}", timestamp=current) for i in range(3)]
    store.apply("shardId-000000000000", sequenced(events))
    assert queries.events_last_minute(store, current) == 11
    assert queries.events_last_minute(store, current + timedelta(seconds=15)) == 9  # 3 + 8 * 0.75
    assert queries.events_last_minute(store, current + timedelta(seconds=45)) == 5  # 3 + 8 * 0.25
    assert queries.events_last_minute(store, current + timedelta(seconds=57)) == 3  # 3 + 0.4
    assert queries.events_last_minute(store, current + timedelta(seconds=59)) == 3
    assert queries.events_last_minute(store, current + timedelta(minutes=1)) == 3  # 0 + 3 * 1


def test_the_all_time_stats_answer_holds_every_figure_the_test_sent(store):
    events = [
        make_event(session_id="a", timestamp=NOW - timedelta(minutes=3)),
        make_event(
            session_id="a",
            event_type="purchase",
            value=20.0,
            timestamp=NOW - timedelta(minutes=2, seconds=-5),
        ),
        make_event(session_id="b", user_id="u2", timestamp=NOW - timedelta(seconds=20)),
        make_event(session_id="c", user_id="u3", timestamp=NOW - timedelta(days=1)),
    ]
    store.apply("shardId-000000000000", sequenced(events))
    answer = queries.stats(store, now=NOW)
    newest_first = sorted(events, key=lambda event: event.received_at, reverse=True)
    assert [event["event_id"] for event in answer.pop("recent_events")] == [
        event.event_id for event in newest_first
    ]
    assert answer == {
        "period": "all", "from": None, "to": "2026-11-24T10:31:00Z", "granularity": "minute",
        "total_events": 4,
        "events_by_type": {"page_view": 3, "purchase": 1},
        "events_by_type_complete": True,
        "sessions": 3, "visits": 3, "visitors": 3,  # u1 (one visit of two events), u2, u3
        "events": 4, "page_views": 3, "pages_per_visit": 1.0,
        "bounces": 3, "bounce_rate": 1.0,  # one page view each
        "visit_duration_s": 65, "avg_visit_duration_s": 21.7,  # a: 10:28:00 to 10:29:05
        "revenue": 20,
        "bots_excluded": 0,
        "visitors_now": 2,  # a and b in the last five minutes
        "events_last_minute": 1,  # b, at 10:30:40
        "updated_at": "2026-11-24T10:31:00Z",
    }  # fmt: skip


def test_a_periods_stats_list_more_than_ten_event_types_most_frequent_first(store):
    kinds = {f"custom{n:02d}": n + 1 for n in range(12)}
    store.apply(
        "shardId-000000000000",
        sequenced([
            make_event(session_id=f"{kind}-{i}", event_type=kind)
            for kind, count in kinds.items()
            for i in range(count)
        ]),
    )  # fmt: skip
    answer = queries.stats(store, queries.resolve_period("today", now=NOW), now=NOW)
    assert list(answer["events_by_type"].items()) == sorted(kinds.items(), key=lambda kv: -kv[1])
    assert answer["events_by_type_complete"] is True


def test_an_empty_stores_stats_are_zeros_not_errors(store):
    answer = queries.stats(store, now=NOW)
    assert {key: answer[key] for key in (
        "total_events", "events_by_type", "events_by_type_complete", "recent_events", "visits",
        "bounce_rate", "pages_per_visit", "avg_visit_duration_s", "visitors_now",
        "events_last_minute",
    )} == {
        "total_events": 0, "events_by_type": {}, "events_by_type_complete": True,
        "recent_events": [], "visits": 0, "bounce_rate": 0.0, "pages_per_visit": 0.0,
        "avg_visit_duration_s": 0.0, "visitors_now": 0, "events_last_minute": 0,
    }  # fmt: skip


def test_right_now_counts_the_visitors_of_the_last_five_minutes_and_lists_thirty(store):
    last = NOW.replace(second=0)
    events = [
        make_event(session_id=f"m{minutes}", user_id=f"u{minutes}",
                   timestamp=last - timedelta(minutes=minutes, seconds=-10))
        for minutes in (0, 1, 4, 5, 29, 30)
    ]  # fmt: skip
    store.apply("shardId-000000000000", sequenced(events))
    answer = queries.realtime(store, now=NOW + timedelta(seconds=30))
    assert answer["visitors_now"] == 3  # the minutes 10:31, 10:30 and 10:27; not 10:26
    assert answer["updated_at"] == "2026-11-24T10:31:30Z"
    minutes = answer["minutes"]
    assert len(minutes) == 30
    assert minutes[1] == {  # 10:03: nobody
        "bucket": "2026-11-24T10:03", "start": "2026-11-24T10:03:00Z", "visitors": 0, "events": 0,
    }  # fmt: skip
    # the oldest minute listed is 10:02 (10:01, thirty minutes before now, is outside)
    assert minutes[0] == {
        "bucket": "2026-11-24T10:02", "start": "2026-11-24T10:02:00Z", "visitors": 1, "events": 1,
    }  # fmt: skip
    assert minutes[-1] == {
        "bucket": "2026-11-24T10:31", "start": "2026-11-24T10:31:00Z", "visitors": 1, "events": 1,
    }  # fmt: skip
    assert [m["events"] for m in minutes].count(1) == 5 and sum(m["events"] for m in minutes) == 5


def test_a_query_time_is_read_as_iso_8601_in_utc_within_its_years():
    def parsed(value):
        return queries.parse_time(value, "from")

    assert parsed(None) is None and parsed("") is None
    assert parsed("2026-11-24T10:31:00Z") == NOW
    assert parsed("2026-11-24t10:31:00z") == NOW  # (RFC 3339 allows either case)
    assert parsed("2026-11-24T10:31:00") == NOW  # no zone: UTC
    assert parsed("2026-11-24T12:31:00+02:00") == NOW
    assert parsed("2026-11-24T12:31:00+02:00").tzinfo is UTC
    assert parsed("2026-11-24") == datetime(2026, 11, 24, tzinfo=UTC)
    assert parsed("1970-01-01T00:00:00Z").year == 1970
    assert parsed("2999-12-31T23:59:59Z").year == 2999

    def refusal(value):
        with pytest.raises(RequestError) as error:
            parsed(value)
        assert error.value.field == "from"
        return error.value.message

    assert refusal("1969-12-31T23:59:59Z") == (
        "'1969-12-31T23:59:59Z' is outside the years 1970 to 2999"
    )
    assert refusal("3000-01-01") == "'3000-01-01' is outside the years 1970 to 2999"
    assert refusal("yesterday") == "'yesterday' is not an ISO 8601 date or time"
    sixty_four = "2026-11-24T" + "9" * 53
    assert refusal(sixty_four) == f"'{sixty_four}' is not an ISO 8601 date or time"
    long = "x" * 65
    assert refusal(long) == f"'{'x' * 61}...' is not an ISO 8601 date or time"


def test_a_query_time_without_a_zone_is_utc_whatever_the_machines_zone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with machine_zone(monkeypatch):
        assert queries.parse_time("2026-11-24T10:31:00", "to") == NOW


def test_an_all_time_breakdown_lists_up_to_ten_values_by_default_and_names_a_bad_dimension(
    store,
):
    countries = [f"C{n:02d}" for n in range(11)]
    store.apply(
        "shardId-000000000000",
        sequenced([
            make_event(session_id=f"{country}-{i}", location=Location(country=country),
                       timestamp=NOW - timedelta(days=3))
            for rank, country in enumerate(countries)
            for i in range(12 - rank)
        ]),
    )  # fmt: skip
    all_time = queries.resolve_period("all", now=NOW)
    found = queries.breakdown(store, "country", all_time)
    assert [(row["value"], row["count"]) for row in found["rows"]] == [
        (country, 12 - rank) for rank, country in enumerate(countries[:10])
    ]
    assert (found["other"], found["complete"]) == (2, False)
    assert found["max_error"] == 3  # a country left out has at most the tenth's visits
    assert len(queries.breakdown(store, "country", all_time, 1)["rows"]) == 1
    assert len(queries.breakdown(store, "country", all_time, 100)["rows"]) == 11
    for limit in (0, 101):
        with pytest.raises(RequestError) as error:
            queries.breakdown(store, "country", all_time, limit)
        assert (error.value.field, error.value.message) == ("limit", "must be between 1 and 100")
    with pytest.raises(RequestError) as error:
        queries.breakdown(store, "weather", all_time)
    assert (error.value.field, error.value.message) == (
        "dimension",
        "must be one of page, event_type, entry_page, exit_page, goal, source, referrer, "
        "channel, utm_medium, utm_campaign, device_type, browser, os, country, city",
    )


def test_a_custom_range_of_exactly_a_day_not_on_day_bounds_is_read_in_hours():
    period = queries.resolve_period(
        "custom", NOW - timedelta(days=1, minutes=31), NOW - timedelta(minutes=31), now=NOW
    )
    assert period.breakdown_range("0000-00-00T00")[0] == "hour"
    longer = queries.resolve_period(
        "custom", NOW - timedelta(days=1, minutes=32), NOW - timedelta(minutes=31), now=NOW
    )
    assert longer.breakdown_range("0000-00-00T00")[0] == "day"


def test_the_dashboard_of_a_past_range_reads_every_section_over_that_range_alone(store):
    start = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # yesterday 09:00 to 11:00: minutes
    kinds = ["page_view"] * 6 + ["signup", "share", "share", "invite"] * 2
    inside = [
        make_event(session_id=f"in{i}", user_id=f"in{i}", page=f"/p{i % 3}", event_type=kind,
                   location=Location(country=["FR", "DE", "IT"][i % 3]),
                   timestamp=start + timedelta(minutes=8 * i))
        for i, kind in enumerate(kinds)
    ]  # fmt: skip
    outside = [  # today, a minute ago: only "right now" may see them
        make_event(session_id=f"out{i}", user_id=f"out{i}", page="/elsewhere", event_type=kind,
                   location=Location(country="US"), timestamp=NOW - timedelta(minutes=1))
        for i in range(6)
        for kind in ("page_view", "signup")
    ]  # fmt: skip
    store.apply("shardId-000000000000", sequenced(inside + outside))
    period = queries.resolve_period("custom", start, start + timedelta(hours=2), now=NOW)
    assert period.granularity == "minute"
    answer = queries.dashboard(store, 2, period, now=NOW)
    assert answer["stats"]["total_events"] == 14
    assert answer["stats"]["updated_at"] == "2026-11-24T10:31:00Z"
    series = answer["timeseries"]
    assert (series["from"], series["to"], len(series["points"])) == (
        "2026-11-23T09:00:00Z", "2026-11-23T11:00:59.999999Z", 121,
    )  # fmt: skip
    assert sum(point["events"] for point in series["points"]) == 14
    # two page views each; ties go by name
    assert [row["page"] for row in answer["pages"]["pages"]] == ["/p0", "/p1"]
    # visits: FR 5, DE 5, IT 4
    assert [row["value"] for row in answer["breakdowns"]["country"]["rows"]] == ["DE", "FR"]
    # share 4 visits, invite 2 and signup 2 (a tie: invite first by name)
    assert [(row["goal"], row["visits"]) for row in answer["goals"]["goals"]] == [
        ("share", 4), ("invite", 2),
    ]  # fmt: skip
    assert answer["realtime"]["visitors_now"] == 6
    assert answer["realtime"]["updated_at"] == "2026-11-24T10:31:00Z"


def test_a_series_may_be_one_bucket_long(store):
    series = queries.timeseries(store, "hour", NOW, NOW)
    assert [point["start"] for point in series["points"]] == ["2026-11-24T10:00:00Z"]


def test_the_feed_of_the_stats_is_the_newest_fifty_across_shards(store):
    for shard in ("shardId-000000000000", "shardId-000000000001"):
        store.apply(shard, sequenced([
            make_event(session_id=f"{shard}-{i}", timestamp=NOW - timedelta(seconds=i))
            for i in range(40)
        ]))  # fmt: skip
    assert len(queries.stats(store, now=NOW)["recent_events"]) == 50


def test_without_a_time_given_the_answers_are_of_now_in_utc_whatever_the_machines_zone(
    store, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.apply("shardId-000000000000", sequenced([make_event(timestamp=datetime.now(UTC))]))
    with machine_zone(monkeypatch):
        assert queries.events_last_minute(store) == 1
        assert queries.stats(store)["updated_at"].endswith("Z")
        live = queries.realtime(store)
        assert (live["visitors_now"], live["updated_at"][-1]) == (1, "Z")
        assert queries.timeseries(store, "minute")["to"].endswith("Z")


def test_funnel_rates_are_rounded_to_four_places(store):
    events = [make_event(session_id=f"v{i}") for i in range(3)]
    events.append(make_event(session_id="v0", event_type="add_to_cart"))
    store.apply("shardId-000000000000", sequenced(events))
    steps = queries.funnel(store)["steps"]
    assert (steps[1]["rate_from_previous"], steps[1]["rate_from_start"]) == (0.3333, 0.3333)


def test_a_funnel_date_outside_the_years_names_its_end(store):
    for start, end, field in (("1969-12-31", None, "from"), (None, "3000-01-01", "to")):
        with pytest.raises(RequestError) as refused:
            queries.funnel_requested(store, None, start, end)
        assert refused.value.field == field, (start, end)
        assert "is outside the years 1970 to 2999" in refused.value.message


def test_a_funnel_without_a_range_or_an_end_reads_to_the_clock_given_or_the_machines_in_utc(
    store, monkeypatch
):
    assert queries.funnel(store, now=NOW)["to"] == "2026-11-24T10:31:00Z"
    assert queries.funnel(store, NOW - timedelta(days=1), now=NOW)["to"] == "2026-11-24T10:31:00Z"
    with machine_zone(monkeypatch):
        before = datetime.now(UTC)
        answers = [queries.funnel(store), queries.funnel(store, NOW)]
        after = datetime.now(UTC)
    for answer in answers:
        assert before <= datetime.fromisoformat(answer["to"]) <= after, answer["to"]
