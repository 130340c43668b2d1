"""Who may call what.

==========  ==============================================  ==========================
access      routes                                          proof
==========  ==============================================  ==========================
public      ``GET /``, ``GET /openapi.json``, preflights    none
write       ``POST /events``, ``POST /track``               write key: ``X-Write-Key``
                                                            header, or ``?key=`` (beacons)
read        ``GET /stats`` and the other read routes        ``apikey`` stages: a read or
                                                            admin key in ``X-Api-Key``;
                                                            ``cognito`` stages: a Cognito
                                                            JWT (``Authorization``)
admin       ``DELETE /users/{user_id}``                     an admin key, or a JWT of a
                                                            user in the ``admin`` group
==========  ==============================================  ==========================

No proof is a ``401``; a proof that is malformed, unknown, revoked, expired or of the wrong
role is a ``403`` (an expired or invalid JWT is a ``401``, as API Gateway answers it). The
error never repeats the key.
"""

from __future__ import annotations

import json
import os
import ssl
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from clickstream.errors import RequestError
from clickstream.headers import header
from clickstream.keys import KeyRecord, well_formed

# "sdk": a write route whose key travels the SDK's way (in the body, Basic auth, the app id);
# the route checks it once the body is decoded.
Access = Literal["public", "write", "read", "admin", "sdk"]
WRITE_KEY_HEADER = "X-Write-Key"
API_KEY_HEADER = "X-Api-Key"
WRITE_KEY_PARAM = "key"
MAX_PRESENTED_KEY_LENGTH = 256
ADMIN_GROUP = "admin"
# What each stored role may do: an admin key also reads.
ROLE_GRANTS: dict[str, frozenset[str]] = {
    "write": frozenset({"write"}),
    "read": frozenset({"read"}),
    "admin": frozenset({"read", "admin"}),
}
_WHAT = {"write": "send events", "read": "read analytics", "admin": "use admin endpoints"}


@dataclass(frozen=True)
class Principal:
    """Who is calling, as far as the logs are concerned (never the key itself)."""

    kind: str  # "key" or "cognito"
    role: str
    key_id: str = ""
    site: str = ""
    subject: str = ""

    def log_fields(self) -> dict[str, str]:
        fields = {"auth": self.kind, "role": self.role}
        if self.key_id:
            fields |= {"key_id": self.key_id, "site": self.site}
        if self.subject:
            fields["subject"] = self.subject
        return fields


def presented_key(
    access: Access, headers: Mapping[str, str], params: Mapping[str, str]
) -> tuple[str | None, str]:
    """The key a request carries for ``access`` and where it came from (the error's field).
    Write keys may come in the query string because ``navigator.sendBeacon`` cannot set
    headers; read and admin keys only in their header (query strings end up in logs)."""
    if access == "write":
        presented = header(headers, WRITE_KEY_HEADER)
        if presented is not None:
            return presented.strip(), WRITE_KEY_HEADER
        if params.get(WRITE_KEY_PARAM) is not None:
            return params[WRITE_KEY_PARAM].strip(), f"?{WRITE_KEY_PARAM}="
        return None, WRITE_KEY_HEADER
    value = header(headers, API_KEY_HEADER)
    return (value.strip() if value is not None else None), API_KEY_HEADER


def authorize_key(
    access: Access,
    presented: str | None,
    field: str,
    lookup: Callable[[str], KeyRecord | None],
) -> Principal:
    """Check a presented key against the keys table (through ``lookup``, normally cached)."""
    if not presented:
        raise RequestError(field, f"missing {field}: {_WHAT[access]} needs a {access} key", 401)
    if len(presented) > MAX_PRESENTED_KEY_LENGTH or not well_formed(presented):
        raise RequestError(field, f"{field} is not a valid key", 403)
    record = lookup(presented)
    if record is None:
        raise RequestError(field, f"{field} is not a known key", 403)
    if not record.active:
        raise RequestError(field, f"{field} was revoked", 403)
    if access not in ROLE_GRANTS.get(record.role, frozenset()):
        raise RequestError(field, f"a {record.role} key cannot {_WHAT[access]}", 403)
    return Principal("key", record.role, key_id=record.key_id, site=record.site)


def _groups(claims: Mapping[str, Any]) -> set[str]:
    """``cognito:groups`` as API Gateway passes it to the Lambda: a list, or one string like
    ``"admin,analysts"`` or ``"[admin analysts]"``."""
    raw = claims.get("cognito:groups")
    if raw is None:
        return set()
    if isinstance(raw, list | tuple | set):
        return {str(group) for group in raw}
    text = str(raw).strip().strip("[]")
    return {part for part in text.replace(",", " ").split() if part}


def authorize_claims(
    access: Access, claims: Mapping[str, Any] | None, now: datetime | None = None
) -> Principal:
    """Cognito stages: API Gateway's user-pool authorizer has verified the JWT's signature,
    issuer and expiry before the Lambda runs and passes its claims; this re-checks the
    expiry (defence in depth) and the ``admin`` group for admin routes."""
    if not claims:
        raise RequestError(
            "Authorization", "missing Authorization: a Cognito token is required", 401
        )
    now = now or datetime.now(UTC)
    try:
        expires = int(float(claims.get("exp", 0)))
    except (TypeError, ValueError):
        expires = 0
    if expires <= now.timestamp():
        raise RequestError("Authorization", "the token has expired", 401)
    role = "admin" if ADMIN_GROUP in _groups(claims) else "read"
    if access not in ROLE_GRANTS[role]:
        raise RequestError(
            "Authorization", f"{_WHAT[access]} needs a user in the '{ADMIN_GROUP}' group", 403
        )
    return Principal("cognito", role, subject=str(claims.get("sub", "")))


def verify_cognito_jwt(
    token: str,
    jwks: Mapping[str, Any],
    *,
    issuer: str,
    client_id: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """What API Gateway's Cognito authorizer checks, for tools and tests that hold a token
    outside API Gateway: RS256 signature against the pool's JWKS, ``iss``, ``exp`` (and
    ``nbf``), ``token_use`` and the app client (``aud`` of an ID token, ``client_id`` of an
    access token). Returns the claims or raises ``RequestError`` (401)."""
    from joserfc import jwt
    from joserfc.errors import JoseError
    from joserfc.jwk import KeySet

    moment = int((now or datetime.now(UTC)).timestamp())
    try:
        key_set = KeySet.import_key_set(dict(jwks))  # type: ignore[arg-type]
        decoded = jwt.decode(token, key_set, algorithms=["RS256"])
        registry = jwt.JWTClaimsRegistry(
            now=moment,
            iss={"essential": True, "value": issuer},
            exp={"essential": True},
            token_use={"essential": True, "values": ["id", "access"]},
        )
        registry.validate(decoded.claims)
    except JoseError as error:
        raise RequestError(
            "Authorization", f"invalid token: {error.description or error.error}", 401
        ) from None
    except ValueError:
        raise RequestError("Authorization", "invalid token: not a JWT", 401) from None
    claims = dict(decoded.claims)
    if client_id is not None:
        audience = claims.get("aud") if claims["token_use"] == "id" else claims.get("client_id")
        if audience != client_id:
            raise RequestError("Authorization", "invalid token: issued for another app client", 401)
    return claims


def user_pool_issuer(pool_arn: str) -> str:
    """The ``iss`` of the tokens a user pool issues."""
    region, pool_id = pool_arn.split(":")[3], pool_arn.rsplit("/", 1)[-1]
    return f"https://cognito-idp.{region}.amazonaws.com/{pool_id}"


def user_pool_jwks(
    pool_arn: str, endpoint_url: str | None = None, context: ssl.SSLContext | None = None
) -> dict[str, Any]:
    """The pool's signing keys from its issuer's ``.well-known/jwks.json``; on an emulator
    (``endpoint_url``, default ``AWS_ENDPOINT_URL``) moto serves them by the Cognito host."""
    issuer = user_pool_issuer(pool_arn)
    host = issuer.removeprefix("https://").split("/", 1)[0]
    endpoint = (endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or f"https://{host}").rstrip("/")
    pool_id = pool_arn.rsplit("/", 1)[-1]
    request = urllib.request.Request(
        f"{endpoint}/{pool_id}/.well-known/jwks.json", headers={"Host": host}
    )
    with urllib.request.urlopen(request, timeout=10, context=context) as response:
        keys: dict[str, Any] = json.load(response)
    return keys
