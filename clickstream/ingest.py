"""Ingest: request body -> validated, enriched events -> Kinesis ``PutRecords``.

Nothing is reported accepted that is not in the stream: records that still fail after the
bounded, jittered retries are reported back to the client as not accepted.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from botocore.exceptions import BotoCoreError, ClientError

from clickstream.enrich import to_event
from clickstream.schema import Event, RecordError, parse_incoming

MAX_RECORDS_PER_REQUEST = 500
MAX_BODY_BYTES = 1_048_576
MAX_RECORD_BYTES = 1_000_000  # Kinesis caps a record (data + key) at 1 MiB
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


def load_json_body(raw: bytes | None) -> Any:
    if raw is None or not raw.strip():
        raise IngestError(400, "request body is empty; send a JSON object")
    if len(raw) > MAX_BODY_BYTES:
        raise IngestError(413, f"request body is {len(raw)} bytes; the limit is {MAX_BODY_BYTES}")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
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


def validate_records(
    records: Sequence[Any], *, received_at: datetime, source_ip: str | None = None
) -> ValidatedBatch:
    batch = ValidatedBatch()
    for index, record in enumerate(records):
        parsed = parse_incoming(index, record)
        if isinstance(parsed, list):
            batch.errors.extend(parsed)
        else:
            batch.events.append(
                (index, to_event(parsed, received_at=received_at, source_ip=source_ip))
            )
    return batch


def encode_event(event: Event) -> bytes:
    return orjson.dumps(event.model_dump(mode="json", exclude_none=True))


def put_records_entries(events: Sequence[tuple[int, Event]]) -> list[dict[str, Any]]:
    return [{"Data": encode_event(event), "PartitionKey": event.partition_key} for _, event in events]


def backoff_delay(attempt: int, *, base: float = BACKOFF_BASE_S, cap: float = BACKOFF_CAP_S) -> float:
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
                RecordError(item[0], "record", f"encoded event is {size} bytes; Kinesis allows 1 MiB")
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
            code = exc.response["Error"]["Code"] if isinstance(exc, ClientError) else type(exc).__name__
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
            )
        )
    outcome.accepted.sort(key=lambda item: item[0])
    return outcome
