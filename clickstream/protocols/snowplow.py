"""The Snowplow tracker protocol onto the canonical event: ``GET /i`` (the pixel, one event
in the query string) and ``POST /com.snowplowanalytics.snowplow/tp2`` (``payload_data``).

The write key: the trackers' unmodified configuration carries it as the app id (``appId`` in
the JavaScript trackers, ``app_id`` in the others, sent as ``aid``). ``X-Write-Key`` or
``?key=`` also work where a client can set them. Every event of one request must carry the
same ``aid`` then, so one key cannot vouch for another's events.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from clickstream.errors import RequestError
from clickstream.ingest import skew_corrected
from clickstream.protocols.common import (
    Decoded,
    FieldKinds,
    SdkRequest,
    as_dict,
    as_text,
    b64decode_loose,
    event_type_for,
    iso,
    key_sent,
    non_negative,
    parse_instant,
    parse_json,
    unwrap_body,
    wrongly_typed,
)
from clickstream.schema import (
    MAX_PROPERTIES_BYTES,
    MAX_PROPERTIES_DEPTH,
    RecordError,
    json_depth,
)

KEY_PARAMETER = "aid"
EVENT_TYPES = {"pv": "page_view", "pp": "page_ping", "tr": "purchase", "ti": "transaction_item"}
# Self-describing events whose schema names one of our standard types.
SCHEMA_TYPES = {"link_click": "click", "screen_view": "screen_view"}
ECOMMERCE_ACTIONS = {
    "add_to_cart": "add_to_cart",
    "remove_from_cart": "remove_from_cart",
    "checkout_step": "checkout",
    "transaction": "purchase",
    "product_view": "product_view",
}
# Tracker parameters kept as properties, under readable names.
KEPT_PARAMETERS = {
    "page": "title",
    "p": "platform",
    "tv": "tracker",
    "tna": "namespace",
    "lang": "locale",
    "tz": "timezone",
    "res": "screen",
    "vp": "viewport",
    "vid": "session_index",
    "se_ca": "category",
    "se_ac": "action",
    "se_la": "label",
    "se_pr": "property",
    "tr_id": "order_id",
    "tr_af": "affiliation",
    "tr_tx": "tax",
    "tr_sh": "shipping",
    "tr_cu": "currency",
    "ti_id": "order_id",
    "ti_nm": "product_name",
    "ti_ca": "product_category",
    "ti_pr": "price",
    "ti_qu": "quantity",
    "ti_cu": "currency",
    "pp_mix": "scroll_x_min",
    "pp_max": "scroll_x_max",
    "pp_miy": "scroll_y_min",
    "pp_may": "scroll_y_max",
}
# The parameters read as a number, a time or an id, or mapped onto a canonical field: sent as
# anything else (a tp2 body is JSON), they would be lost.
PARAMETER_KINDS = FieldKinds(
    {
        # what is kept as properties: the tracker protocol sends a string (or a number)
        **dict.fromkeys(KEPT_PARAMETERS, "scalar"),
        **dict.fromkeys(("se_va", "tr_tt", "tr_tx", "tr_sh", "ti_pr", "ti_qu"), "number"),
        **dict.fromkeys(("dtm", "stm", "ttm"), "time"),
        **dict.fromkeys(("url", "refr", "ua", "ip", "page"), "text"),
        **dict.fromkeys(("eid", "uid", "duid", "tnuid", "nuid", "sid", "ti_sk"), "id"),
    }
)

# The parameters each canonical field is mapped from, in the mapping's order (an error of the
# canonical event names the one sent).
SENT_AS = {
    "event_id": ("eid",),
    "event_type": ("se_ac", "e"),
    "user_id": ("uid",),
    "anonymous_id": ("duid", "tnuid", "nuid"),
    "session_id": ("sid",),
    "timestamp": ("ttm", "dtm"),
    "page_url": ("url",),
    "referrer": ("refr",),
    "product_id": ("ti_sk",),
    "value": ("se_va", "tr_tt", "ti_pr"),
    "user_agent": ("ua",),
    "ip_address": ("ip",),
}


def decode(request: SdkRequest, method: str) -> Decoded:
    if method == "GET":
        if not request.query.get("e"):
            raise RequestError("e", "the pixel needs the event's parameters (e=pv, ...)")
        messages: list[Any] = [dict(request.query)]
    else:
        body = parse_json(unwrap_body(request))
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise RequestError("body", 'the body must be payload_data: {"schema": ..., "data": []}')
        if not data:
            raise RequestError("data", '"data" is empty')
        messages = data
    header_key = request.header("x-write-key")
    if header_key or request.query.get("key"):
        key, field = header_key or request.query.get("key"), "X-Write-Key" if header_key else "key"
    else:
        first = messages[0] if isinstance(messages[0], dict) else {}
        key, field = key_sent(first.get(KEY_PARAMETER), KEY_PARAMETER), KEY_PARAMETER
    return Decoded(messages=messages, key=key, key_field=field)


def map_messages(
    decoded: Decoded, received_at: datetime, user_agent: str | None
) -> list[dict[str, Any] | RecordError]:
    key_in_app_id = decoded.key_field == KEY_PARAMETER
    answer: list[dict[str, Any] | RecordError] = []
    for index, message in enumerate(decoded.messages):
        if key_in_app_id and isinstance(message, dict) and message.get("aid") != decoded.key:
            answer.append(
                RecordError(index, "aid", "every event of a request must carry the same write key")
            )
        else:
            answer.append(
                map_event(index, message, received_at, user_agent, key_in_app_id, decoded.key)
            )
    return answer


def _json_parameter(
    event: dict[str, Any], plain: str, encoded: str, index: int
) -> tuple[Any, RecordError | None]:
    """``ue_pr``/``co`` as JSON, or ``ue_px``/``cx`` as base64 JSON."""
    for name, kind in ((plain, "JSON"), (encoded, "base64 JSON")):
        if event.get(name) not in (None, "") and not isinstance(event[name], str):
            return None, RecordError(index, name, f"must be a string of {kind}")
    try:
        if isinstance(event.get(plain), str):
            return parse_json(event[plain], plain), None
        if isinstance(event.get(encoded), str):
            return parse_json(b64decode_loose(event[encoded], encoded), encoded), None
    except RequestError as error:
        return None, RecordError(index, error.field, error.message)
    return None, None


def _schema_name(schema: Any) -> str:
    """``iglu:com.acme/button_click/jsonschema/1-0-0`` -> ``button_click``."""
    parts = schema.split("/") if isinstance(schema, str) else []
    return parts[1] if len(parts) >= 2 else ""


def _malformed(index: int, event: dict[str, Any]) -> RecordError | None:
    if not as_text(event.get("e")):
        return RecordError(index, "e", "every event needs its type (e=pv, pp, se, ue, tr, ti)")
    return wrongly_typed(index, event, PARAMETER_KINDS)


def map_event(
    index: int,
    event: Any,
    received_at: datetime,
    user_agent: str | None,
    key_in_app_id: bool = True,
    write_key: str | None = None,
) -> dict[str, Any] | RecordError:
    if not isinstance(event, dict):
        return RecordError(index, "record", "each event must be a JSON object of parameters")
    malformed = _malformed(index, event)
    if malformed is not None:
        return malformed
    kind = str(as_text(event.get("e")))
    properties: dict[str, Any] = {
        name: event[target]
        for target, name in KEPT_PARAMETERS.items()
        if event.get(target) not in (None, "")
    }
    if not key_in_app_id and event.get("aid") and event["aid"] != write_key:
        properties["app_id"] = event["aid"]  # (the key itself, sent as aid too, is not kept)
    entities = _entities(index, event, properties)
    if isinstance(entities, RecordError):
        return entities
    context_data = {name: data[-1] for name, data in entities.items()}
    session = context_data.get("client_session", {})
    value = non_negative(event.get("se_va"))
    page: str | None = None
    if kind in EVENT_TYPES:
        event_type = EVENT_TYPES[kind]
        if kind == "tr":
            value = non_negative(event.get("tr_tt"))
    elif kind == "se":
        action = as_text(event.get("se_ac"))
        if not action:
            return RecordError(index, "se_ac", "a structured event needs its action")
        event_type = event_type_for(action)
    elif kind == "ue":
        described = _self_describing(index, event, context_data, properties)
        if isinstance(described, RecordError):
            return described
        event_type, page, described_value = described
        value = described_value if described_value is not None else value
    else:
        return RecordError(index, "e", f"{kind[:20]!r} is not an event type this collector reads")
    timestamp = parse_instant(event.get("ttm")) or skew_corrected(
        parse_instant(event.get("dtm")), parse_instant(event.get("stm")), received_at
    )
    platform = event.get("p") or "web"
    record: dict[str, Any] = {
        "event_id": as_text(event.get("eid")),
        "event_type": event_type,
        "user_id": as_text(event.get("uid")) or as_text(session.get("userId")),
        "anonymous_id": as_text(event.get("duid"))
        or as_text(event.get("tnuid"))
        or as_text(event.get("nuid")),
        "session_id": as_text(event.get("sid")) or as_text(session.get("sessionId")),
        "timestamp": iso(timestamp),
        "page": page,
        "page_url": as_text(event.get("url")),
        "referrer": as_text(event.get("refr")),
        "product_id": as_text(event.get("ti_sk")),
        "value": value,
        "properties": properties,
        "user_agent": as_text(event.get("ua")) or (user_agent if platform == "web" else None),
        "ip_address": as_text(event.get("ip")),
    }
    return {key: value for key, value in record.items() if value is not None}


def _entities(
    index: int, event: dict[str, Any], properties: dict[str, Any]
) -> dict[str, list[dict[str, Any]]] | RecordError:
    """The event's context entities (``co``/``cx``) by schema name, each name's entities in
    the order sent (an ecommerce event carries one ``product`` per product), as Snowplow's
    loaders keep them: one array per schema. Stored in ``properties["contexts"]``."""
    contexts, error = _json_parameter(event, "co", "cx", index)
    if error:
        return error
    if contexts is None:
        return {}
    sent = "co" if isinstance(event.get("co"), str) else "cx"
    if not isinstance(contexts, dict) or not isinstance(contexts.get("data"), list):
        return RecordError(index, sent, 'must be {"schema": ..., "data": [entities]}')
    entities: dict[str, list[dict[str, Any]]] = {}
    for position, item in enumerate(contexts["data"]):
        name = _schema_name(item.get("schema")) if isinstance(item, dict) else ""
        if not name or not isinstance(item.get("data"), dict):
            return RecordError(
                index, f"{sent}.data.{position}", 'must be {"schema": "iglu:...", "data": {...}}'
            )
        entities.setdefault(name, []).append(item["data"])
    if entities:
        properties["contexts"] = entities
        if (too_large := _entities_too_large(properties)) is not None:
            # Never the event refused for what its tracker attached: the names stay, in the
            # same shape (each array empty), and why their data did not.
            properties["contexts"] = {name: [] for name in sorted(entities)}
            properties["contexts_data_dropped"] = too_large
    return entities


def _entities_too_large(properties: dict[str, Any]) -> str | None:
    """Why the entities' data cannot be kept within the properties' limits, if it cannot."""
    size = len(orjson.dumps(properties))
    if size > MAX_PROPERTIES_BYTES:
        return f"the entities make the properties {size} bytes; the limit is {MAX_PROPERTIES_BYTES}"
    if json_depth(properties) > MAX_PROPERTIES_DEPTH:
        return f"an entity's data nests past the properties' {MAX_PROPERTIES_DEPTH} levels"
    return None


def _self_describing(
    index: int, event: dict[str, Any], contexts: dict[str, Any], properties: dict[str, Any]
) -> tuple[str, str | None, float | None] | RecordError:
    """An ``e=ue`` event's type, page and value, its data added to ``properties``."""
    outer, error = _json_parameter(event, "ue_pr", "ue_px", index)
    if error:
        return error
    inner = as_dict(as_dict(outer).get("data"))
    name = _schema_name(inner.get("schema"))
    sent = "ue_pr" if isinstance(event.get("ue_pr"), str) else "ue_px"
    if not name:
        return RecordError(index, sent, "a self-describing event needs data.schema")
    if not isinstance(inner.get("data"), dict):  # its data would be lost
        return RecordError(index, sent, "a self-describing event's data.data must be an object")
    data = inner["data"]
    event_type = SCHEMA_TYPES.get(name) or event_type_for(name)
    value = None
    if name == "snowplow_ecommerce_action":
        event_type = ECOMMERCE_ACTIONS.get(str(data.get("type")), event_type)
        value = non_negative(as_dict(contexts.get("transaction")).get("revenue"))
    properties["schema"] = inner.get("schema")
    properties.update({key: item for key, item in data.items() if key not in properties})
    page = as_text(data.get("name")) if name == "screen_view" else None
    return event_type, page, value


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
