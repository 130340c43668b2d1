"""CORS with several allowed origins per stage (``CLICKSTREAM_CORS_ORIGINS``, comma-separated).

Chalice's ``CORSConfig`` (and the API Gateway mock integration it generates for preflights)
can name only one origin, so the app answers CORS itself: every response carries the
*request's* origin when it is on the list (plus ``Vary: Origin``), and each route has an
``OPTIONS`` view that answers the preflight. ``*`` on the list allows any origin; no
credentials (cookies) are ever involved, keys travel in headers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

ALLOWED_HEADERS = ("Content-Type", "X-Write-Key", "X-Api-Key", "Authorization")
EXPOSED_HEADERS = ("Retry-After",)
MAX_AGE_S = 600


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name.lower())
    return value if value is not None else headers.get(name)


def matching_origin(origin: str | None, allowed: Iterable[str]) -> str | None:
    """The value for ``Access-Control-Allow-Origin``, or None when the origin is not allowed."""
    allowed = tuple(allowed)
    if "*" in allowed:
        return "*"
    if origin and origin.rstrip("/") in allowed:
        return origin
    return None


def cors_headers(headers: Mapping[str, str], allowed: Iterable[str]) -> dict[str, str]:
    """Headers every (non-preflight) response gets."""
    allowed = tuple(allowed)
    result = {} if "*" in allowed else {"Vary": "Origin"}
    origin = matching_origin(_header(headers, "Origin"), allowed)
    if origin is not None:
        result["Access-Control-Allow-Origin"] = origin
        result["Access-Control-Expose-Headers"] = ", ".join(EXPOSED_HEADERS)
    return result


@dataclass(frozen=True)
class Preflight:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    error: str | None = None


def preflight(
    headers: Mapping[str, str], allowed: Iterable[str], methods: Iterable[str]
) -> Preflight:
    """Answer an ``OPTIONS`` preflight for a route serving ``methods``."""
    allowed = tuple(allowed)
    methods = sorted({method.upper() for method in methods} | {"OPTIONS"})
    base = {} if "*" in allowed else {"Vary": "Origin"}
    origin = _header(headers, "Origin")
    match = matching_origin(origin, allowed)
    if match is None:
        return Preflight(403, base, f"origin {origin or '(none)'} is not allowed")
    requested = (_header(headers, "Access-Control-Request-Method") or "").upper()
    if requested and requested not in methods:
        return Preflight(403, base, f"method {requested} is not allowed here")
    return Preflight(
        204,
        {
            **base,
            "Access-Control-Allow-Origin": match,
            "Access-Control-Allow-Methods": ",".join(methods),
            "Access-Control-Allow-Headers": ",".join(ALLOWED_HEADERS),
            "Access-Control-Max-Age": str(MAX_AGE_S),
        },
    )
