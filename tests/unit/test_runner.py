"""The local event-source runner behaves like Lambda's Kinesis event source mapping.
AWS calls are answered by moto in-process."""

from __future__ import annotations

import base64
import json
import threading
import time

import boto3
import pytest
from moto import mock_aws

from localdev.emulator import support_resharding
from localdev.runner import CheckpointStore, EventSourceMapping, MappingSettings, ShardPoller

STREAM = "test-stream"
TABLE = "test-checkpoints"


@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        clients = {
            name: boto3.client(name, region_name="us-east-1")
            for name in ("kinesis", "dynamodb", "sqs")
        }
        clients["kinesis"].create_stream(StreamName=STREAM, ShardCount=1)
        clients["dynamodb"].create_table(
            TableName=TABLE,
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        )
        clients["queue_url"] = clients["sqs"].create_queue(QueueName="dlq")["QueueUrl"]
        yield clients


def put(aws, count: int) -> list[str]:
    return [
        aws["kinesis"].put_record(
            StreamName=STREAM, Data=json.dumps({"n": n}).encode(), PartitionKey="p"
        )["SequenceNumber"]
        for n in range(count)
    ]


class RecordingHandler:
    """A handler that records what it was given and answers as told."""

    def __init__(self, answer=None):
        self.batches: list[list[int]] = []
        self.events: list[dict] = []
        self.answer = answer or (lambda numbers, event: {"batchItemFailures": []})

    def __call__(self, event, context):
        numbers = [
            json.loads(base64.b64decode(r["kinesis"]["data"]))["n"] for r in event["Records"]
        ]
        self.batches.append(numbers)
        self.events.append(event)
        return self.answer(numbers, event)


def mapping(aws, handler, **settings) -> EventSourceMapping:
    defaults = {
        "batch_size": 10,
        "maximum_batching_window_s": 0.05,
        "poll_interval_s": 0.01,
        "retry_backoff_s": 0.0,
        "on_failure_queue_url": aws["queue_url"],
    }
    return EventSourceMapping(
        function_name="fn",
        handler=handler,
        kinesis=aws["kinesis"],
        dynamodb=aws["dynamodb"],
        sqs=aws["sqs"],
        stream_name=STREAM,
        checkpoints_table=TABLE,
        region="us-east-1",
        settings=MappingSettings(**(defaults | settings)),
    )


def run_until(esm: EventSourceMapping, done, timeout: float = 10.0) -> None:
    esm.start()
    deadline = time.monotonic() + timeout
    try:
        while not done() and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        esm.stop()
    assert done(), "runner did not reach the expected state"


def test_handler_gets_lambdas_kinesis_event_in_batches_of_the_configured_size(aws):
    sequence_numbers = put(aws, 25)
    handler = RecordingHandler()
    run_until(mapping(aws, handler), lambda: sum(map(len, handler.batches)) == 25)
    assert [len(batch) for batch in handler.batches] == [10, 10, 5]
    record = handler.events[0]["Records"][0]
    assert record["eventSource"] == "aws:kinesis"
    assert record["eventID"] == f"shardId-000000000000:{sequence_numbers[0]}"
    assert record["eventSourceARN"].endswith(f":stream/{STREAM}")
    assert record["kinesis"]["sequenceNumber"] == sequence_numbers[0]
    assert record["kinesis"]["partitionKey"] == "p"


def test_partial_batch_response_resumes_at_the_lowest_failed_record(aws):
    put(aws, 6)
    failed_once = threading.Event()

    def answer(numbers, event):
        if 3 in numbers and not failed_once.is_set():
            failed_once.set()
            wanted = [r["kinesis"]["sequenceNumber"] for r in event["Records"]]
            return {
                "batchItemFailures": [
                    {"itemIdentifier": wanted[numbers.index(4)]},
                    {"itemIdentifier": wanted[numbers.index(3)]},
                ]
            }
        return {"batchItemFailures": []}

    handler = RecordingHandler(answer)
    run_until(mapping(aws, handler), lambda: len(handler.batches) >= 2)
    assert handler.batches == [[0, 1, 2, 3, 4, 5], [3, 4, 5]]


def test_function_error_bisects_then_sends_the_poison_batch_to_the_on_failure_destination(aws):
    put(aws, 8)

    def answer(numbers, event):
        if 5 in numbers:
            raise RuntimeError("boom")
        return {"batchItemFailures": []}

    handler = RecordingHandler(answer)
    esm = mapping(aws, handler, maximum_retry_attempts=2)
    run_until(
        esm,
        lambda: (
            sorted(n for b in handler.batches if 5 not in b for n in b) == [0, 1, 2, 3, 4, 6, 7]
        ),
    )
    assert [5] in handler.batches
    assert handler.batches.count([5]) == 3  # first try + 2 retries
    message = json.loads(
        aws["sqs"].receive_message(QueueUrl=aws["queue_url"])["Messages"][0]["Body"]
    )
    assert message["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert message["KinesisBatchInfo"]["batchSize"] == 1
    assert esm.stats()["shardId-000000000000"]["discarded_batches"] == 1


def test_a_restarted_runner_resumes_after_its_checkpoint(aws):
    put(aws, 5)
    first = RecordingHandler()
    run_until(mapping(aws, first), lambda: sum(map(len, first.batches)) == 5)
    put(aws, 3)
    second = RecordingHandler()
    run_until(mapping(aws, second), lambda: sum(map(len, second.batches)) == 3)
    assert [n for batch in second.batches for n in batch] == [0, 1, 2]  # the three new records


def test_records_older_than_the_maximum_age_are_discarded_not_delivered(aws):
    put(aws, 2)
    handler = RecordingHandler()
    poller = ShardPoller(
        function_name="fn",
        handler=handler,
        handler_lock=threading.Lock(),
        kinesis=aws["kinesis"],
        sqs=aws["sqs"],
        checkpoints=CheckpointStore(aws["dynamodb"], TABLE),
        stream_name=STREAM,
        stream_arn="arn",
        shard_id="shardId-000000000000",
        region="us-east-1",
        settings=MappingSettings(maximum_record_age_s=0, on_failure_queue_url=aws["queue_url"]),
        stop=threading.Event(),
    )
    from localdev.runner import StreamRecord

    poller.deliver([StreamRecord("1", "p", b"{}", approximate_arrival=time.time() - 10)])
    assert handler.batches == []
    body = json.loads(aws["sqs"].receive_message(QueueUrl=aws["queue_url"])["Messages"][0]["Body"])
    assert body["requestContext"]["condition"] == "RecordAgeExceeded"


def test_local_mapping_settings_come_from_the_template_with_env_overrides(monkeypatch):
    from localdev.consumer import mapping_settings

    monkeypatch.setenv("CLICKSTREAM_ON_FAILURE_QUEUE_URL", "http://queue")
    monkeypatch.delenv("CLICKSTREAM_ESM_BATCHING_WINDOW_S", raising=False)
    monkeypatch.delenv("CLICKSTREAM_ESM_BATCH_SIZE", raising=False)
    settings = mapping_settings("aggregator")
    assert (settings.batch_size, settings.maximum_batching_window_s) == (500, 1.0)
    assert settings.bisect_batch_on_function_error and settings.report_batch_item_failures
    assert (settings.maximum_retry_attempts, settings.maximum_record_age_s) == (5, 86400)
    monkeypatch.setenv("CLICKSTREAM_ESM_BATCH_SIZE", "7")
    assert mapping_settings("archiver").batch_size == 7


def test_a_child_shard_is_read_only_after_its_parent_is_drained_as_lambda_does(aws):
    # GIVEN the emulator's Kinesis resharding as Kinesis does it, records in the parent, a
    # split, then records in the children
    support_resharding()
    put(aws, 15)
    kinesis = aws["kinesis"]
    parent = kinesis.list_shards(StreamName=STREAM)["Shards"][0]
    kinesis.split_shard(
        StreamName=STREAM,
        ShardToSplit=parent["ShardId"],
        NewStartingHashKey=str(int(parent["HashKeyRange"]["EndingHashKey"]) // 2),
    )
    for n in range(15, 30):
        kinesis.put_record(
            StreamName=STREAM, Data=json.dumps({"n": n}).encode(), PartitionKey=f"k{n}"
        )
    handler = RecordingHandler()
    esm = mapping(aws, handler, shard_discovery_interval_s=0.05)
    # WHEN the runner reads the stream
    run_until(esm, lambda: sum(map(len, handler.batches)) == 30)
    # THEN every parent record was handled before any child record
    shards = [event["Records"][0]["eventID"].split(":")[0] for event in handler.events]
    first_child = next(i for i, shard in enumerate(shards) if shard != parent["ShardId"])
    assert set(shards[:first_child]) == {parent["ShardId"]}
    assert parent["ShardId"] not in shards[first_child:]
    assert sorted(n for batch in handler.batches for n in batch) == list(range(30))


# --- the jobs queue's SQS event source ---------------------------------------------------------


def test_the_sqs_mapping_deletes_what_succeeded_and_leaves_reported_failures_for_a_retry(aws):
    from localdev.runner import SqsEventSourceMapping

    sqs = aws["sqs"]
    url = sqs.create_queue(QueueName="jobs")["QueueUrl"]
    for body in ("ok", "fail", "raise"):
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"step": body}))
    seen: list[tuple[str, str, int]] = []

    def handler(event, context):
        record = event["Records"][0]
        step = json.loads(record["body"])["step"]
        seen.append((step, record["eventSource"], context.get_remaining_time_in_millis()))
        if step == "raise":
            raise RuntimeError("the function died")
        failed = [{"itemIdentifier": record["messageId"]}] if step == "fail" else []
        return {"batchItemFailures": failed}

    mapping = SqsEventSourceMapping(function_name="jobs", handler=handler, sqs=sqs,
                                    queue_name="jobs", region="us-east-1", wait_s=0)  # fmt: skip
    while mapping.poll_once():
        pass
    assert sorted(step for step, _, _ in seen) == ["fail", "ok", "raise"]
    assert {source for _, source, _ in seen} == {"aws:sqs"}
    assert all(0 < remaining <= 900_000 for _, _, remaining in seen)  # Lambda's context
    assert mapping.failures == 2
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    # the success is deleted; the two failures wait out their visibility timeout, then return
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "2"
    assert attributes["ApproximateNumberOfMessages"] == "0"
