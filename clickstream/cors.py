"""CORS with several allowed origins per stage (``CLICKSTREAM_CORS_ORIGINS``, comma-separated).

Chalice's ``CORSConfig`` (and the API Gateway mock integration it generates for preflights)
can name only one origin, so the app answers CORS itself: every response carries the
*request's* origin when it is on the list (plus ``Vary: Origin``), and each route has an
``OPTIONS`` view that answers the preflight. ``*`` on the list allows any origin. Keys
travel in headers or bodies, never cookies; but the SDK endpoints answer requests sent with
credentials (Snowplow's browser tracker sends them by default) by naming the origin and
allowing credentials, as its collector does: they set and read no cookie.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from clickstream.headers import header

ALLOWED_HEADERS = ("Content-Type", "X-Write-Key", "X-Api-Key", "Authorization", "SP-Anonymous")
EXPOSED_HEADERS = ("Retry-After",)
MAX_AGE_S = 600


def matching_origin(
    origin: str | None, allowed: Iterable[str], credentials: bool = False
) -> str | None:
    """The value for ``Access-Control-Allow-Origin``, or None when the origin is not allowed.
    With ``credentials`` a browser accepts only the origin itself, never ``*``."""
    allowed = tuple(allowed)
    if "*" in allowed:
        return origin if credentials and origin else "*"
    if origin and origin.rstrip("/") in allowed:
        return origin
    return None


def _vary(allowed: tuple[str, ...], credentials: bool) -> dict[str, str]:
    return {} if "*" in allowed and not credentials else {"Vary": "Origin"}


def cors_headers(
    headers: Mapping[str, str], allowed: Iterable[str], credentials: bool = False
) -> dict[str, str]:
    """Headers every (non-preflight) response gets."""
    allowed = tuple(allowed)
    result = _vary(allowed, credentials)
    origin = matching_origin(header(headers, "Origin"), allowed, credentials)
    if origin is not None:
        result["Access-Control-Allow-Origin"] = origin
        result["Access-Control-Expose-Headers"] = ", ".join(EXPOSED_HEADERS)
        if credentials and origin != "*":
            result["Access-Control-Allow-Credentials"] = "true"
    return result


@dataclass(frozen=True)
class Preflight:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    error: str | None = None


def preflight(
    headers: Mapping[str, str],
    allowed: Iterable[str],
    methods: Iterable[str],
    credentials: bool = False,
) -> Preflight:
    """Answer an ``OPTIONS`` preflight for a route serving ``methods``."""
    allowed = tuple(allowed)
    methods = sorted({method.upper() for method in methods} | {"OPTIONS"})
    base = _vary(allowed, credentials)
    origin = header(headers, "Origin")
    match = matching_origin(origin, allowed, credentials)
    if match is None:
        return Preflight(403, base, f"origin {origin or '(none)'} is not allowed")
    requested = (header(headers, "Access-Control-Request-Method") or "").upper()
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
            **(
                {"Access-Control-Allow-Credentials": "true"} if credentials and match != "*" else {}
            ),
        },
    )
