"""Read side: the API's answers, from the aggregate store in O(time buckets x shards) reads,
never by scanning events. Parameters are checked here; the store owns the table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from clickstream.aggregates import RECENT_EVENTS_KEPT, day_key, hour_key, minute_key
from clickstream.schema import FUNNEL_STEPS, page_path
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


class QueryError(ValueError):
    """A read request with a bad parameter (answered 400)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def parse_time(value: str | None, field: str) -> datetime | None:
    if not value:
        return None
    shown = value if len(value) <= 64 else value[:61] + "..."
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise QueryError(field, f"'{shown}' is not an ISO 8601 date or time") from None
    if not MIN_YEAR <= parsed.year <= MAX_YEAR:
        raise QueryError(field, f"'{shown}' is outside the years {MIN_YEAR} to {MAX_YEAR}")
    return parsed


def _floor(ts: datetime, granularity: str) -> datetime:
    if granularity == "minute":
        return ts.replace(second=0, microsecond=0)
    if granularity == "hour":
        return ts.replace(minute=0, second=0, microsecond=0)
    return ts.replace(hour=0, minute=0, second=0, microsecond=0)


def _iso(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")


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
        raise QueryError("granularity", "must be one of minute, hour, day")
    step = GRANULARITY_STEP[granularity]
    end = _floor(end or now or datetime.now(UTC), granularity)
    start = _floor(start or end - DEFAULT_WINDOW[granularity] + step, granularity)
    if start > end:
        raise QueryError("from", "'from' is after 'to'")
    if (end - start) / step >= MAX_POINTS:
        raise QueryError("from", f"the range spans more than {MAX_POINTS} {granularity}s")
    key_of = _BUCKET_KEY[granularity]
    with store.snapshot():
        found = store.counters(granularity, key_of(start), key_of(end))
    points = []
    cursor = start
    while cursor <= end:
        bucket = key_of(cursor)
        points.append(
            {"bucket": bucket, "start": _iso(cursor), **_counts(found.get(bucket, Counters()))}
        )
        cursor += step
    return {"granularity": granularity, "from": _iso(start), "to": _iso(end), "points": points}


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


def stats(store: DynamoAggregateStore, *, now: datetime | None = None) -> dict[str, Any]:
    with store.snapshot():
        total = store.total("all", "all", "all")
        types = event_types(store)
        return {
            "total_events": total.get("events"),
            "events_by_type": types["by_type"],
            "events_by_type_complete": types["complete"],
            "recent_events": store.recent(RECENT_EVENTS_KEPT),
            "sessions": total.get("sessions"),
            "page_views": total.get("type:page_view"),
            "revenue": total.get("revenue"),
            "bounces": total.get("bounces"),
            "events_last_minute": events_last_minute(store, now),
            "updated_at": _iso(now or datetime.now(UTC)),
        }


def funnel(
    store: DynamoAggregateStore, start_day: datetime | None = None, end_day: datetime | None = None
) -> dict[str, Any]:
    """Distinct sessions reaching each step (all time, or summed over a day range)."""
    if start_day is None and end_day is None:
        with store.snapshot():
            counters = store.total("all", "all", "all")
    else:
        low = day_key(start_day) if start_day else "0000-00-00"
        high = day_key(end_day) if end_day else "9999-99-99"
        if low > high:
            raise QueryError("from", "'from' is after 'to'")
        with store.snapshot():
            counters = store.total("day", low, high)
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
        raise QueryError("limit", f"must be between 1 and {MAX_TOP}")
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


def dashboard(
    store: DynamoAggregateStore, pages_limit: int = 10, *, now: datetime | None = None
) -> dict[str, Any]:
    """Everything the dashboard shows, in one answer from one view of the store (one request
    per poll instead of four). A section whose reads failed says so, and the others stand."""
    from botocore.exceptions import BotoCoreError, ClientError

    if not 1 <= pages_limit <= MAX_TOP:
        raise QueryError("limit", f"must be between 1 and {MAX_TOP}")
    now = now or datetime.now(UTC)
    sections = {
        "stats": lambda: stats(store, now=now),
        "timeseries": lambda: timeseries(store, "minute", now=now),
        "funnel": lambda: funnel(store),
        "pages": lambda: top_pages(store, pages_limit),
    }
    answer: dict[str, Any] = {}
    with store.snapshot():
        for name, read in sections.items():
            try:
                answer[name] = read()
            except (BotoCoreError, ClientError) as exc:
                answer[name] = {"error": f"the aggregates could not be read ({exc})", "status": 503}
    return answer

