"""The read routes of web analytics and geo at ingest, in process: chalice's test client
over moto's mock of AWS (a stream, the aggregates and keys tables)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.unit.route_support import aggregate_what_was_sent, get, post


def test_visitors_sources_places_and_goals_come_back_from_the_routes(api):
    post(
        api,
        [
            {
                "event_type": "page_view",
                "session_id": "s1",
                "page": "/",
                "anonymous_id": "d1",
                "page_url": "https://shop.example/?utm_source=news&utm_medium=email",
            },
            {"event_type": "signup", "session_id": "s1", "anonymous_id": "d1"},
            {
                "event_type": "page_view",
                "session_id": "s2",
                "page": "/",
                "anonymous_id": "d2",
                "referrer": "https://www.bing.com/",
            },
        ],
        **{"CloudFront-Viewer-Country": "NZ", "CloudFront-Viewer-City": "Auckland"},
    )
    aggregate_what_was_sent()
    status, stats = get(api, "/stats?period=today")
    assert status == 200
    assert (stats["visitors"], stats["visits"], stats["bounce_rate"]) == (2, 2, 1.0)
    status, channels = get(api, "/breakdown?dimension=channel&period=7d")
    assert {r["value"]: r["count"] for r in channels["rows"]} == {"Email": 1, "Organic Search": 1}
    _, cities = get(api, "/breakdown?dimension=city")
    assert cities["rows"] == [{"value": "Auckland", "count": 2}]
    _, goals = get(api, "/goals?period=today")
    assert goals["goals"] == [{"goal": "signup", "visits": 1, "conversion_rate": 0.5}]
    _, live = get(api, "/realtime")
    assert live["visitors_now"] == 2 and len(live["minutes"]) == 30
    _, funnel = get(api, "/funnel?period=realtime")
    assert (funnel["period"], funnel["sessions"]) == ("realtime", 2)
    _, board = get(api, "/dashboard?period=realtime&limit=5")
    assert board["breakdowns"]["country"]["rows"] == [{"value": "NZ", "count": 2}]
    assert board["stats"]["visitors"] == 2
    # A date as 'to' is that whole day, on every route alike.
    today = datetime.now(UTC).date().isoformat()
    one_day = f"from={today}&to={today}"
    _, day = get(api, f"/stats?{one_day}")
    assert (day["to"], day["total_events"], day["visits"]) == (f"{today}T23:59:59.999999Z", 3, 2)
    _, day_funnel = get(api, f"/funnel?{one_day}")
    assert (day_funnel["to"], day_funnel["sessions"]) == (day["to"], 2)
    _, day_goals = get(api, f"/goals?{one_day}")
    assert day_goals["goals"] == goals["goals"]
    _, day_series = get(api, f"/metrics/timeseries?granularity=day&{one_day}")
    assert [point["events"] for point in day_series["points"]] == [3]
    assert day_series["to"] == day["to"]  # the range named alike


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/breakdown?dimension=shoe_size", "dimension"),
        ("/breakdown", "dimension"),
        ("/breakdown?dimension=page&limit=0", "limit"),
        ("/stats?period=fortnight", "period"),
        ("/goals?period=custom", "from"),
        ("/dashboard?period=today&from=2026-01-01", "period"),
        ("/breakdown?dimension=page&period=custom&from=yesterday", "from"),
    ],
)
def test_a_bad_parameter_is_a_400_naming_it(api, path, field):
    status, body = get(api, path)
    assert (status, body["field"]) == (400, field), body


def test_the_dashboard_answers_only_the_sections_asked_for(api):
    status, fast = get(api, "/dashboard?sections=stats,realtime&period=today")
    assert status == 200 and set(fast) == {"period", "stats", "realtime"}
    status, body = get(api, "/dashboard?sections=stats,gossip")
    assert (status, body["field"]) == (400, "sections")
