"""The dashboard in a real headless Chromium against the real local stack.

Events go in over HTTP (POST /events); the tests then read what the page shows through its
stable ``data-testid`` hooks (raw numbers in ``data-value``, chart data in ``data-points``) and
check it against what was sent. The stack is shared by the whole test session, so every
assertion is a delta from a baseline read after the pipeline has gone quiet.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.browser.support import LAPTOP, PHONE

pytestmark = pytest.mark.browser

# Aggregation runs through Kinesis, the event-source runner and DynamoDB: give it time.
PIPELINE_TIMEOUT_S = 90
# web/config.js feedLimit.
FEED_LIMIT = 20
# Recovery after the API comes back: the dashboard backs off to at most 10 s between attempts.
RECOVERY_TIMEOUT_MS = 40_000

READ_STATE_JS = """
() => {
  const q = (id) => document.querySelector(`[data-testid="${id}"]`);
  const num = (v) => (v === undefined || v === null || v === "" ? null : Number(v));
  const cards = {};
  for (const id of ["total-events", "events-last-minute", "sessions", "page-views",
                    "add-to-cart", "purchases", "conversion-rate", "revenue"]) {
    cards[id] = num(q("card-" + id)?.dataset.value);
  }
  const funnel = {};
  for (const step of ["page_view", "add_to_cart", "checkout", "purchase"]) {
    funnel[step] = num(q("funnel-count-" + step)?.dataset.value);
  }
  const ts = q("chart-timeseries");
  const types = q("chart-event-types");
  return {
    cards,
    funnel,
    timeseries: JSON.parse(ts.dataset.points || "[]"),
    timeseriesTotal: num(ts.dataset.total),
    types: JSON.parse(types.dataset.points || "[]"),
    typesTotal: num(types.dataset.total),
    feed: [...document.querySelectorAll('[data-testid="feed-item"]')]
      .map((li) => ({
        id: li.dataset.eventId, type: li.dataset.eventType,
        value: li.querySelector(".feed-value").textContent,
        time: li.querySelector(".feed-time").textContent,
        note: li.querySelector(".feed-time").title,
      })),
    pages: [...document.querySelectorAll('[data-testid="top-page-row"]')]
      .map((tr) => ({ page: tr.dataset.page, views: Number(tr.dataset.views) })),
    updatedAt: q("last-updated").dataset.updatedAt || null,
    status: q("connection-status").dataset.state,
    bannerHidden: q("error-banner").hidden,
    refreshes: Number(document.documentElement.dataset.refreshes || 0),
  };
}
"""


# --- helpers ---------------------------------------------------------------------------------


def api_get(stack: Any, path: str) -> Any:
    response = requests.get(stack.api_url + path, headers=stack.read_headers, timeout=10)
    response.raise_for_status()
    return response.json()


def wait_for_quiet_pipeline(stack: Any, quiet_s: float = 2.5) -> None:
    """Waits until /stats stops moving, so a baseline is not taken mid-aggregation of events
    another test posted."""
    deadline = time.monotonic() + PIPELINE_TIMEOUT_S
    previous = api_get(stack, "/stats")["total_events"]
    while time.monotonic() < deadline:
        time.sleep(quiet_s)
        total = api_get(stack, "/stats")["total_events"]
        if total == previous:
            return
        previous = total
    pytest.fail(f"/stats total_events still moving after {PIPELINE_TIMEOUT_S} s")


def eventually(stack: Any, problems: Callable[[], list[str]], timeout: float) -> None:
    """Like stack.wait_until, but on timeout says *which* expectations were still unmet."""
    last: list[str] = []

    def ok() -> bool:
        last[:] = problems()
        return not last

    try:
        stack.wait_until(ok, timeout=timeout)
    except (AssertionError, TimeoutError):
        details = "\n  ".join(last)
        pytest.fail(f"still wrong after {timeout:.0f} s:\n  {details}")


def open_dashboard(page: Any, stack: Any, extra_query: str = "") -> None:
    page.goto(f"{stack.web_url}/?api={stack.api_url}&key={stack.read_key}{extra_query}")
    wait_for_clean_refresh(page)


def wait_for_clean_refresh(page: Any, timeout_ms: int = 30_000) -> None:
    page.wait_for_function(
        "document.documentElement.dataset.lastRefresh === 'ok'", timeout=timeout_ms
    )


def state(page: Any) -> dict[str, Any]:
    return page.evaluate(READ_STATE_JS)


def type_counts(points: list[dict[str, Any]]) -> dict[str, int]:
    return {p["type"]: p["count"] for p in points}


def screenshot(page: Any, directory: Path, name: str) -> None:
    # animations="disabled" finishes the feed's arrival highlight so shots are comparable.
    page.screenshot(path=str(directory / name), full_page=True, animations="disabled")


def shopping_batch(run: str, home_views: int) -> list[dict[str, Any]]:
    """Three sessions: a buys (after `home_views - 1` views of home), b adds to cart, c browses."""
    home, product = f"/browser-{run}/home", f"/browser-{run}/product"
    a, b, c = (f"browser-{run}-{x}" for x in "abc")
    return [
        *(
            {"event_type": "page_view", "session_id": a, "user_id": "u-a", "page": home}
            for _ in range(home_views - 1)
        ),
        {"event_type": "page_view", "session_id": a, "user_id": "u-a", "page": product},
        {
            "event_type": "add_to_cart",
            "session_id": a,
            "user_id": "u-a",
            "page": product,
            "product_id": "sku-1",
        },
        {"event_type": "checkout", "session_id": a, "user_id": "u-a", "page": "/checkout"},
        {
            "event_type": "purchase",
            "session_id": a,
            "user_id": "u-a",
            "page": "/checkout",
            "value": 42.5,
        },
        {"event_type": "page_view", "session_id": b, "user_id": "u-b", "page": home},
        {
            "event_type": "add_to_cart",
            "session_id": b,
            "user_id": "u-b",
            "page": home,
            "product_id": "sku-2",
        },
        {"event_type": "page_view", "session_id": c, "user_id": "u-c", "page": product},
        {"event_type": "click", "session_id": c, "user_id": "u-c", "page": product},
    ]


@dataclass
class Expected:
    """What the page must show once the pipeline has aggregated one posted batch."""

    cards: dict[str, float]
    funnel: dict[str, int]
    types: dict[str, int]
    timeseries_total: int
    event_ids: list[str]
    page: str
    page_views: int
    posted_at: float = field(default_factory=time.monotonic)

    def mismatches(self, now: dict[str, Any]) -> list[str]:
        found = [
            f"card {name}: {now['cards'][name]} != {want}"
            for name, want in self.cards.items()
            if now["cards"][name] is None or abs(now["cards"][name] - want) > 1e-6
        ]
        n = len(self.event_ids)
        last_minute = now["cards"]["events-last-minute"]
        # The card counts them only while they are in the last minute: a pipeline that took
        # longer (a cold first batch) makes it rightly decay, not wrong.
        recent = time.monotonic() - self.posted_at < 45
        if last_minute is None or (recent and last_minute < n):
            found.append(f"card events-last-minute: {last_minute} < {n}")
        found += [
            f"funnel {step}: {now['funnel'][step]} != {want}"
            for step, want in self.funnel.items()
            if now["funnel"][step] != want
        ]
        types = type_counts(now["types"])
        found += [
            f"event-type chart {kind}: {types.get(kind)} != {want}"
            for kind, want in self.types.items()
            if types.get(kind) != want
        ]
        if now["typesTotal"] != self.cards["total-events"]:
            found.append(f"event-type chart total {now['typesTotal']} != card total")
        series_total = sum(p["events"] for p in now["timeseries"])
        if series_total != self.timeseries_total:
            found.append(f"events-per-minute total {series_total} != {self.timeseries_total}")
        # The feed shows the newest FEED_LIMIT events: all of ours, or (if the top-pages
        # top-up made the batch bigger than that) only ours.
        ours = sum(1 for item in now["feed"] if item["id"] in self.event_ids)
        if ours != min(n, FEED_LIMIT):
            found.append(f"feed shows {ours} of the posted events, want {min(n, FEED_LIMIT)}")
        views = {p["page"]: p["views"] for p in now["pages"]}.get(self.page)
        if views != self.page_views:
            found.append(f"top pages {self.page}: {views} != {self.page_views}")
        return found


def test_page_loads_without_script_errors_and_shows_the_api_it_reads(page, local_stack):
    open_dashboard(page, local_stack)
    assert page.get_by_test_id("api-base").text_content() == local_stack.api_url
    assert page.evaluate("document.documentElement.dataset.charts") == "ready"
    assert page.get_by_test_id("connection-status").get_attribute("data-state") in {"live", "slow"}
    assert page.get_by_test_id("error-banner").is_hidden()
    assert page.js_errors == []


# --- the numbers follow the events -----------------------------------------------------------


def test_cards_charts_funnel_pages_and_feed_follow_posted_events(page, local_stack, screenshots):
    wait_for_quiet_pipeline(local_stack)
    open_dashboard(page, local_stack)
    api_stats = api_get(local_stack, "/stats")
    eventually(
        local_stack,
        lambda: (
            []
            if state(page)["cards"]["total-events"]
            == api_get(local_stack, "/stats")["total_events"]
            else ["dashboard not caught up"]
        ),
        timeout=30,
    )
    before = state(page)
    assert before["cards"]["total-events"] == api_stats["total_events"]

    run = uuid.uuid4().hex[:10]
    home = f"/browser-{run}/home"
    # Enough views of `home` to be sure it enters the top-10 list, whatever else is in it.
    top = api_get(local_stack, "/pages/top?limit=10")["pages"]
    threshold = min((p["views"] for p in top), default=0) if len(top) >= 10 else 0
    home_views = max(2, threshold + 1)
    assert home_views < 400, "stack already holds too many page views for this test"

    records = shopping_batch(run, home_views)
    page_views = home_views + 2  # home x home_views, product x 2
    sent = local_stack.post_events(records)
    assert sent["processed"] == len(records), sent
    assert sent["failed"] == 0, sent
    event_ids = sent["event_ids"]

    n = len(records)
    b0, f0, t0 = before["cards"], before["funnel"], type_counts(before["types"])
    expect = Expected(
        cards={
            "total-events": b0["total-events"] + n,
            "sessions": b0["sessions"] + 3,
            "page-views": b0["page-views"] + page_views,
            "add-to-cart": b0["add-to-cart"] + 2,
            "purchases": b0["purchases"] + 1,
            "revenue": round(b0["revenue"] + 42.5, 2),
        },
        funnel={
            "page_view": f0["page_view"] + 3,
            "add_to_cart": f0["add_to_cart"] + 2,
            "checkout": f0["checkout"] + 1,
            "purchase": f0["purchase"] + 1,
        },
        # The chart draws the largest types and folds the rest into "other": a type it did not
        # show before (other tests, in any order, may have posted many) is not checked.
        types={
            kind: t0.get(kind, 0) + added
            for kind, added in {
                "page_view": page_views,
                "add_to_cart": 2,
                "checkout": 1,
                "purchase": 1,
            }.items()
            if kind in t0 or "other" not in t0  # nothing folded: a type not shown had none
        },
        timeseries_total=before["timeseriesTotal"] + n,
        event_ids=event_ids,
        page=home,
        page_views=home_views,
    )
    eventually(local_stack, lambda: expect.mismatches(state(page)), timeout=PIPELINE_TIMEOUT_S)

    after = state(page)
    # Chart data: 60 dense minute buckets; the newest ones hold this test's events.
    assert len(after["timeseries"]) == 60
    assert sum(p["events"] for p in after["timeseries"][-2:]) >= n
    # Conversion rate: exactly what the API's funnel says, and consistent with the funnel steps.
    funnel = api_get(local_stack, "/funnel")
    assert after["cards"]["conversion-rate"] == pytest.approx(funnel["conversion_rate"])
    # Feed items carry the type that was sent.
    types_by_id = {item["id"]: item["type"] for item in after["feed"]}
    values_by_id = {item["id"]: item["value"] for item in after["feed"]}
    for event_id, record in zip(event_ids, records, strict=True):
        if event_id in types_by_id:
            assert types_by_id[event_id] == record["event_type"]
            if record.get("value"):  # a purchase's value is money
                assert values_by_id[event_id].startswith("$"), values_by_id[event_id]
    # Top pages: what the API says, in its order.
    api_pages = api_get(local_stack, "/pages/top?limit=10")["pages"]
    assert after["pages"] == [{"page": p["page"], "views": p["views"]} for p in api_pages]

    # Human-readable text matches the raw numbers too.
    assert page.get_by_test_id("card-revenue").text_content().startswith("$")
    assert page.get_by_test_id("funnel-count-purchase").text_content().replace(",", "") == str(
        expect.funnel["purchase"]
    )
    assert page.get_by_test_id("last-updated").get_attribute("data-updated-at")
    assert page.get_by_test_id("error-banner").is_hidden()

    screenshot(page, screenshots, "dashboard-laptop-1280.png")
    page.set_viewport_size(PHONE)
    page.wait_for_timeout(500)  # let Chart.js resize to the new width
    screenshot(page, screenshots, "dashboard-phone-375.png")
    assert page.js_errors == []


# --- failure and recovery --------------------------------------------------------------------


def test_api_down_shows_error_then_recovers_without_overlapping_polls(
    page, local_stack, screenshots
):
    in_flight: dict[str, int] = {}
    max_in_flight: dict[str, int] = {}

    def path_of(request: Any) -> str | None:
        url = request.url
        if not url.startswith(local_stack.api_url):
            return None
        return url[len(local_stack.api_url) :].split("?", 1)[0]

    def started(request: Any) -> None:
        if (path := path_of(request)) and request.method == "GET":
            in_flight[path] = in_flight.get(path, 0) + 1
            max_in_flight[path] = max(max_in_flight.get(path, 0), in_flight[path])

    def ended(request: Any) -> None:
        if (path := path_of(request)) and request.method == "GET":
            in_flight[path] = in_flight.get(path, 1) - 1

    page.on("request", started)
    page.on("requestfinished", ended)
    page.on("requestfailed", ended)

    open_dashboard(page, local_stack)
    before = state(page)
    assert before["updatedAt"]
    banner = page.get_by_test_id("error-banner")

    local_stack.stop_api()
    try:
        banner.wait_for(state="visible", timeout=15_000)
        assert banner.get_attribute("role") == "alert"
        message = page.get_by_test_id("error-message").text_content()
        assert "Cannot reach the API" in message, message
        assert local_stack.api_url in message
        assert "Retrying automatically" in message
        down = state(page)
        assert down["status"] == "offline"
        assert None not in down["cards"].values(), down["cards"]
        # Still polling while down (the loop did not die on the error) ...
        page.wait_for_function(
            f"Number(document.documentElement.dataset.refreshes) > {down['refreshes']}",
            timeout=15_000,
        )
        still_down = state(page)
        # ... while keeping the last numbers it had (not blanked) and how old they are.
        assert still_down["cards"] == down["cards"]
        assert still_down["updatedAt"] == down["updatedAt"] >= before["updatedAt"]
        assert still_down["status"] == "offline"
        assert page.get_by_test_id("last-updated").text_content().strip()
        screenshot(page, screenshots, "dashboard-api-down-laptop-1280.png")
    finally:
        local_stack.start_api()

    page.wait_for_function(
        "document.documentElement.dataset.lastRefresh === 'ok'", timeout=RECOVERY_TIMEOUT_MS
    )
    assert banner.is_hidden()
    recovered = state(page)
    assert recovered["status"] in {"live", "slow"}
    assert recovered["updatedAt"] > before["updatedAt"]

    # Live again for real: a new event shows up.
    wait_for_quiet_pipeline(local_stack)
    base = api_get(local_stack, "/stats")["total_events"]
    now = datetime.now(UTC)
    sent = local_stack.post_events(
        [
            {"event_type": "video_play", "session_id": "browser-recovery", "value": 7},
            # a device's clock 3 hours fast, and an event kept offline for 2 hours
            # (read before the request: it arrives a moment less than 3 hours ahead, and
            # the mark, to the minute, says 3 h)
            {"event_type": "click", "timestamp": (now + timedelta(hours=3)).isoformat()},
            {"event_type": "click", "timestamp": (now - timedelta(hours=2)).isoformat()},
        ]
    )
    assert sent["processed"] == 3, sent
    eventually(
        local_stack,
        lambda: (
            []
            if state(page)["cards"]["total-events"] == base + 3
            else [f"total-events {state(page)['cards']['total-events']} != {base + 3}"]
        ),
        timeout=PIPELINE_TIMEOUT_S,
    )
    shown = {item["id"]: item for item in state(page)["feed"]}
    played, ahead, late = (shown[event_id] for event_id in sent["event_ids"])
    # a custom event's value is a number, not money (only commerce events' values are)
    assert played["value"] == "7"
    # times far from their arrival are marked, and say how far
    assert played["note"] == "" and not played["time"].endswith("*")
    assert ahead["time"].endswith("*") and "3 h 00 min ahead of its arrival" in ahead["note"]
    assert late["time"].endswith("*") and "sent 2 h 00 min after its time" in late["note"]

    # Never two requests to the same endpoint at once: the next poll waits for the last.
    assert max_in_flight, "no API requests were seen"
    assert max(max_in_flight.values()) == 1, max_in_flight
    assert page.js_errors == []


def test_slow_api_times_out_and_says_so(page, local_stack):
    """A hung API (requests held open, never answered) turns into a visible 'too slow' alert
    after the request timeout, and the page recovers once answers flow again."""
    held: list[Any] = []

    def hold(route: Any) -> None:
        held.append(route)  # never answered: the page's AbortController must give up

    open_dashboard(page, local_stack, "&timeout=1000&poll=1000")
    page.route(f"{local_stack.api_url}/**", hold)
    banner = page.get_by_test_id("error-banner")
    banner.wait_for(state="visible", timeout=15_000)
    message = page.get_by_test_id("error-message").text_content()
    assert "too slow" in message, message
    assert "no answer within 1 s" in message, message
    assert page.get_by_test_id("connection-status").get_attribute("data-state") == "offline"

    page.unroute(f"{local_stack.api_url}/**", hold)
    for route in held:
        # Most were already cancelled by the page's own timeout.
        with contextlib.suppress(Exception):
            route.abort()
    wait_for_clean_refresh(page, RECOVERY_TIMEOUT_MS)
    assert banner.is_hidden()
    assert page.js_errors == []


def without_funnel(route: Any) -> None:
    """The real /dashboard answer, with its funnel section failed as the API reports it."""
    response = route.fetch()
    body = response.json()
    body["funnel"] = {"error": "the aggregates could not be read", "status": 500}
    route.fulfill(response=response, json=body)


def test_one_failing_section_marks_only_its_panels_stale(page, local_stack):
    open_dashboard(page, local_stack)
    page.route(f"{local_stack.api_url}/dashboard*", without_funnel)
    banner = page.get_by_test_id("error-banner")
    # the funnel comes with every 8th poll (web/api.js FULL_EVERY): up to 16 s at 2 s polls
    banner.wait_for(state="visible", timeout=30_000)
    message = page.get_by_test_id("error-message").text_content()
    assert "funnel and conversion rate (HTTP 500)" in message, message
    assert "everything else is current" in message
    assert page.get_by_test_id("connection-status").get_attribute("data-state") == "degraded"
    assert page.locator('section[data-source="funnel"]').get_attribute("data-stale") == "true"
    assert page.locator('section[data-source="timeseries"]').get_attribute("data-stale") == "false"
    # The stale panel keeps its last numbers instead of going blank.
    assert page.get_by_test_id("funnel-count-page_view").get_attribute("data-value") != ""

    page.unroute(f"{local_stack.api_url}/dashboard*", without_funnel)
    wait_for_clean_refresh(page)
    assert banner.is_hidden()
    assert page.locator('section[data-source="funnel"]').get_attribute("data-stale") == "false"


# --- configuration ---------------------------------------------------------------------------


def block_default_port(page: Any) -> None:
    """The committed config.js points at 127.0.0.1:8000, where some other stack may be running:
    keep these tests' requests away from it."""
    page.route("http://127.0.0.1:8000/**", lambda route: route.abort())


def test_api_base_comes_from_config_js_without_query(page, local_stack):
    # The committed default points at the conventional local port.
    block_default_port(page)
    page.goto(local_stack.web_url + "/")
    page.wait_for_function("document.documentElement.dataset.apiBase !== undefined")
    assert page.evaluate("document.documentElement.dataset.apiBase") == "http://127.0.0.1:8000"
    assert page.get_by_test_id("api-source").text_content() == "(from config.js)"

    # A deploy-time config.js pointing at the stack is used as-is.
    deployed = {
        "apiBaseUrl": local_stack.api_url,
        "apiKey": local_stack.read_key,
        "pollIntervalMs": 1000,
    }
    page.route(
        "**/config.js",
        lambda route: route.fulfill(
            status=200,
            content_type="text/javascript",
            body=f"export default {json.dumps(deployed)};",
        ),
    )
    page.goto(local_stack.web_url + "/")
    wait_for_clean_refresh(page)
    assert page.evaluate("document.documentElement.dataset.apiBase") == local_stack.api_url
    assert page.get_by_test_id("poll-interval").text_content() == "1 s"
    assert page.get_by_test_id("card-total-events").get_attribute("data-value") != ""


def test_same_origin_when_config_js_is_missing(page, local_stack):
    page.route("**/config.js", lambda route: route.fulfill(status=404, body="not found"))
    page.goto(local_stack.web_url + "/")
    page.wait_for_function("document.documentElement.dataset.apiBase !== undefined")
    assert page.evaluate("document.documentElement.dataset.apiBase") == local_stack.web_url
    assert page.get_by_test_id("api-source").text_content() == "(from same origin)"


def test_bad_api_query_is_ignored_with_a_notice(page, local_stack):
    block_default_port(page)
    page.goto(local_stack.web_url + "/?api=javascript:alert(1)")
    page.wait_for_function("document.documentElement.dataset.apiBase !== undefined")
    assert page.evaluate("document.documentElement.dataset.apiBase") == "http://127.0.0.1:8000"
    assert "Ignoring ?api=" in page.get_by_test_id("config-warning").text_content()


# --- layout and accessibility ----------------------------------------------------------------

CONTRAST_JS = (Path(__file__).parent / "contrast.js").read_text()


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_layout_fits_and_text_meets_wcag_aa_contrast(page, local_stack, viewport):
    page.set_viewport_size(viewport)
    open_dashboard(page, local_stack)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= viewport["width"], f"horizontal scroll at {viewport['width']}px: {width}px"
    result = page.evaluate(CONTRAST_JS)
    assert result["checked"] > 30
    assert result["failures"] == []

    # Same check with the error banner showing (its colours are the ones that matter most).
    page.route(f"{local_stack.api_url}/**", lambda route: route.abort())
    page.get_by_test_id("error-banner").wait_for(state="visible", timeout=15_000)
    assert page.evaluate(CONTRAST_JS)["failures"] == []
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]


def test_every_card_shows_its_longest_figure_whole_at_every_width(page, local_stack):
    """The widest figures the cards format (money below the compact threshold, a duration)
    fit their cards at every width; "$99,999.99" was cut at 1,400 px."""
    page.route(f"{local_stack.api_url}/**", lambda route: route.abort())  # nothing overwrites
    page.goto(local_stack.web_url + "/")
    page.evaluate(
        """() => {
          const longest = {"card-revenue": "$99,999.99", "card-visit-duration": "59m 59s"};
          for (const dd of document.querySelectorAll(".card dd"))
            dd.textContent = longest[dd.dataset.testid] || "100.0%";
        }"""
    )
    cut = {}
    for width in (375, 560, 760, 1100, 1400, 1920):
        page.set_viewport_size({"width": width, "height": 900})
        cut[width] = page.evaluate(
            """() => [...document.querySelectorAll(".card dd")]
                .filter(dd => dd.scrollWidth > dd.clientWidth  // cut, or broken onto 2 lines
                  || dd.getBoundingClientRect().height > 1.5 * parseFloat(getComputedStyle(dd).lineHeight))
                .map(dd => dd.dataset.testid)"""
        )
    assert cut == {width: [] for width in cut}


def test_charts_are_labelled_and_have_text_alternatives(page, local_stack):
    open_dashboard(page, local_stack)
    # Keyboard users can skip the header: the first Tab stop is the skip link, and it works.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.classList.contains('skip-link')")
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    for test_id in ("chart-timeseries", "chart-event-types"):
        canvas = page.get_by_test_id(test_id)
        assert canvas.get_attribute("role") == "img"
        label = canvas.get_attribute("aria-label")
        assert label and len(label) > 20, label
        json.loads(canvas.get_attribute("data-points"))
    # The per-minute table holds the same 60 numbers as the chart.
    points = json.loads(page.get_by_test_id("chart-timeseries").get_attribute("data-points"))
    cells = page.locator('[data-testid="timeseries-table"] tbody td').all_text_contents()
    assert [int(c.replace(",", "")) for c in cells] == [p["events"] for p in points]
    # The event-type table matches the donut's data.
    donut = json.loads(page.get_by_test_id("chart-event-types").get_attribute("data-points"))
    rows = page.locator('[data-testid="event-types-table"] tbody tr')
    assert [
        {"type": r.get_attribute("data-type"), "count": int(r.get_attribute("data-count"))}
        for r in rows.all()
    ] == donut
    # Every section is headed, every card is labelled, and there is one h1 and one main.
    assert page.locator("h1").count() == 1
    assert page.locator("main").count() == 1
    assert page.locator(".card dt").count() == 14
    # The per-minute table is behind a disclosure; opening it shows a labelled, scrollable region.
    table = page.get_by_role("region", name="Events per minute table")
    assert table.count() == 0
    page.get_by_text("Show as table").click()
    table.wait_for(state="visible")
    assert table.get_by_role("row").count() == len(points) + 1


def test_refresh_cadence_follows_poll_setting(page, local_stack):
    open_dashboard(page, local_stack, "&poll=1000")
    refreshes = "Number(document.documentElement.dataset.refreshes)"
    start = page.evaluate(refreshes)
    began = time.monotonic()
    # Not stalled: three more refreshes come within 15 s (a deadline, not a measure)...
    page.wait_for_function(f"{refreshes} >= {start + 3}", timeout=15_000)
    elapsed = time.monotonic() - began
    # ...and not in a burst: at one per second, the third cannot come within 1.5 s.
    assert elapsed >= 1.5, f"3 refreshes in {elapsed:.2f} s with poll=1000"
