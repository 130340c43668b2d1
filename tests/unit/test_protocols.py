"""The SDK protocols as pure functions: decoding, mapping onto the canonical record, clock
correction, and that no body, however malformed, escapes as anything but a 4xx."""

from __future__ import annotations

import base64
import gzip
import json
import subprocess
import tracemalloc
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from clickstream.errors import RequestError
from clickstream.ingest import (
    NOT_INFLATABLE,
    IngestContext,
    decoded_body,
    handle_events_request,
    inflate,
    skew_corrected,
)
from clickstream.protocols import handle_sdk_request, posthog, segment, snowplow
from clickstream.protocols.common import (
    STANDARD_NAMES,
    FieldKinds,
    SdkRequest,
    as_text,
    event_type_for,
    parse_instant,
    value_at,
    wrongly_typed,
)
from clickstream.protocols.lzstring import LZStringError, decompress_from_base64
from clickstream.schema import (
    CONTROL_MESSAGE,
    CUSTOM_EVENT_TYPE,
    STANDARD_EVENT_TYPES,
    RecordError,
    parse_incoming,
)

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
SDKS = Path(__file__).parents[2] / "tools" / "sdks" / "node_modules"


class AcceptingStream:
    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def put_records(self, StreamName: str, Records: list[dict[str, Any]]) -> dict[str, Any]:
        self.records.extend(Records)
        return {"Records": [{"SequenceNumber": "1", "ShardId": "s"} for _ in Records]}


def context(stream: AcceptingStream | None = None) -> IngestContext:
    return IngestContext(kinesis=stream or AcceptingStream(), stream_name="s", received_at=NOW)


def allow(key: str | None, field: str) -> None:
    if key != "wk":
        raise RequestError(field, f"{field} is not a known key", 401 if not key else 403)


def request(body: Any = None, raw: bytes | None = None, **headers: str) -> SdkRequest:
    data = raw if raw is not None else json.dumps(body).encode()
    return SdkRequest(
        body=data, headers={k.lower().replace("_", "-"): v for k, v in headers.items()}
    )


def valid(record: dict[str, Any] | RecordError) -> dict[str, Any]:
    assert isinstance(record, dict), record
    parsed = parse_incoming(0, record)
    assert not isinstance(parsed, list), parsed
    return record


# --- shared pieces -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Order Completed", "purchase"),
        ("Product Added", "add_to_cart"),
        ("$pageview", "pageview"),
        ("Signed Up", "signed_up"),
        ("2fa enabled", "e_2fa_enabled"),
        ("click", "click"),
    ],
)
def test_event_names_become_event_types(name, expected):
    assert event_type_for(name) == expected


@given(st.text(min_size=1, max_size=200))
def test_any_event_name_becomes_a_valid_event_type(name):
    assert CUSTOM_EVENT_TYPE.match(event_type_for(name)) or event_type_for(name) in (
        "search",
        "add_to_cart",
        "remove_from_cart",
        "checkout",
        "purchase",
        "click",
        "page_view",
    )


# ASCII, accented letters, another script, and typographic marks (an apostrophe, a dash)
NAME_LETTERS = "abcXYZ09 _-.éèÄöü購入登録Ωя\u2019\u2013"


@given(
    st.text(alphabet=NAME_LETTERS, min_size=1, max_size=12),
    st.text(alphabet=NAME_LETTERS, min_size=1, max_size=12),
)
@example("Café", "Cafè")
@example("購入 2", "登録 2")
def test_names_that_differ_beyond_ascii_letters_get_types_of_their_own(one, other):
    """A name with a letter outside ASCII keeps it in its type (as a digest of the name), so
    'Café' and 'Cafè', or '購入 2' and '登録 2', are never counted as one type; as with ASCII
    names, case alone makes no other type ('CAFÉ' is 'café')."""
    one_name, other_name = one.strip().lower(), other.strip().lower()
    beyond = any(not c.isascii() and c.isalnum() for c in one_name + other_name)
    if beyond and one_name != other_name:
        assert event_type_for(one) != event_type_for(other)
    if one_name == other_name:
        assert event_type_for(one) == event_type_for(other)


TRACKER = Path(__file__).resolve().parents[2] / "tracker" / "cs.js"
_TYPE_OF = """
const source = require("fs").readFileSync(process.argv[1], "utf8");
eval(source.match(/function typeOf\\(name, props\\) \\{[\\s\\S]*?\\n  \\}/)[0]);
console.log(JSON.stringify(JSON.parse(process.argv[2]).map((name) => typeOf(name, {}))));
"""


@settings(max_examples=25, deadline=None)
@given(st.lists(st.text(alphabet=NAME_LETTERS, min_size=1, max_size=12), min_size=1))
def test_the_tracker_types_a_name_as_the_sdk_routes_do(names):
    """One name, one type, whichever way it came: the tracker (cs.js, in node) and the SDK
    routes slug a name alike and add the same digest where letters beyond ASCII were left
    out. (The SDK routes alone also know other trackers' names for our types.)"""
    names = [n for n in names if n.strip().lower() not in (*STANDARD_NAMES, *STANDARD_EVENT_TYPES)]
    typed = subprocess.run(
        ["node", "-e", _TYPE_OF, str(TRACKER), json.dumps(names)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert json.loads(typed) == [event_type_for(name) for name in names]


def test_a_skewed_device_clock_is_corrected_by_the_time_in_flight():
    # The device's clock is an hour fast: it created the event 5 s before sending it.
    created, sent = NOW + timedelta(hours=1), NOW + timedelta(hours=1, seconds=5)
    assert skew_corrected(created, sent, NOW) == NOW - timedelta(seconds=5)
    assert skew_corrected(created, None, NOW) == created
    assert skew_corrected(sent, created, NOW) == NOW  # sent "before" created: no negative age


def test_inflate_refuses_a_bomb_and_garbage():
    bomb = gzip.compress(b"0" * 5_000_000)
    with pytest.raises(RequestError) as too_big:
        inflate(bomb, limit=1_000_000)
    assert too_big.value.status == 413
    with pytest.raises(RequestError) as truncated:
        inflate(gzip.compress(b'{"a": 1}')[:-6])
    assert truncated.value.status == 400


@given(st.lists(st.binary(max_size=40), min_size=1, max_size=4))
def test_gzip_members_one_after_another_are_one_body_as_gzip_reads_them(parts):
    joined = b"".join(gzip.compress(part) for part in parts)
    assert inflate(joined) == gzip.decompress(joined) == b"".join(parts)
    assert inflate(joined + b"\x00" * 8) == b"".join(parts)  # zero padding, as gzip allows


def test_a_body_of_more_gzip_members_than_any_client_sends_is_refused():
    """Each member read copies the rest of the body: thousands of empty ones would cost
    seconds of a function's time for nothing."""
    assert inflate(gzip.compress(b"") * 63 + gzip.compress(b"{}")) == b"{}"
    with pytest.raises(RequestError, match="more than 64 gzip members"):
        inflate(gzip.compress(b"") * 52_000)


def test_inflate_refuses_what_follows_the_compressed_data_and_a_bomb_over_members():
    with pytest.raises(RequestError, match="7 bytes follow the compressed data"):
        inflate(gzip.compress(b"{}") + b"garbage")
    halves = gzip.compress(b"0" * 600_000) * 2  # each member under the limit, the whole past it
    with pytest.raises(RequestError) as too_big:
        inflate(halves, limit=1_000_000)
    assert too_big.value.status == 413


def test_a_body_inflating_to_exactly_the_limit_is_taken_and_one_byte_more_is_refused():
    limit = 10_000
    for compress in (gzip.compress, zlib.compress):
        assert inflate(compress(b"x" * limit), limit) == b"x" * limit
        with pytest.raises(RequestError) as too_big:
            inflate(compress(b"x" * (limit + 1)), limit)
        assert (too_big.value.field, too_big.value.status) == ("body", 413)
        assert (
            too_big.value.message == f"the body inflates past {limit} bytes; the limit is {limit}"
        )


def test_a_bomb_is_refused_without_being_inflated_whole():
    """The limit bounds what is inflated, not only what is kept: a 20 MB bomb (20 KB sent)
    costs the function at most a few times the limit in memory."""
    bomb = gzip.compress(b"\0" * 20_000_000, compresslevel=9)
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    tracemalloc.reset_peak()
    baseline = tracemalloc.get_traced_memory()[0]
    try:
        with pytest.raises(RequestError) as too_big:
            inflate(bomb, 1_000_000)
        peak = tracemalloc.get_traced_memory()[1] - baseline
    finally:
        if started:
            tracemalloc.stop()
    assert too_big.value.status == 413 and peak < 5_000_000, peak


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"\x1f\x8bnot gzip at all", "unknown compression method"),
        (gzip.compress(b"{}") + b"X", "1 bytes follow the compressed data"),
        (gzip.compress(b"{}") + b"\x00\x00 ", "3 bytes follow the compressed data"),
        (gzip.compress(b"") * 65, "more than 64 gzip members"),
        (gzip.compress(b"{}")[:-6], "the data is truncated"),
    ],
)
def test_a_body_that_does_not_inflate_is_refused_by_the_body_field(body, reason):
    with pytest.raises(RequestError) as refused:
        inflate(body)
    assert (refused.value.field, refused.value.status) == ("body", 400)
    assert (
        refused.value.message.startswith(f"{NOT_INFLATABLE}: ") and reason in refused.value.message
    )


@pytest.mark.parametrize("encoding", ["gzip", "x-gzip", "deflate", "GZIP ", None, "identity"])
def test_a_body_is_inflated_by_what_it_is_whichever_coding_is_named(encoding):
    """gzip bytes are gzip under any header (or none); under a gzip or deflate header, JSON
    is taken as it is (API Gateway inflated it), anything else is inflated (zlib or gzip)."""
    data = b'[{"event_type": "click"}]'
    assert decoded_body(gzip.compress(data), encoding) == data
    assert decoded_body(b" \n" + data, encoding) == b" \n" + data
    assert decoded_body(b'{"records": []}', encoding) == b'{"records": []}'
    if encoding not in (None, "identity"):
        assert decoded_body(zlib.compress(data), encoding) == data
        with pytest.raises(RequestError) as too_big:
            decoded_body(zlib.compress(b"x" * 2_000), encoding, limit=1_000)
        assert too_big.value.status == 413
    with pytest.raises(RequestError) as too_big:
        decoded_body(gzip.compress(b"x" * 2_000), encoding, limit=1_000)
    assert too_big.value.status == 413


def test_a_body_of_exactly_the_limit_is_taken_and_one_byte_more_is_refused():
    assert decoded_body(b"x" * 1_000, None, limit=1_000) == b"x" * 1_000
    with pytest.raises(RequestError) as too_big:
        decoded_body(b"x" * 1_001, None, limit=1_000)
    assert (too_big.value.field, too_big.value.status) == ("body", 413)
    assert too_big.value.message == "request body is 1001 bytes; the limit is 1000"


@pytest.mark.parametrize(
    ("encoding", "message"),
    [
        ("br", "Content-Encoding 'br' is not accepted; use gzip or deflate"),
        (
            "gzip, br",
            "Content-Encoding 'gzip, br' names several codings; send one, gzip or deflate",
        ),
        (
            "x" * 50,
            f"Content-Encoding {'x' * 40!r} is not accepted; use gzip or deflate",
        ),
        (
            "gzip," + "x" * 50,
            f"Content-Encoding {('gzip,' + 'x' * 35)!r} names several codings; send one, gzip or deflate",
        ),
    ],
)
def test_an_unknown_coding_is_refused_naming_at_most_forty_characters_of_it(encoding, message):
    with pytest.raises(RequestError) as refused:
        decoded_body(b"{}", encoding)
    assert (refused.value.field, refused.value.status) == ("Content-Encoding", 415)
    assert refused.value.message == message


def test_lz_string_decodes_what_the_npm_package_encodes():
    samples = ["", "a", "hello hello hello", '[{"event":"$pageview","x":"é😀"}]', "x" * 3000]
    script = (
        "const L=require('lz-string');"
        f"console.log(JSON.stringify({json.dumps(samples)}.map(s=>L.compressToBase64(s))))"
    )
    encoded = json.loads(
        subprocess.run(
            ["node", "-e", script], cwd=SDKS.parent, capture_output=True, text=True, check=True
        ).stdout
    )
    assert [decompress_from_base64(text) for text in encoded] == samples
    with pytest.raises(LZStringError):
        decompress_from_base64("!!!")


# --- Segment -------------------------------------------------------------------------------


def test_segment_track_maps_ids_context_and_corrected_time():
    sent = NOW + timedelta(hours=2)  # the device's clock is two hours fast
    body = {
        "batch": [
            {
                "type": "track",
                "event": "Order Completed",
                "messageId": "m-1",
                "anonymousId": "anon-1",
                "userId": "u-1",
                "properties": {"revenue": 42.5, "product_id": "sku-9", "coupon": "X"},
                "timestamp": (sent - timedelta(seconds=3)).isoformat(),
                "context": {"page": {"url": "https://shop.example/cart?utm_source=news"}},
            }
        ],
        "sentAt": sent.isoformat(),
        "context": {"userAgent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0", "ip": "9.9.9.9"},
    }
    decoded = segment.decode(request(body), "batch")
    (record,) = segment.map_messages(decoded, "batch", NOW)
    record = valid(record)
    assert record["event_type"] == "purchase"
    assert record["timestamp"] == (NOW - timedelta(seconds=3)).isoformat()
    assert (record["user_id"], record["anonymous_id"], record["event_id"]) == (
        "u-1",
        "anon-1",
        "m-1",
    )
    assert record["value"] == 42.5 and record["product_id"] == "sku-9"
    assert record["page_url"].startswith("https://shop.example/cart")
    assert record["user_agent"].startswith("Mozilla") and record["ip_address"] == "9.9.9.9"
    assert record["properties"]["event_name"] == "Order Completed"
    assert record["properties"]["coupon"] == "X"


def test_segment_write_key_from_basic_auth_or_body():
    basic = base64.b64encode(b"wk:").decode()
    assert (
        segment.decode(request({"event": "x"}, Authorization=f"Basic {basic}"), "track").key == "wk"
    )
    decoded = segment.decode(request({"writeKey": "wk2", "event": "x"}), "track")
    assert (decoded.key, decoded.key_field) == ("wk2", "writeKey")


KEY_OF_THE_WRONG_KIND = [123, 1.5, True, ["wk"], {"key": "wk"}]


@pytest.mark.parametrize("sent", KEY_OF_THE_WRONG_KIND)
@pytest.mark.parametrize("where", ["body", "message"])
def test_a_segment_write_key_that_is_not_a_string_is_refused_by_name(sent, where):
    body: dict[str, Any] = {"batch": [{"type": "track", "event": "x", "anonymousId": "a"}]}
    (body if where == "body" else body["batch"][0])["writeKey"] = sent
    with pytest.raises(RequestError) as refused:
        segment.decode(request(body), "batch")
    assert (refused.value.field, refused.value.status) == ("writeKey", 401)
    assert refused.value.message.startswith("writeKey must be a string, got a")


@pytest.mark.parametrize(
    ("shared", "field", "message"),
    [
        ({"context": "web"}, "context", "context must be an object, got 'web'"),
        ({"context": [1]}, "context", "context must be an object, got an array"),
        ({"integrations": 1}, "integrations", "integrations must be an object, got a number"),
        (
            {"sentAt": "yesterday"},
            "sentAt",
            "sentAt must be an ISO-8601 time or epoch milliseconds, got 'yesterday'",
        ),
    ],
)
def test_a_segment_batch_field_of_the_wrong_kind_refuses_the_batch_by_name(shared, field, message):
    body = {"batch": [{"type": "track", "event": "x", "anonymousId": "a"}], **shared}
    with pytest.raises(RequestError) as refused:
        segment.decode(request(body), "batch")
    assert (refused.value.field, refused.value.message, refused.value.status) == (
        field,
        message,
        400,
    )


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ({"type": "track", "anonymousId": "a"}, "event"),
        ({"type": "bogus", "anonymousId": "a"}, "type"),
        ({"type": "track", "event": "x"}, "userId"),
        ("not an object", "record"),
    ],
)
def test_segment_messages_that_cannot_be_events_name_their_field(message, field):
    decoded = segment.decode(request({"batch": [message]}), "batch")
    (error,) = segment.map_messages(decoded, "batch", NOW)
    assert isinstance(error, RecordError) and error.field == field


def test_segment_page_screen_identify_and_alias():
    calls = {
        "page": {"name": "Home", "properties": {"path": "/home", "referrer": "https://x.io/"}},
        "screen": {"name": "Settings"},
        "identify": {"traits": {"plan": "pro"}},
        "group": {"groupId": "g1"},
        "alias": {"previousId": "old"},
    }
    mapped = {}
    for call, extra in calls.items():
        decoded = segment.decode(request({"userId": "u", **extra}), call)
        mapped[call] = valid(segment.map_messages(decoded, call, NOW)[0])
    assert (mapped["page"]["event_type"], mapped["page"]["page"]) == ("page_view", "/home")
    assert mapped["page"]["referrer"] == "https://x.io/"
    assert (mapped["screen"]["event_type"], mapped["screen"]["page"]) == ("screen_view", "Settings")
    assert mapped["identify"]["properties"]["traits"] == {"plan": "pro"}
    assert mapped["group"]["properties"]["group_id"] == "g1"
    assert mapped["alias"]["properties"]["previous_id"] == "old"


def test_segment_batch_over_500_kb_is_a_413():
    big = {"batch": [{"type": "track", "event": "x", "userId": "u", "p": "y" * 600_000}]}
    answer = handle_sdk_request("segment", request(big), context(), allow)
    assert answer.status == 413 and answer.body["success"] is False


# --- PostHog -------------------------------------------------------------------------------


def _posthog_event(**properties: Any) -> dict[str, Any]:
    return {
        "event": "$pageview",
        "uuid": "0190c7d4-5b3a-7cc1-9d51-2f4b8a1d6e10",
        "properties": {
            "distinct_id": "dev-1",
            "$device_id": "dev-1",
            "$session_id": "sess-1",
            "$current_url": "https://shop.example/p?utm_source=x",
            "$pathname": "/p",
            "$referrer": "$direct",
            "token": "wk",
            "$elements": [{"tag_name": "a"}],
            **properties,
        },
        "timestamp": NOW.isoformat(),
    }


@pytest.mark.parametrize(
    ("raw", "query", "expected"),
    [
        (b"\xff\xfe{}", {}, "the body is neither JSON nor base64 JSON (it starts b'\\xff\\xfe{}')"),
        (b"hello there", {}, "the body is neither JSON nor base64 JSON (it starts b'hello th')"),
        (b"%%%", {"compression": "base64"}, "body is not valid base64"),
    ],
)
def test_a_posthog_body_that_is_no_encoding_says_what_it_is_not(raw, query, expected):
    request = SdkRequest(body=raw, headers={"content-type": "text/plain"}, query=query)
    answer = handle_sdk_request("posthog", request, context(), allow)
    assert (answer.status, answer.body["errors"][0]["field"]) == (400, "body")
    assert answer.body["errors"][0]["message"] == expected


@pytest.mark.parametrize(
    "encoding", ["plain", "gzip-js", "base64-form", "lz64-form", "gzip-header"]
)
def test_posthog_bodies_in_every_encoding_the_sdks_use(encoding):
    text = json.dumps([_posthog_event()])
    query: dict[str, str] = {}
    headers = {"content-type": "text/plain"}
    if encoding == "plain":
        raw = text.encode()
    elif encoding == "gzip-js":
        raw, query = gzip.compress(text.encode()), {"compression": "gzip-js"}
    elif encoding == "gzip-header":
        raw, headers = gzip.compress(text.encode()), {"content-encoding": "gzip"}
    elif encoding == "base64-form":
        raw = b"data=" + base64.b64encode(text.encode()).replace(b"+", b"%2B")
        headers = {"content-type": "application/x-www-form-urlencoded"}
    else:
        lz = subprocess.run(
            [
                "node",
                "-e",
                f"console.log(require('lz-string').compressToBase64({json.dumps(text)}))",
            ],
            cwd=SDKS.parent,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        raw = b"data=" + lz.replace("+", "%2B").replace("/", "%2F").replace("=", "%3D").encode()
        headers, query = (
            {"content-type": "application/x-www-form-urlencoded"},
            {"compression": "lz64"},
        )
    decoded = posthog.decode(SdkRequest(body=raw, headers=headers, query=query))
    assert decoded.key == "wk"
    (record,) = posthog.map_messages(decoded, NOW)
    record = valid(record)
    assert record["event_type"] == "page_view" and record["page"] == "/p"
    assert (record["anonymous_id"], record["session_id"]) == ("dev-1", "sess-1")
    assert "referrer" not in record and "user_id" not in record
    assert "token" not in record["properties"] and "$elements" not in record["properties"]


def test_posthog_identified_browser_and_server_side_ids():
    identified = _posthog_event(distinct_id="user-7")
    identified["distinct_id"] = "user-7"
    record = valid(posthog.map_message(0, identified, {}, NOW))
    assert (record["user_id"], record["anonymous_id"]) == ("user-7", "dev-1")
    server = {"event": "Signed Up", "distinct_id": "user-8", "properties": {"plan": "pro"}}
    record = valid(posthog.map_message(0, server, {}, NOW))
    assert (record["user_id"], record["event_type"]) == ("user-8", "signed_up")
    assert record["properties"] == {"plan": "pro", "event_name": "Signed Up"}


def test_posthog_js_attribution_parameters_sent_as_null_are_not_stored():
    """posthog-js sends every campaign parameter and click id on every event, null where the
    page's URL has none; those nulls are not kept. A set one is, as is a custom null."""
    nulls = dict.fromkeys(("utm_medium", "utm_campaign", "gclid", "fbclid", "_kx"))
    sent = _posthog_event(**nulls, utm_source="newsletter", plan=None, gclsrc=None)
    properties = valid(posthog.map_message(0, sent, {}, NOW))["properties"]
    assert properties["utm_source"] == "newsletter"
    assert "plan" in properties and properties["plan"] is None
    assert not set(properties) & {*nulls, "gclsrc"}


def test_posthog_autocapture_and_pageleave():
    click = valid(posthog.map_message(0, {**_posthog_event(), "event": "$autocapture"}, {}, NOW))
    assert click["event_type"] == "click"
    leave = valid(posthog.map_message(0, {**_posthog_event(), "event": "$pageleave"}, {}, NOW))
    assert leave["event_type"] == "page_leave"


def test_posthog_offset_sets_the_time():
    event = {**_posthog_event(), "offset": 1500}
    del event["timestamp"]
    record = valid(posthog.map_message(0, event, {}, NOW))
    assert record["timestamp"] == (NOW - timedelta(milliseconds=1500)).isoformat()


def test_posthog_answers_status_1_and_its_error_shapes():
    ok = handle_sdk_request("posthog", request([_posthog_event()]), context(), allow)
    assert (ok.status, ok.body["status"]) == (200, 1)
    bad_key = _posthog_event(token="nope")
    denied = handle_sdk_request("posthog", request([bad_key]), context(), allow)
    assert denied.status == 403 and denied.body["type"] == "authentication_error"
    stream = AcceptingStream()
    partial = handle_sdk_request(
        "posthog",
        request([_posthog_event(), {"event": "x", "properties": {}}]),
        context(stream),
        allow,
    )
    assert partial.status == 400 and partial.body["attr"] == "distinct_id"
    assert len(stream.records) == 1  # the valid event is kept


@pytest.mark.parametrize("sent", KEY_OF_THE_WRONG_KIND)
@pytest.mark.parametrize(
    ("where", "field"),
    [
        ("api_key", "api_key"),
        ("token", "token"),
        ("message api_key", "api_key"),
        ("properties token", "properties.token"),
    ],
)
def test_a_posthog_key_that_is_not_a_string_is_refused_by_name(sent, where, field):
    event = _posthog_event()
    del event["properties"]["token"]
    body: dict[str, Any] = {"batch": [event]}
    if where in ("api_key", "token"):
        body[where] = sent
    elif where == "message api_key":
        event["api_key"] = sent
    else:
        event["properties"]["token"] = sent
    answer = handle_sdk_request("posthog", request(body), context(), allow)
    assert answer.status == 401 and answer.body["attr"] == field
    assert answer.body["detail"].startswith(f"{field} must be a string, got a")


def test_a_posthog_batch_sent_at_of_the_wrong_kind_refuses_the_batch():
    body = {"batch": [_posthog_event()], "sent_at": "soon"}
    answer = handle_sdk_request("posthog", request(body), context(), allow)
    assert (answer.status, answer.body["attr"]) == (400, "sent_at")
    assert answer.body["detail"] == (
        "sent_at must be an ISO-8601 time or epoch milliseconds, got 'soon'"
    )


# --- Snowplow ------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["segment", "posthog", "snowplow"])
def test_messages_without_ids_keep_their_ids_when_resent_and_alike_ones_stay_apart(protocol):
    """An SDK message sent without its id gets one made from its content: the batch's resend
    (after a 503) is the same events, and two messages alike in one batch are two events."""
    message = {
        "segment": {
            "type": "track",
            "event": "Tap",
            "anonymousId": "a",
            "timestamp": "2026-11-30T11:00:00Z",
        },
        "posthog": {"event": "tap", "distinct_id": "d", "timestamp": "2026-11-30T11:00:00Z"},
        "snowplow": {"e": "se", "se_ac": "tap", "aid": "wk", "dtm": "1764500400000"},
    }[protocol]
    body = {
        "segment": {"batch": [message, message], "writeKey": "wk"},
        "posthog": {"api_key": "wk", "batch": [message, message]},
        "snowplow": {"schema": "iglu:payload_data", "data": [message, message]},
    }[protocol]
    ids = []
    for _ in range(2):
        stream = AcceptingStream()
        answer = handle_sdk_request(protocol, request(body), context(stream), allow)
        assert answer.status == 200, answer.body
        ids.append([json.loads(entry["Data"])["event_id"] for entry in stream.records])
    assert len(set(ids[0])) == 2 and ids[1] == ids[0]


def _b64(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def test_snowplow_page_view_with_session_context():
    contexts = {
        "schema": "iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-0",
        "data": [
            {
                "schema": "iglu:com.snowplowanalytics.snowplow/client_session/jsonschema/1-0-2",
                "data": {"sessionId": "sess-9", "userId": "duid-1", "sessionIndex": 2},
            }
        ],
    }
    event = {
        "e": "pv",
        "eid": "5d9a4e2b-3f57-4d7f-9f43-1d2c9c8e1a10",
        "aid": "wk",
        "p": "web",
        "url": "https://shop.example/",
        "refr": "https://www.google.com/",
        "page": "Shop",
        "duid": "duid-1",
        "dtm": str(int((NOW + timedelta(hours=3)).timestamp() * 1000)),
        "stm": str(int((NOW + timedelta(hours=3, seconds=2)).timestamp() * 1000)),
        "cx": _b64(contexts),
    }
    decoded = snowplow.decode(request({"schema": "payload_data", "data": [event]}), "POST")
    (record,) = snowplow.map_messages(decoded, NOW, "Mozilla/5.0 (Windows NT 10.0) Chrome/120")
    record = valid(record)
    assert (record["event_type"], record["session_id"], record["anonymous_id"]) == (
        "page_view",
        "sess-9",
        "duid-1",
    )
    assert record["timestamp"] == (NOW - timedelta(seconds=2)).isoformat()
    assert record["properties"]["title"] == "Shop" and "app_id" not in record["properties"]
    assert record["user_agent"].startswith("Mozilla")  # a browser's own header


@pytest.mark.parametrize(
    ("event", "event_type", "value"),
    [
        (
            {"e": "se", "se_ca": "shop", "se_ac": "Add To Wishlist", "se_va": "3"},
            "add_to_wishlist",
            3,
        ),
        ({"e": "tr", "tr_id": "o1", "tr_tt": "99.5"}, "purchase", 99.5),
        (
            {
                "e": "ue",
                "ue_px": _b64(
                    {
                        "schema": "iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0",
                        "data": {
                            "schema": "iglu:com.snowplowanalytics.snowplow/link_click/jsonschema/1-0-1",
                            "data": {"targetUrl": "https://out.example/"},
                        },
                    }
                ),
            },
            "click",
            None,
        ),
    ],
)
def test_snowplow_structured_transactions_and_self_describing(event, event_type, value):
    record = valid(snowplow.map_event(0, {"duid": "d", **event}, NOW, None))
    assert record["event_type"] == event_type and record.get("value") == value


@pytest.mark.parametrize("sent", KEY_OF_THE_WRONG_KIND)
def test_a_snowplow_app_id_that_is_not_a_string_is_refused_by_name(sent):
    with pytest.raises(RequestError) as refused:
        snowplow.decode(request({"data": [{"e": "pv", "aid": sent}]}), "POST")
    assert (refused.value.field, refused.value.status) == ("aid", 401)
    assert refused.value.message.startswith("aid must be a string, got a")


@pytest.mark.parametrize("control", ["\u0001", "\n", "\u007f"])
@pytest.mark.parametrize("protocol", ["segment", "posthog"])
def test_an_event_name_holding_a_control_character_is_refused_and_the_rest_kept(protocol, control):
    name = f"{control}Signed Up" if control != "\n" else f"Signed Up{control}"
    if protocol == "segment":
        good = {"type": "track", "event": "Kept", "anonymousId": "a", "messageId": "m1"}
        body: Any = {"batch": [good, {**good, "event": name, "messageId": "m2"}], "writeKey": "wk"}
    else:
        body = [_posthog_event(), {**_posthog_event(), "event": name, "uuid": "u2"}]
    stream = AcceptingStream()
    answer = handle_sdk_request(protocol, request(body), context(stream), allow)
    assert answer.status == 400 and len(stream.records) == 1
    assert CONTROL_MESSAGE in json.dumps(answer.body)


def test_a_posthog_batch_that_is_not_an_array_is_refused_by_name():
    answer = handle_sdk_request(
        "posthog", request({"batch": "x", "api_key": "wk"}), context(), allow
    )
    assert (answer.status, answer.body["attr"]) == (400, "batch")


def test_snowplow_one_key_cannot_vouch_for_another_apps_events():
    decoded = snowplow.decode(
        request({"data": [{"e": "pv", "aid": "wk"}, {"e": "pv", "aid": "other"}]}), "POST"
    )
    first, second = snowplow.map_messages(decoded, NOW, None)
    assert isinstance(first, dict) and isinstance(second, RecordError) and second.field == "aid"


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"e": "zz"}, "e"),
        ({"e": "se"}, "se_ac"),
        ({"e": "ue", "ue_px": "%%%"}, "ue_px"),
        ({"e": "ue", "ue_pr": "{bad"}, "ue_pr"),
        ({"e": "ue", "ue_pr": '{"schema": "iglu:x", "data": 5}'}, "ue_pr"),
        ({"e": "ue", "ue_px": _b64('{"schema": "iglu:x", "data": 5}')}, "ue_px"),
        (
            {
                "e": "ue",
                "ue_pr": json.dumps({"data": {"schema": "iglu:a/b/jsonschema/1-0-0", "data": 5}}),
            },
            "ue_pr",
        ),
        (
            {"e": "ue", "ue_pr": json.dumps({"data": {"schema": "iglu:a/b/jsonschema/1-0-0"}})},
            "ue_pr",
        ),
        ({"e": "ue", "co": '{"data": 5}'}, "co"),
        ({}, "e"),
    ],
)
def test_snowplow_bad_events_name_their_parameter(event, field):
    error = snowplow.map_event(0, event, NOW, None)
    assert isinstance(error, RecordError) and error.field == field


# --- any body ------------------------------------------------------------------------------

BODIES = st.one_of(
    st.binary(max_size=300),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=20),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(
                st.sampled_from(
                    [
                        "batch",
                        "data",
                        "event",
                        "type",
                        "e",
                        "properties",
                        "distinct_id",
                        "userId",
                        "token",
                        "aid",
                        "x",
                    ]
                ),
                children,
                max_size=5,
            )
        ),
        max_leaves=20,
    ).map(lambda value: json.dumps(value).encode()),
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    protocol=st.sampled_from(["segment", "posthog", "snowplow"]),
    body=BODIES,
    compression=st.sampled_from([None, "gzip-js", "lz64", "base64"]),
)
def test_no_body_gets_anything_but_an_answer_below_500(protocol, body, compression):
    sdk_request = SdkRequest(
        body=body,
        headers={"content-type": "text/plain"},
        query={"compression": compression} if compression else {},
    )
    answer = handle_sdk_request(protocol, sdk_request, context(), lambda key, field: None)
    assert 200 <= answer.status < 500
    if answer.status >= 400:
        assert answer.body["errors"] and all(e["message"] for e in answer.body["errors"])


# --- inputs the review found raising (each must be a 4xx or taken, never an exception) ----


@pytest.mark.parametrize(
    ("protocol", "body", "headers", "query"),
    [
        ("segment", {"event": "x", "userId": "u", "timestamp": "²"}, {}, {}),
        (
            "segment",
            {"event": "x", "userId": "u", "timestamp": "0001-01-01T00:00:00+01:00"},
            {},
            {},
        ),
        (
            "segment",
            {
                "event": "x",
                "userId": "u",
                "originalTimestamp": "0001-01-01T00:00:00Z",
                "sentAt": "9999-12-31T00:00:00Z",
            },
            {},
            {},
        ),
        (
            "segment",
            {"batch": [{"type": "track", "event": "x", "userId": "u", "writeKey": 123}]},
            {},
            {},
        ),
        ("segment", {"event": "x", "userId": "u"}, {"authorization": "Basic é"}, {}),
        ("posthog", {"event": "x", "distinct_id": "d", "offset": 1e14, "api_key": "wk"}, {}, {}),
        ("posthog", {"event": "x", "distinct_id": "d", "offset": 1e300, "api_key": "wk"}, {}, {}),
        ("snowplow", {"data": [{"e": "pv", "aid": "wk", "ttm": "¹²"}]}, {}, {}),
        (
            "snowplow",
            {"data": [{"e": "pv", "aid": "wk", "dtm": "1", "stm": "253402214400000"}]},
            {},
            {},
        ),
    ],
)
def test_odd_values_are_answered_not_raised(protocol, body, headers, query):
    sdk_request = SdkRequest(
        body=json.dumps(body).encode(),
        headers={"content-type": "application/json", **headers},
        query=query,
    )
    answer = handle_sdk_request(protocol, sdk_request, context(), allow, call="track")
    assert answer.status < 500


def test_an_lz64_body_that_decodes_past_the_limit_is_a_400_before_any_key_check():
    # Each code adds an entry one character longer than the last: quadratic output.
    with pytest.raises(LZStringError):
        decompress_from_base64("A" * 40, limit=10)
    answer = handle_sdk_request(
        "posthog",
        SdkRequest(body=b"data=" + b"A" * 20_000, query={"compression": "lz64"}),
        context(),
        allow,
    )
    assert answer.status == 400


def test_posthog_keeps_properties_that_only_start_like_the_key():
    record = valid(
        posthog.map_message(
            0,
            {"event": "x", "distinct_id": "d", "properties": {"tokens_used": 3, "token": "wk"}},
            {},
            NOW,
        )
    )
    assert record["properties"]["tokens_used"] == 3 and "token" not in record["properties"]


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.just(10**400)
    | st.floats()
    | st.text(max_size=30),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(), children),
    max_leaves=5,
)


@given(JSON_VALUES, st.sampled_from(["object", "time", "number", "id", "text", "scalar"]))
def test_a_field_is_taken_or_refused_by_name_as_its_kind_says(value, kind):
    """Never an exception: a field sent as its kind (or not sent) is taken, any other is a
    RecordError naming the field, the kind wanted and what came."""
    wrong = wrongly_typed(3, {"f": value}, FieldKinds({"f": kind}))
    taken = {
        "object": isinstance(value, dict),
        "time": parse_instant(value) is not None,
        "number": _finite_number(value),
        "id": as_text(value) is not None,
        "text": isinstance(value, str),
        "scalar": as_text(value) is not None,
    }[kind]
    if value is None or value == "" or taken:
        assert wrong is None
    else:
        assert wrong is not None and (wrong.index, wrong.field) == (3, "f")
        assert wrong.message.startswith("must be ") and ", got " in wrong.message


def _wrong_paths(message: dict[str, Any], kinds: dict[str, str]) -> set[str]:
    """The paths whose value, looked up on its own, is sent and not of its kind."""
    return {
        path
        for path, kind in kinds.items()
        if value_at(message, path) not in (None, "")
        and wrongly_typed(0, {"f": value_at(message, path)}, FieldKinds({"f": kind})) is not None
    }


NESTED_PATHS = ["a", "a.b", "a.c", "a.b.d", "e", "e.f"]


@given(
    st.dictionaries(st.sampled_from(NESTED_PATHS), st.sampled_from(["object", "time", "text"])),
    st.recursive(
        JSON_VALUES,
        lambda children: st.dictionaries(st.sampled_from("abcdef"), children),
        max_leaves=8,
    ).filter(lambda value: isinstance(value, dict)),
)
def test_the_kinds_tree_finds_a_wrong_field_exactly_when_one_is_wrong_on_its_own(kinds, message):
    """Walked as a tree (only into objects the message holds), the check refuses the message
    when, and only when, some path's value looked up on its own is of another kind, and names
    one of those paths."""
    wrong = wrongly_typed(0, message, FieldKinds(kinds))
    expected = _wrong_paths(message, kinds)
    if not expected:
        assert wrong is None
    else:
        assert wrong is not None and wrong.field in expected


def test_a_kind_no_check_knows_is_refused_where_it_is_declared():
    with pytest.raises(ValueError, match=r"context\.page: no kind 'url'"):
        FieldKinds({"context.page": "url"})


def _finite_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return False
    try:
        return abs(float(value)) < float("inf")
    except (ValueError, OverflowError):
        return False


def _placed(path: str, value: Any) -> dict[str, Any]:
    """``{"a": {"b": value}}`` for the path ``a.b``."""
    head, _, rest = path.partition(".")
    return {head: _placed(rest, value) if rest else value}


def _merged(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for name, value in extra.items():
        both = isinstance(merged.get(name), dict) and isinstance(value, dict)
        merged[name] = _merged(merged[name], value) if both else value
    return merged


def _map_one(protocol: str, fields: dict[str, Any]) -> dict[str, Any] | RecordError:
    if protocol == "segment":
        message = _merged({"type": "page", "anonymousId": "a", "properties": {}}, fields)
        return segment.map_message(0, message, "batch", {}, NOW)
    if protocol == "posthog":
        message = _merged({"event": "$pageview", "distinct_id": "d", "properties": {}}, fields)
        return posthog.map_message(0, message, {}, NOW)
    return snowplow.map_event(0, {"e": "pv", "aid": "wk", **fields}, NOW, None)


MAPPED_FIELDS = [
    *(("segment", path, kind) for path, kind in segment.MESSAGE_KINDS.kinds.items()),
    *(("segment", path, kind) for path, kind in segment.PAGE_PROPERTY_KINDS.kinds.items()),
    *(("posthog", path, kind) for path, kind in posthog.MESSAGE_KINDS.kinds.items()),
    *(("snowplow", path, kind) for path, kind in snowplow.PARAMETER_KINDS.kinds.items()),
]

# Every field the mappings put in a canonical field (or, for objects, read fields from), by
# reading the code: each must be checked for its kind.
READ_BY_THE_MAPPINGS = {
    "segment": "properties context traits integrations userId anonymousId messageId "
    "originalTimestamp timestamp sentAt context.page context.page.url context.page.path "
    "context.page.referrer context.userAgent context.ip context.sessionId context.location "
    "context.location.country context.location.city context.device context.device.type "
    "properties.path properties.url properties.referrer name category",
    "posthog": "properties distinct_id uuid timestamp sent_at offset $set $set_once "
    "properties.$current_url properties.$pathname properties.$referrer properties.$session_id "
    "properties.$device_id properties.$raw_user_agent properties.$ip "
    "properties.$geoip_country_code properties.$device_type properties.$screen_name "
    "properties.distinct_id properties.$title properties.$lib properties.$screen_width",
    "snowplow": "eid uid duid tnuid nuid sid url refr ua ip ti_sk se_va tr_tt dtm stm ttm "
    "page tna se_ca se_ac se_la se_pr tr_id tr_cu",
}


def test_every_field_the_mappings_read_has_its_kind_checked():
    checked = {(protocol, path) for protocol, path, _ in MAPPED_FIELDS}
    for protocol, paths in READ_BY_THE_MAPPINGS.items():
        assert {(protocol, path) for path in paths.split()} <= checked


SENT_AS_FIELDS = [
    (protocol, canonical, path)
    for protocol, module in (("segment", segment), ("posthog", posthog), ("snowplow", snowplow))
    for canonical, paths in module.SENT_AS.items()
    for path in paths
]
# The sources a page view does not read (a track's name, a screen's, an order's revenue, a
# distinct_id inside properties when the event has its own): sent with a control character,
# they are kept as properties. Every other source is refused, naming it.
NOT_READ_FOR_A_PAGE_VIEW = {
    ("segment", "event"), ("segment", "properties.name"), ("segment", "properties.revenue"),
    ("segment", "properties.total"), ("segment", "properties.value"),
    ("posthog", "properties.$screen_name"), ("posthog", "properties.distinct_id"),
    ("posthog", "properties.revenue"), ("posthog", "properties.value"),
    ("snowplow", "se_ac"),
}  # fmt: skip


def _one_sdk_event(protocol: str, fields: dict[str, Any]) -> Any:
    if protocol == "segment":
        message = _merged({"type": "page", "anonymousId": "a", "properties": {}}, fields)
        body: dict[str, Any] = {"batch": [message]}
    elif protocol == "posthog":
        event = _merged({"event": "$pageview", "distinct_id": "d", "properties": {}}, fields)
        body = {"api_key": "wk", "batch": [event]}
    else:
        body = {"schema": "iglu:payload_data", "data": [{"e": "pv", "aid": "wk", **fields}]}
    return handle_sdk_request(protocol, request(body), context(), lambda key, field: None)


@pytest.mark.parametrize(("protocol", "canonical", "path"), SENT_AS_FIELDS)
def test_the_canonical_events_refusal_names_the_field_the_sdk_sent(protocol, canonical, path):
    """A value the mapping takes but the canonical event refuses (a control character in a
    URL) is named as the SDK sent it (``url``, ``properties.$current_url``), not by the
    canonical field (``page_url``) the sender never wrote."""
    answer = _one_sdk_event(protocol, _placed(path, "bad\x01text"))
    errors = answer.body.get("errors", [])
    if (protocol, path) in NOT_READ_FOR_A_PAGE_VIEW:
        assert answer.status == 200, (path, answer.body)
    else:
        assert answer.status == 400 and [error["field"] for error in errors] == [path], errors


@pytest.mark.parametrize(
    "path", ["context.page.url", "context.page.referrer", "context.userAgent", "context.ip"]
)
def test_a_segment_batchs_shared_context_is_named_as_sent(path):
    """A field of the context a Segment batch shares with its messages, refused by the
    canonical event, is named by its path in that context."""
    body = {
        "batch": [{"type": "page", "anonymousId": "a"}],
        "context": _placed(path.removeprefix("context."), "bad\x01text"),
        "writeKey": "wk",
    }
    answer = handle_sdk_request("segment", request(body), context(), allow)
    assert answer.status == 400
    assert [error["field"] for error in answer.body["errors"]] == [path]


@given(st.sampled_from(MAPPED_FIELDS), JSON_VALUES)
def test_every_field_a_protocol_reads_is_taken_or_refused_by_its_name(case, value):
    """Each field the mapping reads (nested ones by their dotted path), sent as any JSON value:
    its kind is taken, anything else refuses the event naming the field. Before, a nested
    field of another kind (``context.page: "x"``, ``$current_url: [1]``) was dropped."""
    protocol, path, kind = case
    mapped = _map_one(protocol, _placed(path, value))
    if value is None or value == "":  # not sent: a required field is missed, not mistyped
        assert isinstance(mapped, dict) or not mapped.message.startswith("must be ")
    elif wrongly_typed(0, {"f": value}, FieldKinds({"f": kind})) is None:
        assert isinstance(mapped, dict), (path, value, mapped)
    else:
        assert isinstance(mapped, RecordError) and mapped.field == path, (path, value, mapped)


@pytest.mark.parametrize(
    ("protocol", "fields", "field", "expected"),
    [
        ("segment", {"context": {"page": {"url": "https://a.example/p"}}}, "page_url", None),
        ("segment", {"context": {"location": {"city": "Lyon"}}}, "city", None),
        ("segment", {"context": {"sessionId": 12}}, "session_id", "12"),
        ("posthog", {"properties": {"$current_url": "https://a.example/q"}}, "page_url", None),
        ("posthog", {"properties": {"$session_id": 5}}, "session_id", "5"),
        ("snowplow", {"refr": "https://r.example/"}, "referrer", None),
        ("snowplow", {"duid": 42}, "anonymous_id", "42"),
    ],
)
def test_a_mapped_field_of_its_kind_lands_in_its_canonical_field(protocol, fields, field, expected):
    record = valid(_map_one(protocol, fields))
    sent = next(iter(_leaves(fields)))
    assert record[field] == (expected if expected is not None else sent)


def _leaves(value: Any) -> Any:
    if isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    else:
        yield value


@pytest.mark.parametrize("sent", [5, "5", 1764000000, "1764000000", -1])
def test_epoch_numbers_before_1973_are_no_time(sent):
    """Seconds sent where milliseconds are meant, or junk: refused by name, not taken as
    January 1970 (which made the clock correction put the event at the server's time)."""
    message = {"type": "track", "event": "x", "anonymousId": "a", "sentAt": sent}
    mapped = segment.map_message(
        0, {**message, "originalTimestamp": NOW.isoformat()}, "batch", {}, NOW
    )
    assert isinstance(mapped, RecordError) and mapped.field == "sentAt"
    assert parse_instant(1764000000000) == datetime(2025, 11, 24, 16, 0, tzinfo=UTC)
    for spelled in ("2025-11-24T16:00:00Z", "2025-11-24t16:00:00z", "2025-11-24T17:00:00+01:00"):
        assert parse_instant(spelled) == datetime(2025, 11, 24, 16, 0, tzinfo=UTC), spelled


def test_snowplow_context_entities_are_kept_with_their_data_one_array_per_schema():
    def entity(name: str, **data: Any) -> dict[str, Any]:
        return {"schema": f"iglu:com.acme/{name}/jsonschema/1-0-0", "data": data}

    contexts = {
        "schema": "iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-0",
        "data": [
            entity("product", id="p1", price=5),
            entity("user_ctx", tier="gold"),
            entity("product", id="p2", price=7),
        ],
    }
    record = valid(snowplow.map_event(0, {"e": "pv", "cx": _b64(contexts)}, NOW, None))
    assert record["properties"]["contexts"] == {
        "product": [{"id": "p1", "price": 5}, {"id": "p2", "price": 7}],
        "user_ctx": [{"tier": "gold"}],
    }
    # Past the properties' limits, the event is kept with the names, and says why (a tracker
    # does not resend a refused event: a cart of 40 products would be lost).
    contexts["data"] = [entity("product", id=f"p{n}", title="x" * 200) for n in range(40)]
    many = valid(snowplow.map_event(0, {"e": "pv", "cx": _b64(contexts)}, NOW, None))
    assert many["properties"]["contexts"] == {"product": []}  # the same shape, data left out
    assert "the limit is 8192" in many["properties"]["contexts_data_dropped"]
    contexts["data"] = [entity("deep", a={"b": {"c": {"d": 1}}}), entity("web_page", id="w")]
    deep = valid(snowplow.map_event(0, {"e": "pv", "co": json.dumps(contexts)}, NOW, None))
    assert deep["properties"]["contexts"] == {"deep": [], "web_page": []}
    assert "nests past" in deep["properties"]["contexts_data_dropped"]


def test_capture_v1_sends_at_the_attempts_time_else_the_batchs_and_answers_each_uuid_once():
    body = {"created_at": "2026-11-30T11:00:00Z", "batch": [{"event": "x", "uuid": "u1"}]}
    for header, sent in (
        ("2026-11-30T11:00:09Z", "2026-11-30T11:00:09Z"),  # this attempt's time
        ("not a time", "2026-11-30T11:00:00Z"),  # unreadable: the batch's time
    ):
        sdk_request = SdkRequest(
            body=json.dumps(body).encode(),
            headers={"posthog-request-timestamp": header, "authorization": "Bearer wk"},
        )
        decoded = posthog.decode_v1(sdk_request)
        assert (decoded.batch["sent_at"], decoded.key) == (sent, "wk")
    with pytest.raises(RequestError) as refused:
        posthog.decode_v1(SdkRequest(body=json.dumps({**body, "created_at": 5}).encode()))
    assert refused.value.field == "created_at"
    decoded.messages = [{"uuid": "same"}, {"uuid": "same"}, {"uuid": "other"}]
    errors = [
        {"index": 0, "field": "event", "message": "m", "retryable": False},
        {"index": 1, "field": "stream", "message": "throttled", "retryable": True},
    ]
    assert posthog.v1_results(decoded, errors) == {
        "same": {"result": "retry", "details": "throttled"},
        "other": {"result": "ok"},
    }


LONE = "\\ud83d"  # half of an emoji, as JSON.stringify writes a string cut in two


@pytest.mark.parametrize(
    ("protocol", "sent", "field"),
    [
        ("events", {"page_url": f"/a{LONE}"}, "page_url"),
        ("events", {"session_id": LONE}, "session_id"),
        ("events", {"properties": {"text": f"99 a{LONE}"}}, "properties.text"),
        ("events", {"properties": {"list": ["ok", {"deep": LONE}]}}, "properties.list.1.deep"),
        ("segment", {"event": f"Clicked {LONE}"}, "event"),
        ("segment", {"properties": {"label": LONE}}, "properties.label"),
        ("posthog", {"event": LONE}, "event"),
        ("posthog", {"properties": {"$el_text": LONE, "token": "wk"}}, "properties.element_text"),
        ("snowplow", {"se_la": LONE}, "properties.label"),
    ],
)
def test_a_lone_surrogate_refuses_its_record_by_name_and_keeps_the_others(protocol, sent, field):
    """A client that cuts a string inside an emoji sends half a surrogate pair: that record
    is refused naming the field; before, the whole request was a 400 (malformed JSON)."""
    stream = AcceptingStream()
    records = {
        "events": {"event_type": "click", "session_id": "s1"},
        "segment": {"type": "track", "event": "Good", "anonymousId": "a"},
        "posthog": {"event": "good", "distinct_id": "d", "properties": {"token": "wk"}},
        "snowplow": {"e": "se", "se_ac": "good", "aid": "wk"},
    }
    good = records[protocol]
    bad = {**good, **sent}
    items = json.dumps([good, bad]).replace("\\\\ud83d", "\\ud83d")
    if protocol == "events":
        response = handle_events_request(f'{{"records": {items}}}'.encode(), context(stream))
    else:
        body = {"segment": '{"writeKey": "wk", "batch": %s}', "posthog": "%s",
                "snowplow": '{"data": %s}'}[protocol] % items  # fmt: skip
        response = handle_sdk_request(protocol, request(raw=body.encode()), context(stream), allow)
    assert [(e["index"], e["field"]) for e in response.body["errors"]] == [(1, field)]
    assert len(stream.records) == 1


def test_a_snowplow_app_id_that_is_the_write_key_is_not_kept():
    """The key sent by header, and as aid too (the tracker's configuration): never stored."""
    events = [{"e": "pv", "aid": "wk"}, {"e": "pv", "aid": "my-site"}]
    sdk_request = SdkRequest(
        body=json.dumps({"data": events}).encode(), headers={"x-write-key": "wk"}
    )
    decoded = snowplow.decode(sdk_request, "POST")
    kept = [valid(r)["properties"].get("app_id") for r in snowplow.map_messages(decoded, NOW, None)]
    assert kept == [None, "my-site"]


def test_a_segment_message_without_an_id_that_cannot_be_encoded_is_refused_by_its_field():
    good = '{"type": "track", "event": "Kept", "anonymousId": "a", "timestamp": "%s"}'
    bad = '{"type": "track", "event": "Bad", "anonymousId": "a", "timestamp": "%s", "properties": {"s": "\\ud83d"}}'
    sent = NOW.isoformat()
    raw = f'{{"batch": [{good % sent}, {bad % sent}], "writeKey": "wk"}}'.encode()
    answer = handle_sdk_request("segment", request(raw=raw), context(), allow)
    assert answer.status == 400 and answer.body["processed"] == 1, answer.body
    assert [(e["index"], e["field"]) for e in answer.body["errors"]] == [(1, "properties.s")]


@pytest.mark.parametrize("protocol", ["segment", "posthog", "snowplow"])
def test_an_sdk_body_that_is_not_utf8_is_refused_saying_so(protocol):
    raw = b'{"batch": [{"event": "x\xe9"}], "data": []}'
    answer = handle_sdk_request(protocol, request(raw=raw), context(), allow)
    assert answer.status == 400
    assert answer.body["errors"][0]["message"] == "the body is not valid UTF-8: byte 23 is 0xe9"
