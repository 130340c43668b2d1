"""What the SDK protocols share: the request as a protocol sees it, body decoding with a
bounded inflate, event names made into event types, and clock-skew correction."""

from __future__ import annotations

import base64
import binascii
import math
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from clickstream.errors import RequestError
from clickstream.headers import header
from clickstream.ingest import (
    MAX_BODY_BYTES,
    check_content_type,
    decoded_body,
    read_json,
)
from clickstream.schema import (
    CONTROL_MESSAGE,
    CUSTOM_EVENT_TYPE,
    STANDARD_EVENT_TYPES,
    SURROGATE_MESSAGE,
    RecordError,
    described,
    holds_control_character,
    holds_surrogate,
    iso_time,
    json_type_name,
)

# Bodies some SDKs send (gzip, base64, form-encoded); JSON is read from each of them.
SDK_CONTENT_TYPES = (
    "application/json",
    "text/plain",
    "application/x-www-form-urlencoded",
    "application/octet-stream",
    "application/gzip",
    "application/x-gzip",
)


@dataclass(frozen=True)
class SdkRequest:
    """One HTTP request to an SDK endpoint; header names lower-case."""

    body: bytes | None
    headers: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, str] = field(default_factory=dict)
    path: str = ""
    conflicting: tuple[str, ...] = ()  # query parameters sent with different values

    def header(self, name: str) -> str | None:
        return header(self.headers, name)


@dataclass
class Decoded:
    """A request's messages (JSON values, one per event), and the write key it carried."""

    messages: list[Any]
    key: str | None
    key_field: str
    batch: Mapping[str, Any] = field(default_factory=dict)  # fields shared by every message


def check_sdk_content_type(content_type: str | None) -> None:
    if content_type is None or not content_type.strip():
        return
    media_type = content_type.partition(";")[0].strip().lower()
    if media_type not in SDK_CONTENT_TYPES:
        raise RequestError(
            "Content-Type",
            f"Content-Type {media_type[:100]!r} is not accepted; send JSON "
            "(application/json or text/plain), gzipped or not",
            415,
        )
    if media_type in ("application/json", "text/plain"):
        check_content_type(content_type)  # the charset rule


def unwrap_body(request: SdkRequest, limit: int = MAX_BODY_BYTES) -> bytes:
    """The body with ``Content-Encoding: gzip`` (or bare gzip bytes) undone."""
    return decoded_body(request.body, request.header("content-encoding"), limit)


def parse_json(data: bytes | str, what: str = "body") -> Any:
    if not data or not data.strip():
        raise RequestError(what, f"the {what} is empty; send JSON")
    return read_json(data, what)


def b64decode_loose(text: str, what: str) -> bytes:
    """Base64 as trackers send it: standard or URL-safe alphabet, padding optional."""
    cleaned = text.strip().replace("-", "+").replace("_", "/").replace(" ", "+")
    try:
        return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise RequestError(what, f"{what} is not valid base64") from None


# Segment's e-commerce spec names and PostHog's/Snowplow's built-ins, as our standard types.
STANDARD_NAMES = {
    "products searched": "search",
    "product added": "add_to_cart",
    "product removed": "remove_from_cart",
    "checkout started": "checkout",
    "order completed": "purchase",
}
_NOT_IN_TYPE = re.compile(r"[^a-z0-9_.:-]+")


def event_type_for(name: str) -> str:
    """An SDK's free-text event name ("Signed Up", "$rageclick") as one of our event types:
    a standard type where the name is a known synonym, else a slug ("signed_up")."""
    lowered = name.strip().lower()
    if lowered in STANDARD_NAMES:
        return STANDARD_NAMES[lowered]
    if lowered in STANDARD_EVENT_TYPES:
        return lowered
    slug = _NOT_IN_TYPE.sub("_", lowered.lstrip("$")).strip("_")[:64]
    # A name in another script has no slug, and "Café" and "Cafè" the same one ("caf"): the
    # name's digest tells them apart (not for a typographic apostrophe or dash: no letter).
    if not slug or any(not c.isascii() and c.isalnum() for c in lowered):
        digest = name_digest(unicodedata.normalize("NFC", lowered))
        slug = f"{slug[:55]}_{digest}" if slug else f"event_{digest}"
    if not slug[0].isalpha() or not slug.isascii():
        slug = ("e_" + slug)[:64]
    return slug if CUSTOM_EVENT_TYPE.match(slug) else "event_" + slug.encode().hex()[:16]


def name_digest(name: str) -> str:
    """32-bit FNV-1a of the name's UTF-8, in hex. By hand, because the browser tracker
    (``tracker/cs.js``) must make the same digest in a few lines of plain JavaScript."""
    digest = 0x811C9DC5
    for byte in name.encode("utf-8", "surrogatepass"):  # (a lone surrogate is refused later)
        digest = ((digest ^ byte) * 0x01000193) & 0xFFFFFFFF
    return f"{digest:08x}"


# Epoch milliseconds before 1973-03-03 are no clock's reading: a count of seconds, or junk.
EARLIEST_EPOCH_MS = 100_000_000_000


def parse_instant(value: Any) -> datetime | None:
    """An ISO-8601 string or epoch milliseconds (from 1973) as UTC; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        if value < EARLIEST_EPOCH_MS:  # 5, or seconds (1764000000) where ms were meant
            return None
        try:
            return datetime.fromtimestamp(value / 1000, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str) and value:
        text = value.strip()
        if text.isascii() and text.isdigit():  # ("²".isdigit() is true, int("²") fails)
            return parse_instant(int(text))
        try:
            parsed = iso_time(text)
            return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
        except (ValueError, OverflowError):  # not a time, or one no zone can move (year 1)
            return None
    return None


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def mapping_error(index: int, field_name: str, message: str) -> RecordError:
    return RecordError(index, field_name, message)


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


class FieldKinds:
    """Fields by dotted path (``context.page.url``), each with the kind it must be sent as:
    an ``object``, a ``time`` (ISO-8601 or epoch milliseconds), a ``number`` (or a numeric
    string), an ``id`` (a string or number), ``text`` (a string: a URL sent as 5 is no URL),
    a ``scalar`` (a string or number, kept as a property).
    Kept as a tree of the paths, so that a check looks only into the objects a message holds
    (looked up path by path, the check took 40 % of a Segment message's mapping)."""

    def __init__(self, kinds: Mapping[str, str]) -> None:
        self.kinds = dict(kinds)
        self.tree: _KindTree = {}
        for path, kind in self.kinds.items():
            if kind not in _KINDS:
                raise ValueError(f"{path}: no kind {kind!r}")
            node, *parents = reversed(path.split("."))
            level = self.tree
            for parent in reversed(parents):
                level = level.setdefault(parent, [None, {}])[1]
            level.setdefault(node, [None, {}])[0] = kind


# A field's name: [its kind or None (only its fields are checked), its fields].
_KindTree = dict[str, list[Any]]


def wrongly_typed(index: int, message: dict[str, Any], expected: FieldKinds) -> RecordError | None:
    """The first field of ``message`` that is sent but not of the kind its SDK sends
    (``FieldKinds``); absent, null and "" are not sent. Without this the mapping would drop
    the field's value, or put the server's time in its place."""
    return _first_wrong(index, message, expected.tree, "")


def _first_wrong(
    index: int, message: dict[str, Any], tree: _KindTree, prefix: str
) -> RecordError | None:
    for name, (kind, fields) in tree.items():
        value = message.get(name)
        if value is None or value == "":
            continue
        if kind is not None and not _KINDS[kind][0](value):
            return RecordError(index, prefix + name, _wanted(kind, value))
        if fields and isinstance(value, dict):
            wrong = _first_wrong(index, value, fields, f"{prefix}{name}.")
            if wrong is not None:
                return wrong
    return None


def _wanted(kind: str, value: Any) -> str:
    # (a time sent as a number is shown: 1764000000 is seconds, where milliseconds are read)
    number = json_type_name(value) == "number"
    shown = repr(value) if kind == "time" and number else described(value)
    return f"must be {_KINDS[kind][1]}, got {shown}"


def field_as_sent(
    message: Any,
    record: dict[str, Any],
    field_name: str,
    sent_as: Mapping[str, tuple[str, ...]],
    batch: Mapping[str, Any] | None = None,
) -> str:
    """The field of ``message`` (or of its ``batch``'s shared fields, such as a Segment
    batch's ``context``) that a canonical field of its ``record`` was mapped from: the first
    of ``sent_as[field_name]`` holding the mapped text, else the first sent; so that an error
    names what the SDK sent (``url``, ``properties.$current_url``). Else ``field_name``."""
    sent = [
        (path, value)
        for source in (message, batch or {})
        for path in sent_as.get(field_name, ())
        if (value := value_at(source, path)) is not None and value != ""
    ]
    mapped = record.get(field_name)
    return next((path for path, value in sent if as_text(value) == mapped), None) or (
        sent[0][0] if sent else field_name
    )


def value_at(message: Any, path: str) -> Any:
    """``message``'s value at a dotted path (None where an object on the way is missing)."""
    for name in path.split("."):
        if not isinstance(message, dict):
            return None
        message = message.get(name)
    return message


def batch_wrongly_typed(batch: dict[str, Any], expected: FieldKinds) -> None:
    """A batch-level field of the wrong kind (``wrongly_typed``) refuses the request: it
    applies to every message."""
    if (wrong := wrongly_typed(0, batch, expected)) is not None:
        raise RequestError(wrong.field, f"{wrong.field} {wrong.message}")


def named_with_control_character(index: int, field_name: str, name: str) -> RecordError | None:
    """An event's name holding a control character: refused, as any text field's would be
    (the type made from it would drop the character, the name kept as sent would not)."""
    if holds_control_character(name):
        return RecordError(index, field_name, CONTROL_MESSAGE)
    if holds_surrogate(name):
        return RecordError(index, field_name, SURROGATE_MESSAGE)
    return None


def key_sent(value: Any, field_name: str) -> str | None:
    """A write key as a body carries it: None when absent or empty. A value that is not a
    string is refused by name, rather than taken as no key sent ("missing ...")."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise RequestError(
            field_name, f"{field_name} must be a string, got {described(value)}", 401
        )
    return value


# Each kind a field may be sent as: its test, and how an error names it.
_KINDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "object": (lambda value: isinstance(value, dict), "an object"),
    "time": (
        lambda value: parse_instant(value) is not None,
        "an ISO-8601 time or epoch milliseconds",
    ),
    "number": (lambda value: _number(value) is not None, "a number"),
    "id": (lambda value: as_text(value) is not None, "a string or a number"),
    "text": (lambda value: isinstance(value, str), "a string"),
    "scalar": (lambda value: as_text(value) is not None, "a string or a number"),
}


def _number(value: Any) -> float | None:
    """A finite number, or a string of one."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except (ValueError, OverflowError):  # (an int past a float's range overflows)
        return None
    return number if math.isfinite(number) else None


def as_text(value: Any) -> str | None:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def non_negative(value: Any) -> float | None:
    """A revenue-like number we can count as ``value`` (refunds stay in the properties)."""
    number = _number(value)
    return number if number is not None and 0 <= number <= 1e12 else None
