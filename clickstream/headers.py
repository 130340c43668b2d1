"""The one header lookup: chalice's headers are a case-insensitive mapping, a Lambda event's
or a test's a plain dict with the sender's case or lower case. And query parameters, one value
each: API Gateway keeps every value of a repeated one, chalice's mapping shows only the last."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Protocol

from clickstream.errors import RequestError


def header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name.lower())
    return value if value is not None else headers.get(name)


class MultiValued(Protocol):
    """chalice's ``Request.query_params``: each name with every value it was sent with."""

    def __iter__(self) -> Iterator[str]: ...

    def getlist(self, key: str) -> list[str]: ...


def query_values(params: MultiValued | None) -> tuple[dict[str, str], tuple[str, ...]]:
    """Each parameter's value, and the names sent more than once with different values
    (``?aid=a&aid=b``: which one was meant cannot be told; the same value again is one)."""
    if params is None:
        return {}, ()
    values: dict[str, str] = {}
    conflicting: list[str] = []
    for name in params:
        sent = params.getlist(name)
        if len(set(sent)) > 1:
            conflicting.append(name)
        values[name] = sent[-1]
    return values, tuple(conflicting)


def check_single_valued(conflicting: tuple[str, ...]) -> None:
    if conflicting:
        name = conflicting[0]
        raise RequestError(
            name[:100], f"the query parameter {name[:100]!r} is sent with different values"
        )


def single_valued_query(params: MultiValued | None) -> dict[str, str]:
    """The query's parameters, or a 400 naming one sent with different values."""
    values, conflicting = query_values(params)
    check_single_valued(conflicting)
    return values
