"""The Chalice app: HTTP routes and the Lambda entry points of the consumers. Each route
parses the request, calls the domain package, and answers."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

import orjson
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from chalice import CORSConfig, Rate, Response
from chalice.app import Chalice, Request

from clickstream import queries
from clickstream.aws import client
from clickstream.ingest import IngestResponse, handle_events_request, handle_track_request
from clickstream.settings import get_settings

app = Chalice(app_name="clickstream")
app.api.binary_types = []  # everything here is JSON
logger = Logger(service="clickstream-api")
metrics = Metrics(service="clickstream-api")

CORS = CORSConfig(
    allow_origin=os.environ.get("CLICKSTREAM_CORS_ORIGIN", "*"),
    allow_headers=["Content-Type", "X-Write-Key", "X-Api-Key", "Authorization"],
    max_age=600,
)
INGEST_CONTENT_TYPES = ["application/json", "text/plain"]  # text/plain: navigator.sendBeacon


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(
        body=orjson.dumps(body).decode(),
        status_code=status,
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def _request() -> Request:
    request = app.current_request
    assert request is not None, "only called while handling a request"
    return request


def _raw_body() -> bytes | None:
    body = _request().raw_body
    return body.encode() if isinstance(body, str) else body


def _source_ip(request: Request) -> str | None:
    forwarded = request.headers.get("x-forwarded-for")
    if forwarded:
        return forwarded.split(",", 1)[0].strip()
    identity = (request.context or {}).get("identity") or {}
    return identity.get("sourceIp")


def _answer_ingest(result: IngestResponse) -> Response:
    metrics.add_metric(name="EventsAccepted", unit=MetricUnit.Count, value=result.accepted)
    metrics.add_metric(name="EventsRejected", unit=MetricUnit.Count, value=result.rejected)
    if result.throttled:
        metrics.add_metric(
            name="PutRecordsThrottled", unit=MetricUnit.Count, value=result.throttled
        )
    if result.status == 503:
        metrics.add_metric(name="PutRecordsFailed", unit=MetricUnit.Count, value=1)
    return _json(result.status, result.body, result.headers)


def _ingest_arguments() -> dict[str, Any]:
    settings = get_settings()
    return {
        "kinesis": client("kinesis"),
        "stream_name": settings.stream_name,
        "received_at": datetime.now(UTC),
        "source_ip": _source_ip(_request()),
        "max_attempts": settings.max_put_attempts,
    }


@app.middleware("http")
def observe(event: Any, get_response: Any) -> Any:
    """Structured log line per request and one EMF flush per request."""
    response = get_response(event)
    logger.info(
        "request",
        extra={
            "method": event.method,
            "path": event.path,
            "status": response.status_code,
            "request_id": (event.context or {}).get("requestId"),
        },
    )
    metrics.flush_metrics(raise_on_empty_metrics=False)
    return response


@app.route("/", methods=["GET"], cors=CORS)
def health() -> Response:
    return _json(200, {"service": "clickstream", "status": "ok"})


@app.route("/events", methods=["POST"], cors=CORS, content_types=INGEST_CONTENT_TYPES)
def post_events() -> Response:
    return _answer_ingest(handle_events_request(_raw_body(), **_ingest_arguments()))


@app.route("/track", methods=["POST"], cors=CORS, content_types=INGEST_CONTENT_TYPES)
def track() -> Response:
    return _answer_ingest(handle_track_request(_raw_body(), **_ingest_arguments()))


def _read(answer: Any) -> Response:
    """Run a read query; a bad parameter is a 400 naming it."""
    try:
        return _json(200, answer())
    except queries.QueryError as error:
        return _json(400, {"error": error.message, "field": error.field})


def _param(name: str) -> str | None:
    params: dict[str, str] = dict(_request().query_params or {})
    return params.get(name)


def _int_param(name: str, default: int) -> int:
    raw = _param(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise queries.QueryError(name, f"'{raw}' is not an integer") from None


@app.route("/stats", methods=["GET"], cors=CORS)
def stats() -> Response:
    return _read(lambda: queries.stats(client("dynamodb"), get_settings().aggregates_table))


@app.route("/metrics/timeseries", methods=["GET"], cors=CORS)
def timeseries() -> Response:
    return _read(
        lambda: queries.timeseries(
            client("dynamodb"),
            get_settings().aggregates_table,
            _param("granularity") or "minute",
            queries.parse_time(_param("from"), "from"),
            queries.parse_time(_param("to"), "to"),
        )
    )


@app.route("/funnel", methods=["GET"], cors=CORS)
def funnel() -> Response:
    return _read(
        lambda: queries.funnel(
            client("dynamodb"),
            get_settings().aggregates_table,
            queries.parse_time(_param("from"), "from"),
            queries.parse_time(_param("to"), "to"),
        )
    )


@app.route("/pages/top", methods=["GET"], cors=CORS)
def top_pages() -> Response:
    return _read(
        lambda: queries.top_pages(
            client("dynamodb"), get_settings().aggregates_table, _int_param("limit", 10)
        )
    )


@app.route("/analytics/page-views/{page}", methods=["GET"], cors=CORS)
def page_views(page: str) -> Response:
    from urllib.parse import unquote

    return _read(
        lambda: queries.page_views(
            client("dynamodb"), get_settings().aggregates_table, unquote(page)
        )
    )


@app.route("/export", methods=["GET"], cors=CORS)
def export() -> Response:
    from clickstream.exports import export_response

    def answer() -> Response:
        result = export_response(
            client("s3"),
            get_settings().archive_bucket,
            export_format=_param("format") or "json",
            start=queries.parse_time(_param("from"), "from"),
            end=queries.parse_time(_param("to"), "to"),
            limit=_int_param("limit", 10_000),
        )
        return Response(
            body=result.body, status_code=200, headers={"Content-Type": result.content_type}
        )

    try:
        return answer()
    except queries.QueryError as error:
        return _json(400, {"error": error.message, "field": error.field})


# --- Kinesis consumers: Lambda functions of the same deployment package. Their event source
# mappings are configured by infra/ (Chalice's on_kinesis_record cannot set bisect, retries
# or the on-failure destination). Imported lazily: the API never loads pyarrow.


@app.lambda_function(name="aggregator")
def aggregator(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from consumers.aggregator import handler

    return handler(event, context)


@app.schedule(Rate(1, unit=Rate.HOURS), name="compactor")
def compactor(event: Any) -> dict[str, Any]:
    """Hourly: each closed hour's Parquet objects become one file, each event once."""
    from clickstream.compaction import compact_closed_hours

    results = compact_closed_hours(client("s3"), get_settings().archive_bucket, datetime.now(UTC))
    logger.info("compacted", extra={"partitions": [vars(result) for result in results]})
    return {"partitions": len(results)}


@app.lambda_function(name="archiver")
def archiver(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from consumers.archiver import handler

    return handler(event, context)
