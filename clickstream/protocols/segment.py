"""Segment's HTTP Tracking API (RudderStack speaks it too) onto the canonical event.

Paths: ``/v1/batch`` and one per call type, with analytics.js's one-letter aliases. The write
key is the Basic-auth user name or ``writeKey`` in the body. Timestamps are corrected as
Segment does: ``timestamp = receivedAt - (sentAt - originalTimestamp)``.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any

from clickstream.errors import RequestError
from clickstream.ingest import skew_corrected
from clickstream.protocols.common import (
    Decoded,
    FieldKinds,
    SdkRequest,
    as_dict,
    as_text,
    batch_wrongly_typed,
    event_type_for,
    iso,
    key_sent,
    named_with_control_character,
    non_negative,
    parse_instant,
    parse_json,
    unwrap_body,
    wrongly_typed,
)
from clickstream.schema import RecordError

MAX_BATCH_BYTES = 500 * 1024
MAX_MESSAGE_BYTES = 32 * 1024
CALL_TYPES = ("track", "page", "screen", "identify", "group", "alias")
# The path's last segment -> the call type it implies ("batch": each message says its own).
PATH_TYPES = {
    "batch": "batch",
    "b": "batch",
    "import": "batch",
    **{name: name for name in CALL_TYPES},
    **{name[0]: name for name in CALL_TYPES if name != "screen"},
    "s": "screen",
}
# What other than the call itself each type becomes (track: the event's own name).
FIXED_TYPES = {
    "page": "page_view",
    "screen": "screen_view",
    "identify": "identify",
    "group": "group",
    "alias": "alias",
}
# A page call's properties that become its page, URL and referrer.
PAGE_PROPERTY_KINDS = FieldKinds(
    dict.fromkeys(("properties.path", "properties.url", "properties.referrer"), "text")
)
# The e-commerce events whose revenue (or total, or value) is counted: not a number, it would
# be left out of revenue.
VALUED = ("purchase", "add_to_cart", "checkout")
VALUE_PROPERTY_KINDS = FieldKinds(
    dict.fromkeys(("properties.revenue", "properties.total", "properties.value"), "number")
)
# Segment's mobile libraries name the platform as the device type.
MOBILE_DEVICE_TYPES = {"ios": "mobile", "android": "mobile", "ipados": "tablet"}
_CONTEXT_KEPT = ("locale", "timezone", "screen", "library", "campaign", "app", "os", "network")
# The context's fields of Segment's spec, as their kind: those mapped would be lost, the others
# stored wrongly, if sent as something else.
CONTEXT_KINDS = {
    **{
        f"context.{name}": "object"
        for name in ("page", "location", "device", "traits", "screen", "library", "campaign")
    },
    **{f"context.{name}": "object" for name in ("app", "os", "network", "referrer")},
    "context.userAgent": "text",
    "context.ip": "text",
    "context.sessionId": "id",
    "context.page.url": "text",
    "context.page.path": "text",
    "context.page.referrer": "text",
    "context.location.country": "text",
    "context.location.city": "text",
    "context.device.type": "text",
}
# A message's fields, as their kind (``wrongly_typed``).
MESSAGE_KINDS = FieldKinds(
    {
        **dict.fromkeys(("properties", "context", "traits", "integrations"), "object"),
        "properties.product_id": "id",
        **dict.fromkeys(("name", "category"), "text"),
        **dict.fromkeys(("userId", "anonymousId", "messageId"), "id"),
        **dict.fromkeys(("originalTimestamp", "timestamp", "sentAt"), "time"),
        **CONTEXT_KINDS,
    }
)
# The fields each canonical field is mapped from, in the mapping's order (an error of the
# canonical event names the one sent).
SENT_AS = {
    "event_id": ("messageId",),
    "event_type": ("event", "type"),
    "user_id": ("userId",),
    "anonymous_id": ("anonymousId",),
    "session_id": ("context.sessionId",),
    "timestamp": ("originalTimestamp", "timestamp"),
    "page": ("properties.path", "context.page.path", "name", "properties.name"),
    "page_url": ("properties.url", "context.page.url"),
    "referrer": ("properties.referrer", "context.page.referrer"),
    "product_id": ("properties.product_id",),
    "value": ("properties.revenue", "properties.total", "properties.value"),
    "user_agent": ("context.userAgent",),
    "ip_address": ("context.ip",),
    "country": ("context.location.country",),
    "city": ("context.location.city",),
    "device_type": ("context.device.type",),
}
# A batch's fields shared by its messages.
BATCH_KINDS = FieldKinds(
    {"context": "object", "integrations": "object", "sentAt": "time", **CONTEXT_KINDS}
)


def basic_auth_user(authorization: str | None) -> str | None:
    """The user name of ``Authorization: Basic base64(user:password)``."""
    if not authorization:
        return None
    scheme, _, credentials = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode()
    except (binascii.Error, ValueError):  # (non-ASCII credentials are a ValueError)
        raise RequestError("Authorization", "Authorization is not valid Basic auth", 401) from None
    return decoded.partition(":")[0]


def decode(request: SdkRequest, path_type: str) -> Decoded:
    body = parse_json(unwrap_body(request, MAX_BATCH_BYTES))
    if not isinstance(body, dict):
        raise RequestError("body", "the body must be a JSON object")
    if path_type == "batch":
        messages = body.get("batch")
        if not isinstance(messages, list):
            raise RequestError("batch", '"batch" must be an array of messages')
        if not messages:
            raise RequestError("batch", '"batch" is empty')
        shared = {
            name: body[name] for name in ("context", "integrations", "sentAt") if name in body
        }
        batch_wrongly_typed(shared, BATCH_KINDS)
    else:
        messages, shared = [body], {}
    key, key_field = basic_auth_user(request.header("authorization")), "Authorization"
    if not key:
        key, key_field = _body_write_key(body, messages), "writeKey"
    if not key:
        key = request.header("x-write-key") or request.query.get("key")
        key_field = "X-Write-Key" if request.header("x-write-key") else "writeKey"
    return Decoded(messages=messages, key=key, key_field=key_field, batch=shared)


def _body_write_key(body: dict[str, Any], messages: list[Any]) -> str | None:
    if key := key_sent(body.get("writeKey"), "writeKey"):
        return key
    first = messages[0] if messages else None
    return key_sent(first.get("writeKey"), "writeKey") if isinstance(first, dict) else None


def map_messages(
    decoded: Decoded, path_type: str, received_at: datetime
) -> list[dict[str, Any] | RecordError]:
    return [
        map_message(index, message, path_type, decoded.batch, received_at)
        for index, message in enumerate(decoded.messages)
    ]


def map_message(
    index: int,
    message: Any,
    path_type: str,
    shared: dict[str, Any] | Any,
    received_at: datetime,
) -> dict[str, Any] | RecordError:
    """One Segment message as an incoming record, or why it cannot be one."""
    if not isinstance(message, dict):
        return RecordError(index, "record", "each message must be a JSON object")
    call = message.get("type") if path_type == "batch" else path_type
    if call not in CALL_TYPES:
        return RecordError(index, "type", f"must be one of {', '.join(CALL_TYPES)}")
    wrong = wrongly_typed(index, message, MESSAGE_KINDS)
    if wrong is None and call == "page":
        wrong = wrongly_typed(index, message, PAGE_PROPERTY_KINDS)
    if wrong is None and call == "track" and event_type_for(str(message.get("event"))) in VALUED:
        wrong = wrongly_typed(index, message, VALUE_PROPERTY_KINDS)
    if wrong is not None:
        return wrong
    if call == "track":
        name = message.get("event")
        if not isinstance(name, str) or not name.strip():
            return RecordError(index, "event", "a track call needs the event's name, a string")
        if wrong_name := named_with_control_character(index, "event", name):
            return wrong_name
        event_type = event_type_for(name)
    else:
        name, event_type = None, FIXED_TYPES[call]
    user_id, anonymous_id = as_text(message.get("userId")), as_text(message.get("anonymousId"))
    if not user_id and not anonymous_id:
        return RecordError(index, "userId", "every message needs a userId or an anonymousId")
    context = {**as_dict(shared.get("context")), **as_dict(message.get("context"))}
    properties = as_dict(message.get("properties"))
    page = as_dict(context.get("page"))
    timestamp = skew_corrected(
        parse_instant(message.get("originalTimestamp") or message.get("timestamp")),
        parse_instant(message.get("sentAt") or shared.get("sentAt")),
        received_at,
    )
    kept = _kept_properties(message, call, name, event_type, properties, context)
    location, device = as_dict(context.get("location")), as_dict(context.get("device"))
    record: dict[str, Any] = {
        "event_id": as_text(message.get("messageId")),
        "event_type": event_type,
        "user_id": user_id,
        "anonymous_id": anonymous_id,
        "session_id": as_text(context.get("sessionId")),
        "timestamp": iso(timestamp),
        "page": as_text(properties.get("path")) if call == "page" else None,
        "page_url": as_text(properties.get("url") if call == "page" else None)
        or as_text(page.get("url")),
        "referrer": as_text(properties.get("referrer") if call == "page" else None)
        or as_text(page.get("referrer")),
        "product_id": as_text(properties.get("product_id")),
        "value": non_negative(
            properties.get("revenue", properties.get("total", properties.get("value")))
        ),
        "properties": kept,
        "user_agent": as_text(context.get("userAgent")),
        "ip_address": as_text(context.get("ip")),
        "country": as_text(location.get("country")),
        "city": as_text(location.get("city")),
        "device_type": MOBILE_DEVICE_TYPES.get(str(device.get("type")).lower())
        or as_text(device.get("type")),
    }
    if call == "page" and not record["page"] and not record["page_url"]:
        record["page"] = as_text(page.get("path")) or as_text(message.get("name"))
    if call == "screen":
        record["page"] = as_text(message.get("name")) or as_text(properties.get("name"))
    return {name: value for name, value in record.items() if value is not None}


def _kept_properties(
    message: dict[str, Any],
    call: str,
    name: str | None,
    event_type: str,
    properties: dict[str, Any],
    context: dict[str, Any],
) -> dict[str, Any]:
    """The message's properties, with what else of it has no canonical field."""
    kept: dict[str, Any] = dict(properties)
    if name is not None and event_type != name:
        kept.setdefault("event_name", name)
    for extra in ("name", "category", "groupId", "previousId", "channel"):
        if message.get(extra) is not None:
            kept.setdefault(_snake(extra), message[extra])
    if message.get("traits") is not None:
        kept.setdefault("traits", message["traits"])
    page = as_dict(context.get("page"))
    if page.get("title") and call == "page":
        kept.setdefault("title", page["title"])
    kept.update({f"context_{key}": context[key] for key in _CONTEXT_KEPT if context.get(key)})
    return kept


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name)
