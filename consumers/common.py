"""What both consumers share: decoding a Kinesis record with poison records quarantined,
and the run of successfully decoded records that may be applied."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import (
    KinesisStreamRecord,
)

from clickstream.aggregates import SequencedEvent
from clickstream.aws import client
from clickstream.records import (
    PoisonRecord,
    RecordRef,
    decode_sequenced,
    quarantine,
    shard_id_from_event_id,
)
from clickstream.settings import get_settings


def record_ref(record: KinesisStreamRecord) -> RecordRef:
    return RecordRef(
        event_source_arn=record.event_source_arn,
        shard_id=record.event_id.split(":", 1)[0],
        sequence_number=record.kinesis.sequence_number,
        partition_key=record.kinesis.partition_key,
        approximate_arrival=record.kinesis.approximate_arrival_timestamp,
    )


def handle_record(
    record: KinesisStreamRecord, *, consumer: str, logger: Logger, metrics: Metrics
) -> SequencedEvent | None:
    """Decode one record. A poison record is quarantined and counted as handled (None), so
    it never blocks the shard; a failure to quarantine it raises, and Lambda retries."""
    raw = record.kinesis.data_as_bytes()
    try:
        return decode_sequenced(raw, record.kinesis.sequence_number)
    except PoisonRecord as poison:
        settings = get_settings()
        ref = record_ref(record)
        key = quarantine(
            sqs=client("sqs"),
            s3=client("s3"),
            queue_name=settings.dead_letter_queue,
            bucket=settings.archive_bucket,
            consumer=consumer,
            ref=ref,
            raw=raw,
            reason=poison.reason,
        )
        logger.warning(
            "poison record quarantined",
            extra={
                "reason": poison.reason,
                "shard_id": ref.shard_id,
                "sequence_number": ref.sequence_number,
                "s3_key": key,
            },
        )
        metrics.add_metric(name="PoisonRecords", unit=MetricUnit.Count, value=1)
        return None


def applicable_prefix(outcomes: Sequence[tuple[str, Any, Any]]) -> list[SequencedEvent]:
    """The decoded events before the first failed record. Lambda resumes the shard at the
    lowest failed sequence number, so anything after it comes again and must wait."""
    events: list[SequencedEvent] = []
    for status, result, _record in outcomes:
        if status != "success":
            break
        if result is not None:
            events.append(result)
    return events


def shard_id_of_batch(event: dict[str, Any]) -> str | None:
    records = event.get("Records") or []
    return shard_id_from_event_id(str(records[0]["eventID"])) if records else None


def new_processor() -> BatchProcessor:
    return BatchProcessor(event_type=EventType.KinesisDataStreams)


@contextmanager
def measured_batch(metrics: Metrics, event: dict[str, Any]) -> Iterator[None]:
    """BatchSize (records delivered) and BatchDuration of one invocation, also when it raises
    (the log_metrics decorator flushes them either way)."""
    started = time.perf_counter()
    try:
        yield
    finally:
        metrics.add_metric(
            name="BatchSize", unit=MetricUnit.Count, value=len(event.get("Records") or [])
        )
        metrics.add_metric(
            name="BatchDuration",
            unit=MetricUnit.Milliseconds,
            value=(time.perf_counter() - started) * 1000,
        )
