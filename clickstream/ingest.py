"""Ingest: request body -> validated, enriched events -> Kinesis ``PutRecords``.

Nothing is reported accepted that is not in the stream: records that still fail after the
bounded, jittered retries are reported back to the client as not accepted.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
from botocore.exceptions import BotoCoreError, ClientError

from clickstream.enrich import to_event
from clickstream.schema import (
    MAX_PROPERTIES_BYTES,
    MAX_PROPERTIES_DEPTH,
    Event,
    Location,
    RecordError,
    json_depth,
    parse_incoming,
)

MAX_RECORDS_PER_REQUEST = 500
MAX_BODY_BYTES = 1_048_576
MAX_INCOMING_RECORD_BYTES = 32_768  # one record as the client sent it, as compact JSON
MAX_RECORD_BYTES = 1_000_000  # Kinesis caps a record (data + key) at 1 MiB
# Old enough for the history the replaced systems still send (their payloads carry 2023
# timestamps), young enough to turn away unset device clocks (1970) and garbage years.
# Stages without imports can tighten it (CLICKSTREAM_MAX_EVENT_AGE_DAYS, e.g. 7).
DEFAULT_MAX_EVENT_AGE = timedelta(days=3650)
# navigator.sendBeacon sends text/plain; a missing Content-Type is read as JSON.
INGEST_CONTENT_TYPES = ("application/json", "text/plain")
BACKOFF_BASE_S = 0.05
BACKOFF_CAP_S = 1.0


class IngestError(Exception):
    """The request as a whole is unacceptable: answered with ``status`` and nothing is
    written."""

    def __init__(self, status: int, message: str, field: str = "body") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field


@dataclass
class ValidatedBatch:
    events: list[tuple[int, Event]] = field(default_factory=list)
    errors: list[RecordError] = field(default_factory=list)


@dataclass
class PutOutcome:
    accepted: list[tuple[int, Event]] = field(default_factory=list)
    rejected: list[RecordError] = field(default_factory=list)
    attempts: int = 0
    throttled: int = 0


def check_content_type(content_type: str | None) -> None:
    """JSON bodies only: ``application/json`` (any charset, must be UTF-8) or ``text/plain``
    (beacons)."""
    if content_type is None or not content_type.strip():
        return
    media_type, _, parameters = content_type.partition(";")
    if media_type.strip().lower() not in INGEST_CONTENT_TYPES:
        raise IngestError(
            415,
            f"Content-Type {media_type.strip()[:100]!r} is not accepted; send application/json "
            "(or text/plain from navigator.sendBeacon)",
            "Content-Type",
        )
    charset = parameters.lower().replace(" ", "")
    if "charset=" in charset and "charset=utf-8" not in charset:
        raise IngestError(415, "the body must be UTF-8 (charset=utf-8)", "Content-Type")


def load_json_body(raw: bytes | None) -> Any:
    if raw is None or not raw.strip():
        raise IngestError(400, "request body is empty; send a JSON object")
    if len(raw) > MAX_BODY_BYTES:
        raise IngestError(413, f"request body is {len(raw)} bytes; the limit is {MAX_BODY_BYTES}")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "depth limit" in str(exc):
            raise IngestError(
                400, "malformed JSON: nested deeper than the parser's limit of 1024 levels"
            ) from None
        raise IngestError(400, f"malformed JSON: {exc}") from None


def records_from_body(body: Any) -> list[Any]:
    """The ``records`` array of a ``POST /events`` body."""
    if not isinstance(body, dict):
        raise IngestError(400, 'the body must be a JSON object like {"records": [...]}')
    records = body.get("records")
    if not isinstance(records, list):
        raise IngestError(400, '"records" must be an array of event objects', "records")
    if not records:
        raise IngestError(400, '"records" is empty; send 1 to 500 events', "records")
    if len(records) > MAX_RECORDS_PER_REQUEST:
        raise IngestError(
            413,
            f'"records" has {len(records)} events; the limit is {MAX_RECORDS_PER_REQUEST}',
            "records",
        )
    return records


def record_limit_errors(
    index: int,
    record: Any,
    event: Event,
    *,
    received_at: datetime,
    max_event_age: timedelta = DEFAULT_MAX_EVENT_AGE,
) -> list[RecordError]:
    """The limits a record can only be checked against once it is parsed and enriched."""
    errors = []
    try:
        size = len(orjson.dumps(record))
    except TypeError:  # orjson.JSONEncodeError: nested past its 255-level recursion limit
        size = 0
        errors.append(RecordError(index, "record", "nests too deeply to be stored"))
    if size > MAX_INCOMING_RECORD_BYTES:
        errors.append(
            RecordError(
                index,
                "record",
                f"record is {size} bytes as JSON; the limit is {MAX_INCOMING_RECORD_BYTES} "
                "bytes per record",
            )
        )
    depth = json_depth(event.properties)
    if depth > MAX_PROPERTIES_DEPTH:
        errors.append(
            RecordError(
                index,
                "properties",
                f"properties nest {depth} levels deep; the limit is {MAX_PROPERTIES_DEPTH}",
            )
        )
    elif event.properties:
        properties_size = len(orjson.dumps(event.properties))
        if properties_size > MAX_PROPERTIES_BYTES:
            errors.append(
                RecordError(
                    index,
                    "properties",
                    f"properties (with unmapped top-level fields) are {properties_size} bytes "
                    f"as JSON; the limit is {MAX_PROPERTIES_BYTES} bytes",
                )
            )
    if event.timestamp < received_at - max_event_age:
        errors.append(
            RecordError(
                index,
                "timestamp",
                f"is more than {max_event_age.total_seconds() / 86400:g} days in the past "
                "(the limit on event age)",
            )
        )
    return errors


def validate_records(
    records: Sequence[Any],
    *,
    received_at: datetime,
    source_ip: str | None = None,
    max_event_age: timedelta = DEFAULT_MAX_EVENT_AGE,
    locate: Callable[[str | None], Location] | None = None,
) -> ValidatedBatch:
    batch = ValidatedBatch()
    for index, record in enumerate(records):
        if isinstance(record, RecordError):  # an SDK message that maps onto no event
            batch.errors.append(record)
            continue
        parsed = parse_incoming(index, record)
        if isinstance(parsed, list):
            batch.errors.extend(parsed)
            continue
        event = to_event(parsed, received_at=received_at, source_ip=source_ip, locate=locate)
        limits = record_limit_errors(
            index, record, event, received_at=received_at, max_event_age=max_event_age
        )
        if limits:
            batch.errors.extend(limits)
        else:
            batch.events.append((index, event))
    return batch


def encode_event(event: Event) -> bytes:
    return event.model_dump_json(exclude_none=True).encode()


def put_records_entries(events: Sequence[tuple[int, Event]]) -> list[dict[str, Any]]:
    return [
        {"Data": encode_event(event), "PartitionKey": event.partition_key} for _, event in events
    ]


def backoff_delay(
    attempt: int, *, base: float = BACKOFF_BASE_S, cap: float = BACKOFF_CAP_S
) -> float:
    """Capped exponential backoff with full jitter (AWS architecture blog's recommendation)."""
    return random.uniform(0, min(cap, base * (2**attempt)))


def put_events(
    kinesis: Any,
    stream_name: str,
    events: Sequence[tuple[int, Event]],
    *,
    max_attempts: int = 5,
    sleep: Callable[[float], None] = time.sleep,
) -> PutOutcome:
    """``PutRecords`` the events, retrying only the entries that failed."""
    outcome = PutOutcome()
    pairs: list[tuple[tuple[int, Event], dict[str, Any]]] = []
    for item, entry in zip(events, put_records_entries(events), strict=True):
        size = len(entry["Data"]) + len(entry["PartitionKey"].encode())
        if size > MAX_RECORD_BYTES:
            outcome.rejected.append(
                RecordError(
                    item[0], "record", f"encoded event is {size} bytes; Kinesis allows 1 MiB"
                )
            )
        else:
            pairs.append((item, entry))
    last_error: dict[int, str] = {}
    while pairs and outcome.attempts < max_attempts:
        if outcome.attempts:
            sleep(backoff_delay(outcome.attempts))
        outcome.attempts += 1
        try:
            response = kinesis.put_records(StreamName=stream_name, Records=[e for _, e in pairs])
        except (ClientError, BotoCoreError) as exc:
            code = (
                exc.response["Error"]["Code"]
                if isinstance(exc, ClientError)
                else type(exc).__name__
            )
            outcome.throttled += code == "ProvisionedThroughputExceededException"
            for item, _ in pairs:
                last_error[item[0]] = code
            continue
        retry = []
        for (item, entry), result in zip(pairs, response["Records"], strict=True):
            if "ErrorCode" in result:
                last_error[item[0]] = result["ErrorCode"]
                outcome.throttled += result["ErrorCode"] == "ProvisionedThroughputExceededException"
                retry.append((item, entry))
            else:
                outcome.accepted.append(item)
        pairs = retry
    for (index, _), _entry in pairs:
        outcome.rejected.append(
            RecordError(
                index,
                "record",
                f"not accepted: the stream refused it ({last_error.get(index, 'unknown')}) "
                f"after {outcome.attempts} attempts; retry later",
                retryable=True,
            )
        )
    outcome.accepted.sort(key=lambda item: item[0])
    return outcome


@dataclass
class IngestResponse:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    accepted: int = 0
    rejected: int = 0
    throttled: int = 0


RETRY_AFTER_S = "1"


def _whole_request_error(error: IngestError) -> IngestResponse:
    return IngestResponse(
        error.status,
        {
            "status": "rejected",
            "error": error.message,
            "errors": [{"index": None, "field": error.field, "message": error.message}],
        },
    )


@dataclass(frozen=True)
class IngestContext:
    """Everything an ingest request needs besides its body."""

    kinesis: Any
    stream_name: str
    received_at: datetime
    source_ip: str | None = None
    max_attempts: int = 5
    max_event_age: timedelta = DEFAULT_MAX_EVENT_AGE
    locate: Callable[[str | None], Location] | None = None  # clickstream.geo.locator


def ingest_records(records: Sequence[Any], context: IngestContext) -> IngestResponse:
    """Validate, enrich and stream a batch; answer per record."""
    batch = validate_records(
        records,
        received_at=context.received_at,
        source_ip=context.source_ip,
        max_event_age=context.max_event_age,
        locate=context.locate,
    )
    outcome = (
        put_events(
            context.kinesis, context.stream_name, batch.events, max_attempts=context.max_attempts
        )
        if batch.events
        else PutOutcome()
    )
    errors = sorted(batch.errors + outcome.rejected, key=lambda error: error.index)
    body: dict[str, Any] = {
        "status": "accepted",
        "processed": len(outcome.accepted),
        "failed": len(records) - len(outcome.accepted),
        "errors": [error.as_dict() for error in errors],
        "event_ids": [event.event_id for _, event in outcome.accepted],
    }
    response = IngestResponse(
        200, body, accepted=len(outcome.accepted), rejected=len(errors), throttled=outcome.throttled
    )
    if not outcome.accepted:
        if batch.events:  # valid records, but the stream took none of them
            body["status"] = "unavailable"
            response.status = 503
            response.headers["Retry-After"] = RETRY_AFTER_S
        else:
            body["status"] = "rejected"
            response.status = 400
    return response


def handle_events_request(
    raw_body: bytes | None, context: IngestContext, content_type: str | None = None
) -> IngestResponse:
    """``POST /events`` with ``{"records": [...]}``."""
    try:
        check_content_type(content_type)
        records = records_from_body(load_json_body(raw_body))
    except IngestError as error:
        return _whole_request_error(error)
    return ingest_records(records, context)


def handle_track_request(
    raw_body: bytes | None, context: IngestContext, content_type: str | None = None
) -> IngestResponse:
    """``POST /track`` with one event object."""
    try:
        check_content_type(content_type)
        record = load_json_body(raw_body)
    except IngestError as error:
        return _whole_request_error(error)
    if not isinstance(record, dict):
        return _whole_request_error(IngestError(400, "the body must be one JSON event object"))
    response = ingest_records([record], context)
    if response.status == 200:
        response.body = {"status": "accepted", "event_id": response.body["event_ids"][0]}
    return response
