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
    says: str = ""  # the message names the limit
    stored: dict[str, Any] = field(default_factory=dict)  # VERBATIM: what the stream holds
    key: str = ""  # AUTH: which key to present


def mixed(field_: str, says: str = "", **bad_fields: Any) -> Case:
    return Case(MIXED, 200, field_, lambda t: body(ok(t), bad(t, **bad_fields)), says=says)


CASES: dict[str, Case] = {
    # --- the request as a whole: nothing is written ------------------------------------------
    "malformed JSON": Case(
        WHOLE, 400, "body", lambda t: body(ok(t))[:-3] + b', {"event_type": }]}', says="JSON"
    ),
    "wrong content type (XML)": Case(
        WHOLE, 415, "Content-Type", lambda t: body(ok(t)), {"Content-Type": "application/xml"}
    ),
    "form-encoded body": Case(
        WHOLE,
        415,
        "Content-Type",
        lambda t: b"records=1",
        {"Content-Type": "application/x-www-form-urlencoded"},
    ),
    "charset other than UTF-8": Case(
        WHOLE,
        415,
        "Content-Type",
        lambda t: body(ok(t)),
        {"Content-Type": "application/json; charset=latin-1"},
        says="UTF-8",
    ),
    "empty body": Case(WHOLE, 400, "body", lambda t: b"", says="empty"),
    "whitespace-only body": Case(WHOLE, 400, "body", lambda t: b" \n\t "),
    "top-level array": Case(WHOLE, 400, "body", lambda t: json.dumps([ok(t)]).encode()),
    "records is an object": Case(
        WHOLE, 400, "records", lambda t: json.dumps({"records": ok(t)}).encode()
    ),
    "records is empty": Case(WHOLE, 400, "records", lambda t: body()),
    "501 records": Case(WHOLE, 413, "records", lambda t: body(*[ok(t)] * 501), says="500"),
    "1 MB string (body over 1 MiB)": Case(
        WHOLE, 413, "body", lambda t: body(ok(t), bad(t, note="x" * 1_100_000)), says="1048576"
    ),
    "NaN literal": Case(
        WHOLE,
        400,
        "body",
        lambda t: body(ok(t))[:-2] + b', {"event_type": "click", "value": NaN}]}',
    ),
    "number beyond double range (1e400)": Case(
        WHOLE,
        400,
        "body",
        lambda t: body(ok(t))[:-2] + b', {"event_type": "click", "value": 1e400}]}',
    ),
    "invalid UTF-8": Case(
        WHOLE,
        400,
        "body",
        lambda t: body(ok(t))[:-2] + b', {"event_type": "click", "page": "\xff\xfe"}]}',
    ),
    "lone UTF-16 surrogate escape": Case(
        WHOLE,
        400,
        "body",
        lambda t: body(ok(t))[:-2] + b', {"event_type": "click", "page": "\\ud800"}]}',
    ),
    "byte-order mark": Case(WHOLE, 400, "body", lambda t: b"\xef\xbb\xbf" + body(ok(t))),
    "/track with an array": Case(
        WHOLE, 400, "body", lambda t: json.dumps([ok(t)]).encode(), path="/track"
    ),
    # --- one bad record next to a good one: the good one is accepted --------------------------
    "record is a string": Case(MIXED, 200, "record", lambda t: body(ok(t), "click"), says="object"),
    "record is null": Case(MIXED, 200, "record", lambda t: body(ok(t), None)),
    "record is a number": Case(MIXED, 200, "record", lambda t: body(ok(t), 12345678901234567890)),
    "huge value (1e300)": mixed("value", value=1e300),
    "negative value": mixed("value", value=-1),
    "value is text": mixed("value", value="12 dollars"),
    "properties nested 6 deep": mixed("properties", says="5", properties={"a": nested(5)}),
    "properties nested 300 deep": mixed("properties", properties={"a": nested(300)}),
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
        says="1024",
    ),
    "properties over 8 KB": mixed("properties", says="8192", properties={"blob": "x" * 9000}),
    "record over 32 KB (40 KB string)": mixed("record", says="32768", note="x" * 40_000),
    "properties is an array": mixed("properties", properties=[1, 2]),
    "user_id of 300 characters": mixed("user_id", user_id="u" * 300),
    "event_id of 300 characters": mixed("event_id", event_id="e" * 300),
    "NUL in user_id": mixed("user_id", says="control", user_id="a\u0000b"),
    "newline in event_type": mixed("event_type", event_type="cl\nick"),
    "ESC in device.browser": mixed("device.browser", device={"browser": "\u001b[31mred"}),
    "unknown event type with a bad name": mixed("event_type", event_type="Bad Name!"),
    "SQL in event_type": mixed("event_type", event_type="click'; DROP TABLE events;--"),
    "event_type over 64 characters": mixed("event_type", event_type="a" * 65),
    "missing event_type": Case(
        MIXED, 200, "event_type", lambda t: body(ok(t), {"session_id": f"{t}-bad"})
    ),
    "timestamp 2 days ahead": mixed("timestamp", says="24 hours", timestamp=iso(timedelta(days=2))),
    "timestamp 8 days old": mixed("timestamp", says="7 days", timestamp=iso(-timedelta(days=8))),
    "timestamp is not a time": mixed("timestamp", timestamp="yesterday"),
    "timestamp overflowing year 1": mixed("timestamp", timestamp="0001-01-01T00:00:00+01:00"),
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
    "missing write key": Case(AUTH, 401, "X-Write-Key", lambda t: body(ok(t)), key="none"),
    "unknown write key": Case(AUTH, 403, "X-Write-Key", lambda t: body(ok(t)), key="unknown"),
    "malformed write key": Case(AUTH, 403, "X-Write-Key", lambda t: body(ok(t)), key="malformed"),
    "revoked write key": Case(AUTH, 403, "X-Write-Key", lambda t: body(ok(t)), key="revoked"),
    "read key used to write": Case(AUTH, 403, "X-Write-Key", lambda t: body(ok(t)), key="read"),
    "wrong ?key= on a beacon": Case(AUTH, 403, "?key=", lambda t: body(ok(t)), key="query"),
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
