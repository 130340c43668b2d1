"""Helpers of the aggregate-store tests: reading what the store counted, and what it wrote."""

from __future__ import annotations

from typing import Any

from bench.awsmock import item_size
from clickstream.store import MAX_KEY_BYTES, DynamoAggregateStore
from clickstream.summaries import CAPACITY

ALL_TIME = ("all", "all", "all")
ITEM_LIMIT = 400 * 1024  # DynamoDB's item size limit
COUNTED = (
    "events",
    "sessions",
    "bounces",
    "duration_s",
    "revenue",
    "type:page_view",
    "type:add_to_cart",
    "type:custom",
    "funnel:page_view",
    "funnel:add_to_cart",
    "funnel:checkout",
    "funnel:purchase",
)


def counted(store: DynamoAggregateStore) -> dict[str, Any]:
    """The all-time counters, and the same summed over the minute buckets (they must agree)."""
    total = store.total(*ALL_TIME)
    by_minute = store.total("minute", "0000", "9999")
    by_day = store.total("day", "0000", "9999")
    values = {name: total.get(name) for name in COUNTED}
    assert values == {name: by_minute.get(name) for name in COUNTED}
    assert values == {name: by_day.get(name) for name in COUNTED}
    return values


def _scan(store: DynamoAggregateStore) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": store.table}
    while True:
        page = store.dynamodb.scan(**kwargs)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def written_keys(store: DynamoAggregateStore) -> list[tuple[str, str]]:
    return [(item["pk"]["S"], item["sk"]["S"]) for item in _scan(store)]


def largest_items(store: DynamoAggregateStore, count: int = 5) -> list[tuple[str, int]]:
    sized = [(item["pk"]["S"], item_size(item)) for item in _scan(store)]
    return sorted(sized, key=lambda pair: -pair[1])[:count]


# A Space-Saving summary holds at most CAPACITY values, each a key of at most
# MAX_KEY_BYTES (longer values are keyed by their digest), plus counters.
SKETCH_BOUND = CAPACITY * (MAX_KEY_BYTES + 40) + 1024
