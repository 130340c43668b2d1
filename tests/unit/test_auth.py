"""Who may call what, exactly: each refusal's field, message and status for keys and for
Cognito claims, the expiry at its boundary, the forms ``cognito:groups`` arrives in, what is
logged about a caller, and the user pool's issuer and JWKS (fetched over real HTTP from a
loopback server)."""

from __future__ import annotations

import base64
import json
import ssl
import threading
import urllib.error
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from clickstream.auth import (
    Principal,
    authorize_claims,
    authorize_key,
    user_pool_issuer,
    user_pool_jwks,
    verify_cognito_jwt,
)
from clickstream.errors import RequestError
from clickstream.keys import KeyRecord, generate_key
from localdev.tls import loopback_certificate

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
POOL_ARN = "arn:aws:cognito-idp:eu-west-1:111122223333:userpool/eu-west-1_TEST"
ISSUER = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_TEST"
CLIENT_ID = "dashboard-client"


def refusal(call: Any, *args: Any, **kwargs: Any) -> tuple[str, str, int]:
    with pytest.raises(RequestError) as caught:
        call(*args, **kwargs)
    return caught.value.field, caught.value.message, caught.value.status


def stored(role: str, *, revoked: bool = False) -> KeyRecord:
    return KeyRecord("abc123def456", role, "shop.example", "ci", "2026-11-24T00:00:00Z",
                     "2026-11-24T01:00:00Z" if revoked else None)  # fmt: skip


@pytest.mark.parametrize(
    ("access", "field", "message"),
    [
        ("write", "?key=", "missing ?key=: send events needs a write key"),
        ("read", "X-Api-Key", "missing X-Api-Key: read analytics needs a read key"),
        ("admin", "X-Api-Key", "missing X-Api-Key: use admin endpoints needs a admin key"),
    ],
)
def test_a_missing_key_names_where_it_was_looked_for_and_the_role_needed(access, field, message):
    """(The other refusals, word for word: ``tests/security/test_units.py::test_key_rules``.)"""
    assert refusal(authorize_key, access, None, field, lambda _: None) == (field, message, 401)


def test_the_lookup_is_not_asked_about_a_malformed_key():
    asked: list[str] = []
    with pytest.raises(RequestError):
        authorize_key("write", "csw_" + "0" * 48, "X-Write-Key", lambda key: asked.append(key))
    assert asked == []


def test_a_principal_logs_who_never_the_key():
    key = generate_key("admin")
    principal = authorize_key("read", key, "X-Api-Key", lambda _: stored("admin"))
    assert principal == Principal("key", "admin", key_id="abc123def456", site="shop.example")
    assert principal.log_fields() == {
        "auth": "key",
        "role": "admin",
        "key_id": "abc123def456",
        "site": "shop.example",
    }
    user = Principal("cognito", "read", subject="user-1")
    assert user.log_fields() == {"auth": "cognito", "role": "read", "subject": "user-1"}
    assert Principal("cognito", "read").log_fields() == {"auth": "cognito", "role": "read"}


def expiring(seconds: float, **claims: Any) -> dict[str, Any]:
    return {"sub": "u-1", "exp": str(NOW.timestamp() + seconds), **claims}


def test_claims_are_taken_until_the_second_they_expire():
    assert authorize_claims("read", expiring(1), NOW) == Principal("cognito", "read", subject="u-1")
    expired = ("Authorization", "the token has expired", 401)
    assert refusal(authorize_claims, "read", expiring(0), NOW) == expired
    assert refusal(authorize_claims, "read", expiring(-1), NOW) == expired


@pytest.mark.parametrize("exp", [None, "soon", [], "nan-ish"])
def test_claims_without_a_readable_expiry_are_expired(exp):
    claims = {"sub": "u"} if exp is None else {"sub": "u", "exp": exp}
    assert refusal(authorize_claims, "read", claims, NOW) == (
        "Authorization",
        "the token has expired",
        401,
    )


def test_claims_expire_by_the_clock_of_the_call_by_default():
    live = {"exp": str((datetime.now(UTC) + timedelta(minutes=1)).timestamp())}
    assert authorize_claims("read", live).role == "read"
    gone = {"exp": str((datetime.now(UTC) - timedelta(seconds=1)).timestamp())}
    assert refusal(authorize_claims, "read", gone)[2] == 401


@pytest.mark.parametrize("claims", [None, {}])
def test_no_claims_is_a_401_asking_for_a_token(claims):
    assert refusal(authorize_claims, "read", claims, NOW) == (
        "Authorization",
        "missing Authorization: a Cognito token is required",
        401,
    )


@pytest.mark.parametrize(
    "groups",
    [
        "admin",
        "[analysts admin]",
        "analysts,admin",
        " admin , x ",
        ["admin"],
        ("x", "admin"),
        {"admin"},
    ],
)
def test_a_member_of_the_admin_group_is_an_admin_in_any_form_the_groups_come(groups):
    principal = authorize_claims("admin", expiring(60, **{"cognito:groups": groups}), NOW)
    assert principal == Principal("cognito", "admin", subject="u-1")


@pytest.mark.parametrize(
    "groups", [None, "", "[]", "administrators", "analysts,admins", "adminX", "[xadmin]", ["Admin"]]
)
def test_anyone_else_reads_and_may_not_administer(groups):
    claims = expiring(60) if groups is None else expiring(60, **{"cognito:groups": groups})
    assert authorize_claims("read", claims, NOW).role == "read"
    assert refusal(authorize_claims, "admin", claims, NOW) == (
        "Authorization",
        "use admin endpoints needs a user in the 'admin' group",
        403,
    )


def test_a_token_without_a_subject_is_logged_without_one():
    assert authorize_claims("read", {"exp": str(NOW.timestamp() + 5)}, NOW).subject == ""


@pytest.fixture(scope="module")
def signing_key() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig"})


def signed(key: RSAKey, **overrides: Any) -> str:
    claims = {
        "sub": "user-1",
        "iss": ISSUER,
        "aud": CLIENT_ID,
        "token_use": "id",
        "iat": int(NOW.timestamp()) - 60,
        "exp": int(NOW.timestamp()) + 3600,
        **overrides,
    }
    claims = {name: value for name, value in claims.items() if value is not None}
    return jwt.encode({"alg": "RS256", "kid": "k1"}, claims, key)


def key_set(key: RSAKey) -> dict[str, Any]:
    return {"keys": [key.as_dict(private=False)]}


def verify(key: RSAKey, token: str, client_id: str | None = CLIENT_ID) -> dict[str, Any]:
    return verify_cognito_jwt(token, key_set(key), issuer=ISSUER, client_id=client_id, now=NOW)


def test_an_id_token_and_an_access_token_of_the_app_client_are_verified(signing_key):
    claims = verify(signing_key, signed(signing_key))
    assert (claims["sub"], claims["token_use"]) == ("user-1", "id")
    access = signed(signing_key, token_use="access", aud=None, client_id=CLIENT_ID)
    assert verify(signing_key, access)["client_id"] == CLIENT_ID
    foreign = signed(signing_key, aud="another-client")
    assert verify(signing_key, foreign, client_id=None)["aud"] == "another-client"


def invalid(reason: str) -> tuple[str, str, int]:
    return ("Authorization", f"invalid token: {reason}", 401)


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"exp": int(NOW.timestamp()) - 1}, "The token is expired"),
        ({"exp": None}, "Missing claim: 'exp'"),
        ({"nbf": int(NOW.timestamp()) + 600}, "The token is not yet valid"),
        ({"iss": "https://cognito-idp.eu-west-1.amazonaws.com/other"}, "Invalid claim: 'iss'"),
        ({"iss": None}, "Missing claim: 'iss'"),
        ({"token_use": "refresh"}, "Invalid claim: 'token_use'"),
        ({"token_use": None}, "Missing claim: 'token_use'"),
        ({"aud": "another-client"}, "issued for another app client"),
        (
            {"token_use": "access", "aud": CLIENT_ID, "client_id": "another-client"},
            "issued for another app client",
        ),
    ],
)
def test_a_token_not_for_this_pool_app_or_moment_is_a_401_saying_why(
    signing_key, overrides, reason
):
    assert refusal(verify, signing_key, signed(signing_key, **overrides)) == invalid(reason)


def test_a_token_signed_by_another_key_is_a_401(signing_key):
    other = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    assert refusal(verify, signing_key, signed(other)) == invalid("bad_signature")


def test_a_token_whose_claims_were_changed_after_signing_is_a_401(signing_key):
    header, _, signature = signed(signing_key).split(".")
    forged_claims = {"sub": "admin-1", "iss": ISSUER, "aud": CLIENT_ID, "token_use": "id",
                     "exp": int(NOW.timestamp()) + 3600, "cognito:groups": ["admin"]}  # fmt: skip
    body = base64.urlsafe_b64encode(json.dumps(forged_claims).encode()).rstrip(b"=").decode()
    assert refusal(verify, signing_key, f"{header}.{body}.{signature}") == invalid("bad_signature")


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("not.a.jwt", "Invalid header"),
        ("", "Invalid JSON Web Signature"),
        ("a.b", "Invalid JSON Web Signature"),
        ("a\udcff.b.c", "not a JWT"),  # not even text a header could carry
    ],
)
def test_what_is_not_a_jwt_is_a_401(signing_key, token, reason):
    assert refusal(verify, signing_key, token) == invalid(reason)


def test_a_pools_issuer_is_its_regional_cognito_url():
    assert user_pool_issuer(POOL_ARN) == ISSUER


ISSUER_HOST = "cognito-idp.eu-west-1.amazonaws.com"


class _Jwks(BaseHTTPRequestHandler):
    seen: list[tuple[str, str | None]] = []

    def do_GET(self) -> None:
        # The request line as sent: http.server folds a leading "//" in self.path.
        type(self).seen.append((self.requestline.split()[1], self.headers.get("Host")))
        body = json.dumps({"keys": [{"kid": "k1"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def serving_jwks(tls: ssl.SSLContext | None = None) -> Iterator[str]:
    """A key set on loopback, over https when given the server's context; its URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Jwks)
    if tls:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Jwks.seen = []
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def jwks_server() -> Iterator[str]:
    with serving_jwks() as url:
        yield url


def test_the_pools_keys_are_read_from_its_well_known_path_by_the_issuers_host(
    jwks_server, monkeypatch
):
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    assert user_pool_jwks(POOL_ARN, endpoint_url=jwks_server + "/") == {"keys": [{"kid": "k1"}]}
    monkeypatch.setenv("AWS_ENDPOINT_URL", jwks_server)
    assert user_pool_jwks(POOL_ARN) == {"keys": [{"kid": "k1"}]}
    assert _Jwks.seen == [("/eu-west-1_TEST/.well-known/jwks.json", ISSUER_HOST)] * 2


def test_the_pools_keys_are_read_over_tls_trusting_the_context_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rehearsal's emulator serves https under its own certificate: the keys are read
    with the context that trusts it, and a client trusting only the system's roots refuses."""
    for variable in ("AWS_ENDPOINT_URL", "https_proxy", "HTTPS_PROXY"):  # (urllib honours both)
        monkeypatch.delenv(variable, raising=False)
    certificate, key = loopback_certificate(tmp_path)
    serving = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    serving.load_cert_chain(certificate, key)
    with serving_jwks(serving) as url:
        trusting = ssl.create_default_context(cafile=str(certificate))
        assert user_pool_jwks(POOL_ARN, url, trusting) == {"keys": [{"kid": "k1"}]}
        with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
            user_pool_jwks(POOL_ARN, url)
    assert _Jwks.seen == [("/eu-west-1_TEST/.well-known/jwks.json", ISSUER_HOST)]
