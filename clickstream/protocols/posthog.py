"""PostHog's capture API (posthog-js, posthog-python and the other PostHog SDKs) onto the
canonical event.

Paths ``/capture``, ``/batch``, ``/e``, ``/i/v0/e`` (with or without the trailing slash). The
project key (``api_key`` or ``token``, in the body or the event's properties) is the write
key. Capture v1 (``/i/v1/analytics/events``) carries it as a Bearer token and is answered
per event. Bodies come plain, gzipped, base64, lz-string'd (``compression=lz64``) or form-encoded
(``data=...``), as the SDKs' versions have sent them.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import orjson

from clickstream.errors import RequestError
from clickstream.ingest import inflate, skew_corrected
from clickstream.protocols.common import (
    Decoded,
    FieldKinds,
    SdkRequest,
    as_dict,
    as_text,
    b64decode_loose,
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
from clickstream.protocols.lzstring import LZStringError, decompress_from_base64
from clickstream.schema import RecordError

MAPPED_EVENTS = {
    "$pageview": "page_view",
    "$screen": "screen_view",
    "$pageleave": "page_leave",
    "$identify": "identify",
    "$groupidentify": "group",
    "$create_alias": "alias",
}
# PostHog's own properties worth keeping beside the custom ones; the rest ($elements, the
# feature-flag and person-processing flags, ...) are PostHog's internals.
KEPT_PROPERTIES = {
    "$title": "title",
    "title": "title",
    "$browser_language": "locale",
    "$timezone": "timezone",
    "$screen_width": "screen_width",
    "$screen_height": "screen_height",
    "$lib": "library",
    "$lib_version": "library_version",
    "$event_type": "dom_event",
    "$el_text": "element_text",
    "$external_click_url": "outbound_url",
    "$prev_pageview_pathname": "previous_path",
    "$group_key": "group_key",
    "$group_type": "group_type",
    "$anon_distinct_id": "previous_id",
}
# The properties that become canonical fields (and are not kept as properties), as their
# kind: sent as anything else, they would be lost.
MAPPED_PROPERTY_KINDS = {
    **{
        f"properties.{name}": "text"
        for name in (
            "$current_url",
            "$pathname",
            "$referrer",
            "$raw_user_agent",
            "$ip",
            "$geoip_country_code",
            "$device_type",
            "$screen_name",
        )
    },
    **{
        f"properties.{name}": "id"
        for name in ("$session_id", "$device_id", "distinct_id", "product_id")
    },
}
# An event's fields, as their kind (``wrongly_typed``).
MESSAGE_KINDS = FieldKinds(
    {
        **dict.fromkeys(("properties", "$set", "$set_once", "options"), "object"),
        **dict.fromkeys(("properties.$set", "properties.$set_once"), "object"),
        **dict.fromkeys(("distinct_id", "uuid", "session_id"), "id"),
        **dict.fromkeys(("timestamp", "sent_at"), "time"),
        "offset": "number",
        **MAPPED_PROPERTY_KINDS,
        # PostHog's own properties kept under readable names (a custom "title" is the site's)
        **{
            f"properties.{name}": "number" if name.startswith("$screen_") else "scalar"
            for name in KEPT_PROPERTIES
            if name.startswith("$")
        },
    }
)
# The fields each canonical field is mapped from, in the mapping's order (an error of the
# canonical event names the one sent).
SENT_AS = {
    "event_id": ("uuid",),
    "event_type": ("event",),
    "user_id": ("distinct_id", "properties.distinct_id"),
    "anonymous_id": ("properties.$device_id", "distinct_id", "properties.distinct_id"),
    "session_id": ("session_id", "properties.$session_id"),
    "timestamp": ("timestamp",),  # (offset is relative to the sending: no time of its own)
    "page": ("properties.$pathname", "properties.$screen_name"),
    "page_url": ("properties.$current_url",),
    "referrer": ("properties.$referrer",),
    "product_id": ("properties.product_id",),
    "value": ("properties.revenue", "properties.value"),
    "user_agent": ("properties.$raw_user_agent",),
    "ip_address": ("properties.$ip",),
    "country": ("properties.$geoip_country_code",),
    "device_type": ("properties.$device_type",),
}
SENT_AT_KINDS = FieldKinds({"sent_at": "time"})
CREATED_AT_KINDS = FieldKinds({"created_at": "time"})
# PostHog's internals, and the project key (a write key is never stored).
_DROPPED_PREFIXES = ("$",)
_DROPPED_NAMES = frozenset({"token", "api_key", "distinct_id"})
# posthog-js sends each of these on every event, null where the page's URL has none (about
# 0.5 KB per event); a null one is not kept. (Their list in posthog-js 1.449.)
_ATTRIBUTION_NAMES = frozenset(
    [
        "utm_source",
        "utm_medium",
        "utm_campaign",
        "utm_content",
        "utm_term",
        "gad_source",
        "mc_cid",
        "gclid",
        "gclsrc",
        "dclid",
        "gbraid",
        "wbraid",
        "fbclid",
        "msclkid",
        "twclid",
        "li_fat_id",
        "igshid",
        "ttclid",
        "rdt_cid",
        "epik",
        "qclid",
        "sccid",
        "oppref",
        "bfcid",
        "irclid",
        "_kx",
    ]
)


def _payload(request: SdkRequest) -> bytes | str:
    """The JSON text of the request, whatever wrapping its SDK version chose."""
    compression = (request.query.get("compression") or "").lower()
    raw = unwrap_body(request) if compression != "gzip-js" else request.body or b""
    if compression == "gzip-js":
        return inflate(raw)
    content_type = (request.header("content-type") or "").split(";")[0].strip().lower()
    text: bytes | str = raw
    if content_type == "application/x-www-form-urlencoded" or raw[:5] == b"data=":
        form = parse_qs(raw.decode("utf-8", "replace"))
        if "data" not in form:
            raise RequestError("data", "a form-encoded body needs its events in data=")
        text = form["data"][0]
        compression = compression or ("lz64" if form.get("compression") == ["lz64"] else "")
    elif not raw.strip() and request.query.get("data"):
        text = request.query["data"]  # GET /e/?data=... from the oldest SDKs
    if compression == "lz64":
        try:
            return decompress_from_base64(text.decode() if isinstance(text, bytes) else text)
        except (LZStringError, UnicodeDecodeError) as exc:
            raise RequestError("body", f"the body is not valid lz64: {exc}") from None
    stripped = text.strip()
    if compression == "base64" or (stripped and stripped[:1] not in (b"{", b"[", "{", "[")):
        as_str = stripped.decode("ascii", "replace") if isinstance(stripped, bytes) else stripped
        neither = RequestError(
            "body", f"the body is neither JSON nor base64 JSON (it starts {stripped[:8]!r})"
        )
        try:
            decoded = b64decode_loose(as_str, "body")
        except RequestError:
            if compression == "base64":
                raise
            raise neither from None
        if compression != "base64" and decoded.lstrip()[:1] not in (b"{", b"["):
            raise neither
        return decoded
    return text


def decode(request: SdkRequest) -> Decoded:
    body = parse_json(_payload(request))
    shared: dict[str, Any] = {}
    if isinstance(body, list):
        messages = body
    elif isinstance(body, dict) and isinstance(body.get("batch"), list):
        messages = body["batch"]
        shared = {name: body[name] for name in ("sent_at", "historical_migration") if name in body}
    elif isinstance(body, dict) and "batch" in body:
        raise RequestError("batch", '"batch" must be an array of events')
    elif isinstance(body, dict):
        messages = [body]
        if "sent_at" in body:
            shared["sent_at"] = body["sent_at"]
    else:
        raise RequestError("body", "the body must be an event object, an array or {batch: []}")
    if not messages:
        raise RequestError("batch", "the batch is empty")
    batch_wrongly_typed(shared, SENT_AT_KINDS)
    top = body if isinstance(body, dict) else {}
    first = messages[0] if isinstance(messages[0], dict) else {}
    sent = (
        (top.get("api_key"), "api_key"),
        (top.get("token"), "token"),
        (first.get("api_key"), "api_key"),
        (as_dict(first.get("properties")).get("token"), "properties.token"),
        (first.get("token"), "token"),
    )
    key = next((key for value, name in sent if (key := key_sent(value, name))), None)
    key = key or request.header("x-write-key") or request.query.get("key")
    return Decoded(messages=messages, key=key or None, key_field="api_key", batch=shared)


def decode_v1(request: SdkRequest) -> Decoded:
    """Capture v1 (``POST /i/v1/analytics/events``, posthog-python's ``capture_mode="v1"``):
    the key as ``Authorization: Bearer``, ``{"created_at", "batch": [...]}``; each attempt's
    ``PostHog-Request-Timestamp`` is its sending time."""
    body = parse_json(unwrap_body(request))
    if not isinstance(body, dict) or not isinstance(body.get("batch"), list):
        raise RequestError("batch", 'the body must be {"created_at": ..., "batch": [events]}')
    if not body["batch"]:
        raise RequestError("batch", "the batch is empty")
    # This attempt's time; the batch's first (created_at) where the header is unreadable.
    sent_at = request.header("posthog-request-timestamp")
    if parse_instant(sent_at) is None:
        batch_wrongly_typed(body, CREATED_AT_KINDS)
        sent_at = body.get("created_at")
    shared: dict[str, Any] = {"sent_at": sent_at} if sent_at is not None else {}
    if sdk := request.header("posthog-sdk-info"):  # "posthog-python/7.91.1", for $lib
        shared["sdk_info"] = sdk
    return Decoded(
        messages=body["batch"],
        key=bearer_token(request.header("authorization")),
        key_field="Authorization",
        batch=shared,
    )


def bearer_token(authorization: str | None) -> str | None:
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def v1_results(decoded: Decoded, errors: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """Capture v1's answer: each event's uuid (as sent) with ``ok``, ``drop`` (refused, and
    why) or ``retry`` (the stream did not take it)."""
    by_index = {error["index"]: error for error in errors if error.get("index") is not None}
    results: dict[str, dict[str, str]] = {}
    for index, message in enumerate(decoded.messages):
        sent = as_dict(message).get("uuid")
        key = sent if isinstance(sent, str) and sent else str(index)
        error = by_index.get(index)
        if error is None:
            result = {"result": "ok"}
        elif error.get("retryable"):
            result = {"result": "retry", "details": error["message"]}
        else:
            result = {"result": "drop", "details": f"{error['field']}: {error['message']}"}
        # One uuid sent twice in a batch: the answer that asks most of the SDK stands.
        if (
            _V1_PRECEDENCE[result["result"]]
            >= _V1_PRECEDENCE[results.get(key, {"result": "ok"})["result"]]
        ):
            results[key] = result
    return results


_V1_PRECEDENCE = {"ok": 0, "drop": 1, "retry": 2}


def map_messages(decoded: Decoded, received_at: datetime) -> list[dict[str, Any] | RecordError]:
    return [
        map_message(index, message, decoded.batch, received_at)
        for index, message in enumerate(decoded.messages)
    ]


def _malformed(index: int, message: dict[str, Any]) -> RecordError | None:
    name = message.get("event")
    if not isinstance(name, str) or not name.strip():
        return RecordError(index, "event", "every event needs its name in event, a string")
    if wrong_name := named_with_control_character(index, "event", name):
        return wrong_name
    return wrongly_typed(index, message, MESSAGE_KINDS)


def map_message(
    index: int, message: Any, shared: dict[str, Any] | Any, received_at: datetime
) -> dict[str, Any] | RecordError:
    if not isinstance(message, dict):
        return RecordError(index, "record", "each event must be a JSON object")
    malformed = _malformed(index, message)
    if malformed is not None:
        return malformed
    name = message["event"]
    properties = as_dict(message.get("properties"))
    distinct_id = as_text(message.get("distinct_id")) or as_text(properties.get("distinct_id"))
    if not distinct_id:
        return RecordError(index, "distinct_id", "every event needs a distinct_id")
    device_id = as_text(properties.get("$device_id"))
    if device_id and device_id != distinct_id:
        user_id, anonymous_id = distinct_id, device_id  # identified in a browser
    elif device_id:
        user_id, anonymous_id = None, distinct_id  # anonymous in a browser
    else:
        user_id, anonymous_id = distinct_id, None  # a server-side capture names the person
    event_type = MAPPED_EVENTS.get(name) or _autocapture_type(name, properties)
    kept = _kept_properties(message, properties, name, event_type, shared)
    referrer = as_text(properties.get("$referrer"))
    record: dict[str, Any] = {
        "event_id": as_text(message.get("uuid")),
        "event_type": event_type,
        "user_id": user_id,
        "anonymous_id": anonymous_id,
        "session_id": as_text(message.get("session_id")) or as_text(properties.get("$session_id")),
        "timestamp": iso(_timestamp(message, shared, received_at)),
        "page": as_text(properties.get("$pathname")),
        "page_url": as_text(properties.get("$current_url")),
        "referrer": None if referrer == "$direct" else referrer,
        "product_id": as_text(properties.get("product_id")),
        "value": non_negative(properties.get("revenue", properties.get("value"))),
        "properties": kept,
        "user_agent": as_text(properties.get("$raw_user_agent")),
        "ip_address": as_text(properties.get("$ip")),
        "country": as_text(properties.get("$geoip_country_code")),
        "device_type": as_text(properties.get("$device_type")),
    }
    if event_type == "screen_view":
        record["page"] = as_text(properties.get("$screen_name"))
    return {key: value for key, value in record.items() if value is not None}


def _kept_properties(
    message: dict[str, Any],
    properties: dict[str, Any],
    name: str,
    event_type: str,
    shared: dict[str, Any],
) -> dict[str, Any]:
    """The custom properties, PostHog's own worth keeping under readable names, the name as
    sent, the person's traits and the SDK."""
    kept: dict[str, Any] = {
        key: value
        for key, value in properties.items()
        if not key.startswith(_DROPPED_PREFIXES)
        and key not in _DROPPED_NAMES
        and (value is not None or key not in _ATTRIBUTION_NAMES)
    }
    for source, target in KEPT_PROPERTIES.items():
        if properties.get(source) is not None:
            kept.setdefault(target, properties[source])
    if event_type != name:
        kept.setdefault("event_name", name)
    if isinstance(sdk := shared.get("sdk_info"), str) and "library" not in kept:
        library, _, version = sdk.partition("/")
        kept.update(library=library[:100], library_version=version[:100])
    for extra in ("$set", "$set_once"):  # top-level (capture v0) or in properties (v1)
        traits = message.get(extra, properties.get(extra))
        if isinstance(traits, dict):
            kept.setdefault("traits", traits)
    return kept


def _autocapture_type(name: str, properties: dict[str, Any]) -> str:
    if name == "$autocapture":
        return "click" if properties.get("$event_type") in (None, "click") else "autocapture"
    return event_type_for(name)


def _timestamp(message: dict[str, Any], shared: dict[str, Any], received_at: datetime) -> Any:
    """PostHog's rules: ``offset`` (ms before sending) wins; else the timestamp corrected by
    ``sent_at`` when both are there."""
    offset = message.get("offset")
    if isinstance(offset, int | float) and not isinstance(offset, bool) and 0 <= offset < 1e11:
        return received_at - timedelta(milliseconds=offset)  # (1e11 ms: three years)
    created = parse_instant(message.get("timestamp"))
    if _skew_correction_off(message):
        return created
    sent = parse_instant(message.get("sent_at") or shared.get("sent_at"))
    return skew_corrected(created, sent, received_at)


def _skew_correction_off(message: dict[str, Any]) -> bool:
    """``$ignore_sent_at`` (capture v0's property) or v1's ``disable_skew_correction``."""
    off = as_dict(message.get("options")).get("disable_skew_correction")
    if off is None:
        off = as_dict(message.get("properties")).get("$ignore_sent_at")
    return off is True or (isinstance(off, str) and off.strip().lower() in ("true", "1"))


def flags_answer() -> dict[str, Any]:
    """What posthog-js asks ``/flags`` (``/decide`` before it) on start: there are no feature
    flags here, and nothing else to switch on."""
    return {
        "featureFlags": {},
        "featureFlagPayloads": {},
        "flags": {},
        "errorsWhileComputingFlags": False,
        "quotaLimited": [],
        "sessionRecording": False,
        "supportedCompression": ["gzip", "gzip-js"],
    }


def remote_config(token: str) -> dict[str, Any]:
    """posthog-js's remote configuration (``/array/<token>/config``): capture only; session
    recording, surveys, heatmaps and site apps are PostHog's and stay off."""
    return {
        "token": token,
        "supportedCompression": ["gzip", "gzip-js"],
        "hasFeatureFlags": False,
        "sessionRecording": False,
        "heatmaps": False,
        "surveys": False,
        "siteApps": [],
        "capturePerformance": False,
        "autocaptureExceptions": False,
        "autocapture_opt_out": False,
        "defaultIdentifiedOnly": True,
        "elementsChainAsString": True,
    }


def remote_config_script(token: str) -> str:
    """The same configuration as the script posthog-js loads first (``config.js``)."""
    config = orjson.dumps({"config": remote_config(token), "siteApps": []}).decode()
    key = orjson.dumps(token).decode()
    return (
        "window._POSTHOG_REMOTE_CONFIG = window._POSTHOG_REMOTE_CONFIG || {};\n"
        f"window._POSTHOG_REMOTE_CONFIG[{key}] = {config};\n"
    )
