"""The web-analytics panels and the range picker in real Chromium against the local stack:
every number on the page is the one the API computed for the chosen period, and the visits
this test sends show up where they should (sources, devices, places, entry/exit, goals)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from tests.browser.support import PHONE
from tests.browser.test_dashboard import (
    PIPELINE_TIMEOUT_S,
    api_get,
    eventually,
    open_dashboard,
    screenshot,
    wait_for_clean_refresh,
    wait_for_quiet_pipeline,
)
from tests.factories import user_agents

pytestmark = pytest.mark.browser

BREAKDOWNS = (
    "channel", "source", "referrer", "utm_campaign", "device_type", "browser", "os",
    "country", "city", "entry_page", "exit_page",
)  # fmt: skip
CARDS = {
    "visitors": "visitors",
    "bounce-rate": "bounce_rate",
    "visit-duration": "avg_visit_duration_s",
    "pages-per-visit": "pages_per_visit",
    "bots": "bots_excluded",
    "total-events": "total_events",
}
READ_PANELS_JS = """
(dimensions) => {
  const q = (id) => document.querySelector(`[data-testid="${id}"]`);
  const rows = (table) => [...table.querySelectorAll("tbody tr")].map((tr) => ({
    value: tr.dataset.value, count: Number(tr.dataset.count), other: tr.dataset.testid === "breakdown-other",
  }));
  const breakdowns = {};
  for (const d of dimensions) breakdowns[d] = rows(q(`breakdown-${d}`));
  const cards = {};
  for (const id of CARD_IDS) cards[id] = q("card-" + id).dataset.value === "" ? null : Number(q("card-" + id).dataset.value);
  const goals = [...document.querySelectorAll('[data-testid="goal-row"]')].map((tr) => ({
    goal: tr.dataset.goal, visits: Number(tr.dataset.visits), rate: Number(tr.dataset.rate),
  }));
  return {
    breakdowns, cards, goals,
    realtime: JSON.parse(q("realtime-minutes").dataset.points || "[]"),
    period: document.documentElement.dataset.period,
    refreshes: Number(document.documentElement.dataset.refreshes || 0),
  };
}
""".replace("CARD_IDS", json.dumps(list(CARDS)))


def visits(run: str) -> list[dict[str, Any]]:
    """Five visits from five places, sources and devices, a goal, and two crawler hits."""
    ua = user_agents()
    site = "https://shop.example"
    campaign = f"{site}/landing-{run}?utm_source=newsletter&utm_medium=email&utm_campaign=c-{run}"

    def visit(name: str, pages: list[str], **fields: Any) -> list[dict[str, Any]]:
        return [
            {"event_type": "page_view", "session_id": f"wa-{run}-{name}", "page": page,
             "page_url": site + page, **fields}
            for page in pages
        ]  # fmt: skip

    return [
        *visit("a", [f"/landing-{run}", f"/pricing-{run}"], page_url=campaign,
               user_agent=ua["iphone_safari"], location={"country": "IS", "city": "Reykjavik"}),
        {"event_type": f"signup_{run}", "session_id": f"wa-{run}-a"},
        *visit("b", [f"/landing-{run}"], referrer="https://www.google.com/",
               user_agent=ua["windows_chrome"], location={"country": "IS"}),
        *visit("c", [f"/blog-{run}", f"/landing-{run}", f"/pricing-{run}"],
               referrer="https://news.ycombinator.com/", user_agent=ua["android_chrome"]),
        *visit("d", [f"/landing-{run}"], user_agent=ua["ipad_safari"], anonymous_id=f"dev-{run}"),
        *visit("bot", [f"/landing-{run}", f"/pricing-{run}"], user_agent=ua["googlebot"]),
        # The goal in two more visits, after their page views: enough to be among the top ten
        # goals of a day on which earlier tests sent a custom type or two each.
        *({"event_type": f"signup_{run}", "session_id": f"wa-{run}-{v}"} for v in "bc"),
    ]  # fmt: skip


def mismatches(page: Any, stack: Any, period_query: str) -> list[str]:
    shown = page.evaluate(READ_PANELS_JS, list(BREAKDOWNS))
    problems = []
    stats = api_get(stack, f"/stats?{period_query}")
    for card, field in CARDS.items():
        if shown["cards"][card] != pytest.approx(stats[field]):
            problems.append(f"card {card}: page {shown['cards'][card]} != API {stats[field]}")
    for dimension in BREAKDOWNS:
        api = api_get(stack, f"/breakdown?dimension={dimension}&limit=10&{period_query}")
        want = [{"value": r["value"], "count": r["count"], "other": False} for r in api["rows"]]
        if api["other"]:
            want.append({"value": "", "count": api["other"], "other": True})
        if shown["breakdowns"][dimension] != want:
            problems.append(f"{dimension}: page {shown['breakdowns'][dimension]} != API {want}")
    goals = api_get(stack, f"/goals?limit=10&{period_query}")["goals"]
    want_goals = [
        {"goal": g["goal"], "visits": g["visits"], "rate": g["conversion_rate"]} for g in goals
    ]
    if shown["goals"] != want_goals:
        problems.append(f"goals: page {shown['goals']} != API {want_goals}")
    return problems


def rows_of(page: Any, dimension: str) -> dict[str, int]:
    shown = page.evaluate(READ_PANELS_JS, list(BREAKDOWNS))["breakdowns"][dimension]
    return {row["value"]: row["count"] for row in shown if not row["other"]}


def test_every_panel_shows_what_the_api_computed_for_the_chosen_period(
    page, local_stack, screenshots
):
    run = uuid.uuid4().hex[:8]
    wait_for_quiet_pipeline(local_stack)
    sent = local_stack.post_events(visits(run))
    assert sent["failed"] == 0, sent
    open_dashboard(page, local_stack, "&period=today")
    assert page.evaluate("document.documentElement.dataset.period") == "today"

    def ours_arrived() -> list[str]:
        campaigns = rows_of(page, "utm_campaign")
        goals = {g["goal"] for g in page.evaluate(READ_PANELS_JS, list(BREAKDOWNS))["goals"]}
        missing = [] if campaigns.get(f"c-{run}") == 1 else [f"campaign row: {campaigns}"]
        return missing + ([] if f"signup_{run}" in goals else [f"goal signup_{run}: {goals}"])

    eventually(local_stack, ours_arrived, timeout=PIPELINE_TIMEOUT_S)
    wait_for_quiet_pipeline(local_stack)
    eventually(local_stack, lambda: mismatches(page, local_stack, "period=today"), timeout=30)
    entries = rows_of(page, "entry_page")
    exits = rows_of(page, "exit_page")
    assert entries.get(f"/landing-{run}") == 3 and entries.get(f"/blog-{run}") == 1
    assert exits.get(f"/pricing-{run}") == 2 and exits.get(f"/landing-{run}") == 2
    assert "IS" in rows_of(page, "country") and "Reykjavik" in rows_of(page, "city")
    # Switching tabs shows another table of the same panel.
    page.get_by_test_id("tab-browser").click()
    assert page.get_by_test_id("breakdown-browser").is_visible()
    assert page.get_by_test_id("breakdown-device_type").is_hidden()
    screenshot(page, screenshots, "web-analytics-today-1280.png")

    # The range picker: each period's numbers are the API's for that period.
    for period in ("realtime", "7d", "all"):
        page.get_by_test_id(f"period-{period}").click()
        page.wait_for_function(f"document.documentElement.dataset.period === '{period}'")
        wait_for_clean_refresh(page)
        assert f"period={period}" in page.url or period == "all"
        eventually(local_stack, lambda p=period: mismatches(page, local_stack, f"period={p}"), 30)
        # "right now"'s breakdowns are read in whole hours, and the panels say since when
        span = page.get_by_test_id("panel-sources").locator("[data-period-sub]").text_content()
        assert ("whole hours, since" in (span or "")) == (period == "realtime"), span
    shown = page.evaluate(READ_PANELS_JS, list(BREAKDOWNS))
    assert len(shown["realtime"]) == 30 and sum(m["events"] for m in shown["realtime"]) >= 8

    # A custom range from the form (local time inputs), read back as period=custom.
    page.get_by_test_id("period-custom").click()
    page.get_by_test_id("period-from").fill("2020-01-01T00:00")
    page.get_by_test_id("period-apply").click()
    page.wait_for_function("document.documentElement.dataset.period === 'custom'")
    wait_for_clean_refresh(page)
    assert "period=custom" in page.url
    assert page.evaluate(READ_PANELS_JS, list(BREAKDOWNS))["cards"]["visitors"] >= 4

    page.set_viewport_size(PHONE)
    page.get_by_test_id("period-today").click()
    wait_for_clean_refresh(page)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    screenshot(page, screenshots, "web-analytics-phone-375.png")
    assert page.js_errors == []


def test_big_numbers_fit_their_cards(page, local_stack):
    """Revenue and counts past 100,000 read as 461.7K, with every digit in the title."""
    open_dashboard(page, local_stack)
    page.evaluate(
        """() => import('./views.js').then((views) => views.renderStatsCards(document, {
             total_events: 123456789, revenue: 46174203.6, sessions: 99999, visitors: 1234567,
             events_by_type: {}}, 'USD'))"""
    )
    card = page.get_by_test_id("card-revenue")
    assert card.text_content() == "$46.2M" and card.get_attribute("title") == "$46,174,203.60"
    assert page.get_by_test_id("card-total-events").text_content() == "123.5M"
    assert page.get_by_test_id("card-sessions").text_content() == "99,999"
    for test_id in ("card-revenue", "card-total-events", "card-visitors"):
        box = page.get_by_test_id(test_id).evaluate("e => [e.scrollWidth, e.clientWidth]")
        assert box[0] <= box[1], f"{test_id} overflows its card: {box}"
