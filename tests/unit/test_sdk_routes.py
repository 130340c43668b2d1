"""The SDK endpoints in process (chalice's test client over moto): each protocol's request as
its SDK sends it, the answer it expects, and the canonical event on the stream."""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.unit.route_support import in_process_api, stream_events


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    yield from in_process_api(monkeypatch)


def basic(key: str) -> str:
    return "Basic " + base64.b64encode(f"{key}:".encode()).decode()


def test_segment_batch_with_basic_auth_and_gzip(api):
    body = {
        "batch": [
            {"type": "page", "messageId": "m1", "anonymousId": "a1", "properties": {"path": "/"}},
            {"type": "track", "messageId": "m2", "anonymousId": "a1", "event": "Signed Up"},
        ],
        "sentAt": "2026-11-30T12:00:00Z",
    }
    response = api["client"].http.post(
        "/v1/batch",
        body=gzip.compress(json.dumps(body).encode()),
        headers={
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
            "Authorization": basic(api["write"]),
        },
    )
    assert response.status_code == 200, response.body
    assert json.loads(response.body)["success"] is True
    events = stream_events()
    assert [(e.event_type, e.anonymous_id, e.page) for e in events] == [
        ("page_view", "a1", "/"),
        ("signed_up", "a1", None),
    ]
    assert events[0].session_key == events[1].session_key  # one device, one visit


def test_segment_short_paths_and_text_plain_with_the_key_in_the_body(api):
    response = api["client"].http.post(
        "/v1/t",
        body=json.dumps({"writeKey": api["write"], "event": "Clicked", "anonymousId": "a"}),
        headers={"Content-Type": "text/plain"},
    )
    assert response.status_code == 200, response.body
    assert stream_events()[0].event_type == "clicked"


@pytest.mark.parametrize(
    ("path", "headers", "body", "status", "field"),
    [
        (
            "/v1/batch",
            {},
            {"batch": [{"type": "track", "event": "x", "userId": "u"}]},
            401,
            "writeKey",
        ),
        (
            "/v1/track",
            {"Authorization": basic("cs_w_nope")},
            {"event": "x", "userId": "u"},
            403,
            "Authorization",
        ),
        ("/v1/nope", {}, {}, 404, "path"),
    ],
)
def test_segment_refusals_say_what_is_wrong(api, path, headers, body, status, field):
    response = api["client"].http.post(
        path, body=json.dumps(body), headers={"Content-Type": "application/json", **headers}
    )
    answer = json.loads(response.body)
    assert response.status_code == status
    assert answer.get("field") == field or answer["errors"][0]["field"] == field


def test_posthog_gzip_js_batch_and_status_1(api):
    events = [
        {
            "event": "$pageview",
            "uuid": "0190c7d4-5b3a-7cc1-9d51-2f4b8a1d6e11",
            "properties": {
                "token": api["write"],
                "distinct_id": "d1",
                "$device_id": "d1",
                "$session_id": "s1",
                "$current_url": "https://shop.example/a",
            },
        }
    ]
    response = api["client"].http.post(
        "/e/?compression=gzip-js&ver=1.449.2",
        body=gzip.compress(json.dumps(events).encode()),
        headers={"Content-Type": "text/plain"},
    )
    assert response.status_code == 200, response.body
    assert json.loads(response.body)["status"] == 1
    (event,) = stream_events()
    assert (event.event_type, event.session_id, event.page) == ("page_view", "s1", "/a")


NOW = "2026-11-30T11:00:00Z"


def test_posthog_python_style_batch_with_api_key(api):
    body = {
        "api_key": api["write"],
        "batch": [{"event": "x", "distinct_id": "u1", "properties": {}, "timestamp": NOW}],
    }
    untimed = {**body, "batch": [{"event": "x", "distinct_id": "u1", "properties": {}}]}
    for path in ("/batch/", "/capture", "/i/v0/e/"):
        for sent in (body, untimed):
            response = api["client"].http.post(
                path, body=json.dumps(sent), headers={"Content-Type": "application/json"}
            )
            assert response.status_code == 200, (path, response.body)
    ids = [e.event_id for e in stream_events()]
    # the same content with its own time: one id; without a time, each sending is another
    assert len(ids) == 6 and len(set(ids)) == 4


def test_snowplow_pixel_answers_a_gif_and_tp2_takes_payload_data(api):
    query = urlencode(
        {"e": "pv", "aid": api["write"], "url": "https://shop.example/x", "duid": "d", "p": "web"}
    )
    pixel = api["client"].http.get(f"/i?{query}", headers={"Accept": "image/*,*/*"})
    assert pixel.status_code == 200 and pixel.headers["Content-Type"] == "image/gif"
    assert pixel.body.startswith(b"GIF89a")
    tp2 = api["client"].http.post(
        "/com.snowplowanalytics.snowplow/tp2",
        body=json.dumps(
            {
                "schema": "iglu:payload_data",
                "data": [{"e": "se", "se_ac": "play", "aid": api["write"]}],
            }
        ),
        headers={
            "Content-Type": "application/json; charset=UTF-8",
            "Origin": "https://shop.example",
        },
    )
    assert tp2.status_code == 200, tp2.body
    # The browser tracker sends credentials: the origin is named, never "*".
    assert tp2.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    assert tp2.headers["Access-Control-Allow-Credentials"] == "true"
    assert [e.event_type for e in stream_events()] == ["page_view", "play"]


@pytest.mark.parametrize(
    ("accept", "status"),
    [
        (None, 204),
        ("application/json", 204),
        ("text/html", 204),
        ("image/avif,image/webp,*/*;q=0.8", 200),  # what browsers send for an <img>
        ("image/gif", 200),
    ],
)
def test_the_pixel_answers_each_accept_header_and_takes_the_event_once(api, accept, status):
    """A GIF where the request accepts one; otherwise no content (a binary answer to it
    would be chalice's 400), the event taken either way."""
    query = urlencode({"e": "pv", "aid": api["write"], "url": "https://shop.example/x"})
    headers = {"Accept": accept} if accept else {}
    pixel = api["client"].http.get(f"/i?{query}&duid=d", headers=headers)
    assert pixel.status_code == status
    assert pixel.body.startswith(b"GIF89a") if status == 200 else pixel.body == b""
    assert [e.event_type for e in stream_events()] == ["page_view"]


def test_snowplow_without_a_key_is_a_401_naming_aid(api):
    response = api["client"].http.get("/i?e=pv", headers={"Accept": "*/*"})
    assert response.status_code == 401
    assert json.loads(response.body)["errors"][0]["field"] == "aid"


def _one_good_one_sent(api: dict[str, Any], protocol: str, sent: dict[str, Any]) -> Any:
    """A valid event and one with ``sent`` in it, in the protocol's own request: the answer."""
    key = api["write"]
    if protocol == "segment":
        good = {"type": "track", "event": "Good", "anonymousId": "a", "messageId": "good-1"}
        body: Any = {"writeKey": key, "batch": [good, {**good, "messageId": "m-2", **sent}]}
        path = "/v1/batch"
    elif protocol == "posthog":
        good = {"event": "good", "distinct_id": "d", "properties": {"token": key}}
        body, path = [good, {**good, **sent}], "/batch"
    else:
        good = {"e": "se", "se_ac": "good", "aid": key}
        body, path = {"data": [good, {**good, **sent}]}, "/com.snowplowanalytics.snowplow/tp2"
    headers = {"Content-Type": "application/json"}
    response = api["client"].http.post(path, body=json.dumps(body).encode(), headers=headers)
    return response.status_code, json.loads(response.body)


@pytest.mark.parametrize(
    ("protocol", "field"), [("segment", "event"), ("posthog", "distinct_id"), ("snowplow", "se_ac")]
)
def test_a_bad_event_is_a_400_naming_it_and_the_good_one_is_kept(api, protocol, field):
    """The second event lacks what maps it onto an event (a name, a person, an action)."""
    status, answer = _one_good_one_sent(api, protocol, {field: None})
    assert status == 400, answer
    assert [(e["index"], e["field"]) for e in answer["errors"]] == [(1, field)]
    assert answer["processed"] == 1 and len(answer["event_ids"]) == 1
    assert [e.event_id for e in stream_events()] == answer["event_ids"]


@pytest.mark.parametrize(
    ("trusted", "expected"),
    [("", "127.0.0.0"), ("127.0.0.1/32", "198.51.100.0")],
)
def test_a_spoofed_forwarded_for_is_not_believed(api, monkeypatch, trusted, expected):
    """chalice's gateway gives every request the source 127.0.0.1; trusted, it is a proxy
    whose appended entry is the client, and the client's own first entry still is not."""
    from clickstream.settings import get_settings

    monkeypatch.setenv("CLICKSTREAM_TRUSTED_PROXIES", trusted)
    get_settings.cache_clear()
    try:
        response = api["client"].http.post(
            "/track",
            body=json.dumps({"event_type": "click", "session_id": "s"}),
            headers={
                "Content-Type": "application/json",
                "X-Write-Key": api["write"],
                "X-Forwarded-For": "6.6.6.6, 198.51.100.23",
            },
        )
    finally:
        get_settings.cache_clear()
    assert response.status_code == 200, response.body
    assert stream_events()[0].ip_truncated == expected


TIME = "must be an ISO-8601 time or epoch milliseconds, got "


@pytest.mark.parametrize(
    ("protocol", "sent", "field", "message"),
    [
        ("segment", {"properties": [1, 2]}, "properties", "must be an object, got an array"),
        ("segment", {"context": "web"}, "context", "must be an object, got 'web'"),
        ("segment", {"timestamp": "yesterday"}, "timestamp", TIME + "'yesterday'"),
        ("segment", {"sentAt": True}, "sentAt", TIME + "a boolean"),
        ("segment", {"timestamp": 1764000000}, "timestamp", TIME + "1764000000"),  # seconds
        ("posthog", {"timestamp": 1000.5}, "timestamp", TIME + "1000.5"),
        ("segment", {"userId": {"a": 1}}, "userId", "must be a string or a number, got an object"),
        ("segment", {"event": 123}, "event", "a track call needs the event's name, a string"),
        ("posthog", {"properties": "str"}, "properties", "must be an object, got 'str'"),
        ("posthog", {"timestamp": "nope"}, "timestamp", TIME + "'nope'"),
        ("posthog", {"offset": "nope"}, "offset", "must be a number, got 'nope'"),
        (
            "posthog",
            {"distinct_id": [1]},
            "distinct_id",
            "must be a string or a number, got an array",
        ),
        ("snowplow", {"se_va": "abc"}, "se_va", "must be a number, got 'abc'"),
        ("snowplow", {"e": "tr", "tr_tt": "abc"}, "tr_tt", "must be a number, got 'abc'"),
        ("snowplow", {"dtm": "soon"}, "dtm", TIME + "'soon'"),
        (
            "segment",
            {"event": "Order Completed", "properties": {"revenue": "abc"}},
            "properties.revenue",
            "must be a number, got 'abc'",
        ),
        (
            "segment",
            {"properties": {"product_id": [1]}},
            "properties.product_id",
            "must be a string or a number, got an array",
        ),
        ("snowplow", {"co": {"data": []}}, "co", "must be a string of JSON"),
        (
            "snowplow",
            {"co": json.dumps({"data": {"a": 1}})},
            "co",
            'must be {"schema": ..., "data": [entities]}',
        ),
        (
            "snowplow",
            {"co": json.dumps({"data": [{"schema": "iglu:a/b/jsonschema/1-0-0", "data": "x"}]})},
            "co.data.0",
            'must be {"schema": "iglu:...", "data": {...}}',
        ),
    ],
)
def test_a_field_of_the_wrong_kind_is_a_400_naming_it_and_the_good_event_is_kept(
    api, protocol, sent, field, message
):
    """Mapped leniently, these lost the field's value (or took the server's time) silently."""
    status, answer = _one_good_one_sent(api, protocol, sent)
    assert status == 400, answer
    assert answer["errors"] == [{"index": 1, "field": field, "message": message}]
    assert answer["processed"] == 1 and [e.event_id for e in stream_events()] == answer["event_ids"]


@pytest.mark.parametrize(
    ("protocol", "sent"),
    [
        ("segment", {"timestamp": "2026-11-24T12:00:00.000Z", "properties": {}, "userId": 7}),
        ("segment", {"context": None, "sentAt": "", "originalTimestamp": 1764000000000}),
        ("posthog", {"timestamp": "2026-11-24T12:00:00+00:00", "offset": 12, "uuid": None}),
        ("snowplow", {"se_va": "-2.5", "dtm": "1764000000000", "stm": 1764000000000}),
    ],
)
def test_fields_of_the_kinds_the_sdks_send_are_taken(api, protocol, sent):
    status, answer = _one_good_one_sent(api, protocol, sent)
    assert (status, answer.get("errors", [])) == (200, [])


def test_a_query_parameter_sent_again_counts_once_and_sent_with_another_value_is_a_400(api):
    key = api["write"]
    pixel = "/i?e=pv&duid=d&url=https%3A%2F%2Fa.example%2F"
    same = api["client"].http.get(f"{pixel}&aid={key}&aid={key}", headers={"Accept": "*/*"})
    assert same.status_code == 200
    for query in (f"&aid={key}&aid=cs_w_other", f"&aid={key}&e=pp"):
        other = api["client"].http.get(pixel + query, headers={"Accept": "*/*"})
        assert other.status_code == 400, other.body
        answer = json.loads(other.body)
        assert answer["errors"][0]["field"] == query.rsplit("&", 1)[1].split("=")[0]
        assert "sent with different values" in answer["error"]
    assert len(stream_events()) == 1
    read = {"X-Api-Key": api["read"]}
    stats = api["client"].http.get("/stats?period=7d&period=30d", headers=read)
    assert stats.status_code == 400 and json.loads(stats.body)["field"] == "period"
    assert "sent with different values" in json.loads(stats.body)["error"]
    assert api["client"].http.get("/stats?period=7d&period=7d", headers=read).status_code == 200


def test_a_segment_batch_context_of_the_wrong_shape_refuses_the_request_naming_it(api):
    body = {
        "writeKey": api["write"],
        "context": {"page": "x"},
        "batch": [{"type": "track", "event": "x", "userId": "u"}],
    }
    response = api["client"].http.post(
        "/v1/batch", body=json.dumps(body), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert json.loads(response.body)["errors"][0]["field"] == "context.page"
    assert stream_events() == []


@pytest.mark.parametrize("path", ["/events", "/track"])
def test_the_ingest_routes_take_gzip_bodies_as_the_sdk_routes_do(api, path):
    event = {"event_type": "click", "session_id": "s", "event_id": f"gz-{path[1:]}"}
    body = json.dumps({"records": [event]} if path == "/events" else event).encode()
    headers = {"Content-Type": "application/json", "X-Write-Key": api["write"]}
    for sent, encoding in ((gzip.compress(body), "gzip"), (body, "gzip"), (body, "identity")):
        # (JSON under a gzip header: API Gateway with compression on inflated it already)
        response = api["client"].http.post(
            path, body=sent, headers={**headers, "Content-Encoding": encoding}
        )
        assert response.status_code == 200, response.body
    ids = [e.event_id for e in stream_events()]
    assert len(ids) == 3 and len(set(ids)) == 1  # the same event each time
    refusals = (
        ({"Content-Encoding": "br"}, body, 415, "Content-Encoding"),
        ({"Content-Encoding": "br"}, gzip.compress(body), 415, "Content-Encoding"),
        ({"Content-Encoding": "gzip, gzip"}, gzip.compress(gzip.compress(body)), 415, "several"),
        ({"Content-Encoding": "gzip"}, gzip.compress(body)[:-8], 400, "body"),
        ({"Content-Encoding": "gzip"}, gzip.compress(b" " * 2_000_000), 413, "body"),
    )
    for extra, sent, status, field in refusals:
        response = api["client"].http.post(path, body=sent, headers={**headers, **extra})
        assert response.status_code == status, response.body
        error = json.loads(response.body)["errors"][0]
        if field == "several":  # codings stacked: said, not "not valid JSON"
            assert error["field"] == "Content-Encoding" and "several codings" in error["message"]
        else:
            assert error["field"] == field


def test_posthog_capture_v1_takes_a_bearer_key_and_answers_each_event(api):
    """posthog-python's capture_mode="v1": per-event results; the good event is kept."""
    good = {
        "event": "$pageview",
        "uuid": "0198c2d5-0000-7000-8000-000000000001",
        "distinct_id": "d",
        "timestamp": "2026-12-02T12:00:00+00:00",
        "session_id": "sess-v1",
        "options": {},
        "properties": {"$current_url": "https://a.example/v1", "$set": {"plan": "pro"}},
    }
    bad = {**good, "uuid": "0198c2d5-0000-7000-8000-000000000002", "distinct_id": [1]}
    body = gzip.compress(
        json.dumps({"created_at": good["timestamp"], "batch": [good, bad]}).encode()
    )
    headers = {
        "Content-Type": "application/json",
        "Content-Encoding": "gzip",
        "PostHog-Sdk-Info": "posthog-python/7.91.1",
        "PostHog-Request-Timestamp": "2026-12-02T12:00:05+00:00",
    }
    path = "/i/v1/analytics/events"
    response = api["client"].http.post(
        path, body=body, headers={**headers, "Authorization": f"Bearer {api['write']}"}
    )
    assert response.status_code == 200, response.body
    results = json.loads(response.body)["results"]
    assert results[good["uuid"]] == {"result": "ok"}
    assert results[bad["uuid"]]["result"] == "drop"
    assert "distinct_id" in results[bad["uuid"]]["details"]
    [event] = stream_events()
    assert (event.session_id, event.page_url) == ("sess-v1", "https://a.example/v1")
    assert '"library":"posthog-python"' in event.model_dump_json()
    for authorization, status in ((None, 401), ("Bearer cs_w_nope", 403), ("Basic eDo=", 401)):
        sent = {**headers, **({"Authorization": authorization} if authorization else {})}
        refused = api["client"].http.post(path, body=body, headers=sent)
        assert refused.status_code == status, refused.body
        assert json.loads(refused.body)["errors"][0]["field"] == "Authorization"


@pytest.mark.parametrize("path", ["fast", "record by record"])
def test_events_sent_with_the_devices_clock_are_corrected_for_its_error(api, path):
    """The tracker sends sent_at: a device 30 hours fast (its events 'in the future', once
    refused) or slow has its times moved by its clock's error, as Segment corrects them."""
    from datetime import UTC, datetime, timedelta

    device_now = datetime.now(UTC) + timedelta(hours=30)
    records = [
        {
            "event_type": "click",
            "session_id": "s",
            "timestamp": (device_now - timedelta(seconds=s)).isoformat(),
        }
        for s in (5, 65)
    ]
    if path == "record by record":
        records.append({"event_type": "No Such!"})  # one bad record: the slower path
    headers = {"Content-Type": "application/json", "X-Write-Key": api["write"]}
    body = {"records": records, "sent_at": device_now.isoformat()}
    response = api["client"].http.post("/events", body=json.dumps(body), headers=headers)
    assert json.loads(response.body)["processed"] == 2, response.body
    ages = sorted((datetime.now(UTC) - e.timestamp).total_seconds() for e in stream_events())
    assert 4 < ages[0] < 15 and 64 < ages[1] < 75
    # Clocks no correction can follow (made in year 1, sent in 9999): the time as sent, no 500.
    far = {
        "records": [{**records[0], "timestamp": "0001-01-01T00:00:00Z"}],
        "sent_at": "9999-12-31T23:59:59Z",
    }
    answer = api["client"].http.post("/events", body=json.dumps(far), headers=headers)
    assert (
        answer.status_code == 400 and json.loads(answer.body)["errors"][0]["field"] == "timestamp"
    )
    for sent_at in ("yesterday", "2026-12-02T10:00:00", 5):
        bad = {"records": records[:1], "sent_at": sent_at}
        refused = api["client"].http.post("/events", body=json.dumps(bad), headers=headers)
        assert (
            refused.status_code == 400
            and json.loads(refused.body)["errors"][0]["field"] == "sent_at"
        )


def test_a_lone_surrogate_in_a_key_is_named_in_an_answer_that_encodes(api):
    """The field named by a key sent with a lone surrogate is answered with U+FFFD in its
    place: an answer holding the surrogate itself could not be encoded (a 500)."""
    records = (
        '[{"event_type": "click", "session_id": "s"},'
        ' {"event_type": "click", "properties": {"k\\udb50": 1}},'
        ' {"event_type": "click", "x\\udb50": 2},'
        ' {"event_type": "click", "device": {"k\\udb50": {"v": "\\udb50"}}}]'
    )
    headers = {"Content-Type": "application/json", "X-Write-Key": api["write"]}
    response = api["client"].http.post("/events", body=f'{{"records": {records}}}', headers=headers)
    assert response.status_code == 200, response.body
    answer = json.loads(response.body)
    assert answer["processed"] + len(answer["errors"]) == 4
    assert "\ufffd" in answer["errors"][0]["field"]
