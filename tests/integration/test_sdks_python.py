"""The official Python SDKs, unmodified, pointed at the local stack: Segment's
(``segment-analytics-python``), PostHog's (``posthog``) and Snowplow's (``snowplow-tracker``).
Each event arrives once in the archive and in the aggregates, with its fields mapped."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from posthog import Posthog
from segment.analytics import Client as SegmentClient
from snowplow_tracker import Emitter, SelfDescribingJson, Subject, Tracker
from snowplow_tracker.events import PageView, SelfDescribing, StructuredEvent

from tests.delivery import counted_once, delivered


def _properties(row: dict[str, Any]) -> dict[str, Any]:
    return json.loads(row["properties"]) if row["properties"] else {}


def _by_type(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    ids = [row["event_id"] for row in rows]
    assert len(ids) == len(set(ids)), "an event was archived twice"
    return {row["event_type"]: row for row in rows}


def test_segment_analytics_python(local_stack):
    tag = uuid.uuid4().hex[:10]
    anonymous, user = f"anon-{tag}", f"user-{tag}"
    errors: list[Any] = []
    since = datetime.now(UTC)
    client = SegmentClient(
        write_key=local_stack.write_key,
        host=local_stack.api_url,
        sync_mode=True,
        gzip=True,
        max_retries=1,
        on_error=lambda error, batch: errors.append(error),
    )
    client.page(
        anonymous_id=anonymous,
        name="Home",
        properties={
            "path": "/sdk/segment",
            "url": "https://shop.example/sdk/segment?utm_source=newsletter",
            "referrer": "https://www.google.com/",
        },
    )
    client.track(
        anonymous_id=anonymous,
        user_id=user,
        event="Order Completed",
        properties={"revenue": 30.5, "product_id": "sku-7", "coupon": "AUTUMN"},
    )
    client.identify(user_id=user, anonymous_id=anonymous, traits={"plan": "pro"})
    client.group(user_id=user, anonymous_id=anonymous, group_id="acme")
    client.screen(user_id=user, anonymous_id=anonymous, name="Settings")
    client.alias(previous_id=anonymous, user_id=user)
    client.flush()  # (sync mode has no consumer thread: its shutdown() raises)
    assert errors == []

    rows = delivered(
        local_stack,
        since,
        lambda r: user in (r["user_id"], r["anonymous_id"]) or r["anonymous_id"] == anonymous,
        expected=6,
    )
    found = _by_type(rows)
    assert set(found) == {"page_view", "purchase", "identify", "group", "screen_view", "alias"}
    page = found["page_view"]
    assert (page["page"], page["referrer"], page["anonymous_id"]) == (
        "/sdk/segment",
        "https://www.google.com/",
        anonymous,
    )
    purchase = found["purchase"]
    assert (purchase["value"], purchase["product_id"], purchase["user_id"]) == (30.5, "sku-7", user)
    assert _properties(purchase)["event_name"] == "Order Completed"
    assert _properties(found["identify"])["traits"] == {"plan": "pro"}
    assert set(counted_once(local_stack, [row["event_id"] for row in rows]).values()) == {1}


@pytest.mark.parametrize("capture_mode", ["v0", "v1"])
def test_posthog_python(local_stack, capture_mode):
    """v0 posts /batch/ with the key in the body; v1 /i/v1/analytics/events with a Bearer
    key, answered per event."""
    tag = uuid.uuid4().hex[:10]
    person, session = f"person-{tag}", f"session-{tag}"
    errors: list[Any] = []
    since = datetime.now(UTC)
    posthog = Posthog(
        local_stack.write_key,
        host=local_stack.api_url,
        sync_mode=True,
        gzip=True,
        max_retries=1,
        on_error=lambda error, batch: errors.append(error),
        capture_mode=capture_mode,
    )
    posthog.capture(
        "$pageview",
        distinct_id=person,
        properties={
            "$current_url": "https://shop.example/sdk/posthog",
            "$session_id": session,
            "$referrer": "https://news.ycombinator.com/",
        },
    )
    posthog.capture(
        "Signed Up", distinct_id=person, properties={"$session_id": session, "plan": "pro"}
    )
    posthog.flush()
    posthog.shutdown()
    assert errors == []

    rows = delivered(local_stack, since, lambda r: r["session_id"] == session, expected=2)
    found = _by_type(rows)
    assert set(found) == {"page_view", "signed_up"}
    view = found["page_view"]
    assert (view["page"], view["user_id"], view["referrer"]) == (
        "/sdk/posthog",
        person,
        "https://news.ycombinator.com/",
    )
    assert (
        _properties(found["signed_up"]).items()
        >= {
            "plan": "pro",
            "event_name": "Signed Up",
            "library": "posthog-python",
        }.items()
    )
    assert set(counted_once(local_stack, [row["event_id"] for row in rows]).values()) == {1}


def test_snowplow_tracker_posts_and_the_pixel(local_stack):
    tag = uuid.uuid4().hex[:10]
    device, session = f"duid-{tag}", str(uuid.uuid4())
    failures: list[Any] = []
    since = datetime.now(UTC)
    host, port = local_stack.api_url.removeprefix("http://").split(":")
    subject = Subject().set_user_id(f"user-{tag}").set_domain_user_id(device)
    subject = subject.set_domain_session_id(session)
    for method in ("post", "get"):
        emitter = Emitter(
            host,
            protocol="http",
            port=int(port),
            method=method,
            batch_size=1,
            on_failure=lambda count, failed: failures.append(failed),
        )
        tracker = Tracker(
            namespace="cs", emitters=emitter, subject=subject, app_id=local_stack.write_key
        )
        tracker.track(
            PageView(page_url=f"https://shop.example/sdk/snowplow/{method}", page_title="SP")
        )
        tracker.track(StructuredEvent(category="shop", action=f"wishlist-{method}", value=3))
        tracker.track(
            SelfDescribing(
                SelfDescribingJson(
                    "iglu:com.snowplowanalytics.snowplow/link_click/jsonschema/1-0-1",
                    {"targetUrl": "https://elsewhere.example/"},
                )
            )
        )
        tracker.flush()
    assert failures == []

    rows = delivered(local_stack, since, lambda r: r["session_id"] == session, expected=6)
    ids = [row["event_id"] for row in rows]
    assert len(ids) == len(set(ids)) == 6
    assert sorted(row["event_type"] for row in rows) == sorted(
        ["page_view", "wishlist-post", "click"] * 1 + ["page_view", "wishlist-get", "click"]
    )
    views = [row for row in rows if row["event_type"] == "page_view"]
    assert {row["page"] for row in views} == {"/sdk/snowplow/post", "/sdk/snowplow/get"}
    assert all(row["anonymous_id"] == device and row["user_id"] == f"user-{tag}" for row in rows)
    assert all("app_id" not in _properties(row) for row in rows)  # the write key is not kept
    assert set(counted_once(local_stack, ids).values()) == {1}
