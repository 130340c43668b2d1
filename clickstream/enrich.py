"""Enrichment: turn a validated incoming record into the canonical event. Derives the device
from the user agent, truncates IP addresses (a raw IP is never kept), fills server-side
defaults."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from datetime import datetime
from functools import lru_cache
from typing import Any

from ua_parser import parse as parse_user_agent

from clickstream.schema import (
    MAX_ID_LENGTH,
    MAX_URL_LENGTH,
    SCHEMA_VERSION,
    Device,
    Event,
    IncomingDevice,
    IncomingEvent,
    IncomingLocation,
    Location,
    client_event_id,
    event_type_name,
    first_address,
    holds_control_character,
    id_owner,
    normalize_event_id,
    page_path,
    utc,
)
from clickstream.traffic import is_bot_user_agent

CLIENT_EVENT_ID = "client_event_id"  # the property keeping a client's id that is no UUID
_TABLET_HINTS = ("ipad", "tablet", "kindle", "silk", "playbook")
_MOBILE_OS = {"ios", "android", "windows phone", "blackberry os", "kaios"}


@lru_cache(maxsize=4096)  # a request's records share one source address
def truncate_ip(raw: str | None) -> str | None:
    """Keep the network only: /24 for IPv4, /48 for IPv6. Unparseable input keeps nothing."""
    address = first_address(raw) if raw else None
    if address is None:
        return None
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False).network_address)


@lru_cache(maxsize=4096)
def device_from_user_agent(user_agent: str) -> Device:
    """Device type, platform and browser from a user-agent string (ua-parser), cached because
    real traffic repeats a few thousand strings."""
    parsed = parse_user_agent(user_agent)
    browser = parsed.user_agent.family if parsed.user_agent else None
    platform = parsed.os.family if parsed.os else None
    device_family = (parsed.device.family if parsed.device else "") or ""
    lowered = user_agent.lower()
    if device_family == "Spider" or "bot" in lowered or "spider" in lowered:
        device_type = "bot"
    elif any(hint in lowered for hint in _TABLET_HINTS):
        device_type = "tablet"
    elif (platform or "").lower() in _MOBILE_OS or "mobile" in lowered:
        device_type = "mobile"
    elif platform and platform != "Other":
        device_type = "desktop"
    else:
        device_type = None
    return Device(
        device_type=device_type,
        platform=None if platform in (None, "Other") else platform,
        browser=None if browser in (None, "Other") else browser,
    )


def _device(incoming: IncomingEvent) -> dict[str, str]:
    """The device as the canonical event's JSON has it (only the fields known)."""
    given = incoming.device or {}
    device_type = given.get("device_type") or incoming.device_type
    platform = given.get("platform") or incoming.platform
    browser = given.get("browser") or incoming.browser
    if incoming.user_agent and not (device_type and platform and browser):
        derived = device_from_user_agent(incoming.user_agent)
        device_type = device_type or derived.device_type
        platform = platform or derived.platform
        browser = browser or derived.browser
    device = {}
    if device_type:
        device["device_type"] = device_type.lower()
    if platform:
        device["platform"] = platform
    if browser:
        device["browser"] = browser
    return device


def _id_and_properties(incoming: IncomingEvent) -> tuple[str, dict[str, Any]]:
    """The event's id, and its properties with the client's own id where that is no UUID."""
    properties = _properties(incoming)
    event_id = normalize_event_id(incoming.event_id, id_owner(incoming))
    if event_id != incoming.event_id and (sent_id := client_event_id(incoming.event_id)):
        properties = dict(properties)  # (it may be the incoming record's own)
        _keep_beside(properties, CLIENT_EVENT_ID, sent_id)
    return event_id, properties


def sent_properties(event: dict[str, Any]) -> dict[str, Any]:
    """The canonical event's properties as its record brought them (unmapped fields too),
    without the client id the server kept (``_id_and_properties``): the record's size limit
    is on what it sent. The kept id is the last property the event's id was made from."""
    properties: dict[str, Any] = event["properties"]
    owner = id_owner(event)
    kept = [
        key
        for key, value in properties.items()
        if key.startswith(CLIENT_EVENT_ID)
        and isinstance(value, str)
        and client_event_id(value)
        and normalize_event_id(value, owner) == event["event_id"]
    ]
    if not kept:
        return properties
    return {key: value for key, value in properties.items() if key != kept[-1]}


def _properties(incoming: IncomingEvent) -> dict[str, Any]:
    extra = incoming.model_extra
    unmapped = _unmapped_of(incoming)
    if incoming.button is None and not extra and not unmapped:
        return incoming.properties  # (most records: no copy)
    properties = dict(incoming.properties)
    if incoming.button is not None:
        _keep_beside(properties, "button", incoming.button)
    # Unmapped fields are kept, not lost: top-level ones as they are (a second spelling of a
    # field, "revenue" beside "value", too: only the first is read), a device's or a
    # location's under its name.
    for key, value in (extra or {}).items():
        _keep_beside(properties, key, value)
    for key, value in unmapped.items():
        _keep_beside(properties, key, value)
    return properties


def _keep_beside(properties: dict[str, Any], key: str, value: Any) -> None:
    """A field kept as a property, beside one of the same name, never over it: as
    ``key_unmapped`` (then ``key_unmapped_2``, ...)."""
    name, copy = key, 1
    while name in properties:
        name = f"{key}_unmapped" if copy == 1 else f"{key}_unmapped_{copy}"
        copy += 1
    properties[name] = value


def _unmapped_of(incoming: IncomingEvent) -> dict[str, dict[str, Any]]:
    """The fields of ``device`` and ``location`` that no canonical field takes."""
    device, location = incoming.device, incoming.location
    if (not device or device.keys() <= _DEVICE_FIELDS) and (
        not location or location.keys() <= _LOCATION_FIELDS
    ):
        return {}  # (most records: two key-set tests, half the cost of the loop below)
    unmapped = {}
    for name, sent, known in (
        ("device", device, _DEVICE_FIELDS),
        ("location", location, _LOCATION_FIELDS),
    ):
        if sent and (rest := {key: value for key, value in sent.items() if key not in known}):
            unmapped[name] = rest
    return unmapped


_DEVICE_FIELDS = frozenset(IncomingDevice.__annotations__)
_LOCATION_FIELDS = frozenset(IncomingLocation.__annotations__)


def _location(
    incoming: IncomingEvent,
    source_ip: str | None,
    locate: Callable[[str | None], Location] | None,
) -> dict[str, str]:
    given = incoming.location or {}
    country = given.get("country") or incoming.country
    city = given.get("city") or incoming.city
    if not country and locate is not None:
        placed = locate(incoming.ip_address or source_ip)
        country, city = placed.country, city or placed.city
    location = {}
    if country:
        location["country"] = country
    if city:
        location["city"] = city
    return location


def canonical_event(
    incoming: IncomingEvent,
    *,
    received_at: datetime,
    source_ip: str | None = None,
    locate: Callable[[str | None], Location] | None = None,
) -> dict[str, Any]:
    """The canonical event for one validated record, as the JSON object the stream carries
    (``Event``'s fields, None left out): built as a dict, not a model, because ingest only
    encodes it. ``locate`` places an address (the viewer-country headers, a GeoIP database)
    when the payload says nothing of its place."""
    event_id, properties = _id_and_properties(incoming)
    device = _device(incoming)
    event: dict[str, Any] = {
        "event_id": event_id,
        # Only seed 000's button clicks come without a type.
        "event_type": event_type_name(incoming.event_type) if incoming.event_type else "click",
        "timestamp": utc(incoming.timestamp) if incoming.timestamp else received_at,
        "received_at": received_at,
        "properties": properties,
        "device": device,
        "location": _location(incoming, source_ip, locate),
        "is_bot": device.get("device_type") == "bot" or is_bot_user_agent(incoming.user_agent),
        "schema_version": SCHEMA_VERSION,
    }
    # The optional fields only when known (one test each: this runs for every event).
    if incoming.user_id is not None:
        event["user_id"] = incoming.user_id
    if incoming.session_id is not None:
        event["session_id"] = incoming.session_id
    if incoming.anonymous_id is not None:
        event["anonymous_id"] = incoming.anonymous_id
    page = page_path(
        incoming.page or _field_from(properties.get("page"), MAX_URL_LENGTH), incoming.page_url
    )
    if page is not None:
        event["page"] = page
    if incoming.page_url is not None:
        event["page_url"] = incoming.page_url
    referrer = incoming.referrer or _field_from(properties.get("referrer"), MAX_URL_LENGTH)
    if referrer is not None:
        event["referrer"] = referrer
    product_id = incoming.product_id or _field_from(properties.get("product_id"), MAX_ID_LENGTH)
    if product_id is not None:
        event["product_id"] = product_id
    if incoming.value is not None:
        event["value"] = incoming.value
    if incoming.user_type:
        event["user_type"] = incoming.user_type.lower()
    if incoming.user_agent is not None:
        event["user_agent"] = incoming.user_agent
    ip_truncated = truncate_ip(incoming.ip_address or source_ip)
    if ip_truncated is not None:
        event["ip_truncated"] = ip_truncated
    return event


def to_event(
    incoming: IncomingEvent,
    *,
    received_at: datetime,
    source_ip: str | None = None,
    locate: Callable[[str | None], Location] | None = None,
) -> Event:
    """``canonical_event`` as the model consumers read."""
    return Event.model_validate(
        canonical_event(incoming, received_at=received_at, source_ip=source_ip, locate=locate)
    )


def _field_from(value: Any, max_length: int) -> str | None:
    """A property's text as the event's own field (page, referrer, product) only where the
    field would take it as sent: within its length, with no control character. Else it stays
    a property alone."""
    if not isinstance(value, str):
        return None
    text = value.strip()  # (as the event's own fields are)
    if 0 < len(text) <= max_length and not holds_control_character(text):
        return text
    return None
