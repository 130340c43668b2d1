"""The browser SDKs sites already run, unmodified, in Chromium, pointed at the local stack:
posthog-js, Snowplow's browser tracker and Segment's analytics-next, served from the npm
packages ``make test`` installs (tools/sdks; no CDN). Each event arrives once in the archive
and the aggregates with its page, referrer and ids mapped."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.browser.site import customer_site
from tests.delivery import counted_once, delivered

SDKS = Path(__file__).parents[2] / "tools" / "sdks" / "node_modules"
# Each SDK's documented set-up, with our API as its host and our write key as its key.
SETUP = {
    "posthog": """<script src="/sdk/posthog-js/dist/array.full.js"></script><script>
      // Playwright's browser says navigator.webdriver: the SDK's own switch for such tests.
      posthog.init("{key}", {{
        api_host: "{api}", persistence: "localStorage", opt_out_useragent_filter: true
      }});
      posthog.capture("Signed Up", {{plan: "pro"}});
    </script>""",
    "snowplow": """<script src="/sdk/@snowplow/browser-tracker/dist/index.umd.min.js"></script><script>
      var sp = snowplowBrowserTracking;
      sp.newTracker("sp", "{api}", {{appId: "{key}"}});
      sp.setUserId("shopper-{tag}");
      sp.trackPageView();
      sp.trackStructEvent({{category: "shop", action: "add-to-wishlist", value: 3}});
    </script>""",
    "segment": """<script src="/sdk/@segment/analytics-next/dist/umd/index.js"></script><script>
      AnalyticsNext.AnalyticsBrowser.load({{
        writeKey: "{key}",
        // The settings Segment's CDN would serve for this source (no CDN here).
        cdnSettings: {{integrations: {{"Segment.io": {{
          apiKey: "{key}", apiHost: "{api_host}/v1", protocol: "http"
        }}}}}}
      }}).then(function (loaded) {{
        var analytics = loaded[0];
        analytics.page();
        analytics.identify("shopper-{tag}", {{plan: "pro"}});
        analytics.track("Order Completed", {{revenue: 42, product_id: "sku-1"}});
      }});
    </script>""",
}


@pytest.fixture(scope="module")
def site(local_stack) -> Iterator[str]:
    def render(path: str, query: dict[str, str], base: str) -> tuple[bytes, str] | None:
        if path.startswith("/sdk/"):
            target = (SDKS / path.removeprefix("/sdk/")).resolve()
            if SDKS not in target.parents or not target.is_file():
                return None
            return target.read_bytes(), "text/javascript"
        if "sdk" not in query:  # e.g. /favicon.ico
            return None
        setup = SETUP[query["sdk"]].format(
            key=local_stack.write_key,
            api=local_stack.api_url,
            api_host=local_stack.api_url.removeprefix("http://"),
            tag=query["t"],
        )
        page = (
            f"<!doctype html><html><head><title>SDK shop</title>{setup}</head>"
            '<body><button id="buy">Buy</button></body></html>'
        )
        return page.encode(), "text/html"

    with customer_site(render) as base:
        yield base


def visit(visitor, site: str, sdk: str) -> tuple[str, datetime]:
    tag = uuid.uuid4().hex[:10]
    since = datetime.now(UTC)
    referrer = "https://www.google.com/"
    visitor.goto(f"{site}/shop?sdk={sdk}&t={tag}&utm_source=ads", referer=referrer)
    return tag, since


def arrived(local_stack, since: datetime, tag: str, expected: int) -> list[dict[str, Any]]:
    rows = delivered(local_stack, since, lambda r: tag in (r["page_url"] or ""), expected)
    ids = [row["event_id"] for row in rows]
    assert len(ids) == len(set(ids)), "an event was archived twice"
    assert set(counted_once(local_stack, ids).values()) == {1}
    assert all(row["browser"] == "Chrome" and row["device_type"] == "desktop" for row in rows)
    return rows


def test_posthog_js(visitor, site, local_stack):
    tag, since = visit(visitor, site, "posthog")
    visitor.wait_for_function("window.posthog && posthog.__loaded")
    visitor.click("#buy")  # autocapture
    visitor.wait_for_timeout(500)
    visitor.goto("about:blank")  # $pageleave, sent as the page unloads

    rows = arrived(local_stack, since, tag, expected=4)
    types = sorted(row["event_type"] for row in rows)
    assert {"page_view", "signed_up", "click", "page_leave"} <= set(types)
    view = next(row for row in rows if row["event_type"] == "page_view")
    assert view["page"] == "/shop" and view["referrer"] == "https://www.google.com/"
    assert view["session_id"] and view["anonymous_id"] and view["user_id"] is None
    assert len({row["session_id"] for row in rows}) == 1
    signed_up = next(row for row in rows if row["event_type"] == "signed_up")
    assert json.loads(signed_up["properties"])["plan"] == "pro"
    assert visitor.js_errors == []


def test_snowplow_browser_tracker(visitor, site, local_stack):
    tag, since = visit(visitor, site, "snowplow")
    rows = arrived(local_stack, since, tag, expected=2)
    assert sorted(row["event_type"] for row in rows) == ["add-to-wishlist", "page_view"]
    view = next(row for row in rows if row["event_type"] == "page_view")
    assert (view["page"], view["referrer"], view["user_id"]) == (
        "/shop",
        "https://www.google.com/",
        f"shopper-{tag}",
    )
    assert view["session_id"] and view["anonymous_id"]
    assert all(row["value"] == 3 for row in rows if row["event_type"] == "add-to-wishlist")
    assert visitor.js_errors == []


def test_segment_analytics_next(visitor, site, local_stack):
    tag, since = visit(visitor, site, "segment")
    rows = arrived(local_stack, since, tag, expected=3)
    by_type = {row["event_type"]: row for row in rows}
    assert set(by_type) == {"page_view", "identify", "purchase"}
    view = by_type["page_view"]
    assert view["page"] == "/shop" and view["referrer"] == "https://www.google.com/"
    assert view["anonymous_id"]
    purchase = by_type["purchase"]
    assert (purchase["value"], purchase["product_id"]) == (42, "sku-1")
    assert purchase["user_id"] == f"shopper-{tag}"
    assert len({row["anonymous_id"] for row in rows}) == 1
    assert visitor.js_errors == []
