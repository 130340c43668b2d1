from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from clickstream.enrich import canonical_event, device_from_user_agent, truncate_ip
from clickstream.schema import IncomingEvent
from tests.factories import user_agents


@pytest.mark.parametrize(
    ("raw", "kept"),
    [
        ("192.168.1.1", "192.168.1.0"),
        ("8.8.4.4, 10.0.0.1", "8.8.4.0"),
        ("2001:db8:85a3:8d3:1319:8a2e:370:7348", "2001:db8:85a3::"),
        ("not an ip", None),
        (None, None),
    ],
)
def test_truncate_ip_keeps_only_the_network(raw, kept):
    assert truncate_ip(raw) == kept


@pytest.mark.parametrize(
    ("name", "device_type", "platform", "browser"),
    [
        ("iphone_safari", "mobile", "iOS", "Mobile Safari"),
        ("windows_chrome", "desktop", "Windows", "Chrome"),
        ("ipad_safari", "tablet", "iOS", "Mobile Safari"),
        ("android_chrome", "mobile", "Android", "Chrome Mobile"),
        ("googlebot", "bot", None, "Googlebot"),
    ],
)
def test_device_from_user_agent(name, device_type, platform, browser):
    device = device_from_user_agent(user_agents()[name])
    assert (device.device_type, device.platform, device.browser) == (device_type, platform, browser)


@pytest.mark.parametrize(
    ("name", "sent", "promoted"),
    [
        ("page", "/pricing", "/pricing"),
        ("page", "/p\x04", None),
        ("page", "/p\n", "/p"),  # stripped at its ends, as the event's own field is
        ("page", "/p\nq", None),
        ("page", " /p ", "/p"),
        ("page", "/" + "p" * 2048, None),
        ("referrer", "https://r.example/\x00", None),
        ("referrer", "https://r.example/", "https://r.example/"),
        ("product_id", "sku-1", "sku-1"),
        ("product_id", "x" * 257, None),
        ("product_id", 42, None),
    ],
)
def test_a_property_becomes_the_events_field_only_as_that_field_would_take_it(name, sent, promoted):
    """properties.page, .referrer and .product_id fill the event's own field when it was not
    sent, only within its limits (no control character, its length): the record's own field
    with that value would be refused. A property that does not fit stays a property alone."""
    incoming = IncomingEvent.model_validate({"event_type": "click", "properties": {name: sent}})
    event = canonical_event(incoming, received_at=datetime(2026, 11, 30, tzinfo=UTC))
    assert event.get(name) == promoted
    assert event["properties"][name] == sent


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ({"device": {"deviceType": "Mobile", "model": "X1"}}, {"device": {"model": "X1"}}),
        ({"device": {"pageUrl": "/a\x01"}}, {"device": {"pageUrl": "/a\x01"}}),
        ({"location": {"country": "FR", "region": "IDF"}}, {"location": {"region": "IDF"}}),
        ({"device": {"platform": "iOS"}, "location": {"city": "Lyon"}}, {}),
        (
            {"device": {"model": "X1"}, "properties": {"device": {"a": 1}}},
            {"device": {"a": 1}, "device_unmapped": {"model": "X1"}},
        ),
        (
            {
                "device": {"model": "X1"},
                "properties": {"device": 1, "device_unmapped": 2, "device_unmapped_2": 3},
            },
            {
                "device": 1,
                "device_unmapped": 2,
                "device_unmapped_2": 3,
                "device_unmapped_3": {"model": "X1"},
            },
        ),
        (
            {"colour": "blue", "properties": {"colour": "red"}},
            {"colour": "red", "colour_unmapped": "blue"},
        ),
        # a second spelling of a field: the first is read, the other kept
        ({"value": 1, "revenue": 5}, {"revenue": 5}),
        ({"type": "buy"}, {"type": "buy"}),
        (
            {"button": "Buy", "properties": {"button": "Sell"}},
            {"button": "Sell", "button_unmapped": "Buy"},
        ),
    ],
)
def test_fields_of_device_or_location_nobody_maps_are_kept_as_properties(sent, kept):
    """As unmapped top-level fields are: never dropped without a word, nor over a property
    of the same name."""
    incoming = IncomingEvent.model_validate({"event_type": "click", **sent})
    event = canonical_event(incoming, received_at=datetime(2026, 11, 30, tzinfo=UTC))
    assert event["properties"] == kept


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("order-123", "order-123"),
        ("ajs-next-1733150000000-6f1e", "ajs-next-1733150000000-6f1e"),  # analytics-next's
        ("1f0c2b7e-4a8d-4c3e-9b6a-2d5f8e1a7c90", None),
        ("1F0C2B7E-4A8D-4C3E-9B6A-2D5F8E1A7C90", None),  # a UUID in another spelling
        ("{1f0c2b7e-4a8d-4c3e-9b6a-2d5f8e1a7c90}", None),
        ("1f0c2b7e4a8d4c3e9b6a2d5f8e1a7c90", None),
        (None, None),
    ],
)
def test_a_client_id_that_is_no_uuid_is_kept_beside_the_uuid_made_from_it(sent, kept):
    """The archive can be searched by the id the client knows; the event's own id is a UUID
    made from it (so a resend is the same event)."""
    incoming = IncomingEvent.model_validate(
        {"event_type": "click", "event_id": sent, "properties": {"client_event_id": "mine"}}
    )
    event = canonical_event(incoming, received_at=datetime(2026, 11, 30, tzinfo=UTC))
    assert uuid.UUID(event["event_id"])
    assert event["properties"].get("client_event_id_unmapped") == kept
    assert event["properties"]["client_event_id"] == "mine"
    assert incoming.properties == {"client_event_id": "mine"}  # the record's own, untouched
    alone = IncomingEvent.model_validate({"event_type": "click", "event_id": sent})
    resent = canonical_event(alone, received_at=datetime(2026, 12, 1, tzinfo=UTC))
    assert resent["properties"].get("client_event_id") == kept
    if sent is not None:
        assert resent["event_id"] == event["event_id"]


@pytest.mark.parametrize("owner_field", ["session_id", "anonymous_id", "user_id"])
def test_a_client_id_that_is_no_uuid_is_one_event_per_owner(owner_field):
    """A client's own numbering ("1", "2", ...) repeats from device to device: the same id
    from two sessions (devices, users) is two events, from one it is one event (a resend);
    a UUID is itself wherever it comes from."""

    def event_id(sent: str, owner: str | None) -> str:
        record = {"event_type": "click", "event_id": sent}
        if owner is not None:
            record[owner_field] = owner
        incoming = IncomingEvent.model_validate(record)
        return canonical_event(incoming, received_at=datetime(2026, 12, 2, tzinfo=UTC))["event_id"]

    assert event_id("1", "a") == event_id("1", "a")
    assert event_id("1", "a") != event_id("1", "b") != event_id("1", None)
    assert event_id("1", None) == event_id("1", None)
    same = "1f0c2b7e-4a8d-4c3e-9b6a-2d5f8e1a7c90"
    assert event_id(same, "a") == event_id(same, "b") == event_id(same, None) == same
