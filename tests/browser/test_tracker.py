"""The tracker (``tracker/cs.js``) in real Chromium against the local stack: navigations,
clicks, single-page-app routes, events sent as the page unloads, offline then online. Each
event must end in the aggregates (``/stats``) and in the archive exactly once."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from tests.browser.site import customer_site
from tests.delivery import counted_once, delivered

PAGE = """<!doctype html><html><head><title>{title}</title>
<script defer src="{web}/cs.js" data-api="{api}" data-key="{key}" {options}></script></head>
<body>
<a id="internal" href="{site}/tracker-test/b">next page</a>
<a id="outbound" href="https://elsewhere.example/offer">elsewhere</a>
<button id="signup" data-cs-event="signup" data-cs-plan="pro">Sign up</button>
<button id="spa" onclick="history.pushState({{}}, '', '/tracker-test/spa/1')">SPA route</button>
</body></html>"""


OPTIONS = {
    "": "",
    "slow": 'data-flush-ms="60000"',
    "fast": 'data-flush-ms="100"',
    "pairs": 'data-flush-ms="60000" data-batch-size="2"',
    "cookieless": "data-cookieless",
    "dnt": "data-respect-dnt",
}


@pytest.fixture(scope="module")
def site(local_stack) -> Iterator[str]:
    """The customer's pages, each carrying the snippet; ``?o=`` picks its options."""

    def render(path: str, query: dict[str, str], base: str) -> tuple[bytes, str]:
        page = PAGE.format(
            title=f"page {path}",
            web=local_stack.web_url,
            api=local_stack.api_url,
            key=local_stack.write_key,
            options=OPTIONS[query.get("o", "")],
            site=base,
        )
        return page.encode(), "text/html"

    with customer_site(render) as base:
        yield base


@pytest.fixture
def shop(site, visitor):
    page = visitor
    page.route("https://elsewhere.example/**", lambda route: route.fulfill(body="away"))
    page.site = site
    return page


def start(shop, local_stack, path="a?utm_source=newsletter&utm_medium=email", options=""):
    separator = "&" if "?" in path else "?"
    shop.goto(f"{shop.site}/tracker-test/{path}{separator}o={options}")
    shop.wait_for_function("window.cs && cs.stats")
    return datetime.now(UTC)


def anonymous_id(shop) -> str:
    return shop.evaluate("localStorage.getItem('_cs_id')")


def check_once(local_stack, rows, expected_types):
    ids = [row["event_id"] for row in rows]
    assert len(ids) == len(set(ids)), "an event was archived twice"
    assert Counter(row["event_type"] for row in rows) == Counter(expected_types)
    assert set(counted_once(local_stack, ids).values()) == {1}


def test_page_views_clicks_and_spa_routes_arrive_once(shop, local_stack):
    since = start(shop, local_stack)
    device = anonymous_id(shop)
    shop.click("#signup")
    shop.click("#spa")
    shop.wait_for_url("**/spa/1")
    shop.go_back()  # popstate
    shop.wait_for_function("location.pathname.endsWith('/a')")
    shop.click("#internal")  # a click, then the page unloads and the next one loads
    shop.wait_for_url("**/tracker-test/b")
    shop.wait_for_function("window.cs")
    shop.click("#outbound")
    shop.wait_for_url("https://elsewhere.example/offer")

    rows = delivered(local_stack, since, lambda r: r["anonymous_id"] == device, expected=8)
    check_once(
        local_stack,
        rows,
        ["page_view"] * 4 + ["signup", "click", "click", "outbound_click"],
    )
    by_type = {row["event_type"]: row for row in rows}
    assert by_type["signup"]["properties"] and '"plan":"pro"' in by_type["signup"]["properties"]
    landing = min((r for r in rows if r["event_type"] == "page_view"), key=lambda r: r["timestamp"])
    assert "utm_source=newsletter" in landing["page_url"]
    assert {r["page"] for r in rows if r["event_type"] == "page_view"} == {
        "/tracker-test/a",
        "/tracker-test/spa/1",
        "/tracker-test/b",
    }
    assert len({r["session_id"] for r in rows}) == 1
    assert '"timezone":"UTC"' in landing["properties"]


def test_the_page_view_of_a_load_waits_for_its_batch_like_any_event(shop, local_stack):
    """Batches of two: the page view goes with the next event, in one request (it once went
    alone at once, whatever the batch settings)."""
    with shop.expect_request(lambda r: "/events" in r.url and r.method == "POST") as sent:
        start(shop, local_stack, options="pairs")
        shop.evaluate("cs.track('Second')")
    body = json.loads(sent.value.post_data or "{}")
    assert [r["event_type"] for r in body["records"]] == ["page_view", "second"]
    assert body["sent_at"] >= body["records"][-1]["timestamp"]  # the device's clock, to correct


def test_events_tracked_as_the_page_unloads_are_sent_by_beacon(shop, local_stack):
    since = start(shop, local_stack, options="slow")
    device = anonymous_id(shop)
    shop.evaluate("for (let i = 0; i < 3; i++) cs.track('Leaving', {n: i})")
    shop.goto("about:blank")  # another origin: only the beacon can deliver them

    rows = delivered(local_stack, since, lambda r: r["anonymous_id"] == device, expected=4)
    check_once(local_stack, rows, ["page_view", "leaving", "leaving", "leaving"])
    # A name as people write them is sent as an event type, the name kept.
    assert all(
        '"event_name":"Leaving"' in r["properties"] for r in rows if r["event_type"] == "leaving"
    )


def test_offline_events_wait_and_survive_a_page_load(shop, local_stack):
    since = start(shop, local_stack)
    device = anonymous_id(shop)
    shop.wait_for_function("JSON.parse(localStorage.getItem('_cs_q') || '[]').length === 0")
    shop.context.set_offline(True)
    shop.evaluate("cs.track('offline_one'); cs.track('offline_two'); cs.flush()")
    shop.wait_for_timeout(500)
    assert shop.evaluate("JSON.parse(localStorage.getItem('_cs_q')).length") == 2
    shop.goto("about:blank")  # offline: nothing can leave, the queue stays stored
    shop.context.set_offline(False)
    shop.goto(f"{shop.site}/tracker-test/c")  # the next page sends what was left

    rows = delivered(local_stack, since, lambda r: r["anonymous_id"] == device, expected=4)
    check_once(local_stack, rows, ["page_view", "offline_one", "offline_two", "page_view"])


def test_two_tabs_offline_keep_each_others_events_in_the_stored_queue(shop, local_stack):
    """Each tab saved its own queue over the other's: one tab's offline events were lost."""
    since = start(shop, local_stack)
    device = anonymous_id(shop)
    other = shop.context.new_page()
    other.goto(f"{shop.site}/tracker-test/b")
    other.wait_for_function("window.cs && cs.stats")
    for tab in (shop, other):
        tab.wait_for_function("JSON.parse(localStorage.getItem('_cs_q') || '[]').length === 0")
    shop.context.set_offline(True)
    shop.evaluate("cs.track('tab_one')")
    other.evaluate("cs.track('tab_two')")
    shop.evaluate("cs.track('tab_one_again')")
    stored = shop.evaluate("JSON.parse(localStorage.getItem('_cs_q')).map(r => r.event_type)")
    # (a page view another tab sent for this one may be stored again: sent twice, kept once)
    assert {"tab_one", "tab_one_again", "tab_two"} <= set(stored)
    other.close()
    shop.goto("about:blank")
    shop.context.set_offline(False)
    shop.goto(f"{shop.site}/tracker-test/c")  # the next page sends what both left
    rows = delivered(local_stack, since, lambda r: r["anonymous_id"] == device, expected=6)
    check_once(
        local_stack,
        rows,
        ["page_view", "page_view", "tab_one", "tab_two", "tab_one_again", "page_view"],
    )


def test_a_queue_past_the_apis_request_limit_goes_in_several_requests(shop, local_stack):
    """100 events of about 10.5 KB each, queued offline, are more than the API's 1 MiB a request:
    sent as one they were all refused (413, never retried). Now none is refused."""
    since = start(shop, local_stack, path="big?pad=" + "p" * 1980)
    device = anonymous_id(shop)
    shop.wait_for_function("JSON.parse(localStorage.getItem('_cs_q') || '[]').length === 0")
    shop.context.set_offline(True)
    shop.evaluate("for (let i = 0; i < 100; i++) cs.track('big_one', {blob: 'x'.repeat(8100)})")
    shop.context.set_offline(False)
    shop.evaluate("cs.flush()")
    rows = delivered(local_stack, since, lambda r: r["anonymous_id"] == device, expected=101)
    # each once in the archive (the feed, which check_once reads, holds fewer than 101)
    assert len({row["event_id"] for row in rows}) == len(rows) == 101
    assert Counter(row["event_type"] for row in rows) == {"page_view": 1, "big_one": 100}
    assert shop.evaluate("cs.stats.dropped") == 0  # no request was refused as too large


def test_a_refused_request_counts_every_event_it_carried_as_dropped(shop, local_stack):
    shop.route(
        f"{local_stack.api_url}/events**",
        lambda route: route.fulfill(
            status=403,
            headers={"Access-Control-Allow-Origin": "*"},
            body='{"status":"rejected","errors":[{"index":null,"field":"key","message":"no"}]}',
        ),
    )
    start(shop, local_stack, options="fast")
    shop.wait_for_function("cs.stats.dropped === 1", timeout=15_000)  # the page view
    shop.evaluate("cs.track('a'); cs.track('b'); cs.track('c'); cs.flush()")
    shop.wait_for_function("cs.stats.dropped === 4", timeout=15_000)
    assert shop.evaluate("cs.stats.sent") == 0


def test_page_and_track_take_a_name_or_properties_and_nothing_else_as_properties(shop, local_stack):
    since = start(shop, local_stack)
    device = anonymous_id(shop)
    shop.evaluate("cs.page('Pricing'); cs.track('plain', 'hello'); cs.track('listed', [1, 2])")
    # names with no Latin letter, or with one outside ASCII
    shop.evaluate("cs.track('購入'); cs.track('登録'); cs.track('Café'); cs.track('Cafè')")
    # no name: refused on the page, counted, and nothing sent
    errors: list[str] = []
    shop.on("console", lambda message: errors.append(message.text))  # (the page's own, too)
    shop.evaluate("cs.track(''); cs.track(' \\t'); cs.track(); cs.track(null, {a: 1})")
    assert shop.evaluate("cs.stats.dropped") == 4
    # a blank data-cs-event names nothing: the button's click is a click, and a click on a
    # blank-named part of a link is the link's (a span alone is not clickable: nothing)
    shop.evaluate(
        """document.body.insertAdjacentHTML('beforeend',
          '<button id="blank" data-cs-event=" ">Blank</button>' +
          '<a href="https://elsewhere.example/x"><span id="inner" data-cs-event="">Away</span></a>' +
          '<span id="loose" data-cs-event=" ">Loose</span>');
        document.getElementById('inner').addEventListener('click', (e) => e.preventDefault());"""
    )
    shop.click("#blank")
    shop.click("#loose")
    shop.click("#inner")
    shop.evaluate("cs.flush()")
    rows = delivered(local_stack, since, lambda r: r["anonymous_id"] == device, expected=10)
    assert len(rows) == 10
    away = [json.loads(row["properties"]) for row in rows if row["event_type"] == "outbound_click"]
    assert [(link["href"], link["text"]) for link in away] == [
        ("https://elsewhere.example/x", "Away")
    ]
    assert [text for text in errors if text.startswith("cs.")] == [
        "cs.track: the event needs a name"
    ] * 4
    clicks = [row for row in rows if row["event_type"] == "click"]
    assert [json.loads(row["properties"])["text"] for row in clicks] == ["Blank"]
    beyond_ascii = {
        row["event_type"]: json.loads(row["properties"])["event_name"]
        for row in rows
        if row["event_type"].startswith(("event_", "caf_"))
    }
    # one type per name, each name kept as sent
    assert sorted(beyond_ascii.values()) == sorted(["購入", "登録", "Café", "Cafè"])
    by_type = {row["event_type"]: row for row in rows if row["event_type"] != "page_view"}
    pricing = [
        row
        for row in rows
        if row["event_type"] == "page_view" and "Pricing" in (row["properties"] or "")
    ]
    assert len(pricing) == 1 and '"0"' not in pricing[0]["properties"]
    assert (
        '"0"' not in by_type["plain"]["properties"] and '"0"' not in by_type["listed"]["properties"]
    )


def test_cookieless_mode_stores_nothing_and_visits_are_still_grouped(shop, local_stack):
    tag = f"cookieless_{uuid.uuid4().hex[:8]}"
    since = start(shop, local_stack, options="cookieless")
    shop.evaluate(f"cs.track('{tag}'); cs.flush()")
    assert shop.evaluate("document.cookie") == ""
    assert shop.evaluate("localStorage.length") == 0
    rows = delivered(local_stack, since, lambda r: r["event_type"] == tag, expected=1)
    assert len(rows) == 1
    assert rows[0]["anonymous_id"] is None and rows[0]["session_id"] is None


def test_global_privacy_control_is_honoured_when_configured(shop, local_stack):
    shop.add_init_script("Object.defineProperty(navigator, 'globalPrivacyControl', {value: true})")
    sent: list[str] = []
    shop.on("request", lambda r: sent.append(r.url) if "/events" in r.url else None)
    start(shop, local_stack, options="dnt")
    shop.evaluate("cs.track('should_not_leave'); cs.flush()")
    shop.wait_for_timeout(500)
    assert shop.evaluate("cs.disabled") is True and sent == []


def test_refusals_are_not_retried_and_429_waits_for_retry_after(shop, local_stack):
    calls: list[tuple[float, int]] = []
    statuses = iter([429, 400])

    def answer(route):
        status = next(statuses, None)
        calls.append((datetime.now(UTC).timestamp(), status or 200))
        if status == 429:
            route.fulfill(
                status=429,
                headers={
                    "Retry-After": "2",
                    "Access-Control-Allow-Origin": "*",
                    "Access-Control-Expose-Headers": "Retry-After",  # as the API does
                },
                body="{}",
            )
        elif status == 400:
            body = (
                '{"status":"rejected","errors":[{"index":0,"field":"event_type","message":"bad"}]}'
            )
            route.fulfill(status=400, headers={"Access-Control-Allow-Origin": "*"}, body=body)
        else:
            route.continue_()

    shop.route(f"{local_stack.api_url}/events**", answer)
    start(shop, local_stack, options="fast")
    shop.wait_for_function("cs.stats.dropped === 1", timeout=15_000)
    shop.wait_for_timeout(1000)
    assert [status for _, status in calls] == [429, 400]  # the 400 was never sent again
    assert calls[1][0] - calls[0][0] >= 2.0


def test_the_dashboard_links_the_demo_shop_whose_clicks_show_up_in_seconds(visitor, local_stack):
    page = visitor
    since = datetime.now(UTC)
    page.goto(f"{local_stack.web_url}/?api={local_stack.api_url}&key={local_stack.read_key}")
    link = page.get_by_test_id("demo-link")
    link.wait_for(state="visible")
    dashboard = page.url
    link.click()
    page.wait_for_url("**/demo/**")
    page.wait_for_function("window.cs && cs.stats")
    session = page.evaluate("localStorage.getItem('_cs_s').split('.')[0]")
    page.get_by_role("link", name="Rain jacket").click()
    page.wait_for_url("**/demo/product/sku-2*")
    page.get_by_role("button", name="Add to cart").click()
    page.get_by_role("link", name="Dashboard").click()
    page.wait_for_url(dashboard)
    # The live feed shows the shop's add_to_cart within seconds of the click.
    page.wait_for_function(
        "[...document.querySelectorAll('[data-testid=feed-item][data-event-type=add_to_cart]')]"
        ".some(li => li.textContent.includes('/demo/product/sku-2'))",
        timeout=20_000,
    )
    feed = local_stack.get("/stats")["recent_events"]
    mine = [e["event_type"] for e in feed if e.get("session_id") == session]
    assert sorted(mine) == ["add_to_cart", "click", "click", "page_view", "page_view"]
    # The dashboard's address holds the read key: no event of the shop's stores it (in its
    # page_url or referrer, the fields the archive keeps whole).
    rows = delivered(local_stack, since, lambda r: r["session_id"] == session, expected=5)
    assert sorted(row["event_type"] for row in rows) == sorted(mine)
    assert all(row["page_url"] for row in rows)
    assert local_stack.read_key in page.url
    assert local_stack.read_key not in json.dumps(rows, default=str)
    assert page.js_errors == []
