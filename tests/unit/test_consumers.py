"""The two Kinesis consumers' handlers in process, over moto: a poison record is quarantined
(its payload under ``bad/``, a message on the dead-letter queue) and never blocks the shard;
a record that fails is reported in ``batchItemFailures`` and nothing after it is applied, so
when Lambda resumes the shard from it every event is counted and archived exactly once."""

from __future__ import annotations

import importlib
import io
import json
import logging
import logging.handlers
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import orjson
import pyarrow.parquet as pq
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from clickstream.archive import list_archive_keys
from clickstream.aws import aggregate_store, reset_clients
from clickstream.layout import bad_record_key
from clickstream.store import DynamoAggregateStore, StoreConflict
from consumers.common import applicable_prefix, shard_id_of_batch
from infra.template import table_arguments
from localdev.runner import LambdaContext, StreamRecord, kinesis_event
from tests.factories import make_event

SHARD = "shardId-000000000000"
BUCKET = "archive"
DLQ = "dead-letters"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "CLICKSTREAM_AGGREGATES_TABLE": "aggregates",
        "CLICKSTREAM_STREAM_NAME": "events",
        "CLICKSTREAM_ARCHIVE_BUCKET": BUCKET,
        "CLICKSTREAM_DLQ_NAME": DLQ,
        "POWERTOOLS_METRICS_NAMESPACE": "ClickstreamTest",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        reset_clients()
        boto3.client("dynamodb").create_table(**table_arguments("AggregatesTable", "aggregates"))
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        yield {"s3": boto3.client("s3"), "sqs": boto3.client("sqs")}
        reset_clients()


def dead_letter_queue(sqs: Any) -> str:
    return str(sqs.create_queue(QueueName=DLQ)["QueueUrl"])


class Shard:
    """Records of one shard with rising sequence numbers, handed to a consumer's handler as
    its event source would."""

    def __init__(self) -> None:
        self.sequence = 10**20

    def records(self, payloads: list[bytes]) -> list[StreamRecord]:
        made = []
        for payload in payloads:
            self.sequence += 1
            made.append(StreamRecord(str(self.sequence), "pk", payload, time.time()))
        return made


def event_of(records: list[StreamRecord]) -> dict[str, Any]:
    return kinesis_event(
        records,
        shard_id=SHARD,
        stream_arn="arn:aws:kinesis:us-east-1:123456789012:stream/events",
        region="us-east-1",
    )


def deliver(function: str, records: list[StreamRecord]) -> dict[str, Any]:
    if function == "aggregator":
        from consumers.aggregator import handler
    else:
        from consumers.archiver import handler
    context = LambdaContext(function, f"arn:aws:lambda:us-east-1:1:function:{function}")
    return dict(handler(event_of(records), context))


def good(count: int, tag: str) -> list[bytes]:
    return [make_event(session_id=f"{tag}{i}").model_dump_json().encode() for i in range(count)]


def counted_events() -> int:
    return int(aggregate_store().total("all", "all", "all").get("events"))


def archived_event_ids(s3: Any) -> list[str]:
    ids: list[str] = []
    for key in list_archive_keys(s3, BUCKET):
        body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        ids += pq.read_table(io.BytesIO(body), columns=["event_id"])["event_id"].to_pylist()
    return ids


# --- the applicable prefix -------------------------------------------------------------------


def test_only_the_events_before_the_first_failed_record_may_be_applied():
    outcomes = [
        ("success", "e1", None),
        ("success", None, None),  # a poison record, quarantined: handled, nothing to apply
        ("success", "e3", None),
        ("fail", "boom", None),
        ("success", "e5", None),  # after the failure: comes again when Lambda resumes there
    ]
    assert applicable_prefix(outcomes) == ["e1", "e3"]
    assert applicable_prefix([("fail", "x", None), ("success", "e2", None)]) == []
    assert applicable_prefix([]) == []


def test_the_batchs_shard_is_read_from_the_first_records_event_id():
    assert shard_id_of_batch({"Records": [{"eventID": f"{SHARD}:123"}]}) == SHARD
    assert shard_id_of_batch({"Records": []}) is None
    assert shard_id_of_batch({}) is None


# --- poison records --------------------------------------------------------------------------


@pytest.fixture
def logged(function: str) -> Iterator[logging.handlers.BufferingHandler]:
    """What the consumer's own logger logs, whatever stream it was made to write to."""
    logger = importlib.import_module(f"consumers.{function}").logger
    handler = logging.handlers.BufferingHandler(capacity=1000)
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


@pytest.mark.parametrize("function", ["aggregator", "archiver"])
def test_a_poison_record_is_quarantined_and_the_records_around_it_are_handled(
    aws, function, capsys, logged
):
    sqs, s3 = aws["sqs"], aws["s3"]
    queue = dead_letter_queue(sqs)
    shard = Shard()
    records = shard.records([*good(3, "a"), b'{"event_type": 42}', *good(2, "b")])
    answer = deliver(function, records)
    assert answer == {"batchItemFailures": []}
    poison = records[3]
    key = bad_record_key(SHARD, poison.sequence_number)
    stored = s3.get_object(Bucket=BUCKET, Key=key)
    assert stored["Body"].read() == poison.data
    assert stored["ContentType"] == "application/octet-stream"
    (message,) = sqs.receive_message(
        QueueUrl=queue, MessageAttributeNames=["All"], MaxNumberOfMessages=10
    )["Messages"]
    body = json.loads(message["Body"])
    quarantined_at = datetime.fromisoformat(body.pop("quarantinedAt"))
    assert quarantined_at.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - quarantined_at) < timedelta(minutes=5)
    # every field of the dead-letter message, as the record had it
    assert body == {
        "reason": "schema-invalid: event_id: Field required",
        "consumer": function,
        "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/events",
        "shardId": SHARD,
        "sequenceNumber": poison.sequence_number,
        "partitionKey": poison.partition_key,
        "approximateArrivalTimestamp": poison.approximate_arrival,
        "payloadLocation": f"s3://{BUCKET}/{key}",
        "payloadBytes": len(poison.data),
    }
    attributes = {
        name: value["StringValue"] for name, value in message["MessageAttributes"].items()
    }
    assert attributes == {"reason": "schema-invalid", "consumer": function}
    expected_ids = [json.loads(r.data)["event_id"] for i, r in enumerate(records) if i != 3]
    if function == "aggregator":
        assert counted_events() == 5
    else:
        assert sorted(archived_event_ids(s3)) == sorted(expected_ids)
    lines = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")
    ]
    (flushed,) = [line for line in lines if "_aws" in line]
    assert (flushed["PoisonRecords"], flushed["BatchSize"]) == ([1.0], [6.0])
    (declared,) = flushed["_aws"]["CloudWatchMetrics"]
    assert {"Name": "PoisonRecords", "Unit": "Count"} in declared["Metrics"]
    (warning,) = [r for r in logged.buffer if r.getMessage() == "poison record quarantined"]
    assert warning.levelname == "WARNING"
    assert (warning.reason, warning.shard_id) == (body["reason"], SHARD)
    assert (warning.sequence_number, warning.s3_key) == (poison.sequence_number, key)


def test_an_oversize_record_is_poison_whatever_it_holds():
    from clickstream.records import MAX_RECORD_BYTES, PoisonRecord, decode_event

    event = make_event().model_dump(mode="json")
    padded = orjson.dumps(event) + b" " * (MAX_RECORD_BYTES + 1)  # valid JSON, too large
    with pytest.raises(PoisonRecord) as raised:
        decode_event(padded)
    assert raised.value.reason == f"oversize: {len(padded)} bytes"
    exact = orjson.dumps(event)
    exact += b" " * (MAX_RECORD_BYTES - len(exact))
    assert decode_event(exact).event_id == event["event_id"]  # the limit itself is allowed
    with pytest.raises(PoisonRecord) as raised:
        decode_event(b"{not json")
    assert raised.value.reason.startswith("undecodable: not JSON")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"device": {"device_type": 5}}, "device.device_type: Input should be a valid string"),
        ({"event_type": None}, "event_type: Input should be a valid string"),
    ],
)
def test_a_record_against_the_schema_is_poison_naming_the_path_of_its_first_error(change, reason):
    from clickstream.records import PoisonRecord, decode_event

    with pytest.raises(PoisonRecord) as raised:
        decode_event(orjson.dumps({**make_event().model_dump(mode="json"), **change}))
    assert raised.value.reason == f"schema-invalid: {reason}"


@pytest.mark.parametrize("data", [b"[]", b"1", b'"event"'])
def test_a_record_that_is_not_an_object_is_poison_as_a_whole(data):
    from clickstream.records import PoisonRecord, decode_event

    with pytest.raises(PoisonRecord) as raised:
        decode_event(data)
    assert raised.value.reason == (
        "schema-invalid: record: Input should be a valid dictionary or instance of Event"
    )


# --- a failed record: nothing after it applied, resumed from it --------------------------------


@pytest.mark.parametrize("function", ["aggregator", "archiver"])
def test_nothing_after_a_failed_record_is_applied_and_the_retry_counts_each_event_once(
    aws, function
):
    sqs, s3 = aws["sqs"], aws["s3"]
    shard = Shard()
    # GIVEN a batch whose fourth record is poison while the dead-letter queue cannot be
    # reached: quarantining it fails, so the record fails (and Lambda must resume there)
    records = shard.records([*good(3, "a"), b"not json", *good(3, "b")])
    answer = deliver(function, records)
    # THEN the failure is reported at that record, and only the three before it are applied
    assert answer == {"batchItemFailures": [{"itemIdentifier": records[3].sequence_number}]}
    ids = [json.loads(r.data)["event_id"] for i, r in enumerate(records) if i != 3]
    if function == "aggregator":
        assert counted_events() == 3
    else:
        assert sorted(archived_event_ids(s3)) == sorted(ids[:3])
    # WHEN the queue is back and Lambda resumes the shard at the failed record
    dead_letter_queue(sqs)
    assert deliver(function, records[3:]) == {"batchItemFailures": []}
    # THEN every good event is there once
    if function == "aggregator":
        assert counted_events() == 6
        assert deliver(function, records) == {"batchItemFailures": []}  # redelivered whole
        assert counted_events() == 6
    else:
        assert sorted(archived_event_ids(s3)) == sorted(ids)


def test_an_aggregate_write_that_fails_fails_the_batch_and_is_counted(aws, monkeypatch, capsys):
    def refused(*_args: Any, **_kwargs: Any) -> Any:
        raise ClientError({"Error": {"Code": "InternalServerError", "Message": "x"}}, "PutItem")

    monkeypatch.setattr(DynamoAggregateStore, "apply", refused)
    with pytest.raises(ClientError):
        deliver("aggregator", Shard().records(good(2, "a")))
    metrics = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line
    ]
    assert [m.get("ConsumerErrors") for m in metrics] == [[1.0]]
    assert metrics[0]["BatchSize"] == [2.0]


def test_an_archive_write_that_fails_fails_the_batch(aws, monkeypatch):
    import consumers.archiver as archiver

    def refused(*_args: Any, **_kwargs: Any) -> Any:
        raise ClientError({"Error": {"Code": "SlowDown", "Message": "x"}}, "PutObject")

    monkeypatch.setattr(archiver, "write_objects", refused)
    with pytest.raises(ClientError):
        deliver("archiver", Shard().records(good(2, "a")))
    assert archived_event_ids(aws["s3"]) == []


def test_a_fold_that_fails_after_a_stored_batch_is_reported_not_retried(
    aws, monkeypatch, capsys, caplog
):
    store = aggregate_store()
    monkeypatch.setattr(store, "fold_after_deltas", 1)

    def conflict(*_args: Any, **_kwargs: Any) -> int:
        raise StoreConflict("recent shard")

    monkeypatch.setattr(DynamoAggregateStore, "fold", conflict)
    answer = deliver("aggregator", Shard().records(good(4, "f")))
    assert answer == {"batchItemFailures": []}
    assert counted_events() == 4  # the batch is stored in its delta and read by everyone
    output = capsys.readouterr().out
    metrics = [json.loads(line) for line in output.splitlines() if '"_aws"' in line]
    assert metrics[0]["FoldErrors"] == [1.0] and metrics[0]["EventsAggregated"] == [4.0]
    assert "fold failed; the batch is stored" in caplog.messages
