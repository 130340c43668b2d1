"""The OpenAPI 3.1 document served at ``GET /openapi.json``: every route, its parameters,
request bodies (the event model's schema comes from pydantic), responses with their 4xx
error shapes, and the security schemes of the stage (API keys, or Cognito JWTs)."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from pydantic.json_schema import models_json_schema

from clickstream.aggregates import DIMENSIONS
from clickstream.auth import API_KEY_HEADER, WRITE_KEY_HEADER, WRITE_KEY_PARAM
from clickstream.exports import DEFAULT_PAGE_ROWS, MAX_PAGE_ROWS
from clickstream.graphql_limits import MAX_BODY_BYTES as MAX_GRAPHQL_BODY_BYTES
from clickstream.graphql_limits import MAX_GET_QUERY_BYTES, MAX_QUERY_BYTES
from clickstream.ingest import MAX_BODY_BYTES, MAX_RECORDS_PER_REQUEST
from clickstream.protocols.segment import PATH_TYPES as SEGMENT_CALLS
from clickstream.queries import DASHBOARD_SECTIONS, MAX_TOP, PERIODS
from clickstream.responses import ANSWERS
from clickstream.schema import IncomingEvent

REF = "#/components/schemas/{model}"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


# The answers' schemas are generated from clickstream.responses; here, references to them.
INGEST_ACCEPTED = _ref("IngestAccepted")
TRACK_ACCEPTED = _ref("TrackAccepted")
STATS = _ref("Stats")
TIMESERIES = _ref("Timeseries")
FUNNEL = _ref("Funnel")
TOP_PAGES = _ref("TopPages")
DASHBOARD = _ref("Dashboard")
BREAKDOWN = _ref("Breakdown")
REALTIME = _ref("Realtime")
GOALS = _ref("Goals")
PAGE_VIEWS = _ref("PageViews")
EXPORT = _ref("ExportPage")
JOB_ACCEPTED = _ref("JobAccepted")
JOB_STATUS = _ref("JobStatus")
EXPORT_FORMATS = ["json", "ndjson", "csv", "parquet"]


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


TIME = {"type": "string", "format": "date-time"}
FROM = _query("from", TIME, "start of the range (ISO 8601, UTC when no offset)")
TO = _query("to", TIME, "end of the range (ISO 8601)")
PERIOD = _query(
    "period",
    {"type": "string", "enum": list(PERIODS)},
    "all (default), realtime (30 min), today, 7d, 30d, or custom with from/to",
)
JOB_ID = {
    "name": "job_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "minLength": 1, "maxLength": 100},
}
LIMIT = _query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_TOP}, "rows (10)")


def _ingest_responses(ok: dict[str, Any]) -> dict[str, Any]:
    error = _ref("IngestError")
    return {
        "200": _json(ok, "accepted (with per-record errors for the records that were not)"),
        "400": _json(error, "malformed body, or no valid record (each error names it)"),
        "401": _json(error, "no write key"),
        "403": _json(error, "unknown, revoked or wrong-role key"),
        "413": _json(error, f"over {MAX_RECORDS_PER_REQUEST} records or {MAX_BODY_BYTES} bytes"),
        "415": _json(error, "not JSON (application/json, or text/plain from sendBeacon)"),
        "503": _json(error, "the stream took none of the valid records; retry (Retry-After)"),
    }


def _read_responses(ok: dict[str, Any], description: str) -> dict[str, Any]:
    error = _ref("ReadError")
    return {
        "200": _json(ok, description),
        "400": _json(error, "a bad parameter (named in 'field')"),
        "401": _json(error, "no credentials"),
        "403": _json(error, "credentials not valid for this route"),
        "503": {
            **_json(error, "DynamoDB or S3 did not answer; retry after Retry-After seconds"),
            "headers": {"Retry-After": {"schema": {"type": "integer"}}},
        },
    }


GRAPHQL_ANSWER = _ref("GraphQLAnswer")
GRAPHQL_QUERY = {"type": "string", "minLength": 1, "maxLength": MAX_QUERY_BYTES}


def _graphql_operation(method: str, security: list[Any]) -> dict[str, Any]:
    """``/graphql``: the schema's queries (introspect it, or see GraphiQL on `make local`)."""
    answer = GRAPHQL_ANSWER
    operation: dict[str, Any] = {
        "summary": "GraphQL over the read routes' numbers (stats, timeseries, funnel, pages, "
        "breakdown, goals, realtime, pageViews)",
        "security": security,
        "responses": {
            "200": _json(answer, "data, and any field's error (a bad argument names it)"),
            "400": _json(answer, "refused before running: syntax, unknown field, limits"),
            "401": _json(_ref("ReadError"), "no credentials"),
            "403": _json(_ref("ReadError"), "credentials not valid for this route"),
            "503": _json(answer, "the aggregates could not be read; retry"),
        },
    }
    if method == "get":
        operation["parameters"] = [
            {
                "name": "query",
                "in": "query",
                "required": True,
                "schema": {**GRAPHQL_QUERY, "maxLength": MAX_GET_QUERY_BYTES},
                "description": "a simple query (POST a longer one)",
            },
            _query("variables", {"type": "string"}, "a JSON object"),
            _query("operationName", {"type": "string"}, "the operation to run"),
        ]
    else:
        operation["requestBody"] = {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["query"],
                        "properties": {
                            "query": GRAPHQL_QUERY,
                            "variables": {"type": ["object", "null"]},
                            "operationName": {"type": ["string", "null"]},
                        },
                    }
                },
                "application/graphql": {"schema": GRAPHQL_QUERY},
            },
        }
        operation["responses"]["413"] = _json(
            answer, f"the body is over {MAX_GRAPHQL_BODY_BYTES} bytes"
        )
        operation["responses"]["415"] = _json(answer, "not JSON or application/graphql")
    return operation


SDK_ANSWER = {"type": "object", "additionalProperties": True}
SDK_BODY_TYPES = ("application/json", "text/plain")


def _sdk_operation(
    summary: str, security: list[Any], extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """An SDK's endpoint: its own body (documented by that SDK), its own answer's shape."""
    error = _ref("IngestError")
    operation: dict[str, Any] = {
        "summary": summary,
        "security": security,
        "requestBody": {
            "required": True,
            "content": {kind: {"schema": {}} for kind in SDK_BODY_TYPES},
        },
        "responses": {
            "200": _json(SDK_ANSWER, "every event taken (in the shape the SDK expects)"),
            "400": _json(error, "a malformed body, or events that map onto no event (named)"),
            "401": _json(error, "no write key where the SDK carries it, or one not a string"),
            "403": _json(error, "an unknown, revoked or wrong-role write key"),
            "413": _json(error, "the body is over the protocol's size limit"),
            "415": _json(error, "not a JSON body (gzip and the SDK's encodings are accepted)"),
            "503": _json(error, "the stream refused some events; send the request again"),
        },
    }
    operation.update(extra or {})
    return operation


def _sdk_paths(write: list[Any]) -> dict[str, Any]:
    """Segment's, PostHog's and Snowplow's endpoints (clickstream.protocols)."""
    segment = _sdk_operation(
        "Segment HTTP Tracking API: batch, track, page, screen, identify, group, alias (and "
        "analytics.js's b, t, p, s, i, g, a); write key as Basic-auth user or writeKey",
        [*write, {"segmentBasic": []}, {}],
        {
            "parameters": [
                {
                    "name": "call",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "enum": list(SEGMENT_CALLS)},
                }
            ]
        },
    )
    segment["responses"]["404"] = _json(_ref("ReadError"), "not a Segment call")
    posthog = _sdk_operation(
        "PostHog capture (posthog-js, posthog-python, ...): project key in api_key or token",
        [*write, {}],
    )
    posthog_v1 = _sdk_operation(
        "PostHog capture v1 (posthog-python capture_mode='v1'): project key as "
        "Authorization: Bearer; 200 answers each event by uuid: ok, drop (why) or retry",
        [*write, {}],
    )
    snowplow_post = _sdk_operation(
        "Snowplow tracker protocol, payload_data; the write key as the app id (aid)", [*write, {}]
    )
    pixel = {
        "summary": "Snowplow pixel: one event in the query string (e=pv, ...; aid = write key)",
        "security": [*write, {}],
        "parameters": [_query("e", {"type": "string"}, "event type: pv, pp, se, ue, tr, ti")],
        "responses": {
            **{k: v for k, v in snowplow_post["responses"].items() if k not in ("413", "415")},
            "200": {"description": "a 1x1 GIF", "content": {"image/gif": {"schema": {}}}},
            "204": {"description": "taken; no GIF unless Accept names image/gif or */*"},
        },
    }
    public_answer = {"200": _json(SDK_ANSWER, "posthog-js's start-up answer")}
    return {
        "/flags": {
            "post": {
                "summary": "PostHog feature flags: none",
                "security": [],
                "responses": public_answer,
            }
        },
        "/decide": {
            "post": {
                "summary": "PostHog flags (older SDKs): none",
                "security": [],
                "responses": public_answer,
            }
        },
        "/array/{token}/config": {
            "get": {
                "summary": "posthog-js's remote config: capture only",
                "security": [],
                "parameters": [
                    {"name": "token", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "responses": public_answer,
            }
        },
        "/array/{token}/config.js": {
            "get": {
                "summary": "posthog-js's remote config as the script it loads",
                "security": [],
                "parameters": [
                    {"name": "token", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "responses": {
                    "200": {
                        "description": "JavaScript",
                        "content": {"text/javascript": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/v1/{call}": {"post": segment},
        **{path: {"post": posthog} for path in ("/capture", "/batch", "/e", "/i/v0/e")},
        "/i/v1/analytics/events": {"post": posthog_v1},
        "/com.snowplowanalytics.snowplow/tp2": {"post": snowplow_post},
        "/i": {"get": pixel},
    }


def _security(read_auth: str) -> tuple[dict[str, Any], list[Any], list[Any]]:
    schemes: dict[str, Any] = {
        "writeKey": {"type": "apiKey", "in": "header", "name": WRITE_KEY_HEADER},
        "writeKeyQuery": {
            "type": "apiKey",
            "in": "query",
            "name": WRITE_KEY_PARAM,
            "description": "for navigator.sendBeacon, which cannot set headers",
        },
    }
    if read_auth == "cognito":
        schemes["cognito"] = {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "an ID token of the stage's Cognito user pool ('admin' group for "
            "admin routes); API Gateway verifies it",
        }
        read: list[Any] = [{"cognito": []}]
    else:
        schemes["apiKey"] = {
            "type": "apiKey",
            "in": "header",
            "name": API_KEY_HEADER,
            "description": "a read key (or an admin key); admin routes need an admin key",
        }
        read = [{"apiKey": []}]
    return schemes, [{"writeKey": []}, {"writeKeyQuery": []}], read


# A route of the app: (path, method, access), as api.app's route table lists it.
Route = tuple[str, str, str]


def _path_parameters(path: str) -> list[dict[str, Any]]:
    return [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"{(\w+)}", path)
    ]


def _from_route_table(
    documented: dict[str, Any], routes: tuple[Route, ...], security: dict[str, list[Any]]
) -> dict[str, Any]:
    """The paths the app serves, each once: the operation described above, or, for a route
    not described here, one made from its access (security, path parameters, the answers
    every route of that access can give)."""
    generic = {
        "public": {"200": _json({"type": "object"}, "the answer")},
        "write": _ingest_responses({"type": "object"}),
        "sdk": _sdk_operation("", [])["responses"],
        "read": _read_responses({"type": "object"}, "the answer"),
        "admin": _read_responses({"type": "object"}, "the answer"),
    }
    paths: dict[str, Any] = {}
    for path, method, access in routes:
        operation = documented.get(path, {}).get(method.lower()) or {
            "summary": f"{method} {path}",
            "security": security[access],
            "parameters": _path_parameters(path),
            "responses": generic[access],
        }
        paths.setdefault(path, {})[method.lower()] = operation
    return paths


def _answer_schemas() -> dict[str, Any]:
    """Every answer model's schema, and the models they use, by component name."""
    _, schemas = models_json_schema(
        [(model, "serialization") for model in ANSWERS], ref_template=REF
    )
    return dict(schemas["$defs"])


@lru_cache(maxsize=4)
def openapi_document(
    read_auth: str = "apikey", routes: tuple[Route, ...] | None = None
) -> dict[str, Any]:
    """The document; with ``routes`` (the app's route table) its paths are exactly those."""
    event_schema = IncomingEvent.model_json_schema(ref_template=REF)
    # The event type's pattern is the model's own; what its types cannot say: required
    # unless the record is a seed-000 button click.
    event_schema["anyOf"] = [{"required": ["event_type"]}, {"required": ["button"]}]
    components = dict(event_schema.pop("$defs", {}))
    components["IncomingEvent"] = event_schema
    components.update(_answer_schemas())
    schemes, write, read = _security(read_auth)
    admin = read if read_auth == "cognito" else [{"apiKey": []}]

    def get(summary: str, ok: dict[str, Any], params: list[Any] | None = None) -> Any:
        operation = {
            "summary": summary,
            "security": read,
            "parameters": params or [],
            "responses": _read_responses(ok, summary),
        }
        return {"get": operation}

    paths: dict[str, Any] = {
        "/": {
            "get": {
                "summary": "health",
                "security": [],
                "responses": {"200": _json({"type": "object"}, "the service is up")},
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "this document",
                "security": [],
                "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1")},
            }
        },
        "/events": {
            "post": {
                "summary": f"ingest 1 to {MAX_RECORDS_PER_REQUEST} events",
                "security": write,
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["records"],
                                "properties": {
                                    "records": {
                                        "type": "array",
                                        "minItems": 1,
                                        "maxItems": MAX_RECORDS_PER_REQUEST,
                                        "items": _ref("IncomingEvent"),
                                    },
                                    "sent_at": {
                                        "type": "string",
                                        "format": "date-time",
                                        "description": "the device's clock when it sent the "
                                        "request: each record's timestamp is corrected by "
                                        "its error (received_at - (sent_at - timestamp))",
                                    },
                                },
                            }
                        }
                    },
                },
                "responses": _ingest_responses(INGEST_ACCEPTED),
            }
        },
        "/track": {
            "post": {
                "summary": "ingest one event",
                "security": write,
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("IncomingEvent")}},
                },
                "responses": _ingest_responses(TRACK_ACCEPTED),
            }
        },
        "/stats": get(
            "visitors, visits, bounce rate, visit duration, totals, event types, recent events",
            STATS,
            [PERIOD, FROM, TO],
        ),
        "/breakdown": get(
            "top values of a dimension over a period, with an 'other' row",
            BREAKDOWN,
            [
                {
                    "name": "dimension",
                    "in": "query",
                    "required": True,
                    "schema": {"type": "string", "enum": list(DIMENSIONS)},
                },
                PERIOD,
                FROM,
                TO,
                LIMIT,
            ],
        ),
        "/goals": get(
            "converted visits and conversion rate per goal", GOALS, [PERIOD, FROM, TO, LIMIT]
        ),
        "/realtime": get("visitors right now and per minute over the last 30", REALTIME),
        "/metrics/timeseries": get(
            "dense per-bucket counts",
            TIMESERIES,
            [
                _query(
                    "granularity",
                    {"type": "string", "enum": ["minute", "hour", "day"]},
                    "bucket size (minute)",
                ),
                FROM,
                TO,
            ],
        ),
        "/funnel": get(
            "distinct sessions per funnel step (days from/to, or a period)",
            FUNNEL,
            [PERIOD, FROM, TO],
        ),
        "/dashboard": get(
            "everything the dashboard shows for a period in one answer (a section whose "
            "reads failed is {error, status}; the others stand)",
            DASHBOARD,
            [
                LIMIT,
                PERIOD,
                FROM,
                TO,
                _query(
                    "sections",
                    {"type": "string"},
                    "comma-separated sections to answer (all by default): "
                    + ", ".join(DASHBOARD_SECTIONS),
                ),
            ],
        ),
        "/pages/top": get(
            "most viewed pages",
            TOP_PAGES,
            [_query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_TOP}, "pages (10)")],
        ),
        "/analytics/page-views/{page}": get(
            "page views of one page",
            PAGE_VIEWS,
            [
                {
                    "name": "page",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "minLength": 1, "maxLength": 2048},
                    "description": "the page path, URL-encoded ('home' and '/home' are one)",
                }
            ],
        ),
        "/export": {
            "get": {
                "summary": "archived events, each once, a page at a time (under 5 MB)",
                "description": "Follow `next` (json) or the Link header until there is none. "
                "format=parquet is binary: send `Accept: application/vnd.apache.parquet`. "
                "Large ranges: POST /exports.",
                "security": read,
                "parameters": [
                    _query("format", {"type": "string", "enum": EXPORT_FORMATS}, "json (default)"),
                    FROM,
                    TO,
                    _query(
                        "limit",
                        {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_ROWS},
                        f"rows per page ({DEFAULT_PAGE_ROWS}); a page also ends at 5 MB",
                    ),
                    _query(
                        "cursor",
                        {"type": "string", "maxLength": 2048},
                        "the previous page's cursor (it carries the range)",
                    ),
                ],
                "responses": {
                    **_read_responses(EXPORT, "a page of events"),
                    "200": {
                        "description": "a page of events (json), one per line (ndjson), CSV "
                        "with a header row, or a Parquet file",
                        "headers": {
                            "Link": {
                                "description": 'the next page: <...>; rel="next"',
                                "schema": {"type": "string"},
                            }
                        },
                        "content": {
                            "application/json": {"schema": EXPORT},
                            "application/x-ndjson": {"schema": {"type": "string"}},
                            "text/csv": {"schema": {"type": "string"}},
                            "application/vnd.apache.parquet": {
                                "schema": {"type": "string", "format": "binary"}
                            },
                        },
                    },
                    "406": _json(_ref("ReadError"), "format=parquet without an Accept for it"),
                },
            }
        },
        "/exports": {
            "post": {
                "summary": "export a range (up to 92 days) to one S3 file, as a job",
                "security": read,
                "requestBody": {
                    "required": False,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "format": {"type": "string", "enum": EXPORT_FORMATS},
                                    "from": TIME,
                                    "to": TIME,
                                },
                            }
                        }
                    },
                },
                "responses": {
                    **{k: v for k, v in _read_responses(JOB_ACCEPTED, "").items() if k != "200"},
                    "202": _json(JOB_ACCEPTED, "queued; poll status_url (also in Location)"),
                },
            }
        },
        "/exports/{job_id}": {
            "get": {
                "summary": "an export job's status, and its file's presigned URL when done",
                "security": read,
                "parameters": [JOB_ID],
                "responses": {
                    **_read_responses(JOB_STATUS, "the job"),
                    "404": _json(_ref("ReadError"), "no such export job"),
                },
            }
        },
        "/graphql": {
            "get": _graphql_operation("get", read),
            "post": _graphql_operation("post", read),
        },
        "/users/{user_id}": {
            "delete": {
                "summary": "erase a user's events from the archive and the recent feeds, as a job",
                "description": "Admin only. Aggregated counters are anonymous and stay. The "
                "job rewrites every archive hour holding the user's rows (a step per hour, "
                "each audited); from the request on, no feed, archived batch or compaction "
                "keeps them.",
                "security": admin,
                "parameters": [
                    {
                        "name": "user_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "minLength": 1, "maxLength": 256},
                    }
                ],
                "responses": {
                    **{k: v for k, v in _read_responses(JOB_ACCEPTED, "").items() if k != "200"},
                    "202": _json(JOB_ACCEPTED, "queued; poll status_url (also in Location)"),
                },
            }
        },
        "/erasures/{job_id}": {
            "get": {
                "summary": "an erasure job's status, progress and result (admin only)",
                "security": admin,
                "parameters": [JOB_ID],
                "responses": {
                    **_read_responses(JOB_STATUS, "the job"),
                    "404": _json(_ref("ReadError"), "no such erasure job"),
                },
            }
        },
    }
    paths.update(_sdk_paths(write))
    if routes is not None:
        security = {"public": [], "write": write, "sdk": [*write, {}], "read": read}
        paths = _from_route_table(paths, routes, {**security, "admin": admin})
    schemes["segmentBasic"] = {
        "type": "http",
        "scheme": "basic",
        "description": "Segment's SDKs: the write key as the user name, no password",
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "clickstream",
            "version": "1",
            "description": "Real-time clickstream analytics: ingest events, read aggregates.",
        },
        "paths": paths,
        "components": {"schemas": components, "securitySchemes": schemes},
    }
