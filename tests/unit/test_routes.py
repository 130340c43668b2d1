"""The read routes of web analytics and geo at ingest, in process: chalice's test client
over moto's mock of AWS (a stream, the aggregates and keys tables)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from clickstream.aggregates import SequencedEvent
from clickstream.aws import aggregate_store, reset_clients
from clickstream.keys import create_key
from clickstream.schema import Event

TABLES = {"aggregates": ("pk", "sk"), "keys": ("pk",)}


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)  # mock_aws, not a stack's emulator
    for name, value in {
        "CLICKSTREAM_AGGREGATES_TABLE": "aggregates",
        "CLICKSTREAM_KEYS_TABLE": "keys",
        "CLICKSTREAM_STREAM_NAME": "events",
        "CLICKSTREAM_READ_AUTH": "apikey",
        "POWERTOOLS_METRICS_NAMESPACE": "ClickstreamTest",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        reset_clients()
        dynamodb = boto3.client("dynamodb")
        for table, keys in TABLES.items():
            dynamodb.create_table(
                TableName=table,
                BillingMode="PAY_PER_REQUEST",
                AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k in keys],
                KeySchema=[
                    {"AttributeName": k, "KeyType": t}
                    for k, t in zip(keys, ("HASH", "RANGE"), strict=False)
                ],
            )
        boto3.client("kinesis").create_stream(StreamName="events", ShardCount=1)
        read, _ = create_key(dynamodb, "keys", role="read", site="test")
        write, _ = create_key(dynamodb, "keys", role="write", site="test")
        from chalice.test import Client

        from api.app import app

        with Client(app) as client:
            yield {"client": client, "read": read, "write": write}
        reset_clients()


def get(api: dict[str, Any], path: str) -> tuple[int, Any]:
    response = api["client"].http.get(path, headers={"X-Api-Key": api["read"]})
    return response.status_code, json.loads(response.body)


def post(api: dict[str, Any], records: list[dict[str, Any]], **headers: str) -> Any:
    response = api["client"].http.post(
        "/events",
        body=json.dumps({"records": records}),
        headers={"Content-Type": "application/json", "X-Write-Key": api["write"], **headers},
    )
    assert response.status_code == 200, response.body
    return json.loads(response.body)


def aggregate_what_was_sent() -> None:
    """What the aggregator's event source would hand it: the stream's records, in order."""
    kinesis = boto3.client("kinesis")
    shard = kinesis.list_shards(StreamName="events")["Shards"][0]["ShardId"]
    iterator = kinesis.get_shard_iterator(
        StreamName="events", ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    records = kinesis.get_records(ShardIterator=iterator)["Records"]
    events = [
        SequencedEvent(r["SequenceNumber"], Event.model_validate_json(r["Data"])) for r in records
    ]
    aggregate_store().apply(shard, events)


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
