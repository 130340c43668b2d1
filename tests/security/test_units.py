"""Auth, CORS and limits without a stack: the role rules, the Cognito path (the local stack
cannot run Cognito, so a token is checked with our own verifier and the app's authorizer
configuration is inspected), and the CORS answers. Each refusal's exact text and the
boundaries are in ``tests/unit``: ``test_keys.py`` (format, cache), ``test_auth.py`` (keys,
claims, JWTs) and ``test_ingest_requests.py`` (content types, limits)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from clickstream.auth import (
    authorize_key,
    presented_key,
)
from clickstream.cors import cors_headers, preflight
from clickstream.errors import RequestError
from clickstream.keys import KeyRecord, generate_key
from clickstream.settings import parse_origins

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
ISSUER = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_TEST"
CLIENT_ID = "dashboard-client"


def record(role: str, revoked: bool = False) -> KeyRecord:
    return KeyRecord("abc123def456", role, "shop.example", "test", "2026-11-24T00:00:00Z",
                     "2026-11-24T01:00:00Z" if revoked else None)  # fmt: skip


# --- keys ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("access", "key", "found", "status", "says"),
    [
        ("write", None, None, 401, "missing X-Write-Key: send events needs a write key"),
        ("write", "", None, 401, "missing X-Write-Key: send events needs a write key"),
        ("write", "csw_123", None, 403, "X-Write-Key is not a valid key"),
        ("write", "x" * 10_000, None, 403, "X-Write-Key is not a valid key"),
        ("write", "VALID", None, 403, "X-Write-Key is not a known key"),
        ("write", "VALID", record("write", revoked=True), 403, "X-Write-Key was revoked"),
        ("write", "VALID", record("read"), 403, "a read key cannot send events"),
        ("read", "VALID", record("write"), 403, "a write key cannot read analytics"),
        ("admin", "VALID", record("read"), 403, "a read key cannot use admin endpoints"),
        ("read", "VALID", record("read", revoked=True), 403, "X-Write-Key was revoked"),
        ("read", "VALID", record("admin", revoked=True), 403, "X-Write-Key was revoked"),
        ("admin", "VALID", record("admin", revoked=True), 403, "X-Write-Key was revoked"),
        ("write", "VALID", record("admin"), 403, "a admin key cannot send events"),
        ("admin", "VALID", record("write"), 403, "a write key cannot use admin endpoints"),
        ("read", "VALID", record("unknown-role"), 403, "a unknown-role key cannot read analytics"),
    ],
)
def test_key_rules(access, key, found, status, says):
    presented = generate_key("write") if key == "VALID" else key
    with pytest.raises(RequestError) as raised:
        authorize_key(access, presented, "X-Write-Key", lambda _: found)
    assert (raised.value.field, raised.value.status, raised.value.message) == (
        "X-Write-Key",
        status,
        says,
    )


@pytest.mark.parametrize(
    ("access", "role"),
    [("write", "write"), ("read", "read"), ("read", "admin"), ("admin", "admin")],
)
def test_an_active_key_of_a_granted_role_is_accepted(access, role):
    principal = authorize_key(access, generate_key(role), "X-Api-Key", lambda _: record(role))
    assert (principal.kind, principal.role, principal.key_id, principal.site) == (
        "key",
        role,
        "abc123def456",
        "shop.example",
    )


def test_admin_keys_also_read_and_write_keys_come_from_a_header_or_the_query():
    key = generate_key("admin")
    principal = authorize_key("read", key, "X-Api-Key", lambda _: record("admin"))
    assert principal.role == "admin" and key not in json.dumps(principal.log_fields())
    assert presented_key("write", {"x-write-key": " k "}, {"key": "q"}) == ("k", "X-Write-Key")
    assert presented_key("write", {}, {"key": "q"}) == ("q", "?key=")
    assert presented_key("read", {}, {"key": "q"}) == (None, "X-Api-Key")  # never a read key


# --- Cognito -----------------------------------------------------------------------------------


def test_a_cognito_stage_puts_the_user_pool_authorizer_on_every_read_route():
    arn = "arn:aws:cognito-idp:eu-west-1:111122223333:userpool/eu-west-1_TEST"
    script = (
        "import json, app\n"
        "print(json.dumps({f'{m} {p}': [type(e.authorizer).__name__ if e.authorizer else None,"
        " e.authorizer._provider_arns if e.authorizer else None, e.api_key_required]"
        " for p, ms in app.app.routes.items() for m, e in ms.items()}))\n"
    )
    env = {
        **os.environ,
        "CLICKSTREAM_READ_AUTH": "cognito",
        "CLICKSTREAM_COGNITO_USER_POOL_ARN": arn,
        "CLICKSTREAM_USAGE_PLAN_KEY_REQUIRED": "true",
    }
    env.pop("AWS_CHALICE_CLI_MODE", None)
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT / "api", env=env,
                         capture_output=True, text=True, check=True)  # fmt: skip
    routes = json.loads(out.stdout)
    cognito = ["CognitoUserPoolAuthorizer", [arn], True]
    for route in ("GET /stats", "GET /funnel", "GET /export", "DELETE /users/{user_id}"):
        assert routes[route] == cognito, route
    for route in ("POST /events", "POST /track", "GET /", "OPTIONS /stats"):
        assert routes[route][0] is None, route  # write keys / public / preflight


# --- CORS and content types ------------------------------------------------------------------


def test_cors_echoes_only_listed_origins():
    allowed = parse_origins("https://a.example/, http://b.example:8080")
    assert allowed == ("https://a.example", "http://b.example:8080")
    assert (
        cors_headers({"origin": "https://a.example"}, allowed)["Access-Control-Allow-Origin"]
        == "https://a.example"
    )
    assert "Access-Control-Allow-Origin" not in cors_headers(
        {"origin": "https://c.example"}, allowed
    )
    assert (
        cors_headers({"origin": "https://c.example"}, ("*",))["Access-Control-Allow-Origin"] == "*"
    )
    assert preflight({"origin": "https://c.example"}, allowed, ["GET"]).status == 403
    answer = preflight(
        {"origin": "http://b.example:8080", "access-control-request-method": "POST"},
        allowed,
        ["POST"],
    )
    assert answer.status == 204 and answer.headers["Access-Control-Allow-Methods"] == "OPTIONS,POST"
