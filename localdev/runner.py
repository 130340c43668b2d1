"""A local Kinesis event-source mapping: what Lambda's poller does, for handlers that run
in-process because no Lambda runtime is available here.

Per shard it reads with ``GetShardIterator``/``GetRecords``, builds the same event Lambda
builds (``Records[].kinesis.data`` base64, ``sequenceNumber``, ``partitionKey``, ``eventID``,
``eventSourceARN``), honours batch size and batching window, and on the handler's answer:

* success -> checkpoint after the last record;
* partial batch response -> checkpoint before the lowest failed sequence number and retry
  from there (``ReportBatchItemFailures``);
* exception -> retry, bisecting the batch first when ``BisectBatchOnFunctionError`` is on
  (a split does not count against the retry quota, as on AWS);
* retries exhausted or records older than ``MaximumRecordAgeInSeconds`` -> the batch's
  metadata goes to the on-failure SQS destination and the shard moves on.

Checkpoints live in a DynamoDB table on the emulator, so a restarted runner resumes.
"""

from __future__ import annotations

import base64
import logging
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from botocore.exceptions import ClientError

log = logging.getLogger("localdev.runner")
LAG_REPORT_INTERVAL_S = 1.0

Handler = Callable[[dict[str, Any], Any], Any]


@dataclass(frozen=True)
class MappingSettings:
    """The event source mapping settings Lambda has, with the values infra/ deploys."""

    batch_size: int = 100
    maximum_batching_window_s: float = 1.0
    starting_position: str = "TRIM_HORIZON"
    maximum_retry_attempts: int = 3
    maximum_record_age_s: int = 3600
    bisect_batch_on_function_error: bool = True
    report_batch_item_failures: bool = True
    on_failure_queue_url: str | None = None
    poll_interval_s: float = 0.2
    # Lambda polls an idle shard about once a second; empty polls back off to this from
    # poll_interval_s (an idle local stack otherwise keeps half a core busy in the emulator).
    idle_poll_interval_s: float = 1.0
    retry_backoff_s: float = 0.2
    shard_discovery_interval_s: float = 10.0


@dataclass
class LambdaContext:
    """The attributes of Lambda's context object that handlers and Powertools read."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int = 256
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = ""
    log_stream_name: str = ""
    timeout_s: float = 60.0
    _started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_s - (time.monotonic() - self._started)) * 1000))


@dataclass(frozen=True)
class StreamRecord:
    sequence_number: str
    partition_key: str
    data: bytes
    approximate_arrival: float


def stream_record(record: Mapping[str, Any]) -> StreamRecord:
    """A GetRecords record as the runner passes it on."""
    arrival = record.get("ApproximateArrivalTimestamp")
    return StreamRecord(
        sequence_number=record["SequenceNumber"],
        partition_key=record["PartitionKey"],
        data=bytes(record["Data"]),
        approximate_arrival=arrival.timestamp() if arrival else time.time(),
    )


def read_stream(kinesis: Any, stream_name: str) -> dict[str, list[StreamRecord]]:
    """Every record in the stream now, by shard: each shard read from its start to its tip
    (tests and the deploy rehearsal; the mapping itself reads with :class:`ShardPoller`)."""
    by_shard: dict[str, list[StreamRecord]] = {}
    for shard in kinesis.list_shards(StreamName=stream_name)["Shards"]:
        iterator = kinesis.get_shard_iterator(
            StreamName=stream_name, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        records: list[StreamRecord] = []
        while iterator:
            page = kinesis.get_records(ShardIterator=iterator, Limit=10_000)
            records += [stream_record(record) for record in page["Records"]]
            if not page["Records"] or not page.get("MillisBehindLatest"):
                break
            iterator = page.get("NextShardIterator")
        if records:
            by_shard[shard["ShardId"]] = records
    return by_shard


def kinesis_event(
    records: list[StreamRecord], *, shard_id: str, stream_arn: str, region: str
) -> dict[str, Any]:
    """The event Lambda passes to a Kinesis-triggered function."""
    return {
        "Records": [
            {
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": record.partition_key,
                    "sequenceNumber": record.sequence_number,
                    "data": base64.b64encode(record.data).decode(),
                    "approximateArrivalTimestamp": record.approximate_arrival,
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": f"{shard_id}:{record.sequence_number}",
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": "arn:aws:iam::123456789012:role/clickstream-local",
                "awsRegion": region,
                "eventSourceARN": stream_arn,
            }
            for record in records
        ]
    }


class CheckpointStore:
    """Per (function, shard) checkpoints in DynamoDB: the last sequence number handled."""

    def __init__(self, dynamodb: Any, table: str) -> None:
        self._dynamodb = dynamodb
        self._table = table

    @staticmethod
    def _key(function: str, shard_id: str) -> dict[str, Any]:
        return {"pk": {"S": f"{function}#{shard_id}"}}

    def get(self, function: str, shard_id: str) -> str | None:
        item = self._dynamodb.get_item(
            TableName=self._table, Key=self._key(function, shard_id), ConsistentRead=True
        ).get("Item")
        return item["sequence_number"]["S"] if item else None

    def put(self, function: str, shard_id: str, sequence_number: str) -> None:
        self._dynamodb.put_item(
            TableName=self._table,
            Item={
                **self._key(function, shard_id),
                "sequence_number": {"S": sequence_number},
                "updated_at": {"S": datetime.now(UTC).isoformat()},
            },
        )


@dataclass
class ShardStats:
    invocations: int = 0
    records_delivered: int = 0
    function_errors: int = 0
    partial_failures: int = 0
    discarded_batches: int = 0
    millis_behind_latest: int = 0


class ShardPoller(threading.Thread):
    """Reads one shard for one function, in order, one batch at a time."""

    def __init__(
        self,
        *,
        function_name: str,
        handler: Handler,
        handler_lock: threading.Lock,
        kinesis: Any,
        sqs: Any,
        checkpoints: CheckpointStore,
        stream_name: str,
        stream_arn: str,
        shard_id: str,
        region: str,
        settings: MappingSettings,
        stop: threading.Event,
    ) -> None:
        super().__init__(name=f"{function_name}:{shard_id}", daemon=True)
        self.function_name = function_name
        self.handler = handler
        self.handler_lock = handler_lock
        self.kinesis = kinesis
        self.sqs = sqs
        self.checkpoints = checkpoints
        self.stream_name = stream_name
        self.stream_arn = stream_arn
        self.shard_id = shard_id
        self.region = region
        self.settings = settings
        self.stop_event = stop
        self.stats = ShardStats()
        self._buffer: list[StreamRecord] = []
        self._shard_closed = False
        self._reported_lag: int | None = None
        self._lag_reported_at = 0.0
        self._empty_polls = 0
        self.finished = False  # closed, and every record delivered: its children may start

    # --- reading -----------------------------------------------------------------------

    def _iterator(self) -> str:
        checkpoint = self.checkpoints.get(self.function_name, self.shard_id)
        kwargs: dict[str, Any] = {"StreamName": self.stream_name, "ShardId": self.shard_id}
        if checkpoint:
            kwargs |= {
                "ShardIteratorType": "AFTER_SEQUENCE_NUMBER",
                "StartingSequenceNumber": checkpoint,
            }
        else:
            kwargs["ShardIteratorType"] = self.settings.starting_position
        return str(self.kinesis.get_shard_iterator(**kwargs)["ShardIterator"])

    def _fill(self, iterator: str | None) -> str | None:
        """Read until a full batch or the batching window closes."""
        deadline = time.monotonic() + self.settings.maximum_batching_window_s
        while iterator and not self.stop_event.is_set():
            response = self.kinesis.get_records(
                ShardIterator=iterator, Limit=min(10_000, self.settings.batch_size * 10)
            )
            self.stats.millis_behind_latest = int(response.get("MillisBehindLatest", 0))
            self._report_lag(self.stats.millis_behind_latest)
            self._buffer += [stream_record(record) for record in response.get("Records", [])]
            iterator = response.get("NextShardIterator")
            if iterator is None:
                self._shard_closed = True
            if len(self._buffer) >= self.settings.batch_size or time.monotonic() >= deadline:
                break
            if not response.get("Records"):
                if not self._buffer:
                    break  # nothing to gather: the idle wait follows, not the window
                self.stop_event.wait(self.settings.poll_interval_s)
        self._empty_polls = 0 if self._buffer else self._empty_polls + 1
        return iterator

    def _idle_wait_s(self) -> float:
        """The wait after an empty poll: doubling from the poll interval to the idle one."""
        grown = self.settings.poll_interval_s * 2 ** min(self._empty_polls - 1, 16)
        return min(max(grown, self.settings.poll_interval_s), self.settings.idle_poll_interval_s)

    def run(self) -> None:
        iterator: str | None = None
        while not self.stop_event.is_set():
            try:
                if iterator is None and not self._shard_closed:
                    iterator = self._iterator()
                iterator = self._fill(iterator)
                while self._buffer and not self.stop_event.is_set():
                    batch = self._buffer[: self.settings.batch_size]
                    self._buffer = self._buffer[self.settings.batch_size :]
                    self.deliver(batch)
                if self._shard_closed and not self._buffer:
                    log.info("%s: shard closed and drained", self.name)
                    self.finished = True
                    return
                if not self._buffer:
                    self.stop_event.wait(self._idle_wait_s())
            except ClientError as exc:
                code = exc.response["Error"]["Code"]
                log.warning("%s: %s; re-reading from the checkpoint", self.name, code)
                iterator, self._buffer = None, []
                self.stop_event.wait(1.0)
            except Exception:  # keep polling: an emulator hiccup must not end the shard
                log.exception("%s: poller error; re-reading from the checkpoint", self.name)
                iterator, self._buffer = None, []
                self.stop_event.wait(1.0)

    def _report_lag(self, millis: int) -> None:
        """Print the shard's lag as Lambda's IteratorAge in an EMF line (the stack forwards it
        to CloudWatch and to Prometheus, the shard as a property): when it changed, at most
        once a second; the polls that follow carry a later change."""
        now = time.monotonic()
        if millis == self._reported_lag or now - self._lag_reported_at < LAG_REPORT_INTERVAL_S:
            return
        self._reported_lag, self._lag_reported_at = millis, now
        line = orjson.dumps(
            iterator_age_emf(self.function_name, self.shard_id, millis, time.time())
        ).decode()
        with self.handler_lock:  # not inside a line the handler is printing
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    # --- delivery ----------------------------------------------------------------------

    def _invoke(self, records: list[StreamRecord]) -> Any:
        event = kinesis_event(
            records, shard_id=self.shard_id, stream_arn=self.stream_arn, region=self.region
        )
        context = LambdaContext(
            function_name=self.function_name,
            invoked_function_arn=(
                f"arn:aws:lambda:{self.region}:123456789012:function:{self.function_name}"
            ),
        )
        self.stats.invocations += 1
        with self.handler_lock:  # one execution environment per function, as one instance
            return self.handler(event, context)

    def _too_old(self, records: list[StreamRecord]) -> bool:
        limit = self.settings.maximum_record_age_s
        return limit >= 0 and time.time() - records[0].approximate_arrival > limit

    def deliver(self, records: list[StreamRecord], attempts: int = 0) -> None:
        """Deliver a batch until it is handled, or discarded to the on-failure destination."""
        pending = records
        while pending and not self.stop_event.is_set():
            if self._too_old(pending):
                self._discard(pending, "RecordAgeExceeded", attempts)
                return
            try:
                response = self._invoke(pending)
            except Exception as exc:
                self.stats.function_errors += 1
                log.warning("%s: function error (%s) on %d records", self.name, exc, len(pending))
                if self.settings.bisect_batch_on_function_error and len(pending) > 1:
                    middle = len(pending) // 2
                    self.deliver(pending[:middle], attempts)
                    self.deliver(pending[middle:], attempts)
                    return
                attempts += 1
                if self._exhausted(attempts):
                    self._discard(pending, "RetryAttemptsExhausted", attempts)
                    return
                self.stop_event.wait(self.settings.retry_backoff_s * attempts)
                continue
            failed_at = self._first_failure(response, pending)
            if failed_at is None:
                self._checkpoint(pending[-1])
                return
            self.stats.partial_failures += 1
            if failed_at > 0:
                self._checkpoint(pending[failed_at - 1])
            pending = pending[failed_at:]
            attempts += 1
            if self._exhausted(attempts):
                self._discard(pending, "RetryAttemptsExhausted", attempts)
                return
            self.stop_event.wait(self.settings.retry_backoff_s * attempts)

    def _exhausted(self, attempts: int) -> bool:
        limit = self.settings.maximum_retry_attempts
        return limit >= 0 and attempts > limit

    def _first_failure(self, response: Any, records: list[StreamRecord]) -> int | None:
        """Index of the lowest failed record in a partial batch response, if any. An answer
        naming an unknown sequence number fails the whole batch, as on AWS."""
        if not self.settings.report_batch_item_failures or not isinstance(response, dict):
            return None
        failures = response.get("batchItemFailures") or []
        if not failures:
            return None
        positions = {record.sequence_number: index for index, record in enumerate(records)}
        indexes = [positions.get(str(item.get("itemIdentifier")), 0) for item in failures]
        return min(indexes)

    def _checkpoint(self, record: StreamRecord) -> None:
        self.checkpoints.put(self.function_name, self.shard_id, record.sequence_number)

    def _discard(self, records: list[StreamRecord], condition: str, attempts: int) -> None:
        """Send the batch's metadata to the on-failure destination (Lambda's message shape),
        then move past it."""
        self.stats.discarded_batches += 1
        log.error("%s: discarding %d records (%s)", self.name, len(records), condition)
        if self.settings.on_failure_queue_url:
            self.sqs.send_message(
                QueueUrl=self.settings.on_failure_queue_url,
                MessageBody=orjson.dumps(
                    on_failure_message(
                        records,
                        function_arn=(
                            f"arn:aws:lambda:{self.region}:123456789012:function:"
                            f"{self.function_name}"
                        ),
                        condition=condition,
                        attempts=attempts,
                        shard_id=self.shard_id,
                        stream_arn=self.stream_arn,
                    )
                ).decode(),
            )
        self._checkpoint(records[-1])


def iterator_age_emf(
    function_name: str, shard_id: str, millis: int, now_s: float
) -> dict[str, Any]:
    """An EMF document with Lambda's IteratorAge metric (namespace AWS/Lambda, dimension
    FunctionName) for one shard; ``ShardId`` is a property, not a dimension, as on AWS."""
    return {
        "_aws": {
            "Timestamp": int(now_s * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": "AWS/Lambda",
                    "Dimensions": [["FunctionName"]],
                    "Metrics": [{"Name": "IteratorAge", "Unit": "Milliseconds"}],
                }
            ],
        },
        "FunctionName": function_name,
        "ShardId": shard_id,
        "IteratorAge": millis,
    }


def on_failure_message(
    records: list[StreamRecord],
    *,
    function_arn: str,
    condition: str,
    attempts: int,
    shard_id: str,
    stream_arn: str,
) -> dict[str, Any]:
    """The invocation record Lambda sends to a Kinesis mapping's on-failure destination."""

    def iso(seconds: float) -> str:
        return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")

    return {
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": function_arn,
            "condition": condition,
            "approximateInvokeCount": attempts,
        },
        "responseContext": {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": "Unhandled",
        },
        "version": "1.0",
        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "KinesisBatchInfo": {
            "shardId": shard_id,
            "startSequenceNumber": records[0].sequence_number,
            "endSequenceNumber": records[-1].sequence_number,
            "approximateArrivalOfFirstRecord": iso(records[0].approximate_arrival),
            "approximateArrivalOfLastRecord": iso(records[-1].approximate_arrival),
            "batchSize": len(records),
            "streamArn": stream_arn,
        },
    }


class EventSourceMapping:
    """All shards of a stream feeding one function; finds new shards as they appear."""

    def __init__(
        self,
        *,
        function_name: str,
        handler: Handler,
        kinesis: Any,
        dynamodb: Any,
        sqs: Any,
        stream_name: str,
        checkpoints_table: str,
        region: str,
        settings: MappingSettings,
    ) -> None:
        self.function_name = function_name
        self.handler = handler
        self.kinesis = kinesis
        self.sqs = sqs
        self.stream_name = stream_name
        self.region = region
        self.settings = settings
        self.checkpoints = CheckpointStore(dynamodb, checkpoints_table)
        self.stop_event = threading.Event()
        self.pollers: dict[str, ShardPoller] = {}
        self._lock = threading.Lock()
        self._discovery: threading.Thread | None = None

    def _stream_arn(self) -> str:
        summary = self.kinesis.describe_stream_summary(StreamName=self.stream_name)
        return str(summary["StreamDescriptionSummary"]["StreamARN"])

    def discover_shards(self) -> None:
        stream_arn = self._stream_arn()
        shards = []
        kwargs: dict[str, Any] = {"StreamName": self.stream_name}
        while True:
            page = self.kinesis.list_shards(**kwargs)
            shards.extend(page["Shards"])
            if not page.get("NextToken"):
                break
            kwargs = {"NextToken": page["NextToken"]}
        present = {shard["ShardId"] for shard in shards}
        for shard in shards:
            shard_id = shard["ShardId"]
            if shard_id in self.pollers or not self._parents_finished(shard, present):
                continue
            poller = ShardPoller(
                function_name=self.function_name,
                handler=self.handler,
                handler_lock=self._lock,
                kinesis=self.kinesis,
                sqs=self.sqs,
                checkpoints=self.checkpoints,
                stream_name=self.stream_name,
                stream_arn=stream_arn,
                shard_id=shard_id,
                region=self.region,
                settings=self.settings,
                stop=self.stop_event,
            )
            self.pollers[shard_id] = poller
            poller.start()
            log.info("%s: polling %s", self.function_name, shard_id)

    def _parents_finished(self, shard: Mapping[str, Any], present: set[str]) -> bool:
        """Lambda starts a child shard only after its parents (a split's one, a merge's two)
        are read to their end, so a session's events are handled in order across a reshard.
        A parent past the stream's retention is no longer listed and holds nothing."""
        for key in ("ParentShardId", "AdjacentParentShardId"):
            parent = shard.get(key)
            if parent and parent in present:
                poller = self.pollers.get(parent)
                if poller is None or not poller.finished:
                    return False
        return True

    def _discover_forever(self) -> None:
        while not self.stop_event.wait(self.settings.shard_discovery_interval_s):
            try:
                self.discover_shards()
            except Exception:
                log.exception("%s: shard discovery failed", self.function_name)

    def start(self) -> None:
        self.discover_shards()
        self._discovery = threading.Thread(
            target=self._discover_forever, name=f"{self.function_name}:discovery", daemon=True
        )
        self._discovery.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Let in-flight batches finish, then stop polling."""
        self.stop_event.set()
        for poller in self.pollers.values():
            poller.join(timeout)

    def stats(self) -> dict[str, dict[str, int]]:
        return {shard: vars(poller.stats) for shard, poller in self.pollers.items()}


# --- SQS ------------------------------------------------------------------------------------


def sqs_event(messages: list[dict[str, Any]], *, queue_arn: str, region: str) -> dict[str, Any]:
    """The event Lambda passes to an SQS-triggered function."""
    return {
        "Records": [
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": message.get("Attributes", {}),
                "messageAttributes": message.get("MessageAttributes", {}),
                "md5OfBody": message.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for message in messages
        ]
    }


class SqsEventSourceMapping(threading.Thread):
    """What Lambda's SQS poller does for the jobs function: long-poll, invoke with a batch,
    delete what succeeded (with ``ReportBatchItemFailures``, all but the failed messages);
    a failed message comes back after the queue's visibility timeout, and after the redrive
    policy's receive count, SQS moves it to the dead-letter queue itself."""

    def __init__(
        self,
        *,
        function_name: str,
        handler: Handler,
        sqs: Any,
        queue_name: str,
        region: str,
        batch_size: int = 1,
        timeout_s: float = 900.0,
        wait_s: int = 1,
    ) -> None:
        super().__init__(name=f"{function_name}:sqs", daemon=True)
        self.function_name = function_name
        self.handler = handler
        self.sqs = sqs
        self.queue_url = str(sqs.get_queue_url(QueueName=queue_name)["QueueUrl"])
        self.queue_arn = str(
            sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])[
                "Attributes"
            ]["QueueArn"]
        )
        self.region = region
        self.batch_size = batch_size
        self.timeout_s = timeout_s
        self.wait_s = wait_s
        self.stop_event = threading.Event()
        self.invocations = 0
        self.failures = 0

    def run(self) -> None:
        while not self.stop_event.is_set():
            try:
                self.poll_once()
            except Exception:  # an emulator hiccup must not end the mapping
                log.exception("%s: poller error", self.name)
                self.stop_event.wait(1.0)

    def poll_once(self) -> int:
        messages = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=self.batch_size,
            WaitTimeSeconds=self.wait_s,
            AttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return 0
        context = LambdaContext(
            function_name=self.function_name,
            invoked_function_arn=(
                f"arn:aws:lambda:{self.region}:123456789012:function:{self.function_name}"
            ),
            timeout_s=self.timeout_s,
        )
        self.invocations += 1
        failed: set[str] = {message["MessageId"] for message in messages}
        try:
            answer = self.handler(
                sqs_event(messages, queue_arn=self.queue_arn, region=self.region), context
            )
        except Exception as exc:
            log.warning("%s: function error (%s); the batch comes back", self.name, exc)
        else:
            reported = (answer or {}).get("batchItemFailures") or []
            failed = {str(item.get("itemIdentifier")) for item in reported}
        for message in messages:
            if message["MessageId"] in failed:
                self.failures += 1
                continue
            self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return len(messages)

    def stop(self, timeout: float = 30.0) -> None:
        self.stop_event.set()
        self.join(timeout)
