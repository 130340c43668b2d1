"""``/graphql`` in process (chalice's test client over moto): every field answers what its REST
route answers, abusive queries are refused before they run, and bad requests say why."""

from __future__ import annotations

import json
import logging
import random
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from graphql import GraphQLList, GraphQLNonNull, GraphQLObjectType, get_named_type
from hypothesis import HealthCheck, given, settings
from hypothesis_graphql import from_schema

from clickstream.graphql import (
    MAX_BODY_BYTES,
    MAX_COST,
    MAX_DEPTH,
    MAX_GET_QUERY_BYTES,
    MAX_QUERY_BYTES,
    SCHEMA,
    SCHEMA_SDL,
)
from tests.unit.route_support import aggregate_what_was_sent, get, post

# Each Query field, the REST route answering the same, and the arguments both take.
EQUIVALENT = [
    ("stats", {}, "/stats"),
    ("stats", {"period": "today"}, "/stats?period=today"),
    ("timeseries", {"granularity": "hour"}, "/metrics/timeseries?granularity=hour"),
    ("funnel", {}, "/funnel"),
    ("funnel", {"period": "7d"}, "/funnel?period=7d"),
    ("topPages", {"limit": 3}, "/pages/top?limit=3"),
    ("breakdown", {"dimension": "page", "limit": 2}, "/breakdown?dimension=page&limit=2"),
    (
        "breakdown",
        {"dimension": "channel", "period": "30d"},
        "/breakdown?dimension=channel&period=30d",
    ),
    ("breakdown", {"dimension": "event_type"}, "/breakdown?dimension=event_type"),
    ("goals", {"period": "today"}, "/goals?period=today"),
    ("realtime", {}, "/realtime"),
]
ENUM_ARGUMENTS = {"dimension", "granularity"}
# Maps in the REST answers, lists of pairs in GraphQL (GraphQL has no map type).
MAPS = {"events_by_type": "eventType", "by_type": "eventType"}
JSON_VALUES = {"recent_events"}  # events as the stream carries them (the JSON scalar)
# "now" where the answer was made: the named periods end then.
VOLATILE = {"updatedAt", "to"}


def graphql(api: dict[str, Any], query: str, **extra: Any) -> tuple[int, dict[str, Any]]:
    response = api["client"].http.post(
        "/graphql",
        body=json.dumps({"query": query, **extra}),
        headers={"Content-Type": "application/json", "X-Api-Key": api["read"]},
    )
    return response.status_code, json.loads(response.body)


def selection(type_: Any) -> str:
    """Every field of an object type, nested objects in full."""
    named = get_named_type(type_)
    if not isinstance(named, GraphQLObjectType):
        return ""
    return "{ " + " ".join(f"{name} {selection(f.type)}" for name, f in named.fields.items()) + " }"


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def as_graphql(value: Any) -> Any:
    """A REST answer as the GraphQL field would give it: camelCase keys, maps as lists."""
    if isinstance(value, dict):
        return {
            camel(key): (
                [{MAPS[key]: k, "count": v} for k, v in item.items()]
                if key in MAPS
                else item
                if key in JSON_VALUES
                else as_graphql(item)
            )
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [as_graphql(item) for item in value]
    return value


def visits(seed: int) -> list[dict[str, Any]]:
    """Visits from a few sources over a handful of pages, some converting."""
    rng = random.Random(seed)
    records: list[dict[str, Any]] = []
    for visit in range(rng.randint(6, 14)):
        session, device = f"s{seed}-{visit}", f"d{seed}-{rng.randint(0, 5)}"
        source = rng.choice(
            ["", "https://www.google.com/", "https://news.ycombinator.com/", "?utm_source=mail"]
        )
        for step in range(rng.randint(1, 4)):
            page = rng.choice(["/", "/home", "/pricing", "/products/42-shoe", "/blog/a"])
            records.append(
                {
                    "event_type": "page_view",
                    "session_id": session,
                    "anonymous_id": device,
                    "page": page,
                    "page_url": "https://shop.example" + page + (source if step == 0 else ""),
                    "referrer": source if source.startswith("http") and step == 0 else None,
                }
            )
        for event_type in rng.sample(["add_to_cart", "checkout", "purchase", "signup"], 2):
            records.append(
                {
                    "event_type": event_type,
                    "session_id": session,
                    "anonymous_id": device,
                    "value": rng.choice([None, 12.5, 40]),
                }
            )
    return [{k: v for k, v in r.items() if v is not None} for r in records]


def _arguments(arguments: dict[str, Any]) -> str:
    if not arguments:
        return ""
    listed = ", ".join(
        f"{k}: {v if k in ENUM_ARGUMENTS else json.dumps(v)}" for k, v in arguments.items()
    )
    return f"({listed})"


@pytest.mark.parametrize("seed", [1, 2])
def test_every_field_answers_what_its_rest_route_answers(api, seed):
    post(api, visits(seed))
    aggregate_what_was_sent()
    fields = SCHEMA.query_type.fields
    for _ in range(10):  # the minute must not turn between the two reads (slow on a busy machine)
        minute = datetime.now(UTC).replace(second=0, microsecond=0)
        answers = []
        for name, arguments, path in EQUIVALENT:
            status, body = graphql(
                api, f"{{ {name}{_arguments(arguments)} {selection(fields[name].type)} }}"
            )
            assert status == 200 and "errors" not in body, body
            rest_status, rest = get(api, path)
            assert rest_status == 200, rest
            answers.append((name, path, body["data"][name], as_graphql(rest)))
        if datetime.now(UTC).replace(second=0, microsecond=0) == minute:
            break
    else:
        pytest.fail("every round of reads crossed a minute boundary")
    for name, path, data, expected in answers:
        for key in VOLATILE if name != "timeseries" else ("updatedAt",):
            data.pop(key, None), expected.pop(key, None)
        # The funnel over a day range has no period; GraphQL says null where REST leaves out.
        assert data == {key: expected.get(key) for key in data}, (name, path)
        assert set(expected) <= set(data), f"{path} answers {set(expected) - set(data)} too"


def test_the_seed_query_works_as_written_and_counts_like_the_rest_route(api):
    post(
        api, [{"event_type": "page_view", "session_id": f"s{i}", "page": "/home"} for i in range(3)]
    )
    post(api, [{"event_type": "page_view", "session_id": "s9", "page": "/about"}])
    aggregate_what_was_sent()
    status, body = graphql(api, '{ pageViews(pageURL: "/home") }')
    assert (status, body) == (200, {"data": {"pageViews": 3}})
    assert get(api, "/analytics/page-views/home")[1]["page_views"] == 3
    # GET, for simple queries; "home" and "/home" are one page, as on the REST route
    response = api["client"].http.get(
        '/graphql?query={pageViews(pageURL:"home")}', headers={"X-Api-Key": api["read"]}
    )
    assert json.loads(response.body) == {"data": {"pageViews": 3}}
    response = api["client"].http.post(
        "/graphql",
        body='{ about: pageViews(pageURL: "/about") }',
        headers={"Content-Type": "application/graphql", "X-Api-Key": api["read"]},
    )
    assert json.loads(response.body) == {"data": {"about": 1}}


BAD_ARGUMENTS = (  # (query, the argument named, what the message says)
    ('{ stats(period: "fortnight") { visits } }', "period", "must be one of"),
    ('{ stats(from: "yesterday") { visits } }', "from", "ISO 8601"),
    (
        '{ stats(from: "2026-05-02", to: "2026-05-01") { visits } }',
        "from",
        "after",
    ),
    ('{ stats(period: "today", from: "2026-05-01") { visits } }', "period", "custom"),
    ("{ topPages(limit: 0) { complete } }", "limit", "between"),
    ("{ breakdown(dimension: page, limit: 101) { total } }", "limit", "between"),
    ('{ timeseries(granularity: day, from: "2020-01-01") { from } }', "from", "more than"),
)


def test_a_bad_argument_is_named_and_the_other_fields_still_answer(api, caplog):
    for query, field, message in BAD_ARGUMENTS:  # one stack for all: each costs ~0.6 s
        status, body = graphql(api, query[:-1] + " realtime { visitorsNow } }")
        assert status == 200, query
        (error,) = body["errors"]
        assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": field}, query
        assert message in error["message"] and error["path"][0] in query, query
        assert body["data"]["realtime"]["visitorsNow"] == 0, query
    # a user's mistake is answered, not logged as the service's error
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


def _aliases(count: int, field: str) -> str:
    return "{ " + " ".join(f"a{i}: {field}" for i in range(count)) + " }"


REFUSED = (  # (query, what the error says)
    ("{ stats { visits ", "Syntax Error"),
    ("{ visitors }", "Cannot query field 'visitors'"),
    ("{ breakdown(dimension: planet) { total } }", "Dimension"),
    ("mutation { stats { visits } }", "mutation"),
    (_aliases(MAX_COST // 12 + 1, "stats { visits }"), "cost"),
    ("{ " + 'pageViews(pageURL: "/") ' * 400 + "}", "tokens"),
    (
        "{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }",
        "lists",
    ),
    (
        'query { __type(name: "Query") '
        + "{ ofType " * MAX_DEPTH
        + "{ name }"
        + " }" * (MAX_DEPTH + 1),
        "deep",
    ),
    ("fragment F on Query { ...F } { ...F }", "itself"),
)


def test_abusive_or_broken_queries_are_refused_before_running(api, monkeypatch):
    from clickstream import queries

    def never(*_: Any, **__: Any) -> Any:
        raise AssertionError("a refused query read the store")

    for name in ("stats", "realtime", "breakdown"):
        monkeypatch.setattr(queries, name, never)
    for query, said in REFUSED:
        status, body = graphql(api, query)
        assert status == 400, (query, body)
        assert "data" not in body
        assert any(re.search(said, e["message"], re.IGNORECASE) for e in body["errors"]), body
        assert all("Internal" not in e["message"] for e in body["errors"]), (query, body)


def test_the_introspection_query_of_graphiql_passes_the_limits(api):
    from graphql import get_introspection_query

    status, body = graphql(api, get_introspection_query(descriptions=True))
    assert status == 200 and "errors" not in body
    names = {t["name"] for t in body["data"]["__schema"]["types"]}
    assert {"Stats", "Breakdown", "Dimension"} <= names


def test_introspection_is_refused_where_the_stage_turns_it_off(api, monkeypatch):
    from clickstream.settings import get_settings

    monkeypatch.setenv("CLICKSTREAM_GRAPHQL_INTROSPECTION", "false")
    get_settings.cache_clear()
    try:
        status, body = graphql(api, "{ __schema { queryType { name } } }")
        assert status == 400 and "introspection" in body["errors"][0]["message"].lower()
        assert graphql(api, "{ realtime { visitorsNow } }")[0] == 200
    finally:
        get_settings.cache_clear()


MALFORMED = (  # (body, Content-Type, status, what the error says)
    ("{not json", "application/json", 400, "not JSON"),
    ("[1]", "application/json", 400, "JSON object"),
    ('{"query": 7}', "application/json", 400, "'query'"),
    ('{"query": ""}', "application/json", 400, "'query'"),
    ('{"query": "{ realtime { visitorsNow } }", "variables": [1]}', None, 400, "variables"),
    ('{"query": "{ realtime { visitorsNow } }", "operationName": 3}', None, 400, "operation"),
    (json.dumps({"query": "#" * (MAX_QUERY_BYTES + 1)}), None, 400, "over"),
    (
        json.dumps({"query": "{ a }", "variables": {"x": "y" * MAX_BODY_BYTES}}),
        None,
        413,
        "over",
    ),
    ("query=x", "application/x-www-form-urlencoded", 415, "Content-Type"),
)


def test_a_malformed_request_says_what_is_wrong(api):
    for body, content_type, status, said in MALFORMED:
        response = api["client"].http.post(
            "/graphql",
            body=body,
            headers={"Content-Type": content_type or "application/json", "X-Api-Key": api["read"]},
        )
        assert response.status_code == status, body[:80]
        assert said in json.loads(response.body)["errors"][0]["message"], body[:80]


def test_variables_and_operation_names_work_over_get_and_post(api):
    document = (
        "query Pages($n: Int!) { topPages(limit: $n) { complete } } "
        "query Live { realtime { visitorsNow } }"
    )
    status, body = graphql(api, document, variables={"n": 5}, operationName="Pages")
    assert (status, body) == (200, {"data": {"topPages": {"complete": True}}})
    response = api["client"].http.get(
        "/graphql?query=query%20Q($n:Int!){topPages(limit:$n){complete}}&variables=%7B%22n%22:0%7D",
        headers={"X-Api-Key": api["read"]},
    )
    assert json.loads(response.body)["errors"][0]["extensions"]["field"] == "limit"
    response = api["client"].http.get(
        "/graphql?query={realtime{visitorsNow}}&variables=nope", headers={"X-Api-Key": api["read"]}
    )
    assert response.status_code == 400
    long = "{realtime{visitorsNow}}" + "%20" * MAX_GET_QUERY_BYTES
    response = api["client"].http.get(f"/graphql?query={long}", headers={"X-Api-Key": api["read"]})
    assert (
        response.status_code == 400
        and "POST it" in json.loads(response.body)["errors"][0]["message"]
    )


def test_graphql_takes_the_read_routes_keys_only(api):
    for headers, status in [({}, 401), ({"X-Api-Key": api["write"]}, 403)]:
        response = api["client"].http.post(
            "/graphql",
            body='{"query": "{ realtime { visitorsNow } }"}',
            headers={"Content-Type": "application/json", **headers},
        )
        assert response.status_code == status
        assert json.loads(response.body)["field"] == "X-Api-Key"


def test_a_store_that_cannot_be_read_is_a_503_to_retry(api, monkeypatch):
    from botocore.exceptions import ClientError

    from clickstream.store import DynamoAggregateStore

    def failing(*_: Any, **__: Any) -> Any:
        raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException"}}, "Query")

    monkeypatch.setattr(DynamoAggregateStore, "_query", failing)
    response = api["client"].http.post(
        "/graphql",
        body='{"query": "{ stats { visits } }"}',
        headers={"Content-Type": "application/json", "X-Api-Key": api["read"]},
    )
    assert response.status_code == 503 and response.headers["Retry-After"] == "1"
    (error,) = json.loads(response.body)["errors"]
    assert error["extensions"] == {"code": "UNAVAILABLE"}
    assert "Provisioned" not in error["message"]


def test_the_sdl_lists_every_dimension_the_rest_route_takes():
    from clickstream.aggregates import DIMENSIONS

    assert set(SCHEMA.get_type("Dimension").values) == set(DIMENSIONS)
    assert "pageViews(pageURL: String!)" in SCHEMA_SDL


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(query=from_schema(SCHEMA))
def test_any_valid_query_is_answered_or_refused_never_failed(api, query):
    status, body = graphql(api, query)
    assert status in (200, 400), body
    if status == 200:
        assert body["data"] is not None
        for error in body.get("errors", ()):
            assert error["extensions"]["code"] == "BAD_USER_INPUT", error
    else:
        assert re.search("cost|nests|tokens", body["errors"][0]["message"]), body


def test_lists_of_lists_are_counted_through_fragments():
    from graphql import parse, validate

    from clickstream.graphql import QueryShapeLimits

    nested = (
        "fragment T on __Type { fields { type { fields { type { fields { name } } } } } } "
        "{ __schema { types { ...T } } }"
    )
    (error,) = validate(SCHEMA, parse(nested), [QueryShapeLimits])
    assert "4 lists" in error.message
    assert isinstance(SCHEMA.get_type("__Schema").fields["types"].type, GraphQLNonNull)
    assert isinstance(SCHEMA.get_type("__Schema").fields["types"].type.of_type, GraphQLList)
