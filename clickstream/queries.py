"""Read side: the API's answers, from the aggregate store in O(time buckets x shards) reads,
never by scanning events. Parameters are checked here; the store owns the table."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from clickstream.aggregates import DIMENSIONS, RECENT_EVENTS_KEPT, day_key, hour_key, minute_key
from clickstream.errors import RequestError
from clickstream.hll import HyperLogLog
from clickstream.schema import FUNNEL_STEPS, STANDARD_EVENT_TYPES, iso_time, page_path
from clickstream.store import Counters, DynamoAggregateStore

Granularity = Literal["minute", "hour", "day"]
GRANULARITY_STEP = {
    "minute": timedelta(minutes=1),
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
}
DEFAULT_WINDOW = {
    "minute": timedelta(minutes=60),
    "hour": timedelta(hours=48),
    "day": timedelta(days=30),
}
MAX_POINTS = 1500
MAX_TOP = 100  # the top-N summaries track up to 192 values per period
EVENT_TYPES_SHOWN = 50
MIN_YEAR, MAX_YEAR = 1970, 2999  # bounds of a query time (far enough, no date overflow)
_BUCKET_KEY = {"minute": minute_key, "hour": hour_key, "day": day_key}
PERIODS = ("all", "realtime", "today", "7d", "30d", "custom")
REALTIME_WINDOW = timedelta(minutes=30)
HOURLY_BREAKDOWN_SPAN = timedelta(hours=24)  # longer: days (fewer summaries read)
VISITORS_NOW_MINUTES = 5  # "right now": the current minute and the four before it
# What a breakdown row counts, per dimension.
BREAKDOWN_METRIC = {"page": "views", "event_type": "events", "goal": "visits"}
DASHBOARD_BREAKDOWNS = (
    "channel", "source", "referrer", "utm_campaign", "device_type", "browser", "os",
    "country", "city", "entry_page", "exit_page", "goal",
)  # fmt: skip


def parse_time(value: str | None, field: str) -> datetime | None:
    if not value:
        return None
    shown = value if len(value) <= 64 else value[:61] + "..."
    try:
        parsed = iso_time(value)
        parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise RequestError(field, f"'{shown}' is not an ISO 8601 date or time") from None
    if not MIN_YEAR <= parsed.year <= MAX_YEAR:
        raise RequestError(field, f"'{shown}' is outside the years {MIN_YEAR} to {MAX_YEAR}")
    return parsed


def parse_end(value: str | None, field: str = "to") -> datetime | None:
    """A range's end as every route reads it: a time as sent; a date (``2026-12-02``) as that
    whole day, to its last instant (read as its first, ``from=to=`` one date was no time)."""
    end = parse_time(value, field)
    if end is not None and value is not None and _is_date(value):
        return _last_instant(end, "day")
    return end


def _last_instant(ts: datetime, granularity: str) -> datetime:
    """The last instant of the minute, hour or day holding ``ts``: a range's end as the read
    routes name it."""
    return _floor(ts, granularity) + GRANULARITY_STEP[granularity] - timedelta(microseconds=1)


def _floor(ts: datetime, granularity: str) -> datetime:
    if granularity == "minute":
        return ts.replace(second=0, microsecond=0)
    if granularity == "hour":
        return ts.replace(minute=0, second=0, microsecond=0)
    return ts.replace(hour=0, minute=0, second=0, microsecond=0)


def _iso(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Period:
    """A time range as the read routes take it: a named period or a custom ``from``/``to``,
    with the bucket size its series and counters are read at. ``start`` None: all time."""

    name: str
    start: datetime | None
    end: datetime
    granularity: str

    def breakdown_range(self, hours_since: str | None) -> tuple[str, str, str]:
        """(resolution, first, last) of the breakdowns' summaries: the hours of "right now"
        and of a custom range of up to a day that is not whole days (a day would cover more
        than it asks), where hour summaries are kept (``hours_since``, the store's; 90 days);
        else days, which for pages, event types and entry pages are also exact."""
        if self.start is None:
            return "day", "0000-00-00", day_key(self.end)
        first, last = hour_key(self.start), hour_key(self.end)
        whole_days = self.start == _floor(self.start, "day") and (
            self.name != "custom" or (self.end.hour, self.end.minute) == (23, 59)
        )
        if (
            self.name in ("realtime", "custom")
            and self.granularity != "day"  # (a custom range older than hours are kept)
            and not whole_days
            and self.end - self.start <= HOURLY_BREAKDOWN_SPAN
            and hours_since is not None
            and first >= hours_since
        ):
            return "hour", first, last
        return "day", day_key(self.start), day_key(self.end)

    @property
    def buckets(self) -> tuple[str, str, str]:
        """(granularity, first bucket, last bucket) of its counters and visitor sketches."""
        if self.start is None:
            return "all", "all", "all"
        key_of = _BUCKET_KEY[self.granularity]
        return self.granularity, key_of(self.start), key_of(self.end)

    def as_json(self) -> dict[str, Any]:
        return {
            "period": self.name,
            "from": _iso(self.start) if self.start else None,
            "to": _iso(self.end),
            "granularity": self.granularity,
        }


def _custom_granularity(start: datetime, end: datetime, now: datetime) -> str:
    """The finest buckets that cover the range and are still kept (minutes 3 days, hours
    90) without too many points."""
    span, age = end - start, now - start
    if span <= timedelta(hours=3) and age < timedelta(days=2):
        return "minute"
    if span <= timedelta(days=4) and age < timedelta(days=80):
        return "hour"
    return "day"


def resolve_period(
    name: str | None,
    start: datetime | None = None,
    end: datetime | None = None,
    *,
    now: datetime | None = None,
) -> Period:
    """``period`` = all | realtime (30 min) | today | 7d | 30d | custom (``from``, ``to``).
    ``from``/``to`` alone mean custom; a named period with them is an error."""
    now = now or datetime.now(UTC)
    if name is None:
        name = "custom" if start or end else "all"
    if name not in PERIODS:
        raise RequestError("period", f"must be one of {', '.join(PERIODS)}")
    if name != "custom" and (start or end):
        raise RequestError("period", "'from' and 'to' go with period=custom only")
    today = _floor(now, "day")
    if name == "all":
        return Period(name, None, now, "minute")
    if name == "realtime":
        return Period(
            name, _floor(now, "minute") - REALTIME_WINDOW + timedelta(minutes=1), now, "minute"
        )
    if name == "today":
        return Period(name, today, now, "hour")
    if name in ("7d", "30d"):
        return Period(name, today - timedelta(days=int(name[:-1]) - 1), now, "day")
    if start is None:
        raise RequestError("from", "period=custom needs 'from'")
    end = end or now
    if start > end:
        raise RequestError("from", "'from' is after 'to'")
    return Period(name, start, end, _custom_granularity(start, end, now))


def _ratio(part: float, whole: float, digits: int = 4) -> float:
    return round(part / whole, digits) if whole else 0.0


def period_counters(store: DynamoAggregateStore, period: Period) -> Counters:
    """The period's counters summed: the all-time bucket, or its buckets at its granularity."""
    if period.start is None:
        return store.total("all", "all", "all")
    granularity, low, high = period.buckets
    return store.total(granularity, low, high)


def headline(store: DynamoAggregateStore, period: Period) -> dict[str, Any]:
    """The numbers a site owner reads first, over the period. Unique visitors come from
    HyperLogLog sketches (0.81% standard error); every other number is exact."""
    return _headline(store, period)[0]


def _headline(store: DynamoAggregateStore, period: Period) -> tuple[dict[str, Any], Counters]:
    granularity, low, high = period.buckets
    with store.snapshot():
        counters = period_counters(store, period)
        visitors = store.unique_visitors(granularity, low, high)
    visits = counters.get("sessions")
    page_views = counters.get("type:page_view")
    return {
        "visitors": visitors,
        "visits": visits,
        "page_views": page_views,
        "events": counters.get("events"),
        "bounces": counters.get("bounces"),
        "bounce_rate": _ratio(counters.get("bounces"), visits),
        "avg_visit_duration_s": _ratio(counters.get("duration_s"), visits, 1),
        "visit_duration_s": counters.get("duration_s"),  # all visits together
        "pages_per_visit": _ratio(page_views, visits, 2),
        "revenue": counters.get("revenue"),
        "bots_excluded": counters.get("bots"),
    }, counters


def realtime(store: DynamoAggregateStore, *, now: datetime | None = None) -> dict[str, Any]:
    """Visitors right now (the last five minute buckets) and per minute over the last 30."""
    now = now or datetime.now(UTC)
    last = _floor(now, "minute")
    first = last - REALTIME_WINDOW + timedelta(minutes=1)
    with store.snapshot():
        sketches = store.visitor_sketches("minute", minute_key(first), minute_key(last))
        counters = store.counters("minute", minute_key(first), minute_key(last))
    now_union = HyperLogLog()
    minutes = []
    cursor = first
    while cursor <= last:
        bucket = minute_key(cursor)
        sketch = sketches.get(bucket)
        if sketch is not None and cursor > last - timedelta(minutes=VISITORS_NOW_MINUTES):
            now_union.merge(sketch)
        minutes.append(
            {
                "bucket": bucket,
                "start": _iso(cursor),
                "visitors": sketch.count() if sketch else 0,
                "events": counters.get(bucket, Counters()).get("events"),
            }
        )
        cursor += timedelta(minutes=1)
    return {"visitors_now": now_union.count(), "minutes": minutes, "updated_at": _iso(now)}


def breakdown(
    store: DynamoAggregateStore, dimension: str, period: Period, limit: int = 10
) -> dict[str, Any]:
    """The top ``limit`` values of a dimension over the period's hours or days, with an
    "other" row.
    Visit dimensions count visits; pages count views; goals count converted visits."""
    if dimension not in DIMENSIONS:
        raise RequestError("dimension", f"must be one of {', '.join(DIMENSIONS)}")
    if not 1 <= limit <= MAX_TOP:
        raise RequestError("limit", f"must be between 1 and {MAX_TOP}")
    resolution, low, high = period.breakdown_range(store.hours_kept_since())
    with store.snapshot():
        all_time = period.start is None and DIMENSIONS[dimension].all_time
        top = (
            store.top(dimension, None, None, limit)
            if all_time
            else store.top(dimension, low, high, limit)
        )
    shown = sum(row.count for row in top.rows)
    listed_floor = top.rows[-1].count if len(top.rows) == limit else 0
    return {
        "dimension": dimension,
        "metric": BREAKDOWN_METRIC.get(dimension, "visits"),
        **period.as_json(),
        "resolution": resolution,
        **_covered(period, resolution),
        "rows": [{"value": row.value, "count": row.count} for row in top.rows],
        "other": max(0, top.total - shown),
        "total": top.total,
        "complete": shown == top.total,
        "max_error": max(top.max_error, listed_floor),
    }


def _covered(period: Period, resolution: str) -> dict[str, Any]:
    """The span the rows cover: the whole hours or days the period touches."""
    step = timedelta(hours=1) if resolution == "hour" else timedelta(days=1)
    return {
        "covers_from": _iso(_floor(period.start, resolution)) if period.start else None,
        "covers_to": _iso(_floor(period.end, resolution) + step),
    }


def goals(store: DynamoAggregateStore, period: Period, limit: int = 10) -> dict[str, Any]:
    """Each goal's converted visits and conversion rate (of the period's visits)."""
    found = breakdown(store, "goal", period, limit)
    with store.snapshot():
        visits = period_counters(store, period).get("sessions")  # no visitor sketches needed
    return {
        **period.as_json(),
        "visits": visits,
        "goals": [
            {
                "goal": row["value"],
                "visits": row["count"],
                "conversion_rate": _ratio(row["count"], visits),
            }
            for row in found["rows"]
        ],
        "complete": found["complete"],
    }


def _counts(counters: Counters) -> dict[str, Any]:
    return {
        "events": counters.get("events"),
        "by_type": counters.by_prefix("type:"),
        "revenue": counters.get("revenue"),
    }


def timeseries(
    store: DynamoAggregateStore,
    granularity: str,
    start: datetime | None = None,
    end: datetime | None = None,
    *,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Dense series of bucket counts between ``start`` and ``end`` (inclusive buckets). Custom
    event types are counted together as ``custom`` (their names: the event_type breakdown)."""
    if granularity not in GRANULARITY_STEP:
        raise RequestError("granularity", "must be one of minute, hour, day")
    step = GRANULARITY_STEP[granularity]
    end = _floor(end or now or datetime.now(UTC), granularity)
    start = _floor(start or end - DEFAULT_WINDOW[granularity] + step, granularity)
    if start > end:
        raise RequestError("from", "'from' is after 'to'")
    if (end - start) / step >= MAX_POINTS:
        raise RequestError("from", f"the range spans more than {MAX_POINTS} {granularity}s")
    key_of = _BUCKET_KEY[granularity]
    with store.snapshot():
        found = store.counters(granularity, key_of(start), key_of(end))
        visitors = store.visitor_sketches(granularity, key_of(start), key_of(end))
    points = []
    cursor = start
    while cursor <= end:
        bucket = key_of(cursor)
        sketch = visitors.get(bucket)
        points.append(
            {
                "bucket": bucket,
                "start": _iso(cursor),
                **_counts(found.get(bucket, Counters())),
                "visitors": sketch.count() if sketch else 0,
            }
        )
        cursor += step
    # The range the buckets cover, named as every read route names one
    covered_to = _last_instant(end, granularity)
    return {
        "granularity": granularity,
        "from": _iso(start),
        "to": _iso(covered_to),
        "points": points,
    }


def events_last_minute(store: DynamoAggregateStore, now: datetime | None = None) -> int:
    """Events in the trailing 60 s, from the current and previous minute buckets (the older
    bucket weighted by how much of it is still inside the window)."""
    now = now or datetime.now(UTC)
    current = _floor(now, "minute")
    previous = current - timedelta(minutes=1)
    found = store.counters("minute", minute_key(previous), minute_key(current))
    in_window = 1 - (now - current).total_seconds() / 60
    older = found.get(minute_key(previous), Counters()).get("events")
    newer = found.get(minute_key(current), Counters()).get("events")
    return round(newer + older * in_window)


def event_types(store: DynamoAggregateStore, limit: int = EVENT_TYPES_SHOWN) -> dict[str, Any]:
    """Every type's exact count while there are few; the most frequent ones past that."""
    top = store.top("event_type", None, None, limit)
    counts = {row.value: row.count for row in top.rows}
    return {"by_type": counts, "complete": sum(counts.values()) == top.total}


def stats(
    store: DynamoAggregateStore, period: Period | None = None, *, now: datetime | None = None
) -> dict[str, Any]:
    """Totals, headline measures, the newest events. All time unless a period is given."""
    now = now or datetime.now(UTC)
    period = period or resolve_period("all", now=now)
    with store.snapshot():
        measures, counters = _headline(store, period)
        types = (
            event_types(store)
            if period.start is None
            else _types_over(breakdown(store, "event_type", period, EVENT_TYPES_SHOWN), counters)
        )
        return {
            **period.as_json(),
            "total_events": measures["events"],
            "events_by_type": types["by_type"],
            "events_by_type_complete": types["complete"],
            "recent_events": store.recent(RECENT_EVENTS_KEPT),
            "sessions": measures["visits"],
            **measures,
            "visitors_now": realtime(store, now=now)["visitors_now"],
            "events_last_minute": events_last_minute(store, now),
            "updated_at": _iso(now),
        }


def _types_over(found: dict[str, Any], counters: Counters) -> dict[str, Any]:
    """Events per type over a period. Read in whole hours, the standard types take their
    exact counts over the period itself from its bucket counters, so that they agree with
    the period's other figures; custom types are the hours'."""
    by_type = {row["value"]: row["count"] for row in found["rows"]}
    if found["resolution"] == "hour":
        for name in STANDARD_EVENT_TYPES:
            by_type[name] = counters.get(f"type:{name}")
        by_type = dict(sorted(by_type.items(), key=lambda kv: -kv[1])[:EVENT_TYPES_SHOWN])
        by_type = {name: count for name, count in by_type.items() if count > 0}
    return {**found, "by_type": by_type}


def funnel(
    store: DynamoAggregateStore,
    start_day: datetime | None = None,
    end_day: datetime | None = None,
    *,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Distinct sessions reaching each step, all time or summed over whole days. The answer
    names its range as every read route does: the first day's first instant (null: from the
    start) and the last day's last, or now, with ``granularity`` day."""
    now = now or datetime.now(UTC)
    if start_day is None and end_day is None:
        return funnel_for(store, resolve_period("all", now=now))
    low = day_key(start_day) if start_day else "0000-00-00"
    high = day_key(end_day or now)
    if low > high:
        raise RequestError("from", "'from' is after 'to'")
    with store.snapshot():
        counters = store.total("day", low, high)
    first = _floor(start_day, "day") if start_day else None
    last = _last_instant(end_day, "day") if end_day else now
    return {
        "period": "custom",
        "from": _iso(first) if first else None,
        "to": _iso(last),
        "granularity": "day",
        **_funnel_steps(counters),
    }


def funnel_requested(
    store: DynamoAggregateStore, period: str | None, start: str | None, end: str | None
) -> dict[str, Any]:
    """``GET /funnel``: ``from``/``to`` as dates are the contract's whole days; with a time of
    day (or with ``period``) they are that exact range, as on the other read routes."""
    if not period and all(_is_date(value) for value in (start, end) if value):
        return funnel(store, parse_time(start, "from"), parse_time(end, "to"))
    return funnel_for(store, resolve_period(period, parse_time(start, "from"), parse_end(end)))


def _is_date(value: str) -> bool:
    """``2026-12-02`` (or ``20261202``), not ``2026-12-02T10:00``."""
    try:
        date.fromisoformat(value.strip())
    except ValueError:
        return False
    return True


def _funnel_steps(counters: Counters) -> dict[str, Any]:
    sessions = counters.get("sessions")
    steps: list[dict[str, Any]] = []
    first = previous = None
    for step in FUNNEL_STEPS:
        count = counters.get(f"funnel:{step}")
        first = count if first is None else first
        steps.append(
            {
                "step": step,
                "sessions": count,
                "rate_from_previous": _rate(count, previous if previous is not None else count),
                "rate_from_start": _rate(count, first),
            }
        )
        previous = count
    purchases = steps[-1]["sessions"]
    return {"steps": steps, "sessions": sessions, "conversion_rate": _rate(purchases, sessions)}


def _rate(part: float, whole: float) -> float:
    return round(part / whole, 4) if whole else 0.0


def top_pages(store: DynamoAggregateStore, limit: int = 10) -> dict[str, Any]:
    """The most viewed pages of all time, each count exact; ``complete`` when no other page
    has a view, else ``other_views`` holds the rest and ``max_error`` bounds any page left
    out."""
    if not 1 <= limit <= MAX_TOP:
        raise RequestError("limit", f"must be between 1 and {MAX_TOP}")
    with store.snapshot():
        top = store.top("page", None, None, limit)
    shown = sum(row.count for row in top.rows)
    listed_floor = top.rows[-1].count if len(top.rows) == limit else 0
    return {
        "pages": [{"page": row.value, "views": row.count} for row in top.rows],
        "other_views": max(0, top.total - shown),
        "complete": shown == top.total,
        # No page left out has more views than this (the summaries' error bound).
        "max_error": max(top.max_error, listed_floor),
    }


def page_views(store: DynamoAggregateStore, page: str) -> dict[str, Any]:
    path = page_path(page, None) or "/"
    return {
        "page": path,
        "page_views": store.dimension_count("page", path, "0000-00-00", "9999-99-99"),
    }


def funnel_for(store: DynamoAggregateStore, period: Period) -> dict[str, Any]:
    """The funnel over a period: distinct visits that reached each step."""
    with store.snapshot():
        counters = period_counters(store, period)
    return {**period.as_json(), **_funnel_steps(counters)}


DASHBOARD_SECTIONS = ("stats", "timeseries", "funnel", "pages", "breakdowns", "goals", "realtime")


def parse_sections(raw: str | None) -> tuple[str, ...]:
    """``sections=stats,timeseries``: the dashboard sections to answer (all when absent)."""
    if not raw:
        return DASHBOARD_SECTIONS
    wanted = tuple(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))
    unknown = [name for name in wanted if name not in DASHBOARD_SECTIONS]
    if unknown or not wanted:
        raise RequestError("sections", f"must be some of {', '.join(DASHBOARD_SECTIONS)}")
    return wanted


def dashboard(
    store: DynamoAggregateStore,
    pages_limit: int = 10,
    period: Period | None = None,
    *,
    now: datetime | None = None,
    sections: tuple[str, ...] = DASHBOARD_SECTIONS,
) -> dict[str, Any]:
    """Everything the dashboard shows for a period, in one answer from one view of the store
    (one request per poll; the page asks for the slow-moving sections less often). A section
    whose reads failed says so, and the others stand."""
    from botocore.exceptions import BotoCoreError, ClientError

    if not 1 <= pages_limit <= MAX_TOP:
        raise RequestError("limit", f"must be between 1 and {MAX_TOP}")
    now = now or datetime.now(UTC)
    period = period or resolve_period("all", now=now)
    series_start = None if period.start is None else _floor(period.start, period.granularity)
    readers = {
        "stats": lambda: stats(store, period, now=now),
        "timeseries": lambda: timeseries(
            store, period.granularity, series_start, period.end, now=now
        ),
        "funnel": lambda: funnel_for(store, period),
        "pages": lambda: (
            top_pages(store, pages_limit)
            if period.start is None
            else _pages_of(breakdown(store, "page", period, pages_limit))
        ),
        "breakdowns": lambda: {
            dimension: breakdown(store, dimension, period, pages_limit)
            for dimension in DASHBOARD_BREAKDOWNS
        },
        "goals": lambda: goals(store, period, pages_limit),
        "realtime": lambda: realtime(store, now=now),
    }
    answer: dict[str, Any] = {"period": period.as_json()}
    with store.snapshot():
        for name in sections:
            read = readers[name]
            try:
                answer[name] = read()
            except (BotoCoreError, ClientError) as exc:
                answer[name] = {"error": f"the aggregates could not be read ({exc})", "status": 503}
    return answer


def _pages_of(found: dict[str, Any]) -> dict[str, Any]:
    return {
        "pages": [{"page": row["value"], "views": row["count"]} for row in found["rows"]],
        "other_views": found["other"],
        "complete": found["complete"],
        "max_error": found["max_error"],
    }
