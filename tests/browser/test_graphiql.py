"""GraphiQL as `make local` serves it: the page loads GraphiQL and React from the stack's own
static server (no CDN), fetches the schema with the stack's read key, and runs its example
query against ``/graphql``."""

from __future__ import annotations

import json
import re


def test_graphiql_runs_its_example_against_the_stack(page, local_stack):
    requests_seen: list[str] = []
    page.on("request", lambda request: requests_seen.append(request.url))
    page.goto(f"{local_stack.web_url}/graphiql/")
    page.wait_for_selector(".graphiql-editor", timeout=20_000)
    # The schema arrived by introspection: the docs explorer lists the Query type's fields.
    page.get_by_role("button", name=re.compile("documentation", re.I)).click()
    page.get_by_text("Query", exact=True).first.click()
    page.get_by_text("pageViews", exact=True).first.wait_for(timeout=10_000)

    with page.expect_response(
        lambda r: r.url.endswith("/graphql") and "pageViews" in (r.request.post_data or "")
    ) as answered:
        page.locator(".graphiql-execute-button").click()
    response = answered.value
    assert response.status == 200
    body = response.json()
    assert "errors" not in body, body
    assert set(body["data"]) == {"pageViews", "stats", "breakdown", "realtime"}
    assert response.request.headers["x-api-key"] == local_stack.read_key
    # The answer is shown: the result pane's first lines hold the same JSON (the pane draws
    # only the lines in view, so a field far down the answer may not be in the page at all).
    pane = page.locator(".result-window")
    pane.get_by_text('"pageViews"').first.wait_for(timeout=10_000)
    assert f'"pageViews": {body["data"]["pageViews"]}' in pane.inner_text()
    outside = [url for url in requests_seen if not url.startswith(("http://127.0.0.1", "data:"))]
    assert outside == [], f"GraphiQL fetched from outside the stack: {outside}"
    assert page.js_errors == []
    assert json.dumps(body["data"]["pageViews"]).isdigit()
