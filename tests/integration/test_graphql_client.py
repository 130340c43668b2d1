"""``/graphql`` on the local stack through a real GraphQL client from PyPI (``gql`` over
HTTP): it fetches the schema by introspection, validates its queries against it, and gets the
numbers the REST routes give."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
import requests
from gql import Client, gql
from gql.transport.exceptions import TransportQueryError
from gql.transport.requests import RequestsHTTPTransport
from graphql import GraphQLError


def _client(local_stack: Any, key: str) -> Client:
    transport = RequestsHTTPTransport(
        url=f"{local_stack.api_url}/graphql",
        headers={"X-Api-Key": key},
        timeout=30,
        retries=0,
    )
    return Client(transport=transport, fetch_schema_from_transport=True)


def _rest(local_stack: Any, path: str) -> Any:
    response = requests.get(
        f"{local_stack.api_url}{path}", headers={"X-Api-Key": local_stack.read_key}, timeout=30
    )
    response.raise_for_status()
    return response.json()


def test_gql_gets_the_rest_routes_numbers_from_the_stack(local_stack):
    page = f"/graphql-{uuid.uuid4().hex[:8]}"
    records = [
        {"event_type": "page_view", "session_id": f"gql-{page}-{i % 3}", "page": page}
        for i in range(7)
    ]
    response = requests.post(
        f"{local_stack.api_url}/events",
        json={"records": records},
        headers={"X-Write-Key": local_stack.write_key},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    deadline = time.monotonic() + 60
    while _rest(local_stack, f"/analytics/page-views{page}")["page_views"] < 7:
        assert time.monotonic() < deadline, "the page views were not aggregated in 60 s"
        time.sleep(0.5)

    with _client(local_stack, local_stack.read_key) as session:
        # The seed's query, as written (the client checks it against the fetched schema).
        seed = session.execute(gql(f'{{ pageViews(pageURL: "{page}") }}'))
        assert seed == {"pageViews": 7}
        query = gql(
            """
            query Pages($limit: Int!) {
              breakdown(dimension: page, limit: $limit) { rows { value count } total }
              funnel { sessions }
            }
            """
        )
        query.variable_values = {"limit": 100}
        answer = session.execute(query)
        rest_pages = _rest(local_stack, "/breakdown?dimension=page&limit=100")
        rest_funnel = _rest(local_stack, "/funnel")
        assert answer["breakdown"] == {"rows": rest_pages["rows"], "total": rest_pages["total"]}
        assert {"value": page, "count": 7} in answer["breakdown"]["rows"]
        assert answer["funnel"]["sessions"] == rest_funnel["sessions"]

        with pytest.raises(TransportQueryError) as refused:
            session.execute(gql('{ stats(period: "fortnight") { visits } }'))
        assert refused.value.errors[0]["extensions"] == {
            "code": "BAD_USER_INPUT",
            "field": "period",
        }
        with pytest.raises(GraphQLError):  # checked by the client against the schema
            session.execute(gql("{ stats { unknownField } }"))


def test_gql_with_a_write_key_is_refused(local_stack):
    transport = RequestsHTTPTransport(
        url=f"{local_stack.api_url}/graphql",
        headers={"X-Api-Key": local_stack.write_key},
        retries=0,
    )
    with pytest.raises(Exception) as refused, Client(transport=transport) as session:
        session.execute(gql("{ realtime { visitorsNow } }"))
    assert "403" in str(refused.value)
