"""Ingest: request body -> validated, enriched events -> Kinesis ``PutRecords``.

Nothing is reported accepted that is not in the stream: records that still fail after the
bounded, jittered retries are reported back to the client as not accepted.
"""

from __future__ import annotations

import gc
import json
import math
import random
import time
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, Field, ValidationError

from clickstream.enrich import canonical_event, sent_properties
from clickstream.errors import RequestError
from clickstream.schema import (
    MAX_FUTURE_SKEW,
    MAX_PROPERTIES_BYTES,
    MAX_PROPERTIES_DEPTH,
    SURROGATE_MESSAGE,
    Event,
    IncomingEvent,
    Location,
    RecordError,
    content_event_id,
    described,
    holds_surrogate,
    iso_time,
    json_depth,
    may_hold_control_characters,
    names_its_type,
    parse_incoming_all,
    partition_key,
    without_control_check,
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


# A canonical event as the JSON object the stream carries (``Event``'s fields, None left out).
Canonical = dict[str, Any]


class CyclicGcPause:
    """The cyclic garbage collector paused for one ingest request. A request's objects (the
    parsed records, their canonical events, a few per record) live until it answers, so the
    collector's passes over them find little to free: reference counting frees them as it
    ends, and the next pass after it whatever is left in cycles. A request is bounded
    (``MAX_BODY_BYTES``), so the pause is too. A collector already off (another request's
    pause, or the process's choice) is left as it is; another thread's pause may end first,
    and the collector then runs as usual."""

    def __enter__(self) -> None:
        self._paused_here = gc.isenabled()
        if self._paused_here:
            gc.disable()

    def __exit__(self, *_exception: object) -> None:
        if self._paused_here:
            gc.enable()


@dataclass
class ValidatedBatch:
    records: list[tuple[int, Canonical]] = field(default_factory=list)
    errors: list[RecordError] = field(default_factory=list)
    encoded: dict[int, bytes] = field(default_factory=dict)  # each record's stream bytes

    @property
    def events(self) -> list[tuple[int, Event]]:
        """The records as the model consumers read (ingest itself never builds it)."""
        return [(index, Event.model_validate(record)) for index, record in self.records]


@dataclass
class PutOutcome:
    accepted: list[tuple[int, Canonical]] = field(default_factory=list)
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
        raise RequestError(
            "Content-Type",
            f"Content-Type {media_type.strip()[:100]!r} is not accepted; send application/json "
            "(or text/plain from navigator.sendBeacon)",
            415,
        )
    charset = parameters.lower().replace(" ", "")
    if "charset=" in charset and "charset=utf-8" not in charset:
        raise RequestError("Content-Type", "the body must be UTF-8 (charset=utf-8)", 415)


GZIP_MAGIC = b"\x1f\x8b"
_INFLATED_ENCODINGS = ("gzip", "x-gzip", "deflate")


NOT_INFLATABLE = "the body is not valid gzip or deflate"
# Members one after another are read (each reading copies what is left): a body of thousands
# of empty ones would cost seconds, and no client sends more than a few.
MAX_GZIP_MEMBERS = 64


def inflate(raw: bytes, limit: int = MAX_BODY_BYTES) -> bytes:
    """gzip (or zlib) data, refused past ``limit`` bytes inflated, so a small bomb cannot
    take the function's memory. Several gzip members one after another (as ``cat a.gz b.gz``
    or a streaming compressor makes them) are one body, as gzip reads them; anything else
    after the data is refused, not ignored."""
    inflated = b""
    rest = raw
    for _ in range(MAX_GZIP_MEMBERS):
        inflater = zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib header, detected
        try:
            inflated += inflater.decompress(rest, limit + 1 - len(inflated))
        except zlib.error as exc:
            raise RequestError("body", f"{NOT_INFLATABLE}: {exc}") from None
        if len(inflated) > limit or inflater.unconsumed_tail:
            raise RequestError(
                "body", f"the body inflates past {limit} bytes; the limit is {limit}", 413
            )
        if not inflater.eof:
            raise RequestError("body", f"{NOT_INFLATABLE}: the data is truncated")
        rest = inflater.unused_data
        if rest[:2] != GZIP_MAGIC:
            break
    else:
        raise RequestError("body", f"{NOT_INFLATABLE}: more than {MAX_GZIP_MEMBERS} gzip members")
    if rest.strip(b"\x00"):  # (zero padding after a gzip stream is allowed, as gzip does)
        raise RequestError(
            "body", f"{NOT_INFLATABLE}: {len(rest)} bytes follow the compressed data"
        )
    return inflated


def decoded_body(
    raw: bytes | None, content_encoding: str | None, limit: int = MAX_BODY_BYTES
) -> bytes:
    """The body with ``Content-Encoding: gzip`` (or bare gzip bytes) undone. API Gateway with
    compression on inflates the body itself and passes the header on: JSON under a gzip
    header is taken as it is."""
    raw = raw or b""
    if len(raw) > limit:
        raise RequestError("body", f"request body is {len(raw)} bytes; the limit is {limit}", 413)
    encoding = (content_encoding or "").strip().lower()
    if "," in encoding:  # codings applied one after another ("gzip, gzip")
        raise RequestError(
            "Content-Encoding",
            f"Content-Encoding {encoding[:40]!r} names several codings; send one, gzip or deflate",
            415,
        )
    if encoding and encoding != "identity" and encoding not in _INFLATED_ENCODINGS:
        raise RequestError(
            "Content-Encoding",
            f"Content-Encoding {encoding[:40]!r} is not accepted; use gzip or deflate",
            415,
        )
    if raw[:2] == GZIP_MAGIC:
        return inflate(raw, limit)
    if encoding in _INFLATED_ENCODINGS:
        return raw if raw.lstrip()[:1] in (b"{", b"[") else inflate(raw, limit)
    return raw


def loads_json(data: bytes | str) -> Any:
    """JSON as orjson reads it; a body holding half of a UTF-16 surrogate pair (``"\\ud83d"``,
    an emoji cut in two by a client) is read by the standard library instead, so that only
    the records holding one are refused, by name, when they are stored (``surrogate_path``)."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        if "surrogate" not in str(exc) or not_utf8(data):  # (json.loads would read UTF-16)
            raise
        try:
            return json.loads(data)
        except ValueError:  # (a JSONDecodeError, or bytes that are not UTF-8)
            raise exc from None


def not_utf8(raw: bytes | str) -> str | None:
    """Where bytes that are not UTF-8 first go wrong (orjson's error for them says
    "surrogates not allowed"); None for UTF-8."""
    if not isinstance(raw, bytes):
        return None
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as bad:
        return f"byte {bad.start} is {raw[bad.start]:#x}"
    return None


def surrogate_path(value: Any, path: str = "") -> str | None:
    """The dotted path to the first string (or key) in ``value`` holding a lone surrogate."""
    if isinstance(value, str):
        return path if holds_surrogate(value) else None
    items = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, item in items:
        name = f"{path}.{key}" if path else str(key)
        if (found := surrogate_path(key, name) if isinstance(key, str) else None) is not None:
            return found
        if (found := surrogate_path(item, name)) is not None:
            return found
    return None


def skew_corrected(
    created: datetime | None, sent: datetime | None, received_at: datetime
) -> datetime | None:
    """When the device's clock is wrong by the same amount at creation and sending, the
    event happened ``sent - created`` before it reached us (Segment's and Snowplow's rule)."""
    if created is None:
        return None
    if sent is None:
        return created
    age = sent - created
    if age < timedelta(0):
        age = timedelta(0)
    try:
        return received_at - age
    except OverflowError:  # created in year 1, sent in 9999: not a clock to correct by
        return created


def load_json_body(raw: bytes | None) -> Any:
    if raw is None or not raw.strip():
        raise RequestError("body", "request body is empty; send a JSON object")
    if len(raw) > MAX_BODY_BYTES:
        raise RequestError(
            "body", f"request body is {len(raw)} bytes; the limit is {MAX_BODY_BYTES}", 413
        )
    return read_json(raw)


def read_json(data: bytes | str, what: str = "body") -> Any:
    """A request's JSON (its body, or a part an SDK encodes: a payload, a form field), or the
    400 naming ``what`` and what is wrong with it, as every route words it."""
    try:
        return loads_json(data)
    except orjson.JSONDecodeError as exc:
        if where := not_utf8(data):
            raise RequestError(what, f"the {what} is not valid UTF-8: {where}") from None
        if "depth limit" in str(exc):
            said = "nested deeper than the parser's limit of 1024 levels"
        else:
            said = str(exc)
        raise RequestError(what, f"the {what} is not valid JSON: {said}") from None


def records_from_body(body: Any) -> list[Any]:
    """The ``records`` array of a ``POST /events`` body."""
    if not isinstance(body, dict):
        raise RequestError("body", 'the body must be a JSON object like {"records": [...]}')
    records = body.get("records")
    if not isinstance(records, list):
        raise RequestError("records", '"records" must be an array of event objects')
    if not records:
        raise RequestError("records", '"records" is empty; send 1 to 500 events')
    if len(records) > MAX_RECORDS_PER_REQUEST:
        raise RequestError(
            "records",
            f'"records" has {len(records)} events; the limit is {MAX_RECORDS_PER_REQUEST}',
            413,
        )
    return records


def encode_within_limits(
    index: int, event: Canonical, *, bounds: tuple[datetime, datetime]
) -> tuple[bytes, list[RecordError]]:
    """The event's stream bytes, and the limits it breaks (checked once it is parsed and
    enriched): its stored size, its properties' depth and size, its time within ``bounds``
    (the oldest and newest an event may have)."""
    errors = []
    properties = event["properties"]
    depth = json_depth(properties)
    data = b""
    if depth > MAX_PROPERTIES_DEPTH:  # (checked first: past 255 levels nothing can encode it)
        errors.append(
            RecordError(
                index,
                "properties",
                f"properties nest {depth} levels deep; the limit is {MAX_PROPERTIES_DEPTH}",
            )
        )
    else:
        try:
            data = encode_event(event)
        except orjson.JSONEncodeError as exc:  # e.g. an integer past 64 bits
            if (path := surrogate_path(event)) is not None:
                return b"", [RecordError(index, path, SURROGATE_MESSAGE)]
            return b"", [RecordError(index, "record", f"cannot be stored as JSON: {exc}")]
        if len(data) > MAX_INCOMING_RECORD_BYTES:
            errors.append(
                RecordError(
                    index,
                    "record",
                    f"record is {len(data)} bytes as stored; the limit is "
                    f"{MAX_INCOMING_RECORD_BYTES} bytes per record",
                )
            )
        # (the properties are part of the stored event: a smaller event bounds them)
        if properties and len(data) > MAX_PROPERTIES_BYTES:
            properties_size = len(orjson.dumps(sent_properties(event)))
            if properties_size > MAX_PROPERTIES_BYTES:
                errors.append(
                    RecordError(
                        index,
                        "properties",
                        f"properties (with unmapped top-level fields) are {properties_size} "
                        f"bytes as JSON; the limit is {MAX_PROPERTIES_BYTES} bytes",
                    )
                )
    oldest, newest = bounds
    if event["timestamp"] > newest:
        errors.append(RecordError(index, "timestamp", "is more than 24 hours in the future"))
    elif event["timestamp"] < oldest:
        age = event["received_at"] - oldest
        errors.append(
            RecordError(
                index,
                "timestamp",
                f"is more than {age.total_seconds() / 86400:g} days in the past "
                "(the limit on event age)",
            )
        )
    return data, errors


def validate_records(
    records: Sequence[Any],
    *,
    received_at: datetime,
    source_ip: str | None = None,
    max_event_age: timedelta = DEFAULT_MAX_EVENT_AGE,
    locate: Callable[[str | None], Location] | None = None,
    sent_at: datetime | None = None,
) -> ValidatedBatch:
    """Each record parsed (pydantic), enriched and checked against the limits. An SDK
    message that maps onto no event comes as its RecordError and is passed on."""
    mapped = [(index, r) for index, r in enumerate(records) if not isinstance(r, RecordError)]
    parsed = parse_incoming_all([record for _, record in mapped])
    batch = enrich_parsed(
        [(index, result) for (index, _), result in zip(mapped, parsed, strict=True)],
        received_at=received_at,
        source_ip=source_ip,
        max_event_age=max_event_age,
        locate=locate,
        sent_at=sent_at,
    )
    batch.errors.extend(r for r in records if isinstance(r, RecordError))
    return batch


def enrich_parsed(
    parsed: Sequence[tuple[int, IncomingEvent | list[RecordError]]],
    *,
    received_at: datetime,
    source_ip: str | None = None,
    max_event_age: timedelta = DEFAULT_MAX_EVENT_AGE,
    locate: Callable[[str | None], Location] | None = None,
    sent_at: datetime | None = None,
) -> ValidatedBatch:
    """With ``sent_at`` (the device's clock when it sent), each time the device gave is
    corrected for that clock's error: ``received_at - (sent_at - timestamp)``."""
    batch = ValidatedBatch()
    bounds = (received_at - max_event_age, received_at + MAX_FUTURE_SKEW)
    copies: dict[bytes, int] = {}
    for index, incoming in parsed:
        if isinstance(incoming, list):
            batch.errors.extend(replace(error, index=index) for error in incoming)
            continue
        event = canonical_event(
            incoming, received_at=received_at, source_ip=source_ip, locate=locate
        )
        if incoming.event_id is None and incoming.timestamp is not None:  # resent: the same ids
            # A record naming no one is told apart by its (truncated) address; one naming its
            # user, device or session keeps its id when resent from another network.
            named = incoming.user_id or incoming.anonymous_id or incoming.session_id
            address = None if named else event.get("ip_truncated")
            event["event_id"] = content_event_id(incoming, copies, address) or event["event_id"]
        if (
            sent_at is not None
            and incoming.timestamp is not None
            and (corrected := skew_corrected(event["timestamp"], sent_at, received_at))
        ):
            event["timestamp"] = corrected
        data, limits = encode_within_limits(index, event, bounds=bounds)
        if limits:
            batch.errors.extend(limits)
        else:
            batch.records.append((index, event))
            batch.encoded[index] = data
    return batch


def encode_event(event: Canonical) -> bytes:
    # A copy the size of the JSON: orjson's own bytes keep their whole write buffer (8 KB for
    # a 0.8 KB event), and a request holds up to 500 of them until PutRecords: 4 MB that the
    # heap takes from the kernel, page by page, and hands back after every request.
    return memoryview(orjson.dumps(event, option=orjson.OPT_UTC_Z)).tobytes()


def put_records_entries(
    events: Sequence[tuple[int, Canonical]], encoded: dict[int, bytes] | None = None
) -> list[dict[str, Any]]:
    """``PutRecords`` entries; ``encoded`` holds what validation already encoded."""
    known = encoded or {}
    return [
        {"Data": known.get(index) or encode_event(event), "PartitionKey": partition_key(event)}
        for index, event in events
    ]


def backoff_delay(
    attempt: int, *, base: float = BACKOFF_BASE_S, cap: float = BACKOFF_CAP_S
) -> float:
    """Capped exponential backoff with full jitter (AWS architecture blog's recommendation)."""
    return random.uniform(0, min(cap, base * (2**attempt)))


def put_events(
    kinesis: Any,
    stream_name: str,
    events: Sequence[tuple[int, Canonical]],
    *,
    max_attempts: int = 5,
    sleep: Callable[[float], None] = time.sleep,
    encoded: dict[int, bytes] | None = None,
) -> PutOutcome:
    """``PutRecords`` the events, retrying only the entries that failed."""
    outcome = PutOutcome()
    pairs: list[tuple[tuple[int, Canonical], dict[str, Any]]] = []
    for item, entry in zip(events, put_records_entries(events, encoded), strict=True):
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
    put_retries: int = 0  # PutRecords calls after the first
    rejected_by_reason: dict[str, int] = field(default_factory=dict)  # sums to ``rejected``


STREAM_REFUSED = "stream_refused"
MAX_REASON_CHARS = 40


def rejection_reason(error: RecordError) -> str:
    """Why a record was not accepted, as a metric dimension with few values: the stream
    refused it (it may be sent again), or the top-level field that failed (a field of the
    schema or of an SDK's message, so the set is bounded by the code; ``record`` when the
    record as a whole is wrong)."""
    if error.retryable:
        return STREAM_REFUSED
    top_level = error.field.split(".", 1)[0].split("[", 1)[0]
    return "invalid_" + (top_level[:MAX_REASON_CHARS] or "record")


def count_reasons(errors: Sequence[RecordError]) -> dict[str, int]:
    return dict(Counter(rejection_reason(error) for error in errors))


RETRY_AFTER_S = "1"


def _whole_request_error(error: RequestError) -> IngestResponse:
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
    sent_at: datetime | None = None  # the device's clock when it sent the request


def ingest_records(records: Sequence[Any], context: IngestContext) -> IngestResponse:
    """Validate, enrich and stream a batch; answer per record."""
    batch = validate_records(
        records,
        received_at=context.received_at,
        source_ip=context.source_ip,
        max_event_age=context.max_event_age,
        locate=context.locate,
        sent_at=context.sent_at,
    )
    return stream_batch(batch, len(records), context)


def stream_batch(batch: ValidatedBatch, sent: int, context: IngestContext) -> IngestResponse:
    """``PutRecords`` the batch's valid events; the answer names every record not taken."""
    outcome = (
        put_events(
            context.kinesis,
            context.stream_name,
            batch.records,
            max_attempts=context.max_attempts,
            encoded=batch.encoded,
        )
        if batch.records
        else PutOutcome()
    )
    errors = sorted(batch.errors + outcome.rejected, key=lambda error: error.index)
    body: dict[str, Any] = {
        "status": "accepted",
        "processed": len(outcome.accepted),
        "failed": sent - len(outcome.accepted),
        "errors": [error.as_dict() for error in errors],
        "event_ids": [event["event_id"] for _, event in outcome.accepted],
    }
    response = IngestResponse(
        200,
        body,
        accepted=len(outcome.accepted),
        rejected=len(errors),
        throttled=outcome.throttled,
        put_retries=max(0, outcome.attempts - 1),
        rejected_by_reason=count_reasons(errors),
    )
    if not outcome.accepted:
        if batch.records:  # valid records, but the stream took none of them
            body["status"] = "unavailable"
            response.status = 503
            response.headers["Retry-After"] = RETRY_AFTER_S
        else:
            body["status"] = "rejected"
            response.status = 400
    return response


# orjson reads integers in [-2**63, 2**64) as ints, any other as a float, and cannot write them
_MIN_INT, _END_INT = -(2**63), 2**64


def _as_orjson_reads(values: Any) -> bool:
    """No NaN, no infinity, no integer orjson reads as a float among the free-form values: what
    pydantic-core's JSON parser takes but orjson (the record-by-record path) reads
    otherwise. Scalars are checked in place, containers walked without recursion."""
    stack = [values]
    while stack:
        current = stack.pop()
        for value in current.values() if type(current) is dict else current:
            kind = type(value)
            if kind is float:
                if value != value or value in (math.inf, -math.inf):
                    return False
            elif kind is int:
                if not _MIN_INT <= value < _END_INT:
                    return False
            elif kind is dict or kind is list:
                stack.append(value)
    return True


class _EventsBody(BaseModel):
    records: list[IncomingEvent] = Field(min_length=1, max_length=MAX_RECORDS_PER_REQUEST)
    sent_at: Any = None  # read by parse_sent_at, one rule on both paths


def parse_sent_at(value: Any) -> datetime | None:
    """A body's ``sent_at``: an ISO-8601 time with its zone (``Z`` or an offset), or none."""
    if value is None:
        return None
    parsed = None
    if isinstance(value, str):
        try:
            parsed = iso_time(value)
        except ValueError:
            parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise RequestError(
            "sent_at",
            "sent_at must be an ISO-8601 time with its zone (the device's clock), "
            f"got {described(value)}",
        )
    return parsed.astimezone(UTC)


_EVENTS_BODY_WITHOUT_CONTROL_CHECK = without_control_check(_EventsBody)


def valid_events_body(raw_body: bytes) -> _EventsBody | None:
    """The records of a body in which every record is valid, parsed by pydantic-core straight
    from the JSON (no dicts in between: the common case at half the cost); None when anything
    in it is not, and the record-by-record path names what."""
    validator = (
        _EventsBody.__pydantic_validator__
        if may_hold_control_characters(raw_body)
        else _EVENTS_BODY_WITHOUT_CONTROL_CHECK
    )
    try:
        body = validator.validate_json(raw_body)
    except ValidationError:
        return None
    for record in body.records:
        if not names_its_type(record):
            return None
        # Free-form values orjson would read otherwise: the record-by-record path answers.
        extra = record.model_extra
        if (record.properties and not _as_orjson_reads(record.properties)) or (
            extra and not _as_orjson_reads(extra)
        ):
            return None
    return body


def handle_events_request(
    raw_body: bytes | None,
    context: IngestContext,
    content_type: str | None = None,
    content_encoding: str | None = None,
) -> IngestResponse:
    """``POST /events`` with ``{"records": [...], "sent_at": ...}``, gzipped or not."""
    with CyclicGcPause():
        try:
            check_content_type(content_type)
            raw_body = decoded_body(raw_body, content_encoding)
            if raw_body:
                valid = valid_events_body(raw_body)
                if valid is not None:
                    batch = enrich_parsed(
                        list(enumerate(valid.records)),
                        received_at=context.received_at,
                        source_ip=context.source_ip,
                        max_event_age=context.max_event_age,
                        locate=context.locate,
                        sent_at=parse_sent_at(valid.sent_at),
                    )
                    return stream_batch(batch, len(valid.records), context)
            body = load_json_body(raw_body)
            records = records_from_body(body)
            sent_at = parse_sent_at(body.get("sent_at"))
        except RequestError as error:
            return _whole_request_error(error)
        return ingest_records(records, replace(context, sent_at=sent_at))


def handle_track_request(
    raw_body: bytes | None,
    context: IngestContext,
    content_type: str | None = None,
    content_encoding: str | None = None,
) -> IngestResponse:
    """``POST /track`` with one event object, gzipped or not."""
    with CyclicGcPause():
        try:
            check_content_type(content_type)
            record = load_json_body(decoded_body(raw_body, content_encoding))
        except RequestError as error:
            return _whole_request_error(error)
        if not isinstance(record, dict):
            return _whole_request_error(
                RequestError("body", "the body must be one JSON event object")
            )
        response = ingest_records([record], context)
        if response.status == 200:
            response.body = {"status": "accepted", "event_id": response.body["event_ids"][0]}
        return response
