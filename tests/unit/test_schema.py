from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import AliasChoices, ValidationError
from pydantic.fields import FieldInfo

from clickstream.ingest import _EventsBody, validate_records
from clickstream.schema import (
    STANDARD_EVENT_TYPES,
    IncomingEvent,
    may_hold_control_characters,
    page_path,
    without_control_check,
)
from tests.factories import seed_payloads

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def validate(*records):
    return validate_records(list(records), received_at=NOW, source_ip="203.0.113.77")


def test_seed_000_click_lands_in_canonical_fields():
    batch = validate(seed_payloads()["seed000_click"])
    assert not batch.errors
    event = batch.events[0][1]
    assert event.event_type == "click"
    assert event.properties["button"] == "Google"
    assert event.page_url == "https://www.google.com"
    assert event.page == "/"
    assert event.timestamp == datetime(2023, 7, 20, 10, 30, tzinfo=UTC)
    assert (event.device.device_type, event.device.platform, event.device.browser) == (
        "desktop",
        "Windows",
        "Chrome",
    )
    assert (event.location.city, event.location.country) == ("New York", "USA")


def test_seed_000_non_uuid_id_maps_to_a_stable_uuid():
    first = validate(seed_payloads()["seed000_click"]).events[0][1]
    again = validate(seed_payloads()["seed000_click"]).events[0][1]
    assert first.event_id == again.event_id
    assert len(first.event_id) == 36


def test_seed_001_properties_page_becomes_page():
    event = validate(seed_payloads()["seed001_record"]).events[0][1]
    assert (event.page, event.referrer, event.session_id) == (
        "/products",
        "google.com",
        "session_abc",
    )
    assert event.partition_key == "session_abc"


def test_seed_003_track_derives_device_and_truncates_ip():
    event = validate(seed_payloads()["seed003_track"]).events[0][1]
    assert event.page == "/home"
    assert event.ip_truncated == "192.168.1.0"
    assert "192.168.1.1" not in event.model_dump_json()
    assert event.partition_key == "550e8400-e29b-41d4-a716-446655440000"


def test_seed_004_flat_fields_land_in_nested_canonical_fields():
    event = validate(seed_payloads()["seed004_flat"]).events[0][1]
    assert event.event_type == "page_view"
    assert event.page == "/product"
    assert event.referrer == "https://www.instagram.com/"
    assert event.device.device_type == "mobile"
    assert event.device.browser == "Chrome"
    assert event.location.country == "India"
    assert event.user_type == "returning"


def test_missing_timestamp_gets_server_time_and_missing_id_gets_a_uuid():
    event = validate({"event_type": "click"}).events[0][1]
    assert event.timestamp == NOW
    assert len(event.event_id) == 36


def test_source_ip_is_truncated_when_the_record_has_none():
    event = validate({"event_type": "click"}).events[0][1]
    assert event.ip_truncated == "203.0.113.0"


@pytest.mark.parametrize(
    ("record", "field"),
    [
        ({"event_type": "Bad Name!"}, "event_type"),
        ({"user_id": "u"}, "event_type"),
        ({"event_type": "purchase", "value": -1}, "value"),
        ({"event_type": "purchase", "value": float("nan")}, "value"),
        ({"event_type": "click", "timestamp": "not a time"}, "timestamp"),
        ({"event_type": "click", "properties": [1, 2]}, "properties"),
        ({"event_type": "click", "user_id": "x" * 300}, "user_id"),
        (42, "record"),
    ],
)
def test_invalid_records_name_the_field(record, field):
    batch = validate({"event_type": "click"}, record)
    assert len(batch.events) == 1, "the valid record in the same request is kept"
    assert [(error.index, error.field) for error in batch.errors] == [(1, field)]


def test_timestamps_more_than_a_day_ahead_are_rejected_but_slight_skew_is_fine():
    # Ahead of when the API received them.
    soon = (NOW + timedelta(hours=1)).isoformat()
    far = (NOW + timedelta(hours=25)).isoformat()
    batch = validate(
        {"event_type": "click", "timestamp": soon}, {"event_type": "click", "timestamp": far}
    )
    assert [index for index, _ in batch.events] == [0]
    assert batch.errors[0].field == "timestamp"


def test_unknown_top_level_fields_are_kept_under_properties():
    event = validate({"event_type": "click", "campaign": "spring"}).events[0][1]
    assert event.properties == {"campaign": "spring"}


@given(st.sampled_from(STANDARD_EVENT_TYPES), st.sampled_from(["", " ", "  "]))
def test_standard_types_are_case_and_space_insensitive(event_type, padding):
    batch = validate({"event_type": padding + event_type.upper() + padding})
    assert batch.events[0][1].event_type == event_type


@given(st.text(min_size=1, max_size=80))
def test_any_string_event_type_is_either_accepted_well_formed_or_rejected_on_that_field(name):
    batch = validate({"event_type": name})
    if batch.events:
        accepted = batch.events[0][1].event_type
        assert accepted in STANDARD_EVENT_TYPES or accepted.replace("_", "a").isascii()
    else:
        assert batch.errors[0].field == "event_type"


@given(
    st.lists(
        st.one_of(st.just({"event_type": "click"}), st.integers(), st.just({"x": 1})), max_size=30
    )
)
def test_every_record_is_either_an_event_or_an_error(records):
    batch = validate(*records)
    indexes = [index for index, _ in batch.events] + sorted({error.index for error in batch.errors})
    assert sorted(indexes) == list(range(len(records)))


@pytest.mark.parametrize(
    ("page", "url", "expected"),
    [
        ("home", None, "/home"),
        ("/home", None, "/home"),
        (None, "https://a.b/c/d?x=1", "/c/d"),
        (None, "https://a.b", "/"),
        (None, "/p?q=1#f", "/p"),
        (None, None, None),
    ],
)
def test_page_path(page, url, expected):
    assert page_path(page, url) == expected


# --- the parse without the control-character check, for bodies that cannot hold one -------

CONTROLS = [chr(code) for code in range(0x20)] + ["\x7f"]
NO_CONTROL_TEXT = st.text(st.characters(codec="utf-8", exclude_characters=CONTROLS))
ENCODINGS = {
    "orjson": orjson.dumps,
    "json, ASCII escapes": lambda value: json.dumps(value).encode(),
    "json, UTF-8": lambda value: json.dumps(value, ensure_ascii=False).encode(),
}


@given(
    st.text(max_size=20),
    st.sampled_from(CONTROLS),
    st.text(max_size=20),
    st.sampled_from(list(ENCODINGS)),
)
def test_a_string_holding_a_control_character_is_never_cleared(before, control, after, encoding):
    assert may_hold_control_characters(ENCODINGS[encoding]({"page": before + control + after}))


@given(NO_CONTROL_TEXT.filter(lambda text: "\\" not in text), st.sampled_from(list(ENCODINGS)))
def test_text_without_control_characters_or_backslashes_is_cleared(text, encoding):
    assert not may_hold_control_characters(ENCODINGS[encoding]({"page": text}))


def names_sent(fields: dict[str, FieldInfo]) -> list[str]:
    """Every name a client may send a field by: its own and its aliases."""
    names: list[list[str | int]] = []
    for name, field in fields.items():
        aliases = field.validation_alias
        names += aliases.convert_to_aliases() if isinstance(aliases, AliasChoices) else [[name]]
    return sorted({alias[0] for alias in names if isinstance(alias[0], str)})


FIELDS = [*names_sent(IncomingEvent.model_fields), "unmapped"]
NESTED_FIELDS = ["device_type", "deviceType", "platform", "browser", "country", "city"]
LIMITS = [31, 32, 33, 64, 65, 128, 129, 256, 257, 1024, 1025, 2048, 2049]
SCALARS = st.one_of(
    NO_CONTROL_TEXT.filter(lambda text: len(text) < 80),
    st.builds(lambda length, char: char * length, st.sampled_from(LIMITS), st.sampled_from("x é")),
    st.sampled_from(["click", "Page_View", "no spaces", "2026-11-24T12:00:00Z", "soon"]),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False),
    st.booleans(),
    st.none(),
)
RECORDS = st.dictionaries(
    st.sampled_from(FIELDS),
    SCALARS,
).flatmap(
    lambda record: st.fixed_dictionaries(
        {
            "device": st.one_of(
                st.none(), st.dictionaries(st.sampled_from(NESTED_FIELDS), SCALARS)
            ),
            "location": st.one_of(
                SCALARS, st.dictionaries(st.sampled_from(NESTED_FIELDS), SCALARS)
            ),
            "properties": st.dictionaries(NO_CONTROL_TEXT, SCALARS, max_size=3),
        }
    ).map(lambda nested: {**record, **{k: v for k, v in nested.items() if v is not None}})
)


CHECKED = _EventsBody.__pydantic_validator__
UNCHECKED = without_control_check(_EventsBody)


def parsed(validator: Any, body: bytes) -> Any:
    try:
        return validator.validate_json(body)
    except ValidationError as error:
        return error.errors(include_url=False)


@given(st.lists(RECORDS, min_size=1, max_size=4), st.sampled_from(list(ENCODINGS)))
def test_without_the_control_check_every_body_without_controls_parses_the_same(records, encoding):
    """The same records, or the same errors (field, type, message), as the full check: the
    pattern that is left out is the only difference."""
    body = ENCODINGS[encoding]({"records": records})
    assert parsed(UNCHECKED, body) == parsed(CHECKED, body)


def test_the_parse_without_the_control_check_takes_a_control_character_as_sent():
    body = orjson.dumps({"records": [{"event_type": "click", "page": "a\u0001b"}]})
    assert UNCHECKED.validate_json(body).records[0].page == "a\u0001b"
    assert [error["loc"] for error in parsed(CHECKED, body)] == [("records", 0, "page")]
    assert type(UNCHECKED.validate_json(body).records[0]) is IncomingEvent
