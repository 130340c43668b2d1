"""The aggregates at real-site shape, end to end on a local stack of its own: thousands of
distinct pages and custom event types, a client resending 5% of its requests, one client two
hours ahead, four shards, and a shard split and a merge in the middle of the traffic. Every accepted event
is counted once in /stats, the timeseries, the page views and the funnel, against what this
test sent (its own ledger)."""

from __future__ import annotations

import os
import random
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import takewhile
from urllib.parse import quote

import pytest

from clickstream.schema import FUNNEL_STEPS
from tests.conftest import LoopbackStackHandle, start_loopback_stack

pytestmark = pytest.mark.integration

# `make soak-aggregates` runs the same test at 100,000 pages and 10,000 custom types.
PAGES = int(os.environ.get("CLICKSTREAM_E2E_PAGES", "3000"))
CUSTOM_TYPES = int(os.environ.get("CLICKSTREAM_E2E_TYPES", "400"))
SESSIONS = max(600, PAGES // 3)
RESEND_SHARE = 0.05
HOT = (11, 222, 333)
SLUG = "a-product-with-a-rather-long-descriptive-slug"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopbackStackHandle]:
    handle = start_loopback_stack(
        tmp_path_factory.mktemp("aggregates-stack"),
        {"CLICKSTREAM_ESM_SHARD_DISCOVERY_S": "0.5", "CLICKSTREAM_SHARDS": "4"},
    )
    try:
        yield handle
    finally:
        handle.stop()


def journeys(rng: random.Random, now: datetime) -> list[list[dict]]:
    """One list of events per session; every page and custom type is used at least once."""
    sessions = []
    for s in range(SESSIONS):
        session = f"e2e-{uuid.uuid4()}"
        skew = timedelta(hours=2) if s == 7 else timedelta(0)  # one client clock 2 h ahead
        start = now - timedelta(minutes=rng.randint(1, 20)) + skew
        steps = ["page_view"] * rng.randint(1, 6)
        steps += [step for step in FUNNEL_STEPS[1:] if rng.random() < 0.4]
        steps += [f"custom_{rng.randrange(CUSTOM_TYPES)}" for _ in range(rng.randint(0, 3))]
        events = []
        for i, kind in enumerate(steps):
            hot = rng.random() < 0.3  # three best sellers take 30% of the views
            page = rng.choice(HOT) if hot else (s * 5 + i) % PAGES
            events.append(
                {
                    "event_id": str(uuid.uuid4()),
                    "event_type": kind,
                    "session_id": session,
                    "user_id": f"user-{s}",
                    "page": f"/products/{page}-{SLUG}",
                    "timestamp": (start + timedelta(seconds=20 * i)).isoformat(),
                    **({"value": 12.5} if kind == "purchase" else {}),
                }
            )
        sessions.append(events)
    extra = [
        {"event_id": str(uuid.uuid4()), "event_type": f"custom_{t}", "session_id": f"e2e-t{t}"}
        for t in range(CUSTOM_TYPES)
    ]
    return [*sessions, extra]


def expected_counts(sessions: list[list[dict]]) -> dict:
    events = [event for session in sessions for event in session]
    steps: Counter = Counter()
    for session in sessions[:-1]:  # each step the session reached with every one before it
        reached = {event["event_type"] for event in session}
        steps.update(takewhile(reached.__contains__, FUNNEL_STEPS))
    return {
        "events": len(events),
        "types": Counter(event["event_type"] for event in events),
        "pages": Counter(e["page"] for e in events if e["event_type"] == "page_view"),
        "sessions": len(sessions) - 1 + len(sessions[-1]),
        "funnel": steps,
    }


def reshard(stack: LoopbackStackHandle, how: str) -> None:
    kinesis = stack.client("kinesis")
    shards = [s for s in kinesis.list_shards(StreamName=stack.stream_name)["Shards"]
              if "EndingSequenceNumber" not in s["SequenceNumberRange"]]  # fmt: skip
    shards.sort(key=lambda shard: int(shard["HashKeyRange"]["StartingHashKey"]))
    if how == "split":
        low, high = (
            int(shards[0]["HashKeyRange"][k]) for k in ("StartingHashKey", "EndingHashKey")
        )
        kinesis.split_shard(
            StreamName=stack.stream_name,
            ShardToSplit=shards[0]["ShardId"],
            NewStartingHashKey=str((low + high) // 2),
        )
    else:
        kinesis.merge_shards(
            StreamName=stack.stream_name,
            ShardToMerge=shards[-2]["ShardId"],
            AdjacentShardToMerge=shards[-1]["ShardId"],
        )


def test_every_event_counts_once_at_real_site_cardinality_with_retries_skew_and_resharding(
    stack: LoopbackStackHandle,
) -> None:
    rng = random.Random(12)
    now = datetime.now(UTC)
    sessions = journeys(rng, now)
    expected = expected_counts(sessions)
    records = [event for session in sessions for event in session]
    rng.shuffle(records)
    requests = [records[i : i + 50] for i in range(0, len(records), 50)]
    accepted: set[str] = set()
    for number, request in enumerate(requests):
        if number == len(requests) // 3:
            reshard(stack, "split")
        if number == 2 * len(requests) // 3:
            reshard(stack, "merge")
        body = stack.post_events(request)
        assert body["processed"] == len(request), body
        accepted.update(body["event_ids"])
        if rng.random() < RESEND_SHARE:  # a client's retry after a timeout: the same records
            stack.post_events(request)
    assert len(accepted) == expected["events"]

    stats = stack.wait_until(
        lambda: (s := stack.get("/stats"))["total_events"] >= expected["events"] and s,
        # The emulator takes about 100 conditional writes a second, and folding writes about
        # two items per event at this cardinality (a page, a type, a session each): the
        # consumers' pipeline, folds included, needs that long to catch up.
        timeout=max(240, PAGES // 15),
    )
    assert stats["total_events"] == expected["events"]
    assert stats["sessions"] == expected["sessions"]
    assert stats["page_views"] == expected["types"]["page_view"]
    assert stats["revenue"] == pytest.approx(12.5 * expected["types"]["purchase"])
    for kind, count in stats["events_by_type"].items():
        assert count == expected["types"][kind], kind
    assert {"page_view", *FUNNEL_STEPS} <= set(stats["events_by_type"])
    assert stats["events_by_type_complete"] is False  # more types than the 50 listed

    start = (now - timedelta(hours=1)).isoformat()
    end = (now + timedelta(hours=3)).isoformat()
    series = stack.get("/metrics/timeseries", granularity="hour", **{"from": start, "to": end})
    assert sum(point["events"] for point in series["points"]) == expected["events"]

    funnel = stack.get("/funnel")
    assert funnel["sessions"] == expected["sessions"]
    for step in funnel["steps"]:
        assert step["sessions"] == expected["funnel"][step["step"]], step

    for page in rng.sample(sorted(expected["pages"]), 25):
        views = stack.get("/analytics/page-views/" + quote(page, safe=""))
        assert views["page_views"] == expected["pages"][page], page
    top = stack.get("/pages/top", limit=10)
    hot = [f"/products/{page}-{SLUG}" for page in HOT]
    assert [(p["page"], p["views"]) for p in top["pages"][:3]] == sorted(
        ((page, expected["pages"][page]) for page in hot), key=lambda pair: -pair[1]
    )
    for listed in top["pages"]:
        assert listed["views"] == expected["pages"][listed["page"]]
    unlisted = set(expected["pages"]) - {p["page"] for p in top["pages"]}
    assert max(expected["pages"][page] for page in unlisted) <= top["max_error"]
    assert sum(p["views"] for p in top["pages"]) + top["other_views"] == stats["page_views"]
