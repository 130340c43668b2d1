"""The one canonical event model, and the tolerant reader that maps the payload shapes users
already send (the seed systems' payloads) onto it.

``IncomingEvent`` accepts the known aliases and flat/nested variants; ``Event`` is what goes on
the stream, into the aggregates and into the archive.
"""

from __future__ import annotations

import ipaddress
import math
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, cast
from urllib.parse import urlsplit

import orjson
from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    with_config,
)
from pydantic_core import CoreSchema, PydanticCustomError, SchemaValidator, core_schema
from typing_extensions import TypedDict

STANDARD_EVENT_TYPES = (
    "page_view",
    "click",
    "search",
    "add_to_cart",
    "remove_from_cart",
    "checkout",
    "purchase",
)
# Names other trackers use for the same standard events.
EVENT_TYPE_ALIASES = {
    "view": "page_view",
    "pageview": "page_view",
    "page-view": "page_view",
    "page": "page_view",
    "addtocart": "add_to_cart",
    "add-to-cart": "add_to_cart",
    "removefromcart": "remove_from_cart",
    "order": "purchase",
}
FUNNEL_STEPS = ("page_view", "add_to_cart", "checkout", "purchase")
CUSTOM_EVENT_TYPE = re.compile(r"^[a-z][a-z0-9_.:-]{0,63}$")
# What a record may send: a custom type in any case, or a standard type or alias; stored
# lower-cased (event_type_name).
EVENT_TYPE_PATTERN = r"^[A-Za-z][A-Za-z0-9_.:-]{0,63}$"
EVENT_TYPE_MESSAGE = (
    "custom event types start with a letter and use only a-z, 0-9, '_', '.', ':', "
    "'-' (at most 64 characters)"
)
MAX_FUTURE_SKEW = timedelta(hours=24)
MAX_ID_LENGTH = 256
MAX_URL_LENGTH = 2048
MAX_PROPERTIES_BYTES = 8192  # properties (with unmapped top-level fields) as compact JSON
MAX_PROPERTIES_DEPTH = 5  # nested objects/arrays, the properties object itself included
# Event ids that are not UUIDs (seed 000 sends "id": "unique-uuid") are mapped to a stable
# UUID in this namespace, so a client's retry of the same id stays the same event.
CLIENT_ID_NAMESPACE = uuid.UUID("6f1b1d1e-5c0a-4f59-9d5e-2d8f3c1a7b10")
SCHEMA_VERSION = 1

# C0 controls and DEL are refused by pydantic-core's own (Rust) pattern check, not a Python
# validator per field: ingest's hot path runs it on every string of every record.
NO_CONTROL_PATTERN = r"^[^\x00-\x1f\x7f]*$"
CONTROL_MESSAGE = "must not contain control characters (U+0000-U+001F, U+007F)"
SURROGATE_MESSAGE = (
    "holds half of a UTF-16 surrogate pair (a character cut in two?), which is not text"
)
# The stored form (Event, Device, Location), read back from the stream and the archive.
Text = Annotated[str, StringConstraints(pattern=NO_CONTROL_PATTERN)]


class _ControlsRefusedAsSent:
    """Refuses a control character anywhere in a string as sent, then validates the string as
    declared (where ``str_strip_whitespace`` strips its ends, a control character there
    included): a chain of two pydantic-core string checks. Its JSON schema is the declared
    string's, with the control pattern where it declares none."""

    def __get_pydantic_core_schema__(
        self, source: type[Any], handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        declared = cast(core_schema.StringSchema, handler(source))
        documented: dict[str, Any] = {"pattern": declared.get("pattern", NO_CONTROL_PATTERN)}
        if "max_length" in declared:
            documented["maxLength"] = declared["max_length"]
        as_sent = core_schema.str_schema(
            pattern=NO_CONTROL_PATTERN,
            strip_whitespace=False,
            metadata={"pydantic_js_updates": documented},
        )
        return core_schema.chain_schema([as_sent, declared])


# What clients send, by limit. The limit is part of the type so that it is checked in the
# chain's second step (a Field limit on the chain would become a Python validator).
SentId = Annotated[str, StringConstraints(max_length=MAX_ID_LENGTH), _ControlsRefusedAsSent()]
SentUrl = Annotated[str, StringConstraints(max_length=MAX_URL_LENGTH), _ControlsRefusedAsSent()]
SentName = Annotated[str, StringConstraints(max_length=64), _ControlsRefusedAsSent()]
SentCity = Annotated[str, StringConstraints(max_length=128), _ControlsRefusedAsSent()]
SentUserType = Annotated[str, StringConstraints(max_length=32), _ControlsRefusedAsSent()]
SentUserAgent = Annotated[str, StringConstraints(max_length=1024), _ControlsRefusedAsSent()]
SentEventType = Annotated[
    str,
    StringConstraints(max_length=64, pattern=EVENT_TYPE_PATTERN),
    _ControlsRefusedAsSent(),
]

# A JSON text holds a control character only as one of these escapes or a raw DEL byte (the
# parser refuses raw C0 bytes in strings): a body with none needs no control check.
_CONTROL_ESCAPE = re.compile(rb"\\(?:[bfnrt]|u00[01][0-9A-Fa-f]|u007[Ff])")


def may_hold_control_characters(raw_json: bytes) -> bool:
    """Whether any string of this JSON can decode to a C0 control or DEL (an escaped
    backslash before ``n`` answers yes too: the check is then made, never skipped)."""
    return b"\x7f" in raw_json or (
        b"\\" in raw_json and _CONTROL_ESCAPE.search(raw_json) is not None
    )


def without_control_check(model: type[BaseModel]) -> SchemaValidator:
    """``model``'s validator without the control-character check of the strings clients send
    (``_ControlsRefusedAsSent``), and otherwise the same (its instances are ``model``'s and its
    nested models'), for JSON that ``may_hold_control_characters`` clears: the check is a
    sixth to a fifth of the parse."""

    def without_check(node: Any) -> Any:
        if isinstance(node, list):
            return [without_check(value) for value in node]
        if not isinstance(node, dict):
            return node
        if node.get("type") == "chain" and node["steps"][0].get("pattern") == NO_CONTROL_PATTERN:
            return without_check(node["steps"][1])
        return {key: without_check(value) for key, value in node.items()}

    # Without _use_prebuilt=False pydantic-core reuses each nested model's own validator,
    # check and all. The argument is private (pydantic-core 2.50.4, pinned): were it gone,
    # this raises at import; were its meaning changed, a test sees the check kept.
    schema = without_check(model.__pydantic_core_schema__)
    return SchemaValidator(schema, _use_prebuilt=False)


class Device(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore", frozen=True)

    device_type: Text | None = Field(
        default=None, max_length=64, validation_alias=AliasChoices("device_type", "deviceType")
    )
    platform: Text | None = Field(default=None, max_length=64)
    browser: Text | None = Field(default=None, max_length=64)


class Location(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    country: Text | None = Field(default=None, max_length=64)
    city: Text | None = Field(default=None, max_length=128)


class Event(BaseModel):
    """The canonical event: what the stream carries and what every consumer reads."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    event_id: str
    event_type: str
    timestamp: datetime
    received_at: datetime
    user_id: str | None = None
    session_id: str | None = None
    page: str | None = None
    page_url: str | None = None
    referrer: str | None = None
    product_id: str | None = None
    value: float | None = None
    properties: dict[str, Any] = Field(default_factory=dict)
    device: Device = Field(default_factory=Device)
    location: Location = Field(default_factory=Location)
    user_type: str | None = None
    user_agent: str | None = None
    ip_truncated: str | None = None
    anonymous_id: str | None = None  # a device's id before sign-in (Segment's anonymousId)
    is_bot: bool = False  # a crawler or headless browser: archived, left out of aggregates
    schema_version: int = SCHEMA_VERSION

    @property
    def partition_key(self) -> str:
        return partition_key(self.model_dump(include=_KEY_FIELDS))

    @property
    def session_key(self) -> str:
        """Whose visits an event belongs to (split into visits by the idle timeout): the
        session, else the device (SDKs such as Segment's send no session), else the user."""
        if self.session_id:
            return self.session_id
        if self.anonymous_id:
            return f"device:{self.anonymous_id}"
        return f"user:{self.user_id}" if self.user_id else f"event:{self.event_id}"


_KEY_FIELDS = {"session_id", "anonymous_id", "user_id", "event_id"}


def partition_key(event: dict[str, Any]) -> str:
    """Kinesis partition key of a canonical event: a session's (else a device's, else a
    user's) events stay on one shard, in order."""
    return str(id_owner(event) or event["event_id"])


# What a record sends as ``device`` / ``location``: TypedDicts, validated to plain dicts (as
# nested models they took a fifth of ingest's parse); Device and Location are the stored form.
# Fields of theirs nobody maps are kept (enrich puts them in ``properties``), not dropped.
@with_config(ConfigDict(extra="allow", str_strip_whitespace=True))
class IncomingDevice(TypedDict, total=False):
    device_type: Annotated[
        SentName | None, Field(validation_alias=AliasChoices("device_type", "deviceType"))
    ]
    platform: SentName | None
    browser: SentName | None


@with_config(ConfigDict(extra="allow", str_strip_whitespace=True))
class IncomingLocation(TypedDict, total=False):
    country: SentName | None
    city: SentCity | None


def _place_name_as_country(value: Any) -> Any:
    """Seed 004 sends ``"location": "<region or country>"``: read as the country, so its
    limits and errors are the country's (``location.country``)."""
    return {"country": value} if isinstance(value, str) else value


def _not_a_boolean(value: Any) -> Any:
    """A number is never ``true``: pydantic would read it as 1 (and ``false`` as 0), a
    revenue nobody sent. (The SDK routes refuse one too.)"""
    if isinstance(value, bool):
        raise PydanticCustomError("float_type", "a boolean is no number")
    return value


def first_address(sent: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a client sent, or the first of a forwarded-for list; None when it is none."""
    try:
        return ipaddress.ip_address(sent.split(",", 1)[0].strip())
    except ValueError:
        return None


def _an_address(sent: str | None) -> str | None:
    """An IP address, or a forwarded-for list whose first is one (enrich truncates it): any
    other value would be stored as no address at all ("" is none sent)."""
    if sent and first_address(sent) is None:
        raise PydanticCustomError("ip_address", "must be an IPv4 or IPv6 address")
    return sent


class IncomingEvent(BaseModel):
    """One record as clients send it. Known aliases from other trackers are accepted; fields
    nobody maps are kept under ``properties`` rather than dropped."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, str_strip_whitespace=True)

    event_id: SentId | None = Field(
        default=None, validation_alias=AliasChoices("event_id", "eventId", "id")
    )
    event_type: SentEventType | None = Field(
        default=None, validation_alias=AliasChoices("event_type", "eventType", "type", "event")
    )
    user_id: SentId | None = Field(default=None, validation_alias=AliasChoices("user_id", "userId"))
    session_id: SentId | None = Field(
        default=None, validation_alias=AliasChoices("session_id", "sessionId")
    )
    anonymous_id: SentId | None = Field(
        default=None,
        validation_alias=AliasChoices("anonymous_id", "anonymousId", "device_id", "deviceId"),
    )
    timestamp: datetime | None = Field(
        default=None, validation_alias=AliasChoices("timestamp", "event_time", "eventTime", "ts")
    )
    page: SentUrl | None = None
    page_url: SentUrl | None = Field(
        default=None, validation_alias=AliasChoices("page_url", "pageUrl", "url")
    )
    referrer: SentUrl | None = Field(
        default=None,
        validation_alias=AliasChoices("referrer", "referrer_url", "referrerUrl", "referer"),
    )
    product_id: SentId | None = Field(
        default=None, validation_alias=AliasChoices("product_id", "productId")
    )
    value: Annotated[float | None, BeforeValidator(_not_a_boolean)] = Field(
        default=None,
        ge=0,
        le=1e12,
        allow_inf_nan=False,
        validation_alias=AliasChoices("value", "revenue", "amount"),
    )
    properties: dict[str, Any] = Field(default_factory=dict)
    device: IncomingDevice | None = None
    device_type: SentName | None = Field(
        default=None, validation_alias=AliasChoices("device_type", "deviceType")
    )
    platform: SentName | None = None
    browser: SentName | None = None
    location: Annotated[IncomingLocation | None, BeforeValidator(_place_name_as_country)] = None
    country: SentName | None = None
    city: SentCity | None = None
    user_type: SentUserType | None = Field(
        default=None, validation_alias=AliasChoices("user_type", "userType")
    )
    user_agent: SentUserAgent | None = Field(
        default=None, validation_alias=AliasChoices("user_agent", "userAgent")
    )
    ip_address: Annotated[SentName | None, AfterValidator(_an_address)] = Field(
        default=None, validation_alias=AliasChoices("ip_address", "ipAddress", "ip")
    )
    # Seed 000's click payload names the clicked element and has no event type.
    button: SentId | None = None


@dataclass(frozen=True)
class RecordError:
    index: int
    field: str
    message: str
    retryable: bool = False  # the record was valid; sending it again may succeed

    def as_dict(self) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "index": self.index,
            "field": _as_text(self.field),  # a field named by a key sent with a lone surrogate
            "message": _as_text(self.message),
        }
        if self.retryable:
            answer["retryable"] = True
        return answer


def holds_control_character(text: str) -> bool:
    """Whether ``text`` holds a control character (U+0000-U+001F, U+007F)."""
    return _NO_CONTROL.fullmatch(text) is None


_NO_CONTROL = re.compile(NO_CONTROL_PATTERN)


def iso_time(text: str) -> datetime:
    """An ISO-8601 date or time as sent, its ``T`` and ``Z`` in either case (RFC 3339 allows
    both, and pydantic reads a record's own times so); naive when it names no zone. Raises
    ValueError for anything else."""
    return datetime.fromisoformat(text.strip().upper())


def holds_surrogate(text: str) -> bool:
    """Whether ``text`` holds a lone UTF-16 surrogate (which no UTF-8 can encode)."""
    return not text.isascii() and any("\ud800" <= c <= "\udfff" for c in text)


def _as_text(value: str) -> str:
    """``value`` with each lone surrogate as U+FFFD, so that an answer naming it encodes."""
    if not holds_surrogate(value):
        return value
    return value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def json_depth(value: Any) -> int:
    """Nesting depth of JSON containers (``{}`` is 1, ``{"a": []}`` is 2), iteratively, so a
    hostile 100,000-level document cannot exhaust the stack."""
    if type(value) is dict:
        for child in value.values():
            if type(child) is dict or type(child) is list:
                break
        else:
            return 1  # flat, as most properties are (a loop: ingest runs this on every record)
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        current, depth = stack.pop()
        if isinstance(current, dict):
            children: Any = current.values()
        elif isinstance(current, list):
            children = current
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > 10 * MAX_PROPERTIES_DEPTH:
            return deepest  # far past any limit: no need to walk the rest
        stack.extend(
            (child, depth + 1) for child in children if type(child) in _CONTAINERS
        )  # (scalars, most values, are not pushed: ingest runs this on every record)
    return deepest


_CONTAINERS = (dict, list)


_CANONICAL_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def normalize_event_id(raw_id: str | None, owner: str | None = None) -> str:
    """The event id of a client's id: a UUID as itself, any other id made into one within
    its ``owner`` (the session, else the device, else the user: ``id_owner``), because a
    client's own numbering ("1", "2", ...) repeats from device to device, while a resend
    of a record names the same owner."""
    if not raw_id:
        return str(uuid.uuid4())
    return _uuid_spelled(raw_id) or str(
        uuid.uuid5(CLIENT_ID_NAMESPACE, f"{owner}\x1f{raw_id}" if owner else raw_id)
    )


def _uuid_spelled(raw_id: str) -> str | None:
    """The id in a UUID's canonical spelling; None when it is no UUID in any spelling."""
    if _CANONICAL_UUID.match(raw_id):
        return raw_id  # already what str(uuid.UUID(...)) would give
    try:
        return str(uuid.UUID(raw_id))
    except ValueError:
        return None


def id_owner(record: IncomingEvent | dict[str, Any]) -> str | None:
    """Whose events a record's id is unique among, and whose events share a shard
    (``partition_key``): its session, else its device, else its user."""
    if isinstance(record, dict):
        return record.get("session_id") or record.get("anonymous_id") or record.get("user_id")
    return record.session_id or record.anonymous_id or record.user_id


def client_event_id(raw_id: str | None) -> str | None:
    """A client's own id that is no UUID in any spelling ("order-123", Segment's "ajs-next-..."),
    as sent: its event id is made from it, and the id it knows is kept beside."""
    return raw_id if raw_id and _uuid_spelled(raw_id) is None else None


def content_event_id(
    incoming: IncomingEvent, copies: dict[bytes, int], address: str | None = None
) -> str | None:
    """The id of a record sent without one but with its own time, made from all it holds (and
    the address it came from, if given), so that a client's resend of the request is the
    same events (counted once), as the SDK routes do. ``copies`` counts the records alike met
    so far in the request: the second such record is another event, with another id. None for
    a record that cannot be encoded (a lone surrogate): it is refused later, by its field."""
    try:
        content = orjson.dumps(
            [incoming.model_dump(mode="json", exclude_none=True), address],
            option=orjson.OPT_SORT_KEYS,
        )
    except orjson.JSONEncodeError:
        return None
    return copy_id(content, copies)


def copy_id(content: bytes, copies: dict[bytes, int]) -> str:
    """A stable id for ``content`` (JSON): its n-th copy in one request gets the n-th id."""
    copy = copies.get(content, 0)
    copies[content] = copy + 1
    name = content.decode() + (f"#{copy}" if copy else "")
    return str(uuid.uuid5(CLIENT_ID_NAMESPACE, name))


def page_path(page: str | None, page_url: str | None) -> str | None:
    """The page as a path: '/home' for 'home', '/home', or 'https://site/home?x=1'."""
    candidate = page or page_url
    if not candidate:
        return None
    if "://" in candidate:
        try:
            return urlsplit(candidate).path or "/"
        except ValueError:  # e.g. "http://[" (a bracket that opens no IPv6 address)
            candidate = candidate.split("://", 1)[1]
            candidate = "/" + candidate.split("/", 1)[1] if "/" in candidate else "/"
    path = candidate.split("?", 1)[0].split("#", 1)[0]
    return path if path.startswith("/") else "/" + path


def _pydantic_field(error: Any) -> str:
    location = [str(part) for part in error["loc"]]
    if not location and error["type"] == "string_unicode" and isinstance(error["input"], str):
        return str(error["input"])  # (a top-level key that is no text: pydantic names no place)
    return ".".join(location) if location else "record"


def parse_incoming(index: int, record: Any) -> IncomingEvent | list[RecordError]:
    """Validate one record; on failure, one error per offending field."""
    if not isinstance(record, dict):
        return [RecordError(index, "record", f"must be a JSON object, got {described(record)}")]
    try:
        incoming = IncomingEvent.model_validate(record)
    except ValidationError as exc:
        return [
            RecordError(index, _pydantic_field(err), _message(err))
            for err in exc.errors(include_url=False)
        ]
    return typed_incoming(index, incoming)


def names_its_type(incoming: IncomingEvent) -> bool:
    """A record has a type, or is one of seed 000's button clicks (typed as clicks)."""
    return incoming.event_type is not None or incoming.button is not None


def typed_incoming(index: int, incoming: IncomingEvent) -> IncomingEvent | list[RecordError]:
    if not names_its_type(incoming):
        return [RecordError(index, "event_type", "is required")]
    return incoming


_RECORDS = TypeAdapter(list[IncomingEvent])


def parse_incoming_all(records: Sequence[Any]) -> list[IncomingEvent | list[RecordError]]:
    """``parse_incoming`` of each record. A batch of valid objects is validated in one call
    (pydantic-core loops in Rust: a third less time per record); one that is not, record by
    record, so each error names its record."""
    if all(type(record) is dict for record in records):
        try:
            valid = _RECORDS.validate_python(records)
        except ValidationError:
            pass
        else:
            return [typed_incoming(index, incoming) for index, incoming in enumerate(valid)]
    return [parse_incoming(index, record) for index, record in enumerate(records)]


# pydantic-core's error types, in the words the SDK routes use for a field of the wrong kind
_WANTED = {
    "string_type": "a string",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
    "list_type": "an array",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "float_type": "a number",
    "float_parsing": "a number",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    **dict.fromkeys(
        (
            "datetime_type",
            "datetime_parsing",
            "datetime_from_date_parsing",
            "datetime_object_invalid",
        ),
        "an ISO-8601 time (or epoch seconds or milliseconds)",
    ),
}


def _message(error: Any) -> str:
    """A field's error as the SDK routes word theirs: what it must be, and what was sent."""
    kind, context, sent = error.get("type"), error.get("ctx") or {}, error.get("input")
    pattern = context.get("pattern")
    if pattern == NO_CONTROL_PATTERN:
        return CONTROL_MESSAGE
    if pattern == EVENT_TYPE_PATTERN:
        blank = isinstance(sent, str) and not sent.strip()
        return "must not be empty" if blank else EVENT_TYPE_MESSAGE
    if kind == "string_unicode":  # (pydantic's words for a lone surrogate)
        return SURROGATE_MESSAGE
    if kind in _WANTED:
        reason = f" ({context['error']})" if context.get("error") else ""  # "month value is..."
        return f"must be {_WANTED[kind]}, got {described(sent)}{reason}"
    if kind == "string_too_long":  # (counted as kept: the ends' spaces are stripped first)
        length = len(sent.strip()) if isinstance(sent, str) else len(sent)
        return f"must be at most {context['max_length']} characters, got {length}"
    if kind in _BOUNDS:
        words, bound = _BOUNDS[kind]
        return f"must be {words} {_number_text(context[bound])}, got {_number_text(sent)}"
    if kind == "finite_number":
        return "must be a finite number"
    if kind == "missing":
        return "is required"
    return str(error["msg"])


_BOUNDS = {
    "greater_than_equal": ("at least", "ge"),
    "greater_than": ("more than", "gt"),
    "less_than_equal": ("at most", "le"),
    "less_than": ("less than", "lt"),
}


def _number_text(value: Any) -> str:
    if json_type_name(value) == "number":
        whole = math.isfinite(value) and value == int(value) and abs(value) < 1e15
        return str(int(value)) if whole else repr(value)  # (every digit: 1e12 + 0.5 is no 1e12)
    return described(value)  # (a numeric string: as sent)


def described(value: Any) -> str:
    """A sent value as an error shows it: a string quoted (its start), else its JSON type."""
    if isinstance(value, str):
        return repr(value[:40])
    type_name = json_type_name(value)
    if type_name == "null":
        return type_name
    return f"{'an' if type_name[0] in 'ao' else 'a'} {type_name}"  # an object, an array


def event_type_name(sent: str) -> str:
    """A valid sent type as stored: lower case, other trackers' names for ours mapped."""
    name = sent.lower()
    return EVENT_TYPE_ALIASES.get(name, name)


def utc(timestamp: datetime) -> datetime:
    """A sent time in UTC (a time without a zone is taken as UTC). A time so near the ends of
    the calendar that it cannot be moved stays as sent; the age limits refuse it."""
    if timestamp.tzinfo is UTC:
        return timestamp
    if timestamp.tzinfo is None:
        return timestamp.replace(tzinfo=UTC)
    # pydantic-core's own zones become datetime.UTC, which orjson encodes natively (astimezone:
    # half the cost of replace(tzinfo=...), whose keyword parsing is slow on ingest's hot path)
    try:
        return timestamp.astimezone(UTC)
    except OverflowError:
        return timestamp


def json_type_name(value: Any) -> str:
    """A parsed JSON value's type as JSON names it."""
    names: dict[type, str] = {
        dict: "object",
        list: "array",
        str: "string",
        bool: "boolean",
        int: "number",
        float: "number",
        type(None): "null",
    }
    return names.get(type(value), type(value).__name__)


EventTypeName = Literal[
    "page_view", "click", "search", "add_to_cart", "remove_from_cart", "checkout", "purchase"
]
