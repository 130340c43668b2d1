"""Read side: answers from the aggregate items, in O(time buckets) or O(shards) reads —
never by scanning events."""

from __future__ import annotations

import heapq
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from clickstream.aggregates import (
    PAGE_SHARDS,
    RECENT_EVENTS_KEPT,
    day_key,
    decode_recent,
    hour_key,
    minute_key,
    page_attribute,
    page_shard,
)
from clickstream.schema import FUNNEL_STEPS, page_path

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
MIN_YEAR, MAX_YEAR = 1970, 2999  # bounds of a query time (far enough, no date overflow)
_BUCKET_KEY = {"minute": minute_key, "hour": hour_key, "day": day_key}


class QueryError(ValueError):
    """A read request with a bad parameter (answered 400)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _number(attribute: dict[str, str] | None) -> float | int:
    if not attribute:
        return 0
    value = Decimal(attribute["N"])
    return int(value) if value == value.to_integral_value() else float(value)


def _counts(item: dict[str, Any]) -> dict[str, Any]:
    by_type = {
        name.removeprefix("type:"): _number(value)
        for name, value in item.items()
        if name.startswith("type:")
    }
    return {
        "events": _number(item.get("events")),
        "by_type": dict(sorted(by_type.items())),
        "revenue": _number(item.get("revenue")),
    }


def _get(dynamodb: Any, table: str, pk: str, sk: str) -> dict[str, Any]:
    key = {"pk": {"S": pk}, "sk": {"S": sk}}
    return dict(dynamodb.get_item(TableName=table, Key=key).get("Item") or {})


def _query_range(dynamodb: Any, table: str, pk: str, low: str, high: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "pk = :pk AND sk BETWEEN :low AND :high",
        "ExpressionAttributeValues": {":pk": {"S": pk}, ":low": {"S": low}, ":high": {"S": high}},
    }
    while True:
        page = dynamodb.query(**kwargs)
        items.extend(page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


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


def timeseries(
    dynamodb: Any,
    table: str,
    granularity: str,
    start: datetime | None = None,
    end: datetime | None = None,
    *,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Dense series of bucket counts between ``start`` and ``end`` (inclusive buckets)."""
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
    found = {
        item["sk"]["S"]: item
        for item in _query_range(dynamodb, table, granularity, key_of(start), key_of(end))
    }
    points = []
    cursor = start
    while cursor <= end:
        bucket = key_of(cursor)
        points.append(
            {
                "bucket": bucket,
                "start": cursor.isoformat().replace("+00:00", "Z"),
                **_counts(found.get(bucket, {})),
            }
        )
        cursor += step
    return {
        "granularity": granularity,
        "from": start.isoformat().replace("+00:00", "Z"),
        "to": end.isoformat().replace("+00:00", "Z"),
        "points": points,
    }


def recent_events(
    dynamodb: Any, table: str, limit: int = RECENT_EVENTS_KEPT
) -> list[dict[str, Any]]:
    """Newest events across shards: each shard item keeps its own latest 50."""
    per_shard: list[list[dict[str, Any]]] = []
    kwargs: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": "shard"}},
        "ProjectionExpression": "recent",
    }
    while True:
        page = dynamodb.query(**kwargs)
        per_shard.extend(
            decode_recent(item["recent"]) for item in page.get("Items", []) if "recent" in item
        )
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    merged = heapq.merge(
        *per_shard, key=lambda event: (event["timestamp"], event["event_id"]), reverse=True
    )
    return [event for _, event in zip(range(limit), merged, strict=False)]


def events_last_minute(dynamodb: Any, table: str, now: datetime | None = None) -> int:
    """Events in the trailing 60 s, from the current and previous minute buckets (the older
    bucket weighted by how much of it is still inside the window)."""
    now = now or datetime.now(UTC)
    current = _floor(now, "minute")
    previous = current - timedelta(minutes=1)
    items = {
        item["sk"]["S"]: item
        for item in _query_range(
            dynamodb, table, "minute", minute_key(previous), minute_key(current)
        )
    }
    in_window = 1 - (now - current).total_seconds() / 60
    older = _number(items.get(minute_key(previous), {}).get("events"))
    newer = _number(items.get(minute_key(current), {}).get("events"))
    return round(newer + older * in_window)


def stats(dynamodb: Any, table: str, *, now: datetime | None = None) -> dict[str, Any]:
    total = _get(dynamodb, table, "total", "all")
    counts = _counts(total)
    return {
        "total_events": counts["events"],
        "events_by_type": counts["by_type"],
        "recent_events": recent_events(dynamodb, table),
        "sessions": _number(total.get("sessions")),
        "page_views": counts["by_type"].get("page_view", 0),
        "revenue": counts["revenue"],
        "events_last_minute": events_last_minute(dynamodb, table, now),
        "updated_at": (now or datetime.now(UTC)).isoformat().replace("+00:00", "Z"),
    }


def funnel(
    dynamodb: Any, table: str, start_day: datetime | None = None, end_day: datetime | None = None
) -> dict[str, Any]:
    """Distinct sessions reaching each step (all time, or summed over a day range)."""
    if start_day is None and end_day is None:
        items = [_get(dynamodb, table, "total", "all")]
    else:
        low = day_key(start_day) if start_day else "0000-00-00"
        high = day_key(end_day) if end_day else "9999-99-99"
        if low > high:
            raise QueryError("from", "'from' is after 'to'")
        items = _query_range(dynamodb, table, "day", low, high)
    sessions = sum(_number(item.get("sessions")) for item in items)
    steps: list[dict[str, Any]] = []
    first = previous = None
    for step in FUNNEL_STEPS:
        count = sum(_number(item.get(f"funnel:{step}")) for item in items)
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


def _page_items(dynamodb: Any, table: str) -> list[dict[str, Any]]:
    keys = [{"pk": {"S": "pages"}, "sk": {"S": f"all#{index}"}} for index in range(PAGE_SHARDS)]
    response = dynamodb.batch_get_item(RequestItems={table: {"Keys": keys}})
    items = list(response.get("Responses", {}).get(table, []))
    unprocessed = response.get("UnprocessedKeys") or {}
    while unprocessed:
        response = dynamodb.batch_get_item(RequestItems=unprocessed)
        items.extend(response.get("Responses", {}).get(table, []))
        unprocessed = response.get("UnprocessedKeys") or {}
    return items


def top_pages(dynamodb: Any, table: str, limit: int = 10) -> dict[str, Any]:
    if not 1 <= limit <= 1000:
        raise QueryError("limit", "must be between 1 and 1000")
    views: dict[str, int | float] = {}
    for item in _page_items(dynamodb, table):
        for name, value in item.items():
            if name.startswith("p:"):
                views[name[2:]] = _number(value)
    ranked = heapq.nlargest(limit, views.items(), key=lambda pair: (pair[1], pair[0]))
    return {"pages": [{"page": page, "views": count} for page, count in ranked]}


def page_views(dynamodb: Any, table: str, page: str) -> dict[str, Any]:
    path = page_path(page, None) or "/"
    item = (
        dynamodb.get_item(
            TableName=table,
            Key={"pk": {"S": "pages"}, "sk": {"S": page_shard(path)}},
            ProjectionExpression="#p",
            ExpressionAttributeNames={"#p": page_attribute(path)},
        ).get("Item")
        or {}
    )
    return {"page": path, "page_views": _number(item.get(page_attribute(path)))}
