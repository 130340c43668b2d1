"""What ingest answers, exactly: each whole-request refusal (field, message, status), each
record's limit at its boundary, and the answer's body and counts. The messages are the
API's documented contract, so each is stated here in full rather than by a fragment."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from hypothesis import given
from hypothesis import strategies as st

from clickstream.errors import RequestError
from clickstream.ingest import (
    MAX_BODY_BYTES,
    MAX_INCOMING_RECORD_BYTES,
    MAX_RECORD_BYTES,
    IngestContext,
    check_content_type,
    count_reasons,
    handle_events_request,
    handle_track_request,
    load_json_body,
    put_events,
    records_from_body,
    rejection_reason,
    valid_events_body,
    validate_records,
)
from clickstream.schema import CONTROL_MESSAGE, Location, RecordError, normalize_event_id
from tests.unit.stream_support import ScriptedStream

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
UNSUPPORTED = "send application/json (or text/plain from navigator.sendBeacon)"  # the 415's advice


def refusal(call: Any, *args: Any) -> tuple[str, str, int]:
    with pytest.raises(RequestError) as caught:
        call(*args)
    return caught.value.field, caught.value.message, caught.value.status


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "",
        "  ",
        "application/json",
        "text/plain",
        "Application/JSON; charset=UTF-8",
        "text/plain;charset=utf-8",
        "application/json; charset = utf-8",
        " application/json ; boundary=x",
    ],
)
def test_json_and_beacon_content_types_are_taken(content_type):
    assert check_content_type(content_type) is None


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("text/html", ("Content-Type", f"Content-Type 'text/html' is not accepted; {UNSUPPORTED}")),
        (
            " Multipart/Form-Data ; boundary=x",
            ("Content-Type", f"Content-Type 'Multipart/Form-Data' is not accepted; {UNSUPPORTED}"),
        ),
        (
            "x/" + "y" * 200,
            ("Content-Type", f"Content-Type {'x/' + 'y' * 98!r} is not accepted; {UNSUPPORTED}"),
        ),
        (
            "application/json; charset=latin-1",
            ("Content-Type", "the body must be UTF-8 (charset=utf-8)"),
        ),
        ("text/plain; Charset=UTF-16", ("Content-Type", "the body must be UTF-8 (charset=utf-8)")),
        (
            "text/plain; charset = latin-1",
            ("Content-Type", "the body must be UTF-8 (charset=utf-8)"),
        ),
    ],
)
def test_other_content_types_are_refused_with_415(content_type, expected):
    assert refusal(check_content_type, content_type) == (*expected, 415)


EMPTY = ("body", "request body is empty; send a JSON object", 400)


@pytest.mark.parametrize("raw", [None, b"", b" \n\t "])
def test_an_empty_body_is_refused(raw):
    assert refusal(load_json_body, raw) == EMPTY


def test_a_body_at_the_size_limit_is_read_and_one_byte_more_is_refused_with_413():
    at_limit = b'"' + b"a" * (MAX_BODY_BYTES - 2) + b'"'
    assert load_json_body(at_limit) == "a" * (MAX_BODY_BYTES - 2)
    over = at_limit + b" "
    assert refusal(load_json_body, over) == (
        "body",
        f"request body is {MAX_BODY_BYTES + 1} bytes; the limit is 1048576",
        413,
    )


def parser_says(raw: bytes) -> str:
    """orjson's own account of what is wrong and where (its wording is the library's)."""
    with pytest.raises(orjson.JSONDecodeError) as caught:
        orjson.loads(raw)
    return str(caught.value)


@pytest.mark.parametrize("raw", [b"{", b"[1,]", b'{"records": [}'])
def test_malformed_json_is_refused_saying_what_and_where(raw):
    assert refusal(load_json_body, raw) == (
        "body",
        f"the body is not valid JSON: {parser_says(raw)}",
        400,
    )


def test_json_nested_past_the_parsers_limit_is_refused_saying_so():
    assert refusal(load_json_body, b"[" * 2000) == (
        "body",
        "the body is not valid JSON: nested deeper than the parser's limit of 1024 levels",
        400,
    )


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ([], ("body", 'the body must be a JSON object like {"records": [...]}', 400)),
        ("records", ("body", 'the body must be a JSON object like {"records": [...]}', 400)),
        ({}, ("records", '"records" must be an array of event objects', 400)),
        ({"records": {}}, ("records", '"records" must be an array of event objects', 400)),
        ({"records": []}, ("records", '"records" is empty; send 1 to 500 events', 400)),
        ({"records": [{}] * 501}, ("records", '"records" has 501 events; the limit is 500', 413)),
    ],
)
def test_a_body_without_a_usable_records_array_is_refused(body, expected):
    assert refusal(records_from_body, body) == expected


def test_five_hundred_records_are_taken():
    records = [{"event_type": "click"}] * 500
    assert records_from_body({"records": records}) == records


def checked(record: dict[str, Any], **options: Any) -> tuple[list[int], list[tuple[str, str]]]:
    """Which of [a valid record, ``record``] pass, and the errors, each of record 1."""
    batch = validate_records([{"event_type": "click"}, record], received_at=NOW, **options)
    assert {error.index for error in batch.errors} <= {1}
    return [index for index, _ in batch.records], [(e.field, e.message) for e in batch.errors]


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def test_properties_nest_at_most_five_levels():
    assert checked({"event_type": "click", "properties": nested(5)}) == ([0, 1], [])
    assert checked({"event_type": "click", "properties": nested(6)}) == (
        [0],
        [("properties", "properties nest 6 levels deep; the limit is 5")],
    )


def test_properties_are_at_most_8192_bytes_as_json():
    def with_properties_of(size: int) -> dict[str, Any]:
        properties = {"p": "x" * (size - len(b'{"p":""}'))}
        assert len(orjson.dumps(properties)) == size
        return {"event_type": "click", "properties": properties}

    too_big = (
        [0],
        [
            (
                "properties",
                "properties (with unmapped top-level fields) are 8193 bytes as JSON; the limit "
                "is 8192 bytes",
            )
        ],
    )
    assert checked(with_properties_of(8192)) == ([0, 1], [])
    assert checked(with_properties_of(8193)) == too_big
    # The client id the server keeps in them (an id that is no UUID) is not the client's to
    # count, whatever name it is kept under; one the client sent in them is.
    for sent_id in ("order-123", "o" * 256):
        for size, verdict in ((8192, ([0, 1], [])), (8193, too_big)):
            record = with_properties_of(size) | {"event_id": sent_id}
            assert checked(record) == verdict
            record["properties"] = {"client_event_id": "x"} | record["properties"]
            record["properties"]["p"] = record["properties"]["p"][: -len(b'"client_event_id":"x",')]
            assert len(orjson.dumps(record["properties"])) == size
            assert checked(record) == verdict


def test_a_record_is_at_most_32_kb_as_stored():
    """Measured as the stream stores it: the enriched event, compact JSON, UTC times as Z."""

    def stored_size(record: dict[str, Any]) -> int:
        batch = validate_records([record], received_at=NOW)
        ((_, event),) = batch.records
        return len(orjson.dumps(event, option=orjson.OPT_UTC_Z))

    # Every bounded field at its longest in 4-byte characters (the bounds count characters),
    # then the properties padded under their own limit to reach the record's exactly.
    wide = "\U0001f600"
    base = {
        "event_type": "page_view",
        "page": "/" + wide * 2047,
        "page_url": "https://a/" + wide * 2038,
        "referrer": "https://a/" + wide * 2038,
        "user_agent": wide * 1000,
    }
    padding = MAX_INCOMING_RECORD_BYTES - stored_size({**base, "properties": {"p": ""}})
    assert 0 < padding < 8000
    at_limit = {**base, "properties": {"p": "a" * padding}}
    assert stored_size(at_limit) == MAX_INCOMING_RECORD_BYTES
    over = {**base, "properties": {"p": "a" * (padding + 1)}}
    assert checked(over) == (
        [0],
        [
            (
                "record",
                f"record is {MAX_INCOMING_RECORD_BYTES + 1} bytes as stored; the limit is "
                "32768 bytes per record",
            )
        ],
    )


def test_an_integer_past_64_bits_cannot_be_stored():
    assert checked({"event_type": "click", "properties": {"n": 2**64}}) == (
        [0],
        [("record", "cannot be stored as JSON: Integer exceeds 64-bit range")],
    )
    assert checked({"event_type": "click", "properties": {"n": 2**64 - 1}}) == ([0, 1], [])


def test_an_event_may_be_up_to_24_hours_ahead_of_the_server():
    ahead = NOW + timedelta(hours=24)
    assert checked({"event_type": "click", "timestamp": ahead.isoformat()}) == ([0, 1], [])
    later = ahead + timedelta(milliseconds=1)
    assert checked({"event_type": "click", "timestamp": later.isoformat()}) == (
        [0],
        [("timestamp", "is more than 24 hours in the future")],
    )


@pytest.mark.parametrize(
    ("age", "days"), [(timedelta(days=3650), "3650"), (timedelta(days=7), "7")]
)
def test_an_event_may_be_as_old_as_the_stage_allows(age, days):
    oldest = NOW - age
    options = {"max_event_age": age}
    assert checked({"event_type": "click", "timestamp": oldest.isoformat()}, **options) == (
        [0, 1],
        [],
    )
    older = oldest - timedelta(milliseconds=1)
    assert checked({"event_type": "click", "timestamp": older.isoformat()}, **options) == (
        [0],
        [("timestamp", f"is more than {days} days in the past (the limit on event age)")],
    )


THROTTLED = "ProvisionedThroughputExceededException"


def throttling() -> ClientError:
    return ClientError({"Error": {"Code": THROTTLED, "Message": "slow"}}, "PutRecords")


def valid(count: int) -> list[tuple[int, dict[str, Any]]]:
    records = [{"event_type": "click", "session_id": f"s{i}"} for i in range(count)]
    return validate_records(records, received_at=NOW).records


def test_what_the_stream_still_refuses_after_the_last_attempt_is_named_and_retryable():
    waits: list[float] = []
    stream = ScriptedStream(
        [None, THROTTLED, "InternalFailure"], [THROTTLED, "InternalFailure"], throttling()
    )
    outcome = put_events(stream, "st", valid(3), max_attempts=3, sleep=waits.append)
    assert [index for index, _ in outcome.accepted] == [0]
    assert outcome.rejected == [
        RecordError(
            1,
            "record",
            f"not accepted: the stream refused it ({THROTTLED}) after 3 attempts; retry later",
            retryable=True,
        ),
        RecordError(
            2,
            "record",
            f"not accepted: the stream refused it ({THROTTLED}) after 3 attempts; retry later",
            retryable=True,
        ),
    ]
    # each throttled entry counts, and a whole call throttled counts once
    assert (outcome.attempts, outcome.throttled) == (3, 1 + 1 + 1)
    assert [len(call) for call in stream.calls] == [3, 2, 2]
    assert len(waits) == 2 and all(0 <= wait <= 1.0 for wait in waits)


def test_a_connection_failure_is_named_by_its_exception():
    stream = ScriptedStream(EndpointConnectionError(endpoint_url="http://kinesis"))
    outcome = put_events(stream, "st", valid(1), max_attempts=1, sleep=lambda _: None)
    assert outcome.accepted == [] and outcome.throttled == 0
    assert outcome.rejected[0].message == (
        "not accepted: the stream refused it (EndpointConnectionError) after 1 attempts; "
        "retry later"
    )


def test_a_stream_record_may_hold_exactly_1_mib_with_its_key():
    batch = valid(2)
    key = len(b"s0")
    encoded = {0: b"x" * (MAX_RECORD_BYTES - key), 1: b"x" * (MAX_RECORD_BYTES - key + 1)}
    stream = ScriptedStream()
    outcome = put_events(stream, "st", batch, encoded=encoded)
    assert [index for index, _ in outcome.accepted] == [0]
    assert outcome.rejected == [
        RecordError(
            1, "record", f"encoded event is {MAX_RECORD_BYTES + 1} bytes; Kinesis allows 1 MiB"
        )
    ]
    assert [len(call) for call in stream.calls] == [1]


def context(stream: Any, **options: Any) -> IngestContext:
    return IngestContext(kinesis=stream, stream_name="st", received_at=NOW, **options)


def test_the_answer_names_each_record_not_taken_and_counts_each_outcome():
    body = orjson.dumps(
        {
            "records": [
                {"event_type": "click", "session_id": "a"},
                {"event_type": "click", "properties": nested(6)},
                {"event_type": "click", "session_id": "b"},
                {"event_type": "click", "session_id": "c"},
            ]
        }
    )
    stream = ScriptedStream([None, THROTTLED, None], [THROTTLED])
    response = handle_events_request(body, context(stream, max_attempts=2))
    assert response.status == 200
    sent = [orjson.loads(entry["Data"]) for entry in stream.calls[0]]
    assert response.body == {
        "status": "accepted",
        "processed": 2,
        "failed": 2,
        "errors": [
            {
                "index": 1,
                "field": "properties",
                "message": "properties nest 6 levels deep; the limit is 5",
            },
            {
                "index": 2,
                "field": "record",
                "message": f"not accepted: the stream refused it ({THROTTLED}) after 2 attempts; "
                "retry later",
                "retryable": True,
            },
        ],
        "event_ids": [sent[0]["event_id"], sent[2]["event_id"]],
    }
    assert response.headers == {}
    assert (response.accepted, response.rejected, response.throttled, response.put_retries) == (
        2,
        2,
        2,
        1,
    )
    assert response.rejected_by_reason == {"invalid_properties": 1, "stream_refused": 1}


def test_a_batch_with_nothing_valid_is_a_400():
    body = b'{"records": [{"event_type": ""}, {"event_type": "click", "timestamp": "2030-01-01T00:00:00Z"}]}'
    stream = ScriptedStream()
    response = handle_events_request(body, context(stream))
    assert response.status == 400 and response.body["status"] == "rejected"
    assert (response.body["processed"], response.body["failed"]) == (0, 2)
    assert [(e["index"], e["field"]) for e in response.body["errors"]] == [
        (0, "event_type"),
        (1, "timestamp"),
    ]
    assert stream.calls == [] and response.headers == {}


def test_a_batch_the_stream_takes_none_of_is_a_503_to_retry_after_a_second():
    response = handle_events_request(
        b'{"records": [{"event_type": "click"}]}',
        context(ScriptedStream(throttling(), throttling()), max_attempts=2),
    )
    assert response.status == 503 and response.body["status"] == "unavailable"
    assert response.headers == {"Retry-After": "1"}
    assert (response.put_retries, response.throttled) == (1, 2)


@pytest.mark.parametrize(
    ("raw", "content_type", "status", "field", "message"),
    [
        (b"", None, 400, "body", "request body is empty; send a JSON object"),
        (
            b"{}",
            "text/csv",
            415,
            "Content-Type",
            f"Content-Type 'text/csv' is not accepted; {UNSUPPORTED}",
        ),
        (b"[]", None, 400, "body", 'the body must be a JSON object like {"records": [...]}'),
        (
            b"x" * (MAX_BODY_BYTES + 1),
            None,
            413,
            "body",
            "request body is 1048577 bytes; the limit is 1048576",
        ),
    ],
)
def test_a_whole_request_refused_says_why_once_and_in_the_errors_list(
    raw, content_type, status, field, message
):
    stream = ScriptedStream()
    response = handle_events_request(raw, context(stream), content_type)
    assert response.status == status
    assert response.body == {
        "status": "rejected",
        "error": message,
        "errors": [{"index": None, "field": field, "message": message}],
    }
    assert stream.calls == []


def test_track_takes_one_event_and_answers_its_id():
    stream = ScriptedStream()
    response = handle_track_request(b'{"event_type": "click"}', context(stream), "application/json")
    (entry,) = stream.calls[0]
    assert response.status == 200
    assert response.body == {
        "status": "accepted",
        "event_id": orjson.loads(entry["Data"])["event_id"],
    }


@pytest.mark.parametrize(
    ("raw", "content_type", "status", "field", "message"),
    [
        (b'[{"event_type": "click"}]', None, 400, "body", "the body must be one JSON event object"),
        (b"", None, 400, "body", "request body is empty; send a JSON object"),
        (
            b"{}",
            "image/png",
            415,
            "Content-Type",
            f"Content-Type 'image/png' is not accepted; {UNSUPPORTED}",
        ),
        (
            b'{"event_type": ',
            None,
            400,
            "body",
            None,  # malformed JSON: what the parser says
        ),
    ],
)
def test_track_refuses_what_is_not_one_event(raw, content_type, status, field, message):
    message = message or f"the body is not valid JSON: {parser_says(raw)}"
    stream = ScriptedStream()
    response = handle_track_request(raw, context(stream), content_type)
    assert (response.status, response.body["errors"]) == (
        status,
        [{"index": None, "field": field, "message": message}],
    )
    assert stream.calls == []


def test_track_answers_an_invalid_event_with_its_field():
    response = handle_track_request(b'{"event_type": 3}', context(ScriptedStream()))
    assert response.status == 400
    assert [(e["index"], e["field"]) for e in response.body["errors"]] == [(0, "event_type")]


@pytest.mark.parametrize(
    ("field", "reason"),
    [
        ("properties.a.b", "invalid_properties"),
        ("context[0].page", "invalid_context"),
        ("device.screen_width", "invalid_device"),
        ("record", "invalid_record"),
        ("", "invalid_record"),
        ("f" * 60 + ".x", "invalid_" + "f" * 40),
        ("context[0][1]", "invalid_context"),
    ],
)
def test_a_rejection_reason_is_the_top_level_field_bounded_in_length(field, reason):
    assert rejection_reason(RecordError(0, field, "m")) == reason


def test_a_record_the_stream_refused_is_counted_apart_from_invalid_ones():
    errors = [
        RecordError(0, "record", "m", retryable=True),
        RecordError(1, "record", "m"),
        RecordError(2, "properties.x", "m"),
        RecordError(3, "properties", "m"),
    ]
    assert count_reasons(errors) == {
        "stream_refused": 1,
        "invalid_record": 1,
        "invalid_properties": 2,
    }


def placed_in(country: str) -> Any:
    seen: list[str | None] = []

    def locate(address: str | None) -> Location:
        seen.append(address)
        return Location(country=country)

    locate.seen = seen  # type: ignore[attr-defined]
    return locate


@pytest.mark.parametrize("path", ["fast path", "record by record"])
def test_both_paths_enrich_with_the_callers_address_and_place_and_the_stages_age_limit(path):
    """The fast path (every record valid) and the record-by-record one (here, because one
    record is not) take the same context: the caller's address, truncated, and its place,
    and the stage's maximum event age."""
    locate = placed_in("FR")
    records = [
        {"event_type": "click", "session_id": "s"},
        {"event_type": "click", "timestamp": (NOW - timedelta(days=8)).isoformat()},
    ]
    if path == "record by record":
        records.append({"event_type": 3})
    body = orjson.dumps({"records": records})
    assert (valid_events_body(body) is None) is (path == "record by record")
    stream = ScriptedStream()
    ctx = context(stream, source_ip="203.0.113.77", locate=locate, max_event_age=timedelta(days=7))
    response = handle_events_request(body, ctx)
    stored = [orjson.loads(entry["Data"]) for entry in stream.calls[0]]
    assert [(event["ip_truncated"], event["location"]) for event in stored] == [
        ("203.0.113.0", {"country": "FR"})
    ]
    assert locate.seen == ["203.0.113.77"] * (len(records) - (path == "record by record"))
    assert response.body["errors"][0] == {
        "index": 1,
        "field": "timestamp",
        "message": "is more than 7 days in the past (the limit on event age)",
    }


def test_records_an_sdk_could_not_map_keep_their_positions_beside_invalid_ones():
    unmapped = RecordError(0, "type", "not a message this endpoint maps")
    batch = validate_records(
        [unmapped, {"event_type": 3}, {"event_type": "click"}], received_at=NOW
    )
    assert [index for index, _ in batch.records] == [2]
    assert sorted((e.index, e.field) for e in batch.errors) == [(0, "type"), (1, "event_type")]


def test_put_events_tries_five_times_by_default_and_sends_each_event_as_stored():
    stream = ScriptedStream(*[throttling()] * 5)
    batch = valid(1)
    outcome = put_events(stream, "st", batch, sleep=lambda _: None)
    assert outcome.attempts == 5 and len(stream.calls) == 5
    ((_, event),) = batch
    assert stream.calls[0] == [
        {"Data": orjson.dumps(event, option=orjson.OPT_UTC_Z), "PartitionKey": "s0"}
    ]


def test_no_attempt_allowed_reports_every_event_unsent():
    outcome = put_events(ScriptedStream(), "st", valid(1), max_attempts=0)
    assert outcome.rejected == [
        RecordError(
            0,
            "record",
            "not accepted: the stream refused it (unknown) after 0 attempts; retry later",
            retryable=True,
        )
    ]


def test_a_batch_taken_at_the_first_attempt_counts_no_retry():
    response = handle_events_request(
        b'{"records": [{"event_type": "click"}]}', context(ScriptedStream())
    )
    assert (response.status, response.put_retries, response.throttled) == (200, 0, 0)


def test_no_body_at_all_is_an_empty_body():
    response = handle_events_request(None, context(ScriptedStream()))
    assert (response.status, response.body["error"]) == (400, EMPTY[1])


class _ShortAnswer(ScriptedStream):
    """A stream whose answer lists one result fewer than the entries it was sent."""

    def put_records(self, StreamName: str, Records: list[dict[str, Any]]) -> dict[str, Any]:
        answer = super().put_records(StreamName, Records)
        return {"Records": answer["Records"][:-1]}


def test_an_answer_that_does_not_account_for_every_entry_fails_loudly():
    """PutRecords answers one result per entry, in order; an answer that does not is not
    read as if the missing entries had vanished (they would be neither accepted nor named)."""
    with pytest.raises(ValueError, match="zip"):
        put_events(_ShortAnswer(), "st", valid(2), sleep=lambda _: None)


def test_a_body_of_valid_records_never_takes_the_record_by_record_path(monkeypatch):
    """The fast path is half the cost: a valid body, unmapped fields and all, must take it."""

    def record_by_record(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a valid body went record by record")

    monkeypatch.setattr("clickstream.ingest.ingest_records", record_by_record)
    body = b'{"records": [{"event_type": "click", "unmapped": {"n": 1}}, {"event_type": "buy"}]}'
    response = handle_events_request(body, context(ScriptedStream()))
    assert (response.status, response.accepted) == (200, 2)


@pytest.mark.parametrize(
    "escaped",
    [
        rb"\n",
        rb"\t",
        rb"\b",
        rb"\f",
        rb"\r",
        rb"\u0000",
        rb"\u001F",
        rb"\u001f",
        rb"\u007F",
        b"\x7f",
    ],
)
def test_a_control_character_in_any_escape_is_refused_on_its_field_and_the_rest_taken(escaped):
    """Sent escaped as JSON allows (or DEL raw), the control character is refused on the
    field that holds it, whichever parse the body takes; the valid record beside it is taken."""
    body = b'{"records": [{"event_type": "click"}, {"event_type": "click", "page": "a%sb"}]}'
    stream = ScriptedStream()
    answer = handle_events_request(body % escaped, context(stream))
    assert answer.accepted == 1 and len(stream.sent) == 1
    assert answer.body["errors"] == [{"index": 1, "field": "page", "message": CONTROL_MESSAGE}]


# Every text field as a client may name it, nested ones by their dotted error names.
TEXT_FIELDS = {
    **{name: name for name in ("event_id", "user_id", "session_id", "anonymous_id", "page")},
    **{name: name for name in ("page_url", "referrer", "product_id", "device_type", "platform")},
    **{name: name for name in ("browser", "country", "city", "user_type", "user_agent")},
    "event_type": "event_type",
    "ip_address": "ip_address",
    "device.deviceType": "device.deviceType",
    "location.city": "location.city",
    "location": "location.country",
}
CONTROL_CHARACTERS = [chr(code) for code in range(0x20)] + ["\x7f"]


def _record_with(field: str, value: str) -> dict[str, Any]:
    outer, _, inner = field.partition(".")
    return {"event_type": "click", outer: {inner: value} if inner else value}


@given(
    st.sampled_from(sorted(TEXT_FIELDS)),
    st.sampled_from(CONTROL_CHARACTERS),
    st.text(" 1.a", max_size=3),
    st.text(" 1.a", max_size=3),
    st.booleans(),
)
def test_a_control_character_anywhere_in_a_text_field_is_refused_even_at_its_ends(
    field, control, before, after, ascii_escapes
):
    """At either end (where spaces are stripped), alone or inside: refused on its field,
    never stripped into a different value; the valid record beside it is taken."""
    records = [{"event_type": "click"}, _record_with(field, before + control + after)]
    body = orjson.dumps({"records": records})
    if ascii_escapes:
        body = json.dumps({"records": records}).encode()
    stream = ScriptedStream()
    answer = handle_events_request(body, context(stream))
    assert answer.accepted == 1 and len(stream.sent) == 1
    error = {"index": 1, "field": TEXT_FIELDS[field], "message": CONTROL_MESSAGE}
    assert answer.body["errors"] == [error]


def test_spaces_at_a_text_fields_ends_are_stripped():
    record = {"event_type": " click ", "user_id": "  u1 ", "device": {"deviceType": " mobile"}}
    stream = ScriptedStream()
    answer = handle_events_request(orjson.dumps({"records": [record]}), context(stream))
    assert answer.accepted == 1, answer.body
    [stored] = stream.sent
    assert (stored["event_type"], stored["user_id"]) == ("click", "u1")
    assert stored["device"]["device_type"] == "mobile"


@pytest.mark.parametrize(
    ("escaped", "page"),
    [(rb"\\n", "/a\\nb"), (rb"\u00e9", "/aéb"), (rb"\u0020", "/a b"), (rb"\"", '/a"b')],
)
def test_escapes_of_other_characters_are_taken_as_sent(escaped, page):
    body = b'{"records": [{"event_type": "click", "page": "a%sb"}]}'
    stream = ScriptedStream()
    answer = handle_events_request(body % escaped, context(stream))
    assert answer.accepted == 1
    assert orjson.loads(stream.calls[0][0]["Data"])["page"] == page


@pytest.mark.parametrize("raw", [bytes([code]) for code in range(0x20)])
def test_a_raw_control_byte_in_a_string_is_malformed_json(raw):
    """JSON allows a control character in a string only escaped: sent raw, the body is not
    JSON, whichever parse would have read it (the fast path relies on this)."""
    body = b'{"records": [{"event_type": "click"}, {"event_type": "click", "page": "a%sb"}]}'
    stream = ScriptedStream()
    answer = handle_events_request(body % raw, context(stream))
    message = "the body is not valid JSON: unexpected control character in string: line 1 column 73 (char 72)"
    assert (answer.status, stream.calls) == (400, [])
    assert answer.body["errors"] == [{"index": None, "field": "body", "message": message}]


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("203.0.113.9", "203.0.113.0"),
        ("2001:db8:1:2::1", "2001:db8:1::"),
        ("203.0.113.9, 10.0.0.1", "203.0.113.0"),  # a forwarded-for list: its first
        (" 203.0.113.9 ", "203.0.113.0"),
        ("", "198.51.100.0"),  # none sent: the request's own
    ],
)
def test_a_records_address_is_truncated_in_place_of_the_requests(sent, stored):
    stream = ScriptedStream()
    body = orjson.dumps({"records": [{"event_type": "click", "ip_address": sent}]})
    answer = handle_events_request(body, context(stream, source_ip="198.51.100.7"))
    assert (answer.status, [event["ip_truncated"] for event in stream.sent]) == (200, [stored])


@pytest.mark.parametrize("sent", ["999.1.1.1", "x", "203.0.113", "::g", "1.2.3.4/24", ", 1.2.3.4"])
def test_an_address_that_is_none_is_refused_on_its_field_and_the_rest_taken(sent):
    """Truncated, it was stored as no address at all, and nothing said so."""
    stream = ScriptedStream()
    records = [{"event_type": "click"}, {"event_type": "click", "ip": sent}]
    answer = handle_events_request(orjson.dumps({"records": records}), context(stream))
    assert answer.accepted == 1 and len(stream.sent) == 1
    assert answer.body["errors"] == [
        {"index": 1, "field": "ip", "message": "must be an IPv4 or IPv6 address"}
    ]


def _ids(body: dict[str, Any], path: str = "/events") -> list[str]:
    if path == "/track":
        answer = handle_track_request(orjson.dumps(body), context(ScriptedStream()))
        return [answer.body["event_id"]]
    return handle_events_request(orjson.dumps(body), context(ScriptedStream())).body["event_ids"]


SENT_AT = (NOW - timedelta(minutes=2)).isoformat()


@given(
    st.dictionaries(
        st.sampled_from(["page_url", "session_id", "user_id", "referrer"]),
        st.text(alphabet="abc/:.", min_size=1, max_size=8),
    ),
    st.dictionaries(st.text(alphabet="xyz", min_size=1, max_size=3), st.integers(0, 3)),
)
def test_a_record_without_an_id_but_with_its_time_is_one_event_however_often_it_is_sent(
    fields, properties
):
    """A client's resend of a record without an event_id (a retry after a timeout) is the
    same event when the record carries its time, as the SDK routes make it; any field that
    differs, or no time, makes another, and so does a second copy within one request."""
    record = {"event_type": "click", "timestamp": SENT_AT, **fields, "properties": properties}
    first = _ids({"records": [record]})
    assert _ids({"records": [dict(reversed(record.items()))]}) == first  # key order aside
    assert _ids(record, "/track") == first  # one record, either route
    other_time = {**record, "timestamp": (NOW - timedelta(minutes=1)).isoformat()}
    assert _ids({"records": [other_time]}) != first
    assert _ids({"records": [{**record, "properties": {**properties, "n": 1}}]}) != first
    # records alike in one request are so many events, each the same again on a resend
    twice = _ids({"records": [record, other_time, record]})
    assert len(set(twice)) == 3 and twice[:1] == first
    assert _ids({"records": [record, other_time, record]}) == twice
    untimed = {key: value for key, value in record.items() if key != "timestamp"}
    assert _ids({"records": [untimed]}) != _ids({"records": [untimed]})
    own = {**record, "event_id": "mine"}  # a client's own id is kept as its stable UUID
    owner = fields.get("session_id") or fields.get("user_id")
    assert _ids({"records": [own, own]}) == [normalize_event_id("mine", owner)] * 2


@pytest.mark.parametrize("path", ["/events", "/track"])
def test_a_record_without_an_id_that_cannot_be_encoded_is_refused_by_its_field(path):
    """A lone surrogate in a record sent without an id but with its time: no id can be made
    from it, and it is refused naming the field, the valid record beside it kept."""
    timed = f'{{"event_type": "click", "timestamp": "{SENT_AT}"'
    bad = timed + ', "properties": {"s": "\\ud83d"}}'
    good = timed + ', "session_id": "g"}'
    body = f'{{"records": [{good}, {bad}]}}' if path == "/events" else bad
    handle = handle_events_request if path == "/events" else handle_track_request
    answer = handle(body.encode(), context(ScriptedStream()))
    assert answer.status == (200 if path == "/events" else 400), answer.body
    assert [(e["index"], e["field"]) for e in answer.body["errors"]] == [
        (1 if path == "/events" else 0, "properties.s")
    ]
    if path == "/events":
        assert len(answer.body["event_ids"]) == 1


@pytest.mark.parametrize(
    ("raw", "where"),
    [
        (b"\xff", "byte 0 is 0xff"),
        (b'{"records": [{"page": "a\xc3"}]}', "byte 24 is 0xc3"),
        ('{"records": []}'.encode("utf-16"), "byte 0 is 0xff"),  # (with its byte-order mark)
        (b'{"page": "\xed\xa0\xbd"}', "byte 10 is 0xed"),  # a surrogate encoded as UTF-8
    ],
)
def test_a_body_that_is_not_utf8_is_refused_saying_so_and_where(raw, where):
    assert refusal(load_json_body, raw) == ("body", f"the body is not valid UTF-8: {where}", 400)
