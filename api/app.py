"""The Chalice app: HTTP routes and the Lambda entry points of the consumers. Each route
parses the request, calls the domain package, and answers. Who may call which route, CORS and
the per-request log line live in one middleware (``guard``); see ``clickstream.auth``."""

from __future__ import annotations

import re
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache, wraps
from typing import Any
from urllib.parse import unquote

import orjson
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError
from chalice import CognitoUserPoolAuthorizer, Rate, Response
from chalice.app import Chalice, Request

from clickstream import queries
from clickstream.addresses import client_address
from clickstream.auth import Access, Principal, authorize_claims, authorize_key, presented_key
from clickstream.aws import aggregate_store, client, reset_clients
from clickstream.cors import cors_headers, preflight
from clickstream.errors import RequestError
from clickstream.geo import locator
from clickstream.headers import query_values, single_valued_query
from clickstream.ingest import (
    IngestContext,
    IngestResponse,
    handle_events_request,
    handle_track_request,
)
from clickstream.keys import KeyCache, get_key
from clickstream.protocols import Protocol, SdkRequest, handle_sdk_request, posthog
from clickstream.protocols.segment import PATH_TYPES as SEGMENT_CALLS
from clickstream.settings import Settings, get_settings

# Request bodies of these types reach the function base64-encoded, so API Gateway passes
# gzip (posthog-js sends it as text/plain) unchanged; the pixel is the one binary answer.
BINARY_TYPES = (
    "text/plain",
    "application/octet-stream",
    "application/gzip",
    "application/x-gzip",
    "application/x-www-form-urlencoded",
    "image/gif",
    "application/vnd.apache.parquet",
)
READ_AUTH_MODES = ("apikey", "cognito")
logger = Logger(service="clickstream-api")
# Patches botocore, so each PutRecords / DynamoDB / S3 call is an X-Ray subsegment of the
# request's trace (on Lambda with `xray: true`; off under `chalice local` and in tests).
tracer = Tracer(service="clickstream-api")


@dataclass(frozen=True)
class ApiState:
    """What the routes share per warm Lambda, built from the settings at the first request
    (``api_state``), not at import: tests and tools change the environment and rebuild it
    (``reset_api_state``)."""

    settings: Settings
    keys: KeyCache  # key lookups, remembered for the settings' key_cache_seconds
    metrics: Metrics  # EMF; its namespace is POWERTOOLS_METRICS_NAMESPACE's

    @property
    def read_auth(self) -> str:
        """How read and admin routes are proven: API keys ("apikey", the local stack) or API
        Gateway's Cognito user-pool authorizer ("cognito", AWS stages)."""
        return self.settings.read_auth


def _checked_read_auth(settings: Settings) -> str:
    if settings.read_auth not in READ_AUTH_MODES:
        raise RuntimeError(
            f"CLICKSTREAM_READ_AUTH must be apikey or cognito, not {settings.read_auth!r}"
        )
    return settings.read_auth


@cache
def api_state() -> ApiState:
    settings = get_settings()
    _checked_read_auth(settings)
    return ApiState(
        settings=settings,
        keys=KeyCache(ttl=settings.key_cache_seconds),
        metrics=Metrics(service="clickstream-api"),
    )


def reset_api_state() -> None:
    """Forget the state (and the settings and clients it was built from)."""
    api_state.cache_clear()
    reset_clients()


# The route table: who may call each route. API Gateway's part of it (which routes carry the
# Cognito authorizer) is configuration that chalice reads from the app when it packages a
# stage, so ``create_app`` applies it to a new app from the settings it is given.
ACCESS: dict[tuple[str, str], Access] = {}
ROUTE_METHODS: dict[str, set[str]] = {}
_VIEWS: list[tuple[str, str, Access, Callable[..., Any], dict[str, Any]]] = []
REQUEST: ContextVar[Request] = ContextVar("request")
PRINCIPAL: ContextVar[Principal | None] = ContextVar("principal", default=None)
# What a route adds to its request's log line (e.g. the ids of the events it accepted).
LOG_FIELDS: ContextVar[dict[str, Any]] = ContextVar("log_fields")


def route(path: str, method: str, access: Access, **kwargs: Any) -> Callable[[Any], Any]:
    """Add a view to the route table with who may call it; each path also gets a CORS
    preflight view (chalice's own CORSConfig allows only one origin)."""

    def register(view: Callable[..., Any]) -> Callable[..., Any]:
        ACCESS[(path, method)] = access
        ROUTE_METHODS.setdefault(path, set()).add(method)
        _VIEWS.append((path, method, access, view, kwargs))
        return view

    return register


def create_app(settings: Settings | None = None) -> Chalice:
    """A Chalice app serving the route table. On a ``cognito`` stage every read and admin
    route carries the user pool's authorizer (and, when the stage opts in, API Gateway's
    usage-plan key: per-client rate limits, see the README)."""
    settings = settings or Settings.from_env()
    authorizer = (
        CognitoUserPoolAuthorizer(
            "clickstream-users", provider_arns=[settings.cognito_user_pool_arn]
        )
        if _checked_read_auth(settings) == "cognito"
        else None
    )
    new_app = Chalice(app_name="clickstream")
    new_app.api.binary_types = list(BINARY_TYPES)
    for path in ROUTE_METHODS:
        new_app.route(path, methods=["OPTIONS"], content_types=["*/*"])(answer_preflight)
    for path, method, access, view, kwargs in _VIEWS:
        options = dict(kwargs)
        if method in ("GET", "DELETE"):  # no body: a Content-Type sent anyway is no 415
            options.setdefault("content_types", ["*/*"])
        if access in ("read", "admin") and authorizer is not None:
            options["authorizer"] = authorizer
            options["api_key_required"] = settings.usage_plan_key_required or None
        new_app.route(path, methods=[method], **options)(_answering(view, access))
    new_app.register_middleware(guard, "http")
    return new_app


def answer_preflight(**_: Any) -> Response:
    request = _request()
    methods = ROUTE_METHODS.get(request.path, ())
    sdk = any(ACCESS.get((request.path, method)) == "sdk" for method in methods)
    answer = preflight(request.headers, _settings().cors_origins, methods, credentials=sdk)
    body = {"error": answer.error, "field": "Origin"} if answer.error else None
    return Response(
        body=orjson.dumps(body).decode() if body else "",
        status_code=answer.status,
        headers={"Content-Type": "application/json", **answer.headers},
    )


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(
        body=orjson.dumps(body).decode(),
        status_code=status,
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def _settings() -> Settings:
    return api_state().settings


def _request() -> Request:
    return REQUEST.get()


def _raw_body() -> bytes | None:
    body = _request().raw_body
    return body.encode() if isinstance(body, str) else body


def _source_ip(request: Request) -> str | None:
    """API Gateway's address for the connection; X-Forwarded-For only through trusted proxies."""
    identity = (request.context or {}).get("identity") or {}
    return client_address(
        identity.get("sourceIp"),
        request.headers.get("x-forwarded-for"),
        _settings().trusted_proxies,
    )


def _lookup_key(key: str) -> Any:
    keys_table = _settings().keys_table
    return api_state().keys.get(key, lambda k: get_key(client("dynamodb"), keys_table, k))


def _authorize(request: Request, access: Access) -> Principal | None:
    if access in ("public", "sdk"):  # an SDK route checks the key its body carries
        return None
    if access != "write" and api_state().read_auth == "cognito":
        claims = ((request.context or {}).get("authorizer") or {}).get("claims")
        return authorize_claims(access, claims)
    key, field = presented_key(access, request.headers, single_valued_query(request.query_params))
    return authorize_key(access, key, field, _lookup_key)


# A store that did not answer (throttled, down, unreachable): the request may be sent again.
RETRY_AFTER_S = "1"
_UNAVAILABLE_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "ThrottlingException",
        "InternalServerError",
        "ServiceUnavailable",
        "SlowDown",
        "RequestTimeout",
    }
)


def _unavailable(error: Exception) -> bool:
    if isinstance(error, BotoCoreError):  # no answer: connection, timeout
        return True
    if not isinstance(error, ClientError):
        return False
    answer = error.response
    status = int(answer.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    return status >= 500 or answer.get("Error", {}).get("Code") in _UNAVAILABLE_CODES


def _refused(access: Access, error: RequestError) -> Response:
    """The one answer to a refused request: ingest's shape on write routes, ``{error,
    field}`` elsewhere."""
    if error.status in (401, 403):
        api_state().metrics.add_metric(name="AuthRejected", unit=MetricUnit.Count, value=1)
    if access == "write":
        body: dict[str, Any] = {
            "status": "rejected",
            "error": error.message,
            "errors": [{"index": None, "field": error.field, "message": error.message}],
        }
    else:
        body = {"error": error.message, "field": error.field}
    return _json(error.status, body, error.headers)


def _store_failed(access: Access, error: ClientError | BotoCoreError) -> Response:
    """DynamoDB or S3 did not answer: a 503 the client retries after ``Retry-After``."""
    what = (
        f"{error.operation_name}: {error.response.get('Error', {}).get('Code')}"
        if isinstance(error, ClientError)
        else type(error).__name__
    )
    logger.warning("store unavailable", extra={"error": what})
    api_state().metrics.add_metric(name="StoreUnavailable", unit=MetricUnit.Count, value=1)
    message = f"the data store did not answer ({what}); retry after {RETRY_AFTER_S} s"
    body: dict[str, Any] = (
        {"status": "unavailable", "error": message, "errors": []}
        if access == "write"
        else {"error": message, "field": None}
    )
    return _json(503, body, {"Retry-After": RETRY_AFTER_S})


def _answering(call: Callable[..., Any], access: Access) -> Callable[..., Any]:
    """``call`` (a view, or the access check), with the one place where a refused request
    (``RequestError``) and a store that did not answer become answers. Chalice turns what a
    view raises into a 500 before any middleware sees it, so each view is wrapped."""

    @wraps(call)
    def answering(*args: Any, **kwargs: Any) -> Any:
        try:
            return call(*args, **kwargs)
        except RequestError as error:
            return _refused(access, error)
        except (ClientError, BotoCoreError) as error:
            if not _unavailable(error):
                raise
            return _store_failed(access, error)

    return answering


def guard(event: Request, get_response: Any) -> Any:
    """Authorize, answer, add the CORS headers; one structured log line (never a key or an
    IP address) and one EMF flush per request. A refused request (``RequestError``, from
    the checks or the route) and a store that did not answer are turned into answers here."""
    access = ACCESS.get((event.path, event.method), "public")
    principal = None
    log_fields: dict[str, Any] = {}
    tokens = REQUEST.set(event), PRINCIPAL.set(None), LOG_FIELDS.set(log_fields)
    try:
        checked = _answering(_authorize, access)(event, access)
        if isinstance(checked, Response):  # refused, or the keys table did not answer
            response = checked
        else:
            principal = checked
            PRINCIPAL.set(principal)
            response = get_response(event)
    finally:
        LOG_FIELDS.reset(tokens[2])
        PRINCIPAL.reset(tokens[1])
        REQUEST.reset(tokens[0])
    if event.method != "OPTIONS":
        response.headers.update(
            cors_headers(event.headers, _settings().cors_origins, credentials=access == "sdk")
        )
    logger.info(
        "request",
        extra={
            "method": event.method,
            "path": event.path,
            "status": response.status_code,
            "request_id": (event.context or {}).get("requestId"),
            "lambda_request_id": getattr(event.lambda_context, "aws_request_id", None),
            **(principal.log_fields() if principal else {}),
            **log_fields,
        },
    )
    api_state().metrics.flush_metrics(raise_on_empty_metrics=False)
    return response


def _answer_ingest(result: IngestResponse) -> Response:
    accepted_ids = result.body.get("event_ids") or [result.body.get("event_id")]
    LOG_FIELDS.get().update(
        accepted=result.accepted,
        rejected=result.rejected,
        event_ids=[event_id for event_id in accepted_ids if event_id],
    )
    # The route and the reasons are properties of the EMF line, not dimensions: CloudWatch
    # keeps one series per metric (what the alarms watch, one custom metric each), Logs
    # Insights can still split by them, and the local Prometheus metrics label by them.
    api_state().metrics.add_metadata(key="route", value=_request().path)
    if result.rejected_by_reason:
        api_state().metrics.add_metadata(key="rejected_by_reason", value=result.rejected_by_reason)
    api_state().metrics.add_metric(
        name="EventsAccepted", unit=MetricUnit.Count, value=result.accepted
    )
    api_state().metrics.add_metric(
        name="EventsRejected", unit=MetricUnit.Count, value=result.rejected
    )
    if result.throttled:
        api_state().metrics.add_metric(
            name="PutRecordsThrottled", unit=MetricUnit.Count, value=result.throttled
        )
    if result.put_retries:
        api_state().metrics.add_metric(
            name="PutRecordsRetries", unit=MetricUnit.Count, value=result.put_retries
        )
    if result.status == 503:
        api_state().metrics.add_metric(name="PutRecordsFailed", unit=MetricUnit.Count, value=1)
    return _json(result.status, result.body, result.headers)


def _ingest_context() -> IngestContext:
    settings = _settings()
    return IngestContext(
        kinesis=client("kinesis"),
        stream_name=settings.stream_name,
        received_at=datetime.now(UTC),
        source_ip=_source_ip(_request()),
        max_attempts=settings.max_put_attempts,
        max_event_age=timedelta(days=settings.max_event_age_days),
        locate=locator(_request().headers, settings.geoip_database),
    )


def _content_type() -> str | None:
    return _request().headers.get("content-type")


def _content_encoding() -> str | None:
    return _request().headers.get("content-encoding")


# Bodies are checked by clickstream.ingest.check_content_type (a 415 naming the header).
ANY_BODY = ["*/*"]


@route("/", "GET", "public")
def health() -> Response:
    return _json(200, {"service": "clickstream", "status": "ok"})


@route("/openapi.json", "GET", "public")
def openapi() -> Response:
    from clickstream.openapi import openapi_document

    routes = tuple((path, method, access) for (path, method), access in ACCESS.items())
    return _json(200, openapi_document(api_state().read_auth, routes))


@route("/events", "POST", "write", content_types=ANY_BODY)
def post_events() -> Response:
    return _answer_ingest(
        handle_events_request(_raw_body(), _ingest_context(), _content_type(), _content_encoding())
    )


@route("/track", "POST", "write", content_types=ANY_BODY)
def track() -> Response:
    return _answer_ingest(
        handle_track_request(_raw_body(), _ingest_context(), _content_type(), _content_encoding())
    )


# The SDKs' own endpoints (clickstream.protocols): same ingest path, their request and answer.
PIXEL_GIF = bytes.fromhex(
    "47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b"
)


def _sdk(protocol: Protocol, call: str = "batch") -> Response:
    request = _request()
    query, conflicting = query_values(request.query_params)
    sdk_request = SdkRequest(
        body=_raw_body(),
        headers={name.lower(): value for name, value in request.headers.items()},
        query=query,
        path=request.path,
        conflicting=conflicting,
    )
    result = handle_sdk_request(
        protocol,
        sdk_request,
        _ingest_context(),
        lambda key, field: authorize_key("write", key, field, _lookup_key),
        call=call,
        method=request.method,
    )
    if result.status == 200 and request.method == "GET" and protocol == "snowplow":
        _answer_ingest(result)  # metrics and the log line; the pixel is the body
        if not _accepts_binary():  # chalice would answer a GIF to it with a 400: it is taken
            return Response(body="", status_code=204)
        return Response(body=PIXEL_GIF, status_code=200, headers={"Content-Type": "image/gif"})
    return _answer_ingest(result)


@route("/v1/{call}", "POST", "sdk", content_types=ANY_BODY)
def segment_call(call: str) -> Response:
    if call not in SEGMENT_CALLS:
        raise RequestError("path", f"/v1/{call[:40]} is not a Segment call", 404)
    return _sdk("segment", SEGMENT_CALLS[call])


@route("/capture", "POST", "sdk", content_types=ANY_BODY)
def posthog_capture() -> Response:
    return _sdk("posthog")


@route("/batch", "POST", "sdk", content_types=ANY_BODY)
def posthog_batch() -> Response:
    return _sdk("posthog")


@route("/e", "POST", "sdk", content_types=ANY_BODY)
def posthog_e() -> Response:
    return _sdk("posthog")


@route("/i/v0/e", "POST", "sdk", content_types=ANY_BODY)
def posthog_i_v0_e() -> Response:
    return _sdk("posthog")


@route("/i/v1/analytics/events", "POST", "sdk", content_types=ANY_BODY)
def posthog_capture_v1() -> Response:
    return _sdk("posthog", "v1")


@route("/flags", "POST", "public", content_types=ANY_BODY)
def posthog_flags() -> Response:
    return _json(200, posthog.flags_answer())


@route("/decide", "POST", "public", content_types=ANY_BODY)
def posthog_decide() -> Response:
    return _json(200, posthog.flags_answer())


@route("/array/{token}/config", "GET", "public")
def posthog_remote_config(token: str) -> Response:
    return _json(200, posthog.remote_config(token[:256]))


@route("/array/{token}/config.js", "GET", "public")
def posthog_remote_config_script(token: str) -> Response:
    return Response(
        body=posthog.remote_config_script(token[:256]),
        status_code=200,
        headers={"Content-Type": "text/javascript; charset=utf-8"},
    )


@route("/i", "GET", "sdk")
def snowplow_pixel() -> Response:
    return _sdk("snowplow")


@route("/com.snowplowanalytics.snowplow/tp2", "POST", "sdk", content_types=ANY_BODY)
def snowplow_tp2() -> Response:
    return _sdk("snowplow")


def _read(answer: Any) -> Response:
    """Run a read query (a bad parameter raises ``RequestError``: the guard's 400)."""
    return _json(200, answer())


def _param(name: str) -> str | None:
    return single_valued_query(_request().query_params).get(name)


def _time_param(name: str) -> datetime | None:
    """An ISO time query parameter (errors name the parameter)."""
    return queries.parse_time(_param(name), name)


def _end_param() -> datetime | None:
    """``to``: a time, or a date as that whole day (``queries.parse_end``)."""
    return queries.parse_end(_param("to"))


def _int_param(name: str, default: int) -> int:
    raw = _param(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise RequestError(name, f"'{raw}' is not an integer") from None


def _period() -> queries.Period:
    """``period`` (all, realtime, today, 7d, 30d, custom) with ``from``/``to``."""
    return queries.resolve_period(_param("period"), _time_param("from"), _end_param())


@route("/stats", "GET", "read")
def stats() -> Response:
    return _read(lambda: queries.stats(aggregate_store(), _period()))


@route("/breakdown", "GET", "read")
def breakdown() -> Response:
    return _read(
        lambda: queries.breakdown(
            aggregate_store(), _param("dimension") or "", _period(), _int_param("limit", 10)
        )
    )


@route("/goals", "GET", "read")
def goals() -> Response:
    return _read(lambda: queries.goals(aggregate_store(), _period(), _int_param("limit", 10)))


@route("/realtime", "GET", "read")
def realtime() -> Response:
    return _read(lambda: queries.realtime(aggregate_store()))


@route("/metrics/timeseries", "GET", "read")
def timeseries() -> Response:
    return _read(
        lambda: queries.timeseries(
            aggregate_store(),
            _param("granularity") or "minute",
            _time_param("from"),
            _end_param(),
        )
    )


@route("/funnel", "GET", "read")
def funnel() -> Response:
    return _read(
        lambda: queries.funnel_requested(
            aggregate_store(), _param("period"), _param("from"), _param("to")
        )
    )


@route("/dashboard", "GET", "read")
def dashboard() -> Response:
    return _read(
        lambda: queries.dashboard(
            aggregate_store(),
            _int_param("limit", 10),
            _period(),
            sections=queries.parse_sections(_param("sections")),
        )
    )


@route("/pages/top", "GET", "read")
def top_pages() -> Response:
    return _read(lambda: queries.top_pages(aggregate_store(), _int_param("limit", 10)))


@route("/analytics/page-views/{page}", "GET", "read")
def page_views(page: str) -> Response:
    return _read(lambda: queries.page_views(aggregate_store(), unquote(page)))


@route("/graphql", "GET", "read")
def graphql_get() -> Response:
    return _graphql()


@route("/graphql", "POST", "read", content_types=ANY_BODY)
def graphql_post() -> Response:
    return _graphql()


def _graphql() -> Response:
    """GraphQL over the read routes' queries; the parsing, limits and errors live in
    ``clickstream.graphql`` (imported here: only this route loads ariadne)."""
    from clickstream import graphql

    request = _request()
    parsed = graphql.parse_request(
        request.method, single_valued_query(request.query_params), _raw_body(), _content_type()
    )
    answer = (
        parsed
        if isinstance(parsed, graphql.GraphQLAnswer)
        else graphql.execute(
            aggregate_store(), parsed, introspection=_settings().graphql_introspection
        )
    )
    return _json(answer.status, answer.body, answer.headers)


def _export_link(cursor: str) -> str:
    """The next page's URL: the same request with the cursor (the range travels in it)."""
    from urllib.parse import urlencode

    params = single_valued_query(_request().query_params)
    params = {k: v for k, v in params.items() if k in ("format", "limit")}
    return f"/export?{urlencode({**params, 'cursor': cursor})}"


@route("/export", "GET", "read")
def export() -> Response:
    """One page of archived events; the next page's link is in ``next`` (json) and in the
    ``Link`` header (every format). Larger ranges: POST /exports."""
    from clickstream import exports

    export_format = exports.check_format(_param("format") or "json")
    if export_format == "parquet" and not _accepts_binary():
        parquet = exports.FORMATS["parquet"]
        raise RequestError("Accept", f"format=parquet is binary: send Accept: {parquet}", 406)
    limit = exports.check_limit(_int_param("limit", exports.DEFAULT_PAGE_ROWS))
    cursor = _param("cursor")
    if cursor:
        window, after = exports.decode_cursor(cursor)
    else:
        window = exports.resolve_range(_time_param("from"), _end_param())
        after = None
    page = exports.export_page(
        client("s3"),
        _settings().archive_bucket,
        export_format=export_format,
        window=window,
        after=after,
        limit=limit,
        link=_export_link,
        erased=aggregate_store().erased_users(),
    )
    headers: dict[str, str | list[str]] = {
        "Content-Type": page.content_type,
        "X-Export-Rows": str(page.rows),
    }
    if page.cursor:
        headers["Link"] = f'<{_export_link(page.cursor)}>; rel="next"'
        headers["X-Next-Cursor"] = page.cursor
    LOG_FIELDS.get().update(export_rows=page.rows, export_bytes=len(page.body))
    body: bytes | str = page.body if export_format == "parquet" else page.body.decode()
    return Response(body=body, status_code=200, headers=headers)


def _accepts_binary() -> bool:
    """Chalice (and API Gateway) answer a binary body only to a request accepting it."""
    accept = (_request().headers.get("accept") or "").lower()
    parts = {part.strip() for part in re.split("[,;]", accept)}
    return "*/*" in parts or bool(parts & set(BINARY_TYPES))


def _json_body() -> dict[str, Any]:
    raw = _raw_body()
    if not raw:
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise RequestError("body", "not JSON") from None
    if not isinstance(body, dict):
        raise RequestError("body", "must be a JSON object")
    return body


def _job_queue() -> Any:
    from clickstream.jobs import JobQueue

    return JobQueue(client("sqs"), _settings().jobs_queue)


def _job_store() -> Any:
    from clickstream.jobs import JobStore

    return JobStore(client("dynamodb"), _settings().jobs_table)


def _requested_by() -> dict[str, Any]:
    principal = PRINCIPAL.get()
    return principal.log_fields() if principal else {}


@route("/exports", "POST", "read", content_types=ANY_BODY)
def start_export() -> Response:
    """An export job: every event of the range (up to a year) in one S3 object."""
    from clickstream import exports

    body = _json_body()
    export_format = exports.check_format(str(body.get("format") or "json"))
    window = exports.resolve_range(
        queries.parse_time(_str_or_none(body.get("from")), "from"),
        queries.parse_end(_str_or_none(body.get("to"))),
        longest=exports.MAX_JOB_WINDOW,
    )
    params = {
        "format": export_format,
        "from": window.start.isoformat().replace("+00:00", "Z"),
        "to": window.end.isoformat().replace("+00:00", "Z"),
        "requested_by": _requested_by(),
    }
    job = _job_store().create("export", params)
    _job_queue().send({"job": job.job_id, "kind": "export"})
    LOG_FIELDS.get().update(job_id=job.job_id)
    status_url = f"/exports/{job.job_id}"
    return _json(
        202,
        {"job_id": job.job_id, "status": "queued", "status_url": status_url},
        {"Location": status_url},
    )


def _str_or_none(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise RequestError("from", "must be an ISO 8601 time")
    return value


def _job_answer(job_id: str, kind: str) -> Response:
    import re

    from clickstream.jobs import public_view

    well_formed = re.fullmatch(r"(exp|era)-[0-9a-f]{32}", job_id) is not None
    job = _job_store().get(job_id) if well_formed else None
    if job is None or job.kind != kind:
        raise RequestError("job_id", f"no such {kind} job", 404)
    view = public_view(job)
    if kind == "export" and job.status == "succeeded":
        from clickstream.exports import presigned_url

        view["url"] = presigned_url(client("s3"), _settings().archive_bucket, job.result["key"])
        view["url_expires_in_s"] = 3600
    return _json(200, view)


@route("/exports/{job_id}", "GET", "read")
def export_status(job_id: str) -> Response:
    return _job_answer(unquote(job_id), "export")


@route("/users/{user_id}", "DELETE", "admin")
def delete_user(user_id: str) -> Response:
    """Erase a user's events (admin only): an asynchronous job, 202 with its id."""
    from clickstream.privacy import start_erasure
    from clickstream.store import user_hash

    requested_by = _requested_by()
    job = start_erasure(_job_store(), _job_queue(), unquote(user_id), requested_by)
    the_hash = user_hash(unquote(user_id))
    logger.info(
        "user erasure requested",
        extra={"user_hash": the_hash, "job_id": job.job_id, "requested_by": requested_by},
    )
    status_url = f"/erasures/{job.job_id}"
    return _json(
        202,
        {"job_id": job.job_id, "status": "queued", "user_hash": the_hash, "status_url": status_url},
        {"Location": status_url},
    )


@route("/erasures/{job_id}", "GET", "admin")
def erasure_status(job_id: str) -> Response:
    return _job_answer(unquote(job_id), "erasure")


# The stage's app: chalice finds it here when it serves, tests or packages the API.
app = create_app()


# --- Kinesis consumers: Lambda functions of the same deployment package. Their event source
# mappings are configured by infra/ (Chalice's on_kinesis_record cannot set bisect, retries
# or the on-failure destination). Imported lazily: the API never loads pyarrow.


@app.lambda_function(name="aggregator")
def aggregator(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from consumers.aggregator import handler

    return handler(event, context)


@app.schedule(Rate(1, unit=Rate.HOURS), name="compactor")
def compactor(event: Any) -> dict[str, Any]:
    from consumers.compactor import handler

    return handler(event)


@app.lambda_function(name="archiver")
def archiver(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from consumers.archiver import handler

    return handler(event, context)


@app.lambda_function(name="jobs")
def jobs(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The jobs queue's worker (exports, erasures); its SQS event source mapping is in
    infra/template.yaml, as the Kinesis ones are."""
    from consumers.jobs import handler

    return handler(event, context)
