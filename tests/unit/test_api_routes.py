"""Every route of the API in process (chalice's test client over moto), in both read-auth
modes: API keys, and Cognito, where API Gateway's part (the token's RS256 signature, issuer
and expiry, checked against the pool's JWKS) is played by ``CognitoGateway`` with a test
key pair. The table of cases must name every route of the app: a new route without a case
fails ``test_every_route_has_a_case``."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from chalice.app import CognitoUserPoolAuthorizer
from chalice.local import LocalGateway, RouteMatcher
from joserfc import jwt
from joserfc.jwk import RSAKey

from clickstream.auth import user_pool_issuer, verify_cognito_jwt
from clickstream.aws import client
from clickstream.errors import RequestError
from clickstream.jobs import JobStore
from clickstream.settings import Settings
from infra.api_deploy import NO_ROUTE_BODY
from localdev.chalice_local import no_route_as_deployed
from tests.unit.route_support import in_process_api

POOL_ARN = "arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_TestPool"
ORIGIN = "https://shop.example"


@dataclass(frozen=True)
class Case:
    """One route's request that succeeds, and what it answers."""

    path: str
    status: int
    body: Any = None
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    check: Callable[[Any], bool] = lambda answer: True


EVENT = {"event_type": "page_view", "session_id": "s1", "anonymous_id": "d1", "page": "/"}
POSTHOG = {"batch": [{"event": "x", "distinct_id": "u1", "properties": {}}]}
GRAPHQL = '{ stats(period: "today") { visitors } }'


def _json(answer: Any) -> Any:
    return json.loads(answer.body)


# (method, route) -> the case; "{write}" in a body or path is the write key, "{job:<kind>}" a
# job of that kind.
CASES: dict[tuple[str, str], Case] = {
    ("GET", "/"): Case("/", 200, check=lambda a: _json(a)["status"] == "ok"),
    ("GET", "/openapi.json"): Case(
        "/openapi.json", 200, check=lambda a: _json(a)["openapi"] == "3.1.0"
    ),
    ("POST", "/events"): Case(
        "/events", 200, {"records": [EVENT]}, check=lambda a: _json(a)["processed"] == 1
    ),
    ("POST", "/track"): Case("/track", 200, EVENT, check=lambda a: "event_id" in _json(a)),
    ("POST", "/v1/{call}"): Case(
        "/v1/track",
        200,
        {"writeKey": "{write}", "event": "Clicked", "anonymousId": "a"},
        content_type="text/plain",
    ),
    ("POST", "/capture"): Case("/capture", 200, {"api_key": "{write}", **POSTHOG}),
    ("POST", "/batch"): Case("/batch", 200, {"api_key": "{write}", **POSTHOG}),
    ("POST", "/e"): Case("/e", 200, {"api_key": "{write}", **POSTHOG}),
    ("POST", "/i/v0/e"): Case("/i/v0/e", 200, {"api_key": "{write}", **POSTHOG}),
    ("POST", "/i/v1/analytics/events"): Case(
        "/i/v1/analytics/events",
        200,
        {"created_at": "2026-12-02T12:00:00Z", **POSTHOG},
        headers={"Authorization": "Bearer {write}"},
        check=lambda a: list(_json(a)["results"].values()) == [{"result": "ok"}],
    ),
    ("POST", "/flags"): Case("/flags", 200, {}),
    ("POST", "/decide"): Case("/decide", 200, {}),
    ("GET", "/array/{token}/config"): Case("/array/phc_x/config", 200),
    ("GET", "/array/{token}/config.js"): Case(
        "/array/phc_x/config.js",
        200,
        check=lambda a: a.headers["Content-Type"].startswith("text/javascript"),
    ),
    ("GET", "/i"): Case(
        "/i?e=pv&aid={write}&url=https%3A%2F%2Fshop.example%2F",
        200,
        headers={"Accept": "image/*,*/*"},
        check=lambda a: a.body.startswith(b"GIF89a"),
    ),
    ("POST", "/com.snowplowanalytics.snowplow/tp2"): Case(
        "/com.snowplowanalytics.snowplow/tp2",
        200,
        {"schema": "iglu:payload_data", "data": [{"e": "se", "se_ac": "play", "aid": "{write}"}]},
    ),
    ("GET", "/stats"): Case("/stats?period=today", 200, check=lambda a: "visitors" in _json(a)),
    ("GET", "/breakdown"): Case(
        "/breakdown?dimension=page", 200, check=lambda a: _json(a)["dimension"] == "page"
    ),
    ("GET", "/goals"): Case("/goals?period=7d", 200, check=lambda a: "goals" in _json(a)),
    ("GET", "/realtime"): Case("/realtime", 200, check=lambda a: len(_json(a)["minutes"]) == 30),
    ("GET", "/metrics/timeseries"): Case(
        "/metrics/timeseries?granularity=hour", 200, check=lambda a: "points" in _json(a)
    ),
    ("GET", "/funnel"): Case("/funnel", 200, check=lambda a: "steps" in _json(a)),
    ("GET", "/dashboard"): Case(
        "/dashboard?sections=stats,pages", 200, check=lambda a: set(_json(a)) >= {"stats"}
    ),
    ("GET", "/pages/top"): Case("/pages/top?limit=3", 200, check=lambda a: "pages" in _json(a)),
    ("GET", "/analytics/page-views/{page}"): Case(
        "/analytics/page-views/" + quote("/home", safe=""),
        200,
        check=lambda a: _json(a)["page_views"] == 0,
    ),
    ("GET", "/graphql"): Case(
        "/graphql?" + urlencode({"query": GRAPHQL}),
        200,
        check=lambda a: "visitors" in _json(a)["data"]["stats"],
    ),
    ("POST", "/graphql"): Case(
        "/graphql", 200, {"query": GRAPHQL}, check=lambda a: "stats" in _json(a)["data"]
    ),
    ("GET", "/export"): Case(
        "/export?format=ndjson&limit=10",
        200,
        check=lambda a: a.headers["X-Export-Rows"] == "0",
    ),
    ("POST", "/exports"): Case(
        "/exports",
        202,
        {"format": "csv"},
        check=lambda a: a.headers["Location"] == _json(a)["status_url"],
    ),
    ("GET", "/exports/{job_id}"): Case(
        "/exports/{job:export}", 200, check=lambda a: _json(a)["status"] == "queued"
    ),
    ("DELETE", "/users/{user_id}"): Case(
        "/users/user-7", 202, check=lambda a: len(_json(a)["user_hash"]) == 64
    ),
    ("GET", "/erasures/{job_id}"): Case(
        "/erasures/{job:erasure}", 200, check=lambda a: _json(a)["kind"] == "erasure"
    ),
}


def app_routes(app: Any) -> dict[tuple[str, str], Any]:
    """The app's route table: (method, path) -> route entry, preflights left out."""
    return {
        (method, path): entry
        for path, methods in app.routes.items()
        for method, entry in methods.items()
        if method != "OPTIONS"
    }


# --- the two modes --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def signing_key() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": "test-key"})


@pytest.fixture(scope="module")
def world(signing_key: RSAKey) -> Iterator[dict[str, Any]]:
    """One moto world per module (tables, stream, bucket, queue, keys) and an app per mode;
    each test gets fresh API state and clients (``api``, ``cognito_api``)."""
    from chalice.test import Client

    from api.app import create_app

    with pytest.MonkeyPatch.context() as patch:
        for shared in in_process_api(patch):
            cognito_app = create_app(
                replace(Settings.from_env(), read_auth="cognito", cognito_user_pool_arn=POOL_ARN)
            )
            served = {POOL_ARN: {"keys": [signing_key.as_dict(private=False)]}}
            shared["cognito_app"] = cognito_app
            shared["gateway"] = CognitoGateway(
                Client(cognito_app).http, cognito_app, served.__getitem__
            )
            yield shared


@pytest.fixture
def api(world: dict[str, Any]) -> Iterator[dict[str, Any]]:
    from api.app import reset_api_state

    reset_api_state()  # a new key cache and new clients: no hook of another test
    yield world
    reset_api_state()


class CognitoGateway:
    """API Gateway in front of a Cognito stage's app: a route that carries the user pool's
    authorizer is only invoked with a token whose signature (against the pool's JWKS, from
    ``jwks``), issuer and expiry hold; otherwise 401 ``{"message":"Unauthorized"}``, as API
    Gateway answers. The claims then reach the app in the request context (chalice's local
    gateway puts them there)."""

    def __init__(self, http: Any, app: Any, jwks: Callable[[str], dict[str, Any]]) -> None:
        self.http = http
        self.app = app
        self.jwks = jwks
        self.matcher = RouteMatcher(list(app.routes))

    def request(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Any:
        route = self.matcher.match_route(path).route
        authorizer = self.app.routes[route].get(method)
        authorizer = authorizer.authorizer if authorizer else None
        if isinstance(authorizer, CognitoUserPoolAuthorizer):
            pool_arn = authorizer._provider_arns[0]
            token = {k.lower(): v for k, v in headers.items()}.get("authorization", "")
            try:
                verify_cognito_jwt(token, self.jwks(pool_arn), issuer=user_pool_issuer(pool_arn))
            except RequestError:
                return _Answer(401, {"x-amzn-ErrorType": "UnauthorizedException"},
                               b'{"message":"Unauthorized"}')  # fmt: skip
        return self.http.request(method, path, headers=headers, body=body)


@dataclass
class _Answer:
    status_code: int
    headers: dict[str, str]
    body: bytes


def id_token(key: RSAKey, *, groups: tuple[str, ...] = (), lifetime: float = 3600) -> str:
    now = datetime.now(UTC)
    claims = {
        "sub": "user-1",
        "cognito:username": "analyst",
        "iss": user_pool_issuer(POOL_ARN),
        "aud": "client-1",
        "token_use": "id",
        "iat": int(now.timestamp()) - 60,
        "exp": int((now + timedelta(seconds=lifetime)).timestamp()),
        **({"cognito:groups": list(groups)} if groups else {}),
    }
    return jwt.encode({"alg": "RS256", "kid": key.kid}, claims, key)


@pytest.fixture
def cognito_api(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch, signing_key: RSAKey
) -> Iterator[dict[str, Any]]:
    from api.app import reset_api_state

    monkeypatch.setenv("CLICKSTREAM_READ_AUTH", "cognito")
    monkeypatch.setenv("CLICKSTREAM_COGNITO_USER_POOL_ARN", POOL_ARN)
    reset_api_state()
    yield {
        **world,
        "app": world["cognito_app"],
        "reader": id_token(signing_key),
        "admin_token": id_token(signing_key, groups=("analysts", "admin")),
    }
    reset_api_state()


# --- sending a case -------------------------------------------------------------------------


def _fill(text: str, api: dict[str, Any]) -> str:
    text = text.replace("{write}", api["write"])
    for kind in ("export", "erasure"):
        if "{job:" + kind + "}" in text:
            job = JobStore(client("dynamodb"), "jobs").create(kind, {"requested_by": {}})
            text = text.replace("{job:" + kind + "}", job.job_id)
    return text


def send(
    api: dict[str, Any],
    method: str,
    case: Case,
    credentials: dict[str, str],
    via: Any = None,
) -> Any:
    body = b""
    if case.body is not None:
        body = _fill(json.dumps(case.body), api).encode()
    case_headers = {name: _fill(value, api) for name, value in case.headers.items()}
    headers = {"Content-Type": case.content_type, "Origin": ORIGIN, **case_headers, **credentials}
    http = via or api["client"].http
    return http.request(method, _fill(case.path, api), headers=headers, body=body)


def credentials_for(api: dict[str, Any], access: str) -> dict[str, str]:
    """What a caller of a route with this access presents in the API-key mode."""
    return {
        "write": {"X-Write-Key": api["write"]},
        "read": {"X-Api-Key": api["read"]},
        "admin": {"X-Api-Key": api["admin"]},
    }.get(access, {})


def access_of(method: str, route: str) -> str:
    from api.app import ACCESS

    return ACCESS[(route, method)]


# --- every route ----------------------------------------------------------------------------


def test_every_route_has_a_case(api):
    assert set(app_routes(api["app"])) == set(CASES)


@pytest.mark.parametrize(("method", "route"), sorted(CASES))
def test_every_route_answers_with_its_key_and_the_cors_headers(api, method, route):
    case = CASES[(method, route)]
    answer = send(api, method, case, credentials_for(api, access_of(method, route)))
    assert answer.status_code == case.status, answer.body
    assert case.check(answer)
    assert answer.headers["Access-Control-Allow-Origin"] in ("*", ORIGIN)
    assert_documented(method, route, answer)


def assert_documented(method: str, route: str, answer: Any) -> None:
    """A JSON answer matches the OpenAPI document's schema for its route and status (the
    schemas generated from clickstream.responses)."""
    from jsonschema import Draft202012Validator

    from clickstream.openapi import openapi_document

    if not answer.headers.get("Content-Type", "").startswith("application/json"):
        return
    document = openapi_document()
    response = document["paths"][route][method.lower()]["responses"][str(answer.status_code)]
    schema = response["content"]["application/json"]["schema"]
    validator = Draft202012Validator({"components": document["components"], **schema})
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(_json(answer))]
    assert not errors, (method, route, errors[:5])


@pytest.mark.parametrize(("method", "route"), sorted(CASES))
def test_every_route_has_a_preflight(api, method, route):
    path = _fill(CASES[(method, route)].path, api).split("?")[0]
    answer = api["client"].http.request(
        "OPTIONS",
        path,
        headers={"Origin": ORIGIN, "Access-Control-Request-Method": method},
        body=b"",
    )
    assert answer.status_code in (200, 204), answer.body
    assert method in answer.headers["Access-Control-Allow-Methods"]


PROTECTED = sorted(k for k in CASES if access_of(*k) in ("write", "read", "admin"))


@pytest.mark.parametrize(("method", "route"), PROTECTED)
def test_a_protected_route_without_a_key_is_a_401_naming_the_header(api, method, route):
    answer = send(api, method, CASES[(method, route)], {})
    assert answer.status_code == 401
    body = _json(answer)
    named = body.get("field") or body["errors"][0]["field"]
    assert named in ("X-Api-Key", "X-Write-Key")
    assert answer.headers["WWW-Authenticate"].startswith("ApiKey")


@pytest.mark.parametrize(("method", "route"), PROTECTED)
def test_a_key_of_the_wrong_role_is_a_403(api, method, route):
    access = access_of(method, route)
    wrong = {"write": {"X-Write-Key": api["read"]}, "read": {"X-Api-Key": api["write"]}}.get(
        access,
        {"X-Api-Key": api["read"]},  # admin routes: a read key
    )
    answer = send(api, method, CASES[(method, route)], wrong)
    assert answer.status_code == 403, answer.body
    assert api["write"] not in answer.body.decode() and api["read"] not in answer.body.decode()


# --- the Cognito mode -----------------------------------------------------------------------


def test_a_cognito_app_puts_the_authorizer_on_every_read_and_admin_route(cognito_api):
    for key, entry in app_routes(cognito_api["app"]).items():
        guarded = isinstance(entry.authorizer, CognitoUserPoolAuthorizer)
        assert guarded == (access_of(*key) in ("read", "admin")), key


@pytest.mark.parametrize(("method", "route"), sorted(CASES))
def test_every_route_answers_behind_the_user_pool(cognito_api, method, route):
    api = cognito_api
    access = access_of(method, route)
    credentials = (
        {"Authorization": api["admin_token"] if access == "admin" else api["reader"]}
        if access in ("read", "admin")
        else credentials_for(api, access)
    )
    case = CASES[(method, route)]
    answer = send(api, method, case, credentials, via=api["gateway"])
    assert answer.status_code == case.status, answer.body
    assert case.check(answer)


ADMIN_ROUTES = sorted(k for k in CASES if access_of(*k) == "admin")
READ_ROUTES = sorted(k for k in CASES if access_of(*k) == "read")


@pytest.mark.parametrize(("method", "route"), ADMIN_ROUTES)
def test_an_admin_route_needs_a_user_in_the_admin_group(cognito_api, method, route):
    api = cognito_api
    answer = send(
        api, method, CASES[(method, route)], {"Authorization": api["reader"]}, api["gateway"]
    )
    assert answer.status_code == 403
    assert _json(answer)["field"] == "Authorization"


@pytest.fixture(scope="module")
def other_key() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": "test-key"})


@pytest.mark.parametrize("token", ["none", "forged", "expired", "garbage"])
def test_api_gateway_refuses_a_missing_forged_or_expired_token(cognito_api, other_key, token):
    api = cognito_api
    other = other_key
    presented = {
        "none": {},
        "forged": {"Authorization": id_token(other)},
        "expired": {"Authorization": id_token(other, lifetime=-10)},
        "garbage": {"Authorization": "Bearer not-a-token"},
    }[token]
    for method, route in READ_ROUTES[:3] + ADMIN_ROUTES:
        answer = send(api, method, CASES[(method, route)], presented, api["gateway"])
        assert answer.status_code == 401, (route, answer.body)


def test_claims_past_their_expiry_are_refused_by_the_app_too(cognito_api, signing_key):
    # API Gateway caches a verified token for a while; the app re-checks the expiry.
    expired = id_token(signing_key, lifetime=-1)
    past_the_gateway = cognito_api["gateway"].http
    answer = send(
        cognito_api, "GET", CASES[("GET", "/stats")], {"Authorization": expired}, past_the_gateway
    )
    assert answer.status_code == 401
    assert _json(answer) == {"error": "the token has expired", "field": "Authorization"}
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")


# --- error paths ----------------------------------------------------------------------------


def test_a_batch_without_a_valid_record_is_a_400_naming_each_record_and_field(api):
    answer = send(
        api,
        "POST",
        Case("/events", 400, {"records": [EVENT | {"event_type": "No Such!"}, {"page": 7}]}),
        credentials_for(api, "write"),
    )
    assert answer.status_code == 400
    errors = _json(answer)["errors"]
    assert [(e["index"], e["field"]) for e in errors] == [(0, "event_type"), (1, "page")]


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", "/exports", "not json", "body"),
        ("POST", "/exports", {"from": 7}, "from"),
        ("POST", "/exports", {"format": "xlsx"}, "format"),
        ("GET", "/export?limit=ten", None, "limit"),
        ("GET", "/export?cursor=made-up", None, "cursor"),
        ("GET", "/metrics/timeseries?granularity=fortnight", None, "granularity"),
        ("GET", "/pages/top?limit=0", None, "limit"),
        ("DELETE", "/users/" + "u" * 300, None, "user_id"),
    ],
)
def test_a_bad_parameter_or_body_is_a_400_naming_it(api, method, path, body, field):
    access = access_of(
        method, "/users/{user_id}" if path.startswith("/users/") else path.split("?")[0]
    )
    raw = body if isinstance(body, str) else (json.dumps(body) if body is not None else "")
    answer = api["client"].http.request(
        method,
        path,
        headers={"Content-Type": "application/json", **credentials_for(api, access)},
        body=raw.encode(),
    )
    assert answer.status_code == 400, answer.body
    assert _json(answer)["field"] == field
    route = "/users/{user_id}" if path.startswith("/users/") else path.split("?")[0]
    assert_documented(method, route, answer)


@pytest.mark.parametrize(
    ("method", "path", "field"),
    [
        ("POST", "/v1/gossip", "path"),
        ("GET", "/exports/exp-" + "0" * 32, "job_id"),
        ("GET", "/exports/not-a-job", "job_id"),
        ("GET", "/erasures/era-" + "0" * 32, "job_id"),
    ],
)
def test_what_does_not_exist_is_a_404_naming_it(api, method, path, field):
    credentials = credentials_for(api, "admin")
    answer = api["client"].http.request(method, path, headers=credentials, body=b"{}")
    assert answer.status_code == 404, answer.body
    assert _json(answer)["field"] == field


def test_an_export_job_is_not_found_as_an_erasure(api):
    job = JobStore(client("dynamodb"), "jobs").create("export", {})
    answer = api["client"].http.get(
        f"/erasures/{job.job_id}", headers=credentials_for(api, "admin")
    )
    assert answer.status_code == 404


def test_a_path_or_method_no_route_takes_is_a_404_as_deployed(api, monkeypatch):
    # chalice's own answers: API Gateway's default 403 "Missing Authentication Token", and
    # the app's 405 for a method (on AWS that method never reaches the app)
    assert api["client"].http.get("/nothing/here").status_code == 403
    assert api["client"].http.request("PUT", "/stats", headers={}, body=b"").status_code == 405
    # WHEN the local API answers them as make deploy's gateway response does
    handle = no_route_as_deployed(LocalGateway.handle_request)
    monkeypatch.setattr(LocalGateway, "handle_request", handle)
    origin = {"Origin": "https://shop.example"}
    for method, path in (("GET", "/nothing/here"), ("PUT", "/stats"), ("GET", "/events")):
        unknown = api["client"].http.request(method, path, headers=origin, body=b"")
        assert (unknown.status_code, unknown.body.decode()) == (404, NO_ROUTE_BODY)
        assert _json(unknown)["message"] == "Not Found: no route takes this method and path"
        # with CORS headers, as the deployed gateway response has: a browser sees the 404
        assert unknown.headers["Access-Control-Allow-Origin"] in ("*", "https://shop.example")
    # a route's own answers, its own 404s and 405-free errors included, are untouched
    assert api["client"].http.get("/openapi.json").status_code == 200
    segment = api["client"].http.post("/v1/unknown", headers={}, body=b"{}")
    assert segment.status_code == 404 and "is not a Segment call" in segment.body.decode()


def test_parquet_without_an_accept_for_it_is_a_406_naming_accept(api):
    answer = api["client"].http.get(
        "/export?format=parquet",
        headers={**credentials_for(api, "read"), "Accept": "application/json"},
    )
    assert answer.status_code == 406
    assert _json(answer)["field"] == "Accept"


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/events", {"records": [EVENT] * 501}, "records"),
        ("/events", {"records": [EVENT | {"properties": {"x": "y" * 1_100_000}}]}, "body"),
        ("/graphql", {"query": "{ stats { visitors } }" + " " * 200_000}, None),
    ],
)
def test_too_large_a_body_is_a_413(api, path, body, field):
    access = access_of("POST", path)
    answer = api["client"].http.post(
        path,
        body=json.dumps(body),
        headers={"Content-Type": "application/json", **credentials_for(api, access)},
    )
    assert answer.status_code == 413, answer.body[:200]
    if field:
        assert _json(answer)["errors"][0]["field"] == field


def test_a_body_that_is_not_json_is_a_415_naming_content_type(api):
    answer = api["client"].http.post(
        "/events",
        body=b"<events/>",
        headers={"Content-Type": "application/xml", **credentials_for(api, "write")},
    )
    assert answer.status_code == 415
    assert _json(answer)["errors"][0]["field"] == "Content-Type"


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "image/gif"])
def test_a_read_or_pixel_sent_with_any_content_type_is_answered(api, content_type):
    """A GET has no body: a Content-Type header some client sends with it anyway is not
    checked (it was chalice's 415 in chalice's own error shape)."""
    read = api["client"].http.get(
        "/stats", headers={"Content-Type": content_type, **credentials_for(api, "read")}
    )
    assert read.status_code == 200, read.body
    pixel = api["client"].http.get(
        f"/i?e=pv&aid={api['write']}&duid=d", headers={"Content-Type": content_type}
    )
    assert pixel.status_code in (200, 204), pixel.body


# --- a store that does not answer ------------------------------------------------------------


@dataclass
class _Refusal:
    status_code: int


def fail_calls(service: str, operation: str, code: str, status: int, only: bytes = b"") -> None:
    """A botocore hook on the app's own client: ``operation`` (whose request mentions
    ``only``) is answered with ``code`` without reaching moto."""

    def refuse(params: dict[str, Any], **_: Any) -> Any:
        if only not in (params.get("body") or b""):
            return None
        return _Refusal(status), {
            "Error": {"Code": code, "Message": "injected"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        }

    client(service).meta.events.register(f"before-call.{service}.{operation}", refuse)


@pytest.mark.parametrize(
    ("path", "service", "operation", "only"),
    [
        ("/stats?period=today", "dynamodb", "*", b'"aggregates"'),
        ("/breakdown?dimension=page", "dynamodb", "*", b'"aggregates"'),
        ("/pages/top", "dynamodb", "*", b'"aggregates"'),
        ("/analytics/page-views/home", "dynamodb", "*", b'"aggregates"'),
        ("/stats", "dynamodb", "GetItem", b'"keys"'),  # the key check itself
        ("/export?format=json", "s3", "ListObjectsV2", b""),
        ("/exports/exp-" + "0" * 32, "dynamodb", "GetItem", b'"jobs"'),
    ],
)
def test_a_store_that_does_not_answer_is_a_503_with_retry_after(
    api, path, service, operation, only
):
    if service == "s3":
        fail_calls("s3", operation, "InternalError", 500)
    else:
        fail_calls(service, operation, "ProvisionedThroughputExceededException", 400, only)
    answer = api["client"].http.get(path, headers=credentials_for(api, "read"))
    assert answer.status_code == 503, answer.body
    assert answer.headers["Retry-After"] == "1"
    assert "retry" in _json(answer)["error"]


def test_a_store_refusing_a_write_is_a_503_in_the_ingest_shape(api):
    fail_calls("dynamodb", "GetItem", "InternalServerError", 500, b'"keys"')
    answer = send(api, "POST", CASES[("POST", "/events")], credentials_for(api, "write"))
    assert answer.status_code == 503
    assert _json(answer)["status"] == "unavailable"


def test_a_store_error_that_is_a_bug_is_not_hidden_as_a_503(api):
    fail_calls("dynamodb", "*", "ValidationException", 400, b'"aggregates"')
    answer = api["client"].http.get("/stats", headers=credentials_for(api, "read"))
    assert answer.status_code == 500


# --- state built at first use -------------------------------------------------------------


def test_the_api_state_follows_the_environment_when_rebuilt(monkeypatch):
    from api.app import api_state, reset_api_state

    monkeypatch.setenv("CLICKSTREAM_KEY_CACHE_S", "5")
    reset_api_state()
    assert api_state().keys.ttl == 5
    monkeypatch.setenv("CLICKSTREAM_KEY_CACHE_S", "7")
    monkeypatch.setenv("CLICKSTREAM_READ_AUTH", "cognito")
    reset_api_state()
    assert (api_state().keys.ttl, api_state().read_auth) == (7, "cognito")
    monkeypatch.setenv("CLICKSTREAM_READ_AUTH", "basic")
    reset_api_state()
    with pytest.raises(RuntimeError, match="CLICKSTREAM_READ_AUTH"):
        api_state()
    reset_api_state()


# --- the OpenAPI document -----------------------------------------------------------------


@pytest.mark.parametrize("read_auth", ["apikey", "cognito"])
def test_the_openapi_document_is_valid_and_names_every_route_of_the_app(read_auth, monkeypatch):
    from openapi_spec_validator import validate

    # chalice tags AWS_EXECUTION_ENV when its app is built, which importing api.app does
    monkeypatch.setenv("AWS_EXECUTION_ENV", os.environ.get("AWS_EXECUTION_ENV", "AWS_Lambda"))

    from api.app import ACCESS, create_app
    from clickstream.openapi import openapi_document
    from clickstream.schema import EVENT_TYPE_PATTERN

    settings = replace(Settings.from_env(), read_auth=read_auth, cognito_user_pool_arn=POOL_ARN)
    routes = tuple((path, method, access) for (path, method), access in ACCESS.items())
    document = openapi_document(read_auth, routes)
    validate(document)
    documented = {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
    }
    assert documented == set(app_routes(create_app(settings)))
    event = document["components"]["schemas"]["IncomingEvent"]["properties"]["event_type"]
    assert event["anyOf"][0]["pattern"] == EVENT_TYPE_PATTERN
    for (method, path), operation in (
        ((m.upper(), p), op) for p, ops in document["paths"].items() for m, op in ops.items()
    ):
        if access_of(method, path) in ("read", "admin"):
            assert {"401", "403"} <= set(operation["responses"]), (method, path)


def test_the_openapi_document_does_not_load_graphql():
    import subprocess
    import sys

    script = (
        "import sys; from clickstream.openapi import openapi_document; openapi_document();"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('ariadne', 'graphql')"
        " or m == 'clickstream.graphql'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_a_route_not_described_is_documented_from_its_access():
    from openapi_spec_validator import validate

    from api.app import ACCESS
    from clickstream.openapi import openapi_document

    routes = (*((p, m, a) for (p, m), a in ACCESS.items()), ("/reports/{report_id}", "GET", "read"))
    document = openapi_document("apikey", routes)
    validate(document)
    operation = document["paths"]["/reports/{report_id}"]["get"]
    assert operation["security"] == [{"apiKey": []}]
    assert [p["name"] for p in operation["parameters"]] == ["report_id"]
    assert {"200", "400", "401", "403", "503"} <= set(operation["responses"])
