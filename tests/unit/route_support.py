"""The API in process: chalice's test client over moto's mock of AWS (a stream, the
aggregates and keys tables), and the aggregator run over what the stream holds."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Sequence
from typing import Any

import boto3
import pytest
from moto import mock_aws

from clickstream.aggregates import SequencedEvent
from clickstream.aws import aggregate_store, reset_clients
from clickstream.keys import create_key
from clickstream.schema import Event

TABLES = {"aggregates": ("pk", "sk"), "keys": ("pk",), "jobs": ("pk",)}
ARCHIVE_BUCKET = "archive"


def in_process_api(
    monkeypatch: pytest.MonkeyPatch, read_auth: str = "apikey"
) -> Iterator[dict[str, Any]]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)  # mock_aws, not a stack's emulator
    for name, value in {
        "CLICKSTREAM_AGGREGATES_TABLE": "aggregates",
        "CLICKSTREAM_KEYS_TABLE": "keys",
        "CLICKSTREAM_STREAM_NAME": "events",
        "CLICKSTREAM_READ_AUTH": read_auth,
        "CLICKSTREAM_JOBS_TABLE": "jobs",
        "CLICKSTREAM_JOBS_QUEUE": "jobs",
        "CLICKSTREAM_ARCHIVE_BUCKET": ARCHIVE_BUCKET,
        "POWERTOOLS_METRICS_NAMESPACE": "ClickstreamTest",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        # chalice's app object appends itself to this when the app is first imported: set
        # here (as chalice would start it), so the change is undone after the test
        "AWS_EXECUTION_ENV": os.environ.get("AWS_EXECUTION_ENV", "AWS_Lambda"),
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
        boto3.client("s3").create_bucket(Bucket=ARCHIVE_BUCKET)
        boto3.client("sqs").create_queue(QueueName="jobs")
        read, _ = create_key(dynamodb, "keys", role="read", site="test")
        write, _ = create_key(dynamodb, "keys", role="write", site="test")
        admin, _ = create_key(dynamodb, "keys", role="admin", site="test")
        from chalice.test import Client

        from api.app import create_app, reset_api_state

        reset_api_state()
        app = create_app()
        with Client(app) as client:
            yield {"client": client, "app": app, "read": read, "write": write, "admin": admin}
        reset_api_state()


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


def _stream_records() -> tuple[str, list[dict[str, Any]]]:
    """The stream's one shard and every record it holds, in order."""
    kinesis = boto3.client("kinesis")
    shard = kinesis.list_shards(StreamName="events")["Shards"][0]["ShardId"]
    iterator = kinesis.get_shard_iterator(
        StreamName="events", ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    return shard, kinesis.get_records(ShardIterator=iterator)["Records"]


def aggregate_what_was_sent() -> None:
    """What the aggregator's event source would hand it: the stream's records, in order."""
    shard, records = _stream_records()
    events = [
        SequencedEvent(r["SequenceNumber"], Event.model_validate_json(r["Data"])) for r in records
    ]
    aggregate_store().apply(shard, events)


def stream_events() -> list[Event]:
    """Every event the stream holds, in order."""
    return [Event.model_validate_json(r["Data"]) for r in _stream_records()[1]]


def run_jobs(context: Any = None) -> int:
    """What the jobs queue's event source mapping does: each visible message to the jobs
    function (an SQS event of one record), deleted unless reported failed. Returns handled."""
    from consumers.jobs import handler
    from localdev.runner import LambdaContext

    context = context or LambdaContext(
        "jobs", "arn:aws:lambda:us-east-1:123456789012:function:jobs"
    )
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName="jobs")["QueueUrl"]
    handled = 0
    while True:
        messages = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=1, AttributeNames=["All"]
        ).get("Messages", [])
        if not messages:
            return handled
        message = messages[0]
        event = {
            "Records": [
                {
                    "messageId": message["MessageId"],
                    "receiptHandle": message["ReceiptHandle"],
                    "body": message["Body"],
                    "attributes": message.get("Attributes", {}),
                    "eventSource": "aws:sqs",
                }
            ]
        }
        answer = handler(event, context)
        if not answer["batchItemFailures"]:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        else:  # its visibility timeout, passed at once
            sqs.change_message_visibility(
                QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
            )
        handled += 1


def deliver_to_consumers(events: Sequence[Event], first_sequence: int) -> None:
    """One batch to the archiver's and the aggregator's own handlers, as their Kinesis event
    source hands it: one shard, sequence numbers from ``first_sequence`` on."""
    from consumers.aggregator import handler as aggregate
    from consumers.archiver import handler as archive
    from localdev.runner import LambdaContext, StreamRecord, kinesis_event

    records = [
        StreamRecord(str(first_sequence + index), event.session_id,
                     event.model_dump_json().encode(), time.time())
        for index, event in enumerate(events)
    ]  # fmt: skip
    batch = kinesis_event(records, shard_id="shardId-000000000000",
                          stream_arn="arn:aws:kinesis:us-east-1:1:stream/events",
                          region="us-east-1")  # fmt: skip
    for handler, name in ((archive, "archiver"), (aggregate, "aggregator")):
        answer = handler(batch, LambdaContext(name, f"arn:aws:lambda:::function:{name}"))
        assert not answer["batchItemFailures"], (name, answer)
