"""PutRecords: only failed entries are retried; what still fails is reported, never accepted.
A real botocore Kinesis client answers from botocore's Stubber."""

from __future__ import annotations

import gc
from datetime import UTC, datetime, timedelta

import boto3
import orjson
import pytest
from botocore.stub import ANY, Stubber

from clickstream.errors import RequestError
from clickstream.ingest import (
    IngestContext,
    backoff_delay,
    handle_events_request,
    parse_sent_at,
    put_events,
    valid_events_body,
    validate_records,
)
from clickstream.records import decode_event
from clickstream.schema import CONTROL_MESSAGE, parse_incoming
from tests.unit.stream_support import ScriptedStream
from tests.unit.zone_support import machine_zone

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


@pytest.fixture
def kinesis():
    client = boto3.client(
        "kinesis", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    with Stubber(client) as stubber:
        yield client, stubber


def events(count: int):
    records = [{"event_type": "click", "session_id": f"s{i}"} for i in range(count)]
    return validate_records(records, received_at=NOW).records


def ok(n: int) -> dict:
    return {"Records": [{"SequenceNumber": str(i), "ShardId": "s"} for i in range(n)]}


def throttled() -> dict:
    return {"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "slow down"}


def test_only_the_failed_entries_are_sent_again(kinesis):
    client, stubber = kinesis
    batch = events(3)
    stubber.add_response(
        "put_records",
        {
            "FailedRecordCount": 1,
            "Records": [
                {"SequenceNumber": "1", "ShardId": "s"},
                throttled(),
                {"SequenceNumber": "3", "ShardId": "s"},
            ],
        },
        {"StreamName": "st", "Records": ANY},
    )
    stubber.add_response(
        "put_records", ok(1), {"StreamName": "st", "Records": [{"Data": ANY, "PartitionKey": "s1"}]}
    )
    outcome = put_events(client, "st", batch, sleep=lambda _: None)
    assert [index for index, _ in outcome.accepted] == [0, 1, 2]
    assert outcome.rejected == [] and outcome.attempts == 2 and outcome.throttled == 1


def test_partition_key_is_session_then_user_then_event_id(kinesis):
    client, stubber = kinesis
    batch = validate_records(
        [
            {"event_type": "click", "session_id": "S", "user_id": "U"},
            {"event_type": "click", "user_id": "U"},
            {"event_type": "click", "event_id": "8a4b5c0e-6a43-4a4e-9d3c-4d2b4bdb7c11"},
        ],
        received_at=NOW,
    ).records
    stubber.add_response(
        "put_records",
        ok(3),
        {
            "StreamName": "st",
            "Records": [
                {"Data": ANY, "PartitionKey": "S"},
                {"Data": ANY, "PartitionKey": "U"},
                {"Data": ANY, "PartitionKey": "8a4b5c0e-6a43-4a4e-9d3c-4d2b4bdb7c11"},
            ],
        },
    )
    assert len(put_events(client, "st", batch).accepted) == 3


@pytest.mark.parametrize("attempt", range(1, 12))
def test_backoff_is_jittered_and_capped(attempt):
    delays = [backoff_delay(attempt) for _ in range(50)]
    assert all(0 <= delay <= 1.0 for delay in delays)
    assert len(set(delays)) > 1


def test_backoff_doubles_with_each_attempt_up_to_its_cap(monkeypatch):
    import clickstream.ingest as ingest

    monkeypatch.setattr(ingest.random, "uniform", lambda low, high: high)  # the jitter's top
    ceilings = [backoff_delay(attempt) for attempt in range(1, 7)]
    assert ceilings == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]  # 0.05 s doubled per attempt, 1 s cap
    monkeypatch.setattr(ingest.random, "uniform", lambda low, high: low)
    assert backoff_delay(5) == 0.0  # full jitter: anywhere from zero


def test_the_waits_between_put_attempts_grow(kinesis, monkeypatch):
    import clickstream.ingest as ingest

    monkeypatch.setattr(ingest.random, "uniform", lambda low, high: high)
    client, stubber = kinesis
    for _ in range(4):
        stubber.add_response("put_records", {"FailedRecordCount": 1, "Records": [throttled()]})
    waits: list[float] = []
    outcome = put_events(client, "st", events(1), max_attempts=4, sleep=waits.append)
    assert waits == [0.1, 0.2, 0.4]  # none before the first attempt
    assert outcome.attempts == 4 and outcome.rejected[0].retryable


@pytest.mark.parametrize(
    ("value", "status"),
    [
        (b"123456789012345678901234567890", 200),
        (b"18446744073709551616", 200),  # 2**64: orjson reads a float
        (b"18446744073709551615", 200),
        (b"-9223372036854775809", 200),  # -2**63 - 1: orjson reads a float
        (b"-9223372036854775808", 200),
        (b"NaN", 400),
        (b"Infinity", 400),
        (b"-Infinity", 400),
        (b"1e400", 400),
        (b'{"deeper": [NaN]}', 400),
        (b"[[Infinity]]", 400),
    ],
)
def test_a_body_pydantic_and_orjson_read_differently_is_answered_as_orjson_reads_it(value, status):
    """pydantic-core's JSON parser takes NaN, Infinity and 30-digit integers; the
    record-by-record path (orjson) does not, or reads them as floats: both paths answer
    such a body alike, never with an exception."""
    for record in (
        b'{"event_type": "click", "properties": {"n": ' + value + b"}}",
        b'{"event_type": "click", "unmapped": ' + value + b"}",  # kept in properties
    ):
        body = b'{"records": [' + record + b"]}"
        context = IngestContext(kinesis=ScriptedStream(), stream_name="s", received_at=NOW)
        assert handle_events_request(body, context).status == status, record


def test_bodies_with_hex_ids_take_the_fast_path():
    from clickstream.ingest import valid_events_body

    body = b'{"records": [{"event_type": "click", "event_id": "3e130b96-184b-453e-a9b7-8521aafde44e", "properties": {"n": 1e5, "m": [1, 2.5e10]}}]}'
    assert valid_events_body(body) is not None


DEVICE_AND_PLACE_SHAPES = [
    # (as sent, the stored device, the stored location)
    (
        {"device": {"deviceType": "Mobile", "platform": "iOS"}},
        {"device_type": "mobile", "platform": "iOS"},
        {},
    ),
    (
        {"device": {"device_type": "tablet", "browser": "Safari", "other": 1}},
        {"device_type": "tablet", "browser": "Safari"},
        {},
    ),
    (
        {"device": None, "deviceType": "desktop", "platform": "Linux"},
        {"device_type": "desktop", "platform": "Linux"},
        {},
    ),
    (
        {"device": {"platform": "Android"}, "device_type": "mobile"},
        {"device_type": "mobile", "platform": "Android"},
        {},
    ),
    (
        {"location": {"country": "ES", "city": "Madrid", "lat": 40.4}},
        {},
        {"country": "ES", "city": "Madrid"},
    ),
    ({"location": " Spain "}, {}, {"country": "Spain"}),
    ({"location": ""}, {}, {}),
    ({"location": {}, "city": "Porto"}, {}, {"city": "Porto"}),
    ({"location": {"city": "Lyon"}, "country": "FR"}, {}, {"country": "FR", "city": "Lyon"}),
    ({"location": None, "country": "DE"}, {}, {"country": "DE"}),
]


@pytest.mark.parametrize("unmappable", [False, True], ids=["fast path", "record by record"])
@pytest.mark.parametrize(("sent", "device", "location"), DEVICE_AND_PLACE_SHAPES)
def test_device_and_place_are_read_in_every_shape_on_both_paths(sent, device, location, unmappable):
    """The nested device and location (validated as TypedDicts) and their flat forms, stored
    alike whether the body takes the fast path or, with a bad record beside, record by record."""
    record = {"event_type": "click", "session_id": "s1", **sent}
    records = [record, {"event_type": "no spaces allowed"}] if unmappable else [record]
    stream = ScriptedStream()
    context = IngestContext(kinesis=stream, stream_name="s", received_at=NOW)
    answer = handle_events_request(orjson.dumps({"records": records}), context)
    assert answer.accepted == 1, answer.body
    [stored] = stream.sent
    assert stored["device"] == device
    assert stored["location"] == location
    decode_event(orjson.dumps(stored))  # what the consumers read back, never a poison record


@pytest.mark.parametrize(
    ("sent", "field", "message"),
    [
        (
            {"device": {"platform": "x" * 65}},
            "device.platform",
            "must be at most 64 characters, got 65",
        ),
        ({"device": {"deviceType": "a\u0000b"}}, "device.deviceType", CONTROL_MESSAGE),
        ({"device": "mobile"}, "device", "must be an object, got 'mobile'"),
        ({"device": [1]}, "device", "must be an object, got an array"),
        (
            {"location": {"city": "y" * 129}},
            "location.city",
            "must be at most 128 characters, got 129",
        ),
        ({"location": {"country": 5}}, "location.country", "must be a string, got a number"),
        ({"location": "x" * 65}, "location.country", "must be at most 64 characters, got 65"),
        ({"location": "a\u0001b"}, "location.country", CONTROL_MESSAGE),
        ({"location": 7}, "location", "must be an object, got a number"),
    ],
)
@pytest.mark.parametrize("unmappable", [False, True], ids=["alone", "beside a bad record"])
def test_a_bad_device_or_location_names_its_record_and_field(sent, field, message, unmappable):
    """One error, naming the record and the field as the client sent it; the valid record in
    the same request is kept (whether or not another bad record sends the body record by
    record)."""
    records = [{"event_type": "click"}, {"event_type": "click", **sent}]
    records += [{"event_type": "no spaces allowed"}] if unmappable else []
    stream = ScriptedStream()
    context = IngestContext(kinesis=stream, stream_name="s", received_at=NOW)
    answer = handle_events_request(orjson.dumps({"records": records}), context)
    assert answer.accepted == 1 and len(stream.sent) == 1
    errors = [error for error in answer.body["errors"] if error["index"] == 1]
    assert errors == [{"index": 1, "field": field, "message": message}]


@pytest.mark.parametrize("path", ["events", "track", "segment"])
def test_the_cyclic_collector_pauses_for_a_request_and_is_left_as_it_was_after(path):
    from clickstream.ingest import handle_track_request
    from clickstream.protocols import SdkRequest, handle_sdk_request
    from clickstream.schema import Location

    enabled_while_enriching: list[bool] = []

    def locate(_address):  # called while the records are enriched
        enabled_while_enriching.append(gc.isenabled())
        return Location()

    record = {"event_type": "click", "session_id": "s"}
    context = IngestContext(
        kinesis=ScriptedStream(), stream_name="s", received_at=NOW, locate=locate
    )

    def handle():
        if path == "events":
            return handle_events_request(orjson.dumps({"records": [record]}), context)
        if path == "track":
            return handle_track_request(orjson.dumps(record), context)
        body = orjson.dumps(
            {"writeKey": "k", "type": "track", "event": "click", "anonymousId": "a"}
        )
        request = SdkRequest(body=body, headers={})
        return handle_sdk_request("segment", request, context, lambda *_: None, call="track")

    assert gc.isenabled()
    assert handle().status == 200
    assert enabled_while_enriching == [False]
    assert gc.isenabled()  # on again after
    gc.disable()  # a process that turned it off keeps it off
    try:
        assert handle().status == 200
        assert not gc.isenabled()
    finally:
        gc.enable()


TIME = "an ISO-8601 time (or epoch seconds or milliseconds)"


@pytest.mark.parametrize(
    ("sent", "field", "message"),
    [
        ({"event_type": 5}, "event_type", "must be a string, got a number"),
        ({"event_type": ""}, "event_type", "must not be empty"),
        ({"event_type": "   "}, "event_type", "must not be empty"),
        ({"user_id": ["u"]}, "user_id", "must be a string, got an array"),
        ({"user_id": "u" * 257 + "   "}, "user_id", "must be at most 256 characters, got 257"),
        ({"timestamp": True}, "timestamp", f"must be {TIME}, got a boolean"),
        (
            {"timestamp": "2026-02-30T10:00:00Z"},
            "timestamp",
            f"must be {TIME}, got '2026-02-30T10:00:00Z' (day value is outside expected range)",
        ),
        ({"value": "12 dollars"}, "value", "must be a number, got '12 dollars'"),
        ({"value": -1}, "value", "must be at least 0, got -1"),
        ({"value": "-2.5"}, "value", "must be at least 0, got '-2.5'"),
        ({"value": 1e12 + 0.5}, "value", "must be at most 1000000000000, got 1000000000000.5"),
        ({"value": 1e300}, "value", "must be at most 1000000000000, got 1e+300"),
        ({"value": float("inf")}, "value", "must be a finite number"),
        ({"properties": "x"}, "properties", "must be an object, got 'x'"),
        ({"event_type": None}, "event_type", "is required"),
        ({"properties": None}, "properties", "must be an object, got null"),
    ],
)
def test_a_wrongly_typed_field_says_what_it_must_be_and_what_was_sent(sent, field, message):
    """In the SDK routes' words, each number as sent (never rounded into agreeing with its
    bound), each length as kept."""
    errors = parse_incoming(3, {"event_type": "click", **sent})
    assert isinstance(errors, list)
    assert [(e.index, e.field, e.message) for e in errors] == [(3, field, message)]


@pytest.mark.parametrize("sent", [True, False])
def test_a_boolean_is_no_value_on_either_path(sent):
    """pydantic reads true as 1: a revenue nobody sent."""
    body = orjson.dumps({"records": [{"event_type": "purchase", "value": sent}]})
    assert valid_events_body(body) is None  # (the fast path leaves it to the named one)
    errors = parse_incoming(0, {"event_type": "purchase", "value": sent})
    assert [(e.field, e.message) for e in errors] == [("value", "must be a number, got a boolean")]


def _content_id(record: dict, source_ip: str) -> str:
    batch = validate_records([record], received_at=NOW, source_ip=source_ip)
    assert not batch.errors, batch.errors
    return str(batch.records[0][1]["event_id"])


@pytest.mark.parametrize(
    "names",
    [
        {},
        {"session_id": "s"},
        {"anonymous_id": "d"},
        {"user_id": "u"},
        {"user_id": "u", "session_id": "s"},
    ],
)
def test_a_record_resent_without_an_id_is_one_event_and_one_naming_no_one_is_told_by_its_network(
    names,
):
    """Sent with its own time but no id: a client's resend of the same record is the same
    event. One that names its user, device or session keeps its id from another network; one
    that names no one is another visitor's (the same click) from another network."""
    record = {"event_type": "click", "timestamp": "2026-11-24T11:59:00Z", **names}
    first = _content_id(record, "203.0.113.7")
    assert _content_id(record, "203.0.113.200") == first  # the same /24, as it is stored
    elsewhere = _content_id(record, "198.51.100.7")
    assert (elsewhere == first) == bool(names), (names, first, elsewhere)
    assert _content_id({**record, "page": "/b"}, "203.0.113.7") != first


def test_a_lone_surrogate_in_a_key_or_a_list_is_refused_by_its_path():
    records = [
        {"event_type": "click", "session_id": "s", "properties": {"tags": ["a", "\ud83d"]}},
        {"event_type": "click", "session_id": "s", "properties": {"n": {"ok": 1, "x\ud83dy": 2}}},
        {"event_type": "click", "session_id": "s", "properties": {"n": [{"\ud83d": 1}]}},
        {"event_type": "click", "session_id": "s", "plan\ud83d": "pro"},
        {"event_type": "click", "session_id": "s"},
    ]
    batch = validate_records(records, received_at=NOW)
    assert [(e.index, e.field) for e in batch.errors] == [
        (0, "properties.tags.1"),
        (1, "properties.n.x\ud83dy"),
        (2, "properties.n.0.\ud83d"),
        (3, "plan\ud83d"),  # a top-level field of its own name
    ]
    assert [index for index, _ in batch.records] == [4]


def test_sent_at_is_the_devices_clock_read_into_utc_whatever_the_machines_zone(monkeypatch):
    with machine_zone(monkeypatch):
        for sent in ("2026-11-24T17:30:00+05:30", " 2026-11-24T12:00:00Z", "2026-11-24t12:00:00z"):
            parsed = parse_sent_at(sent)
            assert parsed == NOW and parsed.utcoffset() == timedelta(0), (sent, parsed)
    assert parse_sent_at(None) is None


@pytest.mark.parametrize(
    ("sent", "shown"),
    [
        ("yesterday", "'yesterday'"),
        ("2026-11-24T12:00:00", "'2026-11-24T12:00:00'"),
        (5, "a number"),
    ],
)
def test_a_sent_at_without_a_zone_is_refused_saying_what_it_must_be(sent, shown):
    with pytest.raises(RequestError) as refused:
        parse_sent_at(sent)
    assert (refused.value.field, refused.value.status) == ("sent_at", 400)
    assert refused.value.message == (
        f"sent_at must be an ISO-8601 time with its zone (the device's clock), got {shown}"
    )
