"""Drop-in endpoints for the SDKs sites already run: Segment, PostHog and Snowplow.

Each protocol decodes its request and maps its messages onto incoming records; from there
they take the one ingest path (validate, enrich, ``PutRecords``) that ``POST /events`` takes.
The answer is shaped the way the SDK reads it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import orjson

from clickstream.errors import RequestError
from clickstream.headers import check_single_valued
from clickstream.ingest import (
    RETRY_AFTER_S,
    CyclicGcPause,
    IngestContext,
    IngestResponse,
    ingest_records,
)
from clickstream.protocols import posthog, segment, snowplow
from clickstream.protocols.common import (
    Decoded,
    SdkRequest,
    check_sdk_content_type,
    field_as_sent,
    value_at,
)
from clickstream.schema import RecordError, copy_id

Protocol = Literal["segment", "posthog", "snowplow"]
# Checks a presented write key (and where it came from); raises RequestError.
Authorize = Callable[[str | None, str], Any]

__all__ = ["Protocol", "SdkRequest", "handle_sdk_request", "posthog", "segment", "snowplow"]


def handle_sdk_request(
    protocol: Protocol,
    request: SdkRequest,
    context: IngestContext,
    authorize: Authorize,
    *,
    call: str = "batch",
    method: str = "POST",
) -> IngestResponse:
    """Decode, authorize, map, ingest; answered as ``protocol``'s SDKs expect."""
    with CyclicGcPause():
        try:
            check_single_valued(request.conflicting)
            if method == "POST":
                check_sdk_content_type(request.header("content-type"))
            decoded = _decode(protocol, request, call, method)
            authorize(decoded.key, decoded.key_field)
        except RequestError as error:
            answer = _error(protocol, error.status, error.message, error.field)
            answer.headers.update(error.headers)
            return answer
        records = _with_stable_ids(
            decoded, _map(protocol, decoded, call, request, context), _SENT_AS[protocol]
        )
        response = ingest_records(records, context)
        _name_fields_as_sent(protocol, decoded, records, response)
        if protocol == "posthog" and call == "v1":
            return _v1_shaped(decoded, response)
        return _shaped(protocol, response)


def _decode(protocol: Protocol, request: SdkRequest, call: str, method: str) -> Decoded:
    if protocol == "segment":
        return segment.decode(request, call)
    if protocol == "posthog":
        return posthog.decode_v1(request) if call == "v1" else posthog.decode(request)
    return snowplow.decode(request, method)


def _map(
    protocol: Protocol, decoded: Decoded, call: str, request: SdkRequest, context: IngestContext
) -> list[dict[str, Any] | RecordError]:
    if protocol == "segment":
        return segment.map_messages(decoded, call, context.received_at)
    if protocol == "posthog":
        return posthog.map_messages(decoded, context.received_at)
    return snowplow.map_messages(decoded, context.received_at, request.header("user-agent"))


def _with_stable_ids(
    decoded: Decoded,
    records: list[dict[str, Any] | RecordError],
    sent_as: dict[str, tuple[str, ...]],
) -> list[dict[str, Any] | RecordError]:
    """A message sent without an id but with its own time gets an id made from its content,
    so the SDK's resend of a batch (after a 503) is recognised as the same events; two alike
    in one batch are two events. Without a time, each sending is another event (as on
    ``POST /events``): a server sending the same call twice means it twice."""
    copies: dict[bytes, int] = {}
    for message, record in zip(decoded.messages, records, strict=True):
        if not isinstance(record, dict) or record.get("event_id"):
            continue
        if not any(value_at(message, path) not in (None, "") for path in sent_as["timestamp"]):
            continue
        try:
            content = orjson.dumps(message, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:  # a lone surrogate: refused later, naming its field
            continue
        record["event_id"] = copy_id(content, copies)
    return records


_SENT_AS = {
    "segment": segment.SENT_AS,
    "posthog": posthog.SENT_AS,
    "snowplow": snowplow.SENT_AS,
}


def _name_fields_as_sent(
    protocol: Protocol,
    decoded: Decoded,
    records: list[dict[str, Any] | RecordError],
    response: IngestResponse,
) -> None:
    """An error the canonical event's validation found names the SDK's field it came from
    (``url`` rather than ``page_url``); the mapping's own errors already do."""
    for error in response.body.get("errors", []):
        index = error.get("index")
        if isinstance(index, int) and isinstance(record := records[index], dict):
            error["field"] = field_as_sent(
                decoded.messages[index], record, error["field"], _SENT_AS[protocol], decoded.batch
            )


def _error(protocol: Protocol, status: int, message: str, field: str) -> IngestResponse:
    body: dict[str, Any] = {
        "status": "rejected",
        "error": message,
        "errors": [{"index": None, "field": field, "message": message}],
    }
    if protocol == "segment":
        body.update(success=False, message=message)
    elif protocol == "posthog":
        kind = "authentication_error" if status in (401, 403) else "validation_error"
        code = "invalid_api_key" if kind == "authentication_error" else "invalid_payload"
        body.update(type=kind, code=code, detail=message, attr=field)
    return IngestResponse(status, body)


def _shaped(protocol: Protocol, response: IngestResponse) -> IngestResponse:
    """One status for the whole request, because an SDK resends (or drops) whole requests:
    200 when every event was taken; 503 with ``Retry-After`` when the stream refused some
    (the resend is safe, each event keeps its id); else 400 naming each bad event, with the
    valid ones kept."""
    body = response.body
    errors = body.get("errors", [])
    if any(error.get("retryable") for error in errors):
        response.status = 503
        body["status"] = "unavailable"
        response.headers["Retry-After"] = RETRY_AFTER_S
    elif errors:
        response.status = 400
        body["status"] = "partial" if response.accepted else "rejected"
    if protocol == "segment":
        body["success"] = response.status == 200
        if errors:
            body["message"] = _first_error(errors)
    elif protocol == "posthog":
        if response.status == 200:
            body["status"] = 1
        elif response.status == 400:
            first = errors[0]
            body.update(
                type="validation_error",
                code="invalid_payload",
                detail=_first_error(errors),
                attr=first.get("field"),
            )
    return response


def _v1_shaped(decoded: Decoded, response: IngestResponse) -> IngestResponse:
    """PostHog capture v1: 200 with each event's result; the SDK resends the ``retry`` ones
    (after ``Retry-After``) and reports the ``drop`` ones to its ``on_error``."""
    errors = response.body.get("errors", [])
    response.status = 200
    response.body = {"results": posthog.v1_results(decoded, errors), **response.body}
    if any(error.get("retryable") for error in errors):
        response.headers["Retry-After"] = RETRY_AFTER_S
    return response


def _first_error(errors: list[dict[str, Any]]) -> str:
    first = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"event {first.get('index')}: {first.get('field')} {first.get('message')}{more}"
