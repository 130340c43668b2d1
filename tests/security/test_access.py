"""Keys and CORS on the live local stack: who may call what, key administration through the
CLI, preflights from allowed and other origins, and the OpenAPI document."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from clickstream.keys import generate_key
from tests.security.conftest import ALLOWED_ORIGINS

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
READ_ROUTES = [
    "/stats",
    "/metrics/timeseries",
    "/funnel",
    "/pages/top",
    "/analytics/page-views/home",
    "/export",
]


@pytest.mark.parametrize("path", READ_ROUTES)
def test_read_routes_need_a_read_or_admin_key(secure_stack, path):
    url = secure_stack.api_url + path
    missing = requests.get(url, timeout=30)
    assert missing.status_code == 401
    assert missing.json() == {
        "error": "missing X-Api-Key: read analytics needs a read key",
        "field": "X-Api-Key",
    }
    assert "X-Api-Key" in missing.headers["WWW-Authenticate"]
    for key in (secure_stack.write_key, generate_key("read"), "nonsense"):
        denied = requests.get(url, headers={"X-Api-Key": key}, timeout=30)
        assert denied.status_code == 403, key
        assert denied.json()["field"] == "X-Api-Key"
        assert key not in denied.text  # an error never repeats the key
    for headers in (secure_stack.read_headers, secure_stack.admin_headers):
        assert requests.get(url, headers=headers, timeout=60).status_code == 200


def test_the_user_erasure_route_needs_an_admin_key(secure_stack):
    url = secure_stack.api_url + "/users/nobody-at-all"
    assert requests.delete(url, timeout=30).status_code == 401
    for headers in (secure_stack.read_headers, secure_stack.write_headers):
        assert requests.delete(url, headers=headers, timeout=30).status_code in (401, 403)
    assert requests.delete(url, headers=secure_stack.admin_headers, timeout=60).status_code == 202


def test_health_and_openapi_are_public(secure_stack):
    assert requests.get(secure_stack.api_url + "/", timeout=30).status_code == 200
    assert requests.get(secure_stack.api_url + "/openapi.json", timeout=30).status_code == 200


def keys_cli(stack, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**stack.env, "CLICKSTREAM_KEYS_TABLE": stack.resources["KeysTableName"]}
    return subprocess.run(
        [sys.executable, "-m", "localdev.keys", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_keys_cli_creates_lists_and_revokes_several_keys_per_site(secure_stack):
    site = "cli-test.example"
    created = [
        json.loads(
            keys_cli(
                secure_stack, "create", "--role", "write", "--site", site, "--name", name, "--json"
            ).stdout
        )
        for name in ("beacon", "server")
    ]
    listed = json.loads(keys_cli(secure_stack, "list", "--site", site, "--json").stdout)
    assert {entry["name"] for entry in listed} == {"beacon", "server"}
    assert all("key" not in entry for entry in listed)  # the list never shows a key
    table_items = secure_stack.client("dynamodb").scan(
        TableName=secure_stack.resources["KeysTableName"]
    )["Items"]
    assert not any(created[0]["key"] in json.dumps(item) for item in table_items)

    def post(key: str) -> int:
        return requests.post(
            secure_stack.api_url + "/track",
            json={"event_type": "click", "session_id": "cli-test"},
            headers={"X-Write-Key": key},
            timeout=30,
        ).status_code

    # the second key is revoked before its first use, so no warm cache still trusts it
    assert post(created[0]["key"]) == 200
    revoked = keys_cli(secure_stack, "revoke", created[1]["key_id"])
    assert revoked.returncode == 0, revoked.stderr
    assert post(created[1]["key"]) == 403
    assert post(created[0]["key"]) == 200  # the site's other key still works
    listed = json.loads(keys_cli(secure_stack, "list", "--site", site, "--json").stdout)
    states = {entry["name"]: entry["revoked_at"] is not None for entry in listed}
    assert states == {"beacon": False, "server": True}
    assert keys_cli(secure_stack, "revoke", "000000000000").returncode == 2


# --- CORS --------------------------------------------------------------------------------------


@pytest.mark.parametrize("origin", ALLOWED_ORIGINS)
@pytest.mark.parametrize(("path", "method"), [("/events", "POST"), ("/stats", "GET")])
def test_preflight_from_an_allowed_origin_is_answered_with_that_origin(
    secure_stack, origin, path, method
):
    response = requests.options(
        secure_stack.api_url + path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "content-type,x-write-key,x-api-key",
        },
        timeout=30,
    )
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == origin
    assert method in response.headers["Access-Control-Allow-Methods"].split(",")
    allowed = response.headers["Access-Control-Allow-Headers"].lower().split(",")
    assert {"content-type", "x-write-key", "x-api-key", "authorization"} <= set(allowed)
    assert response.headers["Vary"] == "Origin"
    assert int(response.headers["Access-Control-Max-Age"]) > 0


def test_preflight_from_another_origin_or_for_another_method_is_refused(secure_stack):
    other = requests.options(
        secure_stack.api_url + "/events",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        timeout=30,
    )
    assert other.status_code == 403
    assert "Access-Control-Allow-Origin" not in other.headers
    assert other.json()["field"] == "Origin"
    method = requests.options(
        secure_stack.api_url + "/stats",
        headers={"Origin": ALLOWED_ORIGINS[0], "Access-Control-Request-Method": "DELETE"},
        timeout=30,
    )
    assert method.status_code == 403


def test_responses_name_only_an_allowed_requesting_origin(secure_stack):
    url = secure_stack.api_url + "/stats"
    for origin in ALLOWED_ORIGINS:
        response = requests.get(
            url, headers={"Origin": origin, **secure_stack.read_headers}, timeout=30
        )
        assert response.headers["Access-Control-Allow-Origin"] == origin
        assert response.headers["Vary"] == "Origin"
    other = requests.get(
        url, headers={"Origin": "https://evil.example", **secure_stack.read_headers}, timeout=30
    )
    assert "Access-Control-Allow-Origin" not in other.headers
    # errors carry CORS headers too, so a browser can read why it was refused
    denied = requests.get(url, headers={"Origin": ALLOWED_ORIGINS[1]}, timeout=30)
    assert denied.status_code == 401
    assert denied.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGINS[1]
