"""The one header lookup: chalice's headers are a case-insensitive mapping, a Lambda event's
or a test's a plain dict with the sender's case or lower case."""

from __future__ import annotations

from collections.abc import Mapping


def header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name.lower())
    return value if value is not None else headers.get(name)
