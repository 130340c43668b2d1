"""Bad input at the internet-facing ingest endpoint, class by class, against the real local
stack. Every case checks the status, the error body (``{"index", "field", "message"}``), that a
valid record sent in the same request was accepted and reached the stream, and that nothing
invalid did (the Kinesis stream is read back through the emulator)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from clickstream.keys import create_key, generate_key
from localdev.keys import revoke_key

pytestmark = pytest.mark.integration

WHOLE, MIXED, VERBATIM, AUTH = "whole request", "mixed", "stored verbatim", "auth"


def ok(tag: str) -> dict[str, Any]:
    return {"event_type": "click", "session_id": f"{tag}-ok", "user_id": "security-test"}


def bad(tag: str, **fields: Any) -> dict[str, Any]:
    return {"event_type": "click", "session_id": f"{tag}-bad", **fields}


def body(*records: Any) -> bytes:
    return json.dumps({"records": list(records)}).encode()


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def iso(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Case:
    kind: str
    status: int
    field: str
    build: Callable[[str], bytes]
    headers: dict[str, str] = field(default_factory=dict)
    path: str = "/events"
    says: str = ""  # what the error message says (every refused case states it)
    stored: dict[str, Any] = field(default_factory=dict)  # VERBATIM: what the stream holds
    key: str = ""  # AUTH: which key to present


CUSTOM_TYPE_RULE = "custom event types start with a letter and use only a-z, 0-9"


def mixed(field_: str, says: str = "", **bad_fields: Any) -> Case:
    return Case(MIXED, 200, field_, lambda t: body(ok(t), bad(t, **bad_fields)), says=says)


CASES: dict[str, Case] = {
    # --- the request as a whole: nothing is written ------------------------------------------
    "malformed JSON": Case(
        WHOLE,
        400,
        "body",
        lambda t: body(ok(t))[:-3] + b', {"event_type": }]}',
        says="the body is not valid JSON: unexpected character",
    ),
    "wrong content type (XML)": Case(
        WHOLE,
        415,
        "Content-Type",
        lambda t: body(ok(t)),
        {"Content-Type": "application/xml"},
        says="Content-Type 'application/xml' is not accepted; send application/json",
    ),
    "form-encoded body": Case(
        WHOLE,
        415,
        "Content-Type",
        lambda t: b"records=1",
        {"Content-Type": "application/x-www-form-urlencoded"},
        says="Content-Type 'application/x-www-form-urlencoded' is not accepted",
    ),
    "charset other than UTF-8": Case(
        WHOLE,
        415,
        "Content-Type",
        lambda t: body(ok(t)),
        {"Content-Type": "application/json; charset=latin-1"},
        says="the body must be UTF-8 (charset=utf-8)",
    ),
    "empty body": Case(
        WHOLE, 400, "body", lambda t: b"", says="request body is empty; send a JSON object"
    ),
    "whitespace-only body": Case(
        WHOLE, 400, "body", lambda t: b" \n\t ", says="request body is empty; send a JSON object"
    ),
    "top-level array": Case(
        WHOLE,
        400,
        "body",
        lambda t: json.dumps([ok(t)]).encode(),
        says='the body must be a JSON object like {"records": [...]}',
    ),
    "records is an object": Case(
        WHOLE,
        400,
        "records",
        lambda t: json.dumps({"records": ok(t)}).encode(),
        says='"records" must be an array of event objects',
    ),
    "records is empty": Case(
        WHOLE, 400, "records", lambda t: body(), says='"records" is empty; send 1 to 500 events'
    ),
    "501 records": Case(
        WHOLE,
        413,
        "records",
        lambda t: body(*[ok(t)] * 501),
        says='"records" has 501 events; the limit is 500',
    ),
    "1 MB string (body over 1 MiB)": Case(
        WHOLE,
        413,
        "body",
        lambda t: body(ok(t), bad(t, note="x" * 1_100_000)),
        says="the limit is 1048576",
    ),
    "NaN literal": Case(
        WHOLE,
        400,
        "body",
        lambda t: body(ok(t))[:-2] + b', {"event_type": "click", "value": NaN}]}',
        says="the body is not valid JSON: unexpected character, expected a JSON value",
    ),
    "number beyond double range (1e400)": Case(
        WHOLE,
        400,
        "body",
        lambda t: body(ok(t))[:-2] + b', {"event_type": "click", "value": 1e400}]}',
        says="the body is not valid JSON: number is infinity when parsed as double",
    ),
    "invalid UTF-8": Case(
        WHOLE,
        400,
        "body",
        lambda t: body(ok(t))[:-2] + b', {"event_type": "click", "page": "\xff\xfe"}]}',
        says="the body is not valid UTF-8: byte ",
    ),
    "lone UTF-16 surrogate escape": Case(
        MIXED,
        200,
        "page",
        lambda t: body(ok(t))[:-2] + b', {"event_type": "click", "page": "\\ud800"}]}',
        says="holds half of a UTF-16 surrogate pair",
    ),
    "byte-order mark": Case(
        WHOLE,
        400,
        "body",
        lambda t: b"\xef\xbb\xbf" + body(ok(t)),
        says="the body is not valid JSON: UTF-8 byte order mark (BOM) is not supported",
    ),
    "/track with an array": Case(
        WHOLE,
        400,
        "body",
        lambda t: json.dumps([ok(t)]).encode(),
        path="/track",
        says="the body must be one JSON event object",
    ),
    # --- one bad record next to a good one: the good one is accepted --------------------------
    "record is a string": Case(
        MIXED,
        200,
        "record",
        lambda t: body(ok(t), "click"),
        says="must be a JSON object, got 'click'",
    ),
    "record is null": Case(
        MIXED, 200, "record", lambda t: body(ok(t), None), says="must be a JSON object, got null"
    ),
    "record is a number": Case(
        MIXED,
        200,
        "record",
        lambda t: body(ok(t), 12345678901234567890),
        says="must be a JSON object, got a number",
    ),
    "huge value (1e300)": mixed(
        "value", says="must be at most 1000000000000, got 1e+300", value=1e300
    ),
    "negative value": mixed("value", says="must be at least 0, got -1", value=-1),
    "value is text": mixed("value", says="must be a number, got '12 dollars'", value="12 dollars"),
    "properties nested 6 deep": mixed(
        "properties",
        says="properties nest 6 levels deep; the limit is 5",
        properties={"a": nested(5)},
    ),
    "properties nested 300 deep": mixed(
        "properties", says="levels deep; the limit is 5", properties={"a": nested(300)}
    ),
    "nested 10,000 deep": Case(
        WHOLE,
        400,
        "body",
        lambda t: (
            body(ok(t))[:-2]
            + b', {"event_type": "click", "properties": {"a": '
            + b"[" * 10_000
            + b"1"
            + b"]" * 10_000
            + b"}}]}"
        ),
        says="the body is not valid JSON: nested deeper than the parser's limit of 1024 levels",
    ),
    "properties over 8 KB": mixed(
        "properties", says="bytes as JSON; the limit is 8192 bytes", properties={"blob": "x" * 9000}
    ),
    "record over 32 KB (40 KB string)": mixed(
        "record", says="the limit is 32768 bytes per record", note="x" * 40_000
    ),
    "properties is an array": mixed(
        "properties", says="must be an object, got an array", properties=[1, 2]
    ),
    "user_id of 300 characters": mixed(
        "user_id", says="must be at most 256 characters, got 300", user_id="u" * 300
    ),
    "event_id of 300 characters": mixed(
        "event_id", says="must be at most 256 characters, got 300", event_id="e" * 300
    ),
    "NUL in user_id": mixed(
        "user_id", says="must not contain control characters", user_id="a\u0000b"
    ),
    "newline in event_type": mixed(
        "event_type", says="must not contain control characters", event_type="cl\nick"
    ),
    "newline ending event_type": mixed(
        "event_type", says="must not contain control characters", event_type="click\n"
    ),
    "ESC in device.browser": mixed(
        "device.browser",
        says="must not contain control characters",
        device={"browser": "\u001b[31mred"},
    ),
    "unknown event type with a bad name": mixed(
        "event_type", says=CUSTOM_TYPE_RULE, event_type="Bad Name!"
    ),
    "SQL in event_type": mixed(
        "event_type", says=CUSTOM_TYPE_RULE, event_type="click'; DROP TABLE events;--"
    ),
    "event_type over 64 characters": mixed(
        "event_type", says="must be at most 64 characters, got 65", event_type="a" * 65
    ),
    "missing event_type": Case(
        MIXED,
        200,
        "event_type",
        lambda t: body(ok(t), {"session_id": f"{t}-bad"}),
        says="is required",
    ),
    "timestamp 2 days ahead": mixed(
        "timestamp", says="is more than 24 hours in the future", timestamp=iso(timedelta(days=2))
    ),
    "timestamp 8 days old": mixed(
        "timestamp", says="is more than 7 days in the past", timestamp=iso(-timedelta(days=8))
    ),
    "timestamp is not a time": mixed(
        "timestamp",
        says="must be an ISO-8601 time (or epoch seconds or milliseconds), got 'yesterday'",
        timestamp="yesterday",
    ),
    "timestamp overflowing year 1": mixed(
        "timestamp", says="is more than 7 days in the past", timestamp="0001-01-01T00:00:00+01:00"
    ),
    # --- accepted, stored verbatim, never executed or rendered as markup --------------------
    "SQL payloads in strings": Case(
        VERBATIM,
        200,
        "",
        lambda t: body(
            ok(t),
            bad(
                t,
                product_id="1; DELETE FROM events WHERE 1=1",
                properties={"q": "' OR '1'='1'; DROP TABLE events; --"},
            ),
        ),
        stored={
            "product_id": "1; DELETE FROM events WHERE 1=1",
            "properties": {"q": "' OR '1'='1'; DROP TABLE events; --"},
        },
    ),
    "HTML/script payloads in strings": Case(
        VERBATIM,
        200,
        "",
        lambda t: body(
            ok(t),
            bad(
                t,
                referrer="javascript:alert(1)",
                properties={"html": "<script>alert(1)</script><img src=x onerror=alert(2)>"},
            ),
        ),
        stored={
            "referrer": "javascript:alert(1)",
            "properties": {"html": "<script>alert(1)</script><img src=x onerror=alert(2)>"},
        },
    ),
    "duplicate keys (the last wins, as in JSON.parse)": Case(
        VERBATIM,
        200,
        "",
        lambda t: (
            body(ok(t))[:-2]
            + f', {{"event_type": "click", "event_type": "search", "session_id": "{t}-bad"}}]}}'.encode()
        ),
        stored={"event_type": "search"},
    ),
    # --- keys: nothing is written -----------------------------------------------------------
    "missing write key": Case(
        AUTH,
        401,
        "X-Write-Key",
        lambda t: body(ok(t)),
        key="none",
        says="missing X-Write-Key: send events needs a write key",
    ),
    "unknown write key": Case(
        AUTH,
        403,
        "X-Write-Key",
        lambda t: body(ok(t)),
        key="unknown",
        says="X-Write-Key is not a known key",
    ),
    "malformed write key": Case(
        AUTH,
        403,
        "X-Write-Key",
        lambda t: body(ok(t)),
        key="malformed",
        says="X-Write-Key is not a valid key",
    ),
    "revoked write key": Case(
        AUTH,
        403,
        "X-Write-Key",
        lambda t: body(ok(t)),
        key="revoked",
        says="X-Write-Key was revoked",
    ),
    "read key used to write": Case(
        AUTH,
        403,
        "X-Write-Key",
        lambda t: body(ok(t)),
        key="read",
        says="a read key cannot send events",
    ),
    "wrong ?key= on a beacon": Case(
        AUTH,
        403,
        "?key=",
        lambda t: body(ok(t)),
        key="query",
        says="?key= is not a valid key",
    ),
}


@pytest.fixture(scope="module")
def revoked_key(secure_stack) -> str:
    dynamodb = secure_stack.client("dynamodb")
    table = secure_stack.resources["KeysTableName"]
    key, record = create_key(dynamodb, table, role="write", site="revoked.example")
    revoke_key(dynamodb, table, record.key_id)  # revoked before any request could cache it
    return key


def _headers(case: Case, stack, revoked: str) -> tuple[dict[str, str], dict[str, str]]:
    headers = {"Content-Type": "application/json", **case.headers}
    params: dict[str, str] = {}
    keys = {
        "": stack.write_key,
        "unknown": generate_key("write"),
        "malformed": "csw_not-a-key",
        "revoked": revoked,
        "read": stack.read_key,
    }
    if case.key == "query":
        params["key"] = "garbage"
    elif case.key != "none":
        headers["X-Write-Key"] = keys[case.key]
    return headers, params


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_refused_precisely_and_loses_no_valid_record(secure_stack, revoked_key, name):
    case = CASES[name]
    tag = f"sec-{uuid.uuid4().hex[:10]}"
    headers, params = _headers(case, secure_stack, revoked_key)

    response = requests.post(
        secure_stack.api_url + case.path,
        data=case.build(tag),
        headers=headers,
        params=params,
        timeout=60,
    )

    assert response.status_code == case.status, response.text[:500]
    answer = response.json()
    errors = answer["errors"]
    assert all(set(error) == {"index", "field", "message"} for error in errors)
    in_stream = {
        record["session_id"]: record
        for record in secure_stack.stream_records({f"{tag}-ok", f"{tag}-bad"})
    }
    if case.kind in (WHOLE, AUTH):
        assert answer["status"] == "rejected"
        assert errors[0]["index"] is None and errors[0]["field"] == case.field, errors
        assert case.says in errors[0]["message"]
        assert in_stream == {}, "nothing of a refused request may reach the stream"
    elif case.kind == MIXED:
        assert answer["processed"] == 1 and answer["failed"] == 1
        assert len(answer["event_ids"]) == 1
        assert {error["index"] for error in errors} == {1}, errors
        named = [error for error in errors if error["field"] == case.field]
        assert named, errors
        assert case.says in named[0]["message"]
        assert set(in_stream) == {f"{tag}-ok"}, "the valid record only"
        assert in_stream[f"{tag}-ok"]["event_id"] == answer["event_ids"][0]
    else:
        assert answer["processed"] == 2 and errors == []
        assert set(in_stream) == {f"{tag}-ok", f"{tag}-bad"}
        stored = in_stream[f"{tag}-bad"]
        for key, value in case.stored.items():
            assert stored[key] == value, key


def test_the_table_has_at_least_thirty_classes():
    assert len(CASES) >= 30
    assert {case.kind for case in CASES.values()} == {WHOLE, MIXED, VERBATIM, AUTH}
    # every refused case states the message it expects; an empty one would match anything
    assert [name for name, case in CASES.items() if case.kind != VERBATIM and not case.says] == []


def test_html_payloads_come_back_from_the_read_api_as_json_text(secure_stack):
    """Stored verbatim, served as JSON (never as HTML), so nothing is rendered as markup."""
    tag = f"sec-{uuid.uuid4().hex[:10]}"
    script = "<script>alert(1)</script>"
    posted = secure_stack.post_events([bad(tag, event_type="search", user_id=script)])
    assert posted["_status"] == 200

    def shown() -> Any:
        response = requests.get(
            secure_stack.api_url + "/stats", headers=secure_stack.read_headers, timeout=30
        )
        assert response.headers["Content-Type"].startswith("application/json")
        feed = response.json()["recent_events"]
        return [e for e in feed if e["event_id"] == posted["event_ids"][0]]

    event = secure_stack.wait_until(shown, timeout=60)[0]
    assert event["user_id"] == script
