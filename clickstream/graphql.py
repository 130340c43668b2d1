"""GraphQL over the read API (``GET``/``POST /graphql``): one schema whose fields answer from
the same ``clickstream.queries`` functions as the REST routes, so both give the same numbers.

Abuse stays cheap: a query is refused (400, a GraphQL error) before it runs when its text is
too long, has too many tokens, nests too deep, nests lists too deep (the introspection
``types { fields { type { fields … } } }`` explosion) or costs too many aggregate-store reads.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from ariadne import (
    EnumType,
    ObjectType,
    QueryType,
    ScalarType,
    graphql_sync,
    make_executable_schema,
)
from ariadne.validation import cost_validator
from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLList,
    GraphQLNonNull,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
    get_named_type,
    parse,
)
from graphql.error import GraphQLSyntaxError
from graphql.type.definition import GraphQLOutputType

from clickstream import queries
from clickstream.aggregates import DIMENSIONS
from clickstream.errors import RequestError
from clickstream.graphql_limits import MAX_BODY_BYTES, MAX_GET_QUERY_BYTES, MAX_QUERY_BYTES
from clickstream.store import DynamoAggregateStore

log = logging.getLogger(__name__)
# ariadne logs every error of an answer at ERROR with a traceback, a user's bad argument
# included; _format_error logs what is ours to fix (a resolver failing), so its own is muted.
ARIADNE_LOG = logging.getLogger(f"{__name__}.ariadne")
ARIADNE_LOG.setLevel(logging.CRITICAL)
MAX_TOKENS = 2_000  # the standard introspection query is ~300
MAX_DEPTH = 15  # GraphiQL's introspection query nests 13 deep
MAX_LIST_NESTING = 3  # __schema.types.fields.args is 3; our own fields need 2
# One unit per aggregate-store read a field makes (``@cost`` in the schema); a dashboard's
# worth of fields costs ~40.
MAX_COST = 100
COST_RULE_ECHO = {"code": "ARGUMENT_NOT_PRICED"}

SCHEMA_SDL = """
directive @cost(complexity: Int, multipliers: [String!], useMultipliers: Boolean)
  on FIELD | FIELD_DEFINITION

"A JSON value: an archived event as the stream carries it."
scalar JSON

enum Granularity { minute hour day }

\"\"\"
Read-only analytics. ``period`` is all (default), realtime, today, 7d, 30d or custom; ``from``
and ``to`` are ISO 8601 times (UTC when no zone is given) and mean ``period: "custom"``.
Each field is nullable: one field's error (a bad argument) leaves the others standing.
\"\"\"
type Query {
  "Page views of one page, all time (GET /analytics/page-views/{page})."
  pageViews(pageURL: String!): Int @cost(complexity: 1)
  "Totals and headline measures (GET /stats)."
  stats(period: String, from: String, to: String): Stats @cost(complexity: 12)
  "Counts per bucket (GET /metrics/timeseries)."
  timeseries(granularity: Granularity! = minute, from: String, to: String): Timeseries
    @cost(complexity: 2)
  "Visits reaching each step: a period, or a day range with from/to (GET /funnel)."
  funnel(period: String, from: String, to: String): Funnel @cost(complexity: 1)
  "The most viewed pages of all time (GET /pages/top)."
  topPages(limit: Int! = 10): TopPages @cost(complexity: 1)
  "The top values of a dimension with an 'other' row (GET /breakdown)."
  breakdown(dimension: Dimension!, period: String, from: String, to: String, limit: Int! = 10):
    Breakdown @cost(complexity: 1)
  "Converted visits per goal (GET /goals)."
  goals(period: String, from: String, to: String, limit: Int! = 10): Goals @cost(complexity: 2)
  "Visitors right now and per minute over the last 30 (GET /realtime)."
  realtime: Realtime @cost(complexity: 2)
}

type TypeCount { eventType: String!  count: Int! }

type Stats {
  period: String!
  from: String
  to: String!
  granularity: String!
  totalEvents: Int!
  eventsByType: [TypeCount!]!
  eventsByTypeComplete: Boolean!
  recentEvents: [JSON!]!
  sessions: Int!
  "Distinct visitors (HyperLogLog, 0.81%% standard error)."
  visitors: Int!
  visits: Int!
  pageViews: Int!
  events: Int!
  bounces: Int!
  bounceRate: Float!
  avgVisitDurationS: Float!
  visitDurationS: Float!
  pagesPerVisit: Float!
  revenue: Float!
  botsExcluded: Int!
  visitorsNow: Int!
  eventsLastMinute: Int!
  updatedAt: String!
}

type TimeseriesPoint {
  bucket: String!
  start: String!
  events: Int!
  byType: [TypeCount!]!
  revenue: Float!
  visitors: Int!
}

type Timeseries {
  granularity: Granularity!
  from: String!
  to: String!
  points: [TimeseriesPoint!]!
}

type FunnelStep { step: String!  sessions: Int!  rateFromPrevious: Float!  rateFromStart: Float! }

type Funnel {
  "all, realtime, today, 7d, 30d, or custom (a range; dates in from/to count whole days)."
  period: String!
  "The range's first instant (ISO 8601, UTC); null when open."
  from: String
  "The range's last instant; null when open."
  to: String
  granularity: String!
  steps: [FunnelStep!]!
  sessions: Int!
  conversionRate: Float!
}

type PageCount { page: String!  views: Int! }

type TopPages { pages: [PageCount!]!  otherViews: Int!  complete: Boolean!  maxError: Int! }

type BreakdownRow { value: String!  count: Int! }

type Breakdown {
  dimension: Dimension!
  metric: String!
  period: String!
  from: String
  to: String!
  granularity: String!
  resolution: String!
  coversFrom: String
  coversTo: String!
  rows: [BreakdownRow!]!
  other: Int!
  total: Int!
  complete: Boolean!
  maxError: Int!
}

type GoalConversions { goal: String!  visits: Int!  conversionRate: Float! }

type Goals {
  period: String!
  from: String
  to: String!
  granularity: String!
  visits: Int!
  goals: [GoalConversions!]!
  complete: Boolean!
}

type RealtimeMinute { bucket: String!  start: String!  visitors: Int!  events: Int! }

type Realtime { visitorsNow: Int!  minutes: [RealtimeMinute!]!  updatedAt: String! }
"""
DIMENSION_SDL = "enum Dimension { " + " ".join(DIMENSIONS) + " }"  # the REST dimensions


@dataclass(frozen=True)
class ReadContext:
    """What the resolvers read from."""

    store: DynamoAggregateStore


def _store(info: Any) -> DynamoAggregateStore:
    context: ReadContext = info.context
    return context.store


def _range(args: Mapping[str, Any]) -> tuple[datetime | None, datetime | None]:
    """``from`` and ``to``, parsed as the REST routes parse them (errors name the argument)."""
    return queries.parse_time(args.get("from"), "from"), queries.parse_end(args.get("to"))


def _period(args: Mapping[str, Any]) -> queries.Period:
    return queries.resolve_period(args.get("period"), *_range(args))


def _type_counts(counts: Mapping[str, int]) -> list[dict[str, Any]]:
    return [{"event_type": name, "count": count} for name, count in counts.items()]


query = QueryType()


@query.field("pageViews")
def resolve_page_views(_: Any, info: Any, page_url: str) -> int:
    answer: int = queries.page_views(_store(info), page_url)["page_views"]
    return answer


@query.field("stats")
def resolve_stats(_: Any, info: Any, **args: Any) -> dict[str, Any]:
    return queries.stats(_store(info), _period(args))


@query.field("timeseries")
def resolve_timeseries(_: Any, info: Any, granularity: str, **args: Any) -> dict[str, Any]:
    return queries.timeseries(_store(info), granularity, *_range(args))


@query.field("funnel")
def resolve_funnel(_: Any, info: Any, **args: Any) -> dict[str, Any]:
    return queries.funnel_requested(
        _store(info), args.get("period"), args.get("from"), args.get("to")
    )


@query.field("topPages")
def resolve_top_pages(_: Any, info: Any, limit: int) -> dict[str, Any]:
    return queries.top_pages(_store(info), limit)


@query.field("breakdown")
def resolve_breakdown(_: Any, info: Any, dimension: str, limit: int, **args: Any) -> dict[str, Any]:
    return queries.breakdown(_store(info), dimension, _period(args), limit)


@query.field("goals")
def resolve_goals(_: Any, info: Any, limit: int, **args: Any) -> dict[str, Any]:
    return queries.goals(_store(info), _period(args), limit)


@query.field("realtime")
def resolve_realtime(_: Any, info: Any) -> dict[str, Any]:
    return queries.realtime(_store(info))


stats_type = ObjectType("Stats")
stats_type.set_field("eventsByType", lambda found, _: _type_counts(found["events_by_type"]))
point_type = ObjectType("TimeseriesPoint")
point_type.set_field("byType", lambda found, _: _type_counts(found["by_type"]))
json_scalar = ScalarType("JSON", serializer=lambda value: value)


def build_schema() -> GraphQLSchema:
    return make_executable_schema(
        [SCHEMA_SDL, DIMENSION_SDL],
        query,
        stats_type,
        point_type,
        json_scalar,
        EnumType("Granularity", {name: name for name in queries.GRANULARITY_STEP}),
        EnumType("Dimension", {name: name for name in DIMENSIONS}),
        convert_names_case=True,
    )


SCHEMA = build_schema()


class QueryShapeLimits(ValidationRule):
    """Refuses operations nesting fields deeper than ``MAX_DEPTH`` or lists deeper than
    ``MAX_LIST_NESTING``, introspection included (ariadne's cost rule skips ``__`` fields).
    Hand-written: graphql-core and ariadne have no depth rule."""

    def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
        root = self.context.schema.query_type
        if root is None:
            return
        depth, lists = _shape(self.context, node.selection_set, root, set())
        if depth > MAX_DEPTH:
            self.report_error(
                GraphQLError(f"The query nests {depth} fields deep; at most {MAX_DEPTH}.", node)
            )
        if lists > MAX_LIST_NESTING:
            self.report_error(
                GraphQLError(f"The query nests {lists} lists; at most {MAX_LIST_NESTING}.", node)
            )


def _shape(
    context: ValidationContext,
    selections: SelectionSetNode | None,
    parent: Any,
    fragments_seen: set[str],
) -> tuple[int, int]:
    """(deepest field nesting, deepest list nesting) below ``selections``."""
    if selections is None:
        return 0, 0
    depth = lists = 0
    for selection in selections.selections:
        if isinstance(selection, FieldNode):
            field_type = _field_type(context, parent, selection.name.value)
            below = get_named_type(field_type) if field_type is not None else None
            sub_depth, sub_lists = _shape(context, selection.selection_set, below, fragments_seen)
            depth = max(depth, 1 + sub_depth)
            lists = max(lists, sub_lists + (1 if _is_list(field_type) else 0))
        elif isinstance(selection, InlineFragmentNode):
            inner = parent
            if selection.type_condition is not None:
                inner = context.schema.get_type(selection.type_condition.name.value)
            sub_depth, sub_lists = _shape(context, selection.selection_set, inner, fragments_seen)
            depth, lists = max(depth, sub_depth), max(lists, sub_lists)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment = context.get_fragment(name)
            if fragment is None or name in fragments_seen:  # cycles: graphql-core's own rule
                continue
            inner = context.schema.get_type(fragment.type_condition.name.value)
            sub_depth, sub_lists = _shape(
                context, fragment.selection_set, inner, fragments_seen | {name}
            )
            depth, lists = max(depth, sub_depth), max(lists, sub_lists)
    return depth, lists


def _field_type(context: ValidationContext, parent: Any, name: str) -> GraphQLOutputType | None:
    if name == "__schema":
        return context.schema.get_type("__Schema")  # type: ignore[return-value]
    if name == "__type":
        return context.schema.get_type("__Type")  # type: ignore[return-value]
    fields = getattr(parent, "fields", None)
    if not fields or name not in fields:
        return None
    field_type: GraphQLOutputType = fields[name].type
    return field_type


def _is_list(field_type: Any) -> bool:
    if isinstance(field_type, GraphQLNonNull):
        field_type = field_type.of_type
    return isinstance(field_type, GraphQLList)


@dataclass(frozen=True)
class GraphQLAnswer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def _refused(message: str, status: int = 400) -> GraphQLAnswer:
    return GraphQLAnswer(status, {"errors": [{"message": message}]})


@dataclass(frozen=True)
class GraphQLRequest:
    query: str
    variables: dict[str, Any] | None
    operation_name: str | None


def parse_request(
    method: str,
    params: Mapping[str, str],
    body: bytes | None,
    content_type: str | None,
) -> GraphQLRequest | GraphQLAnswer:
    """The GraphQL-over-HTTP request: ``GET ?query=&variables=&operationName=``, or a ``POST``
    of ``application/json`` ({"query", "variables", "operationName"}) or
    ``application/graphql`` (the query itself). A malformed one is a 400 saying why."""
    raw = _get_params(params) if method == "GET" else _post_body(body, content_type)
    if isinstance(raw, GraphQLAnswer):
        return raw
    query_text, variables, operation = (
        raw.get("query"),
        raw.get("variables"),
        raw.get("operationName"),
    )
    if not isinstance(query_text, str) or not query_text.strip():
        return _refused("'query' must be a non-empty string.")
    limit = MAX_GET_QUERY_BYTES if method == "GET" else MAX_QUERY_BYTES
    if len(query_text.encode()) > limit:
        return _refused(
            f"The query is over {limit} bytes" + (": POST it." if method == "GET" else ".")
        )
    if variables is not None and not isinstance(variables, dict):
        return _refused("'variables' must be a JSON object.")
    if operation is not None and not isinstance(operation, str):
        return _refused("'operationName' must be a string.")
    return GraphQLRequest(query_text, variables, operation)


def _get_params(params: Mapping[str, str]) -> dict[str, Any] | GraphQLAnswer:
    raw: dict[str, Any] = dict(params)
    if raw.get("variables"):
        try:
            raw["variables"] = orjson.loads(raw["variables"])
        except orjson.JSONDecodeError:
            return _refused("'variables' is not JSON")
    return raw


def _post_body(body: bytes | None, content_type: str | None) -> dict[str, Any] | GraphQLAnswer:
    media = (content_type or "application/json").split(";")[0].strip().lower()
    if len(body or b"") > MAX_BODY_BYTES:
        return _refused(f"The body is over {MAX_BODY_BYTES} bytes.", 413)
    if media == "application/graphql":
        return {"query": (body or b"").decode("utf-8", "replace")}
    if media != "application/json":
        return _refused("Content-Type must be application/json or application/graphql.", 415)
    try:
        raw = orjson.loads(body or b"")
    except orjson.JSONDecodeError as error:
        return _refused(f"The body is not JSON: {error}")
    if not isinstance(raw, dict):
        return _refused("The body must be a JSON object with a 'query'.")
    return raw


def execute(
    store: DynamoAggregateStore,
    request: GraphQLRequest,
    *,
    introspection: bool,
) -> GraphQLAnswer:
    """Validate and run one request. Refused before running (syntax, limits, unknown fields):
    400 with the errors. Run: 200 with ``data`` and any per-field errors (a bad argument
    names it in ``extensions.field``); 503 when no field could be read from the store."""
    try:
        document = parse(request.query, max_tokens=MAX_TOKENS)
    except GraphQLSyntaxError as error:
        return GraphQLAnswer(400, {"errors": [error.formatted]})
    context = ReadContext(store)
    _, result = graphql_sync(
        SCHEMA,
        {
            "query": request.query,
            "variables": request.variables,
            "operationName": request.operation_name,
        },
        context_value=context,
        query_document=document,
        introspection=introspection,
        validation_rules=[
            QueryShapeLimits,
            cost_validator(maximum_cost=MAX_COST, variables=request.variables),
        ],
        error_formatter=_format_error,
        logger=ARIADNE_LOG,
        require_query=True,
    )
    if "data" not in result:  # refused before running: syntax, limits, unknown fields
        # ariadne's cost rule re-reports an argument graphql-core's own rules already refused
        # (it coerces arguments to price them): keep graphql-core's message only.
        errors = result["errors"]
        result["errors"] = [e for e in errors if e.get("extensions") != COST_RULE_ECHO] or errors
        return GraphQLAnswer(400, result)
    codes = {(error.get("extensions") or {}).get("code") for error in result.get("errors", ())}
    if codes == {"UNAVAILABLE"} and not any((result["data"] or {}).values()):
        return GraphQLAnswer(503, result, {"Retry-After": "1"})
    return GraphQLAnswer(200, result)


def _format_error(error: GraphQLError, debug: bool = False) -> dict[str, Any]:
    """A bad argument names itself; a store failure says so without AWS's details."""
    from botocore.exceptions import BotoCoreError, ClientError

    formatted: dict[str, Any] = dict(error.formatted)
    original = error.original_error
    if isinstance(original, RequestError):
        formatted["message"] = f"{original.field}: {original.message}"
        formatted["extensions"] = {"code": "BAD_USER_INPUT", "field": original.field}
    elif isinstance(original, BotoCoreError | ClientError):
        formatted["message"] = "The aggregates could not be read; try again."
        formatted["extensions"] = {"code": "UNAVAILABLE"}
    elif original is not None and error.path is None:  # raised while validating, not running
        formatted["extensions"] = COST_RULE_ECHO
    elif original is not None:
        log.error("GraphQL resolver failed", exc_info=original)
        formatted["message"] = "Internal error."
        formatted["extensions"] = {"code": "INTERNAL"}
    return formatted
