"""Kinesis records as the consumers see them: decoding into canonical events, and the
quarantine of poison records (dead-letter queue + the raw payload under ``bad/`` in S3), so
a record that can never succeed never blocks its shard."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import orjson
from pydantic import ValidationError

from clickstream.aggregates import SequencedEvent
from clickstream.layout import bad_record_key
from clickstream.schema import Event

MAX_RECORD_BYTES = 1_048_576


class PoisonRecord(Exception):
    """A record no retry can fix: undecodable, schema-invalid or oversize."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class RecordRef:
    """Where a record sits in the stream."""

    event_source_arn: str
    shard_id: str
    sequence_number: str
    partition_key: str
    approximate_arrival: float | None = None


def shard_id_from_event_id(event_id: str) -> str:
    """Lambda's Kinesis ``eventID`` is ``<shardId>:<sequenceNumber>``."""
    return event_id.split(":", 1)[0]


def decode_event(data: bytes) -> Event:
    if len(data) > MAX_RECORD_BYTES:
        raise PoisonRecord(f"oversize: {len(data)} bytes")
    try:
        payload = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise PoisonRecord(f"undecodable: not JSON ({exc})") from None
    try:
        return Event.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        location = ".".join(str(part) for part in first["loc"]) or "record"
        raise PoisonRecord(f"schema-invalid: {location}: {first['msg']}") from None


def decode_sequenced(data: bytes, sequence_number: str) -> SequencedEvent:
    return SequencedEvent(sequence_number=sequence_number, event=decode_event(data))


@lru_cache(maxsize=8)
def _queue_url(sqs: Any, queue_name: str) -> str:
    return str(sqs.get_queue_url(QueueName=queue_name)["QueueUrl"])


def quarantine(
    *,
    sqs: Any,
    s3: Any,
    queue_name: str,
    bucket: str,
    consumer: str,
    ref: RecordRef,
    raw: bytes,
    reason: str,
) -> str:
    """Keep the raw payload under ``bad/`` and tell the dead-letter queue why. The key is
    derived from the record's position, so a retried quarantine overwrites, never piles up."""
    key = bad_record_key(ref.shard_id, ref.sequence_number)
    s3.put_object(Bucket=bucket, Key=key, Body=raw, ContentType="application/octet-stream")
    message = {
        "reason": reason,
        "consumer": consumer,
        "eventSourceARN": ref.event_source_arn,
        "shardId": ref.shard_id,
        "sequenceNumber": ref.sequence_number,
        "partitionKey": ref.partition_key,
        "approximateArrivalTimestamp": ref.approximate_arrival,
        "payloadLocation": f"s3://{bucket}/{key}",
        "payloadBytes": len(raw),
        "quarantinedAt": datetime.now(UTC).isoformat(),
    }
    sqs.send_message(
        QueueUrl=_queue_url(sqs, queue_name),
        MessageBody=orjson.dumps(message).decode(),
        MessageAttributes={
            "reason": {"DataType": "String", "StringValue": reason.split(":", 1)[0]},
            "consumer": {"DataType": "String", "StringValue": consumer},
        },
    )
    return key
