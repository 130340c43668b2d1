"""The shapes of the API's answers, as pydantic models: the OpenAPI document's response
schemas are generated from them (``clickstream.openapi``), and the route tests validate real
answers against that document. Extra keys are allowed, as the document has always said."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from clickstream.aggregates import DIMENSIONS
from clickstream.jobs import JOB_STATUSES


def _one_of(values: tuple[str, ...] | list[str]) -> Any:
    """A string restricted to values known only at run time (an enum in the schema)."""
    return Field(json_schema_extra={"enum": list(values)})


class Answer(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


Count = Annotated[float, Field(description="a count (integral; revenue and ratios are not)")]


class RecordError(Answer):
    index: int | None = Field(
        description="the record's position in the request; null for the whole request"
    )
    field: str = Field(description="the offending field, header or limit")
    message: str
    retryable: bool | None = Field(
        None, description="the record was valid but the stream refused it: send it again"
    )


class IngestAccepted(Answer):
    status: Literal["accepted"]
    processed: int = Field(ge=0)
    failed: int = Field(ge=0)
    errors: list[RecordError]
    event_ids: list[Annotated[str, Field(json_schema_extra={"format": "uuid"})]]


class IngestError(Answer):
    status: Literal["rejected", "unavailable"]
    error: str | None = None
    processed: int | None = None
    failed: int | None = None
    errors: list[RecordError]
    event_ids: list[str] | None = None


class TrackAccepted(Answer):
    status: Literal["accepted"]
    event_id: str


class ReadError(Answer):
    error: str
    field: str | None = Field(description="null when no field is at fault")


class SectionError(Answer):
    error: str
    status: int


class Stats(Answer):
    total_events: Count
    events_by_type: dict[str, float]
    events_by_type_complete: bool | None = Field(
        None, description="false when more types exist than the 50 most frequent listed"
    )
    recent_events: list[dict[str, Any]] = Field(max_length=50)
    sessions: Count
    page_views: Count
    revenue: float
    bounces: Count | None = Field(None, description="sessions with one page view")
    events_last_minute: Count
    updated_at: Annotated[str, Field(json_schema_extra={"format": "date-time"})]
    visitors: int | None = Field(None, description="distinct visitors (HyperLogLog, 0.81% error)")
    visits: Count | None = None
    bounce_rate: float | None = Field(None, description="visits with one page view / visits")
    avg_visit_duration_s: float | None = None
    pages_per_visit: float | None = None
    bots_excluded: Count | None = Field(None, description="bot events left out of every count")
    visitors_now: int | None = Field(None, description="distinct visitors, last 5 minutes")


class TimeseriesPoint(Answer):
    bucket: str
    start: str
    events: Count
    by_type: dict[str, float]
    revenue: float


class Timeseries(Answer):
    granularity: Literal["minute", "hour", "day"]
    from_: str = Field(alias="from")
    to: str
    points: list[TimeseriesPoint]


class FunnelStep(Answer):
    step: str
    sessions: Count = Field(
        description="visits that reached this step and every step before it, in any order"
    )
    rate_from_previous: float
    rate_from_start: float


class Funnel(Answer):
    period: str = Field(description="all, realtime, today, 7d, 30d or custom")
    from_: str | None = Field(alias="from", description="the range's first instant; null: open")
    to: str | None = Field(description="the range's last instant; null: open")
    granularity: Literal["minute", "hour", "day"]
    steps: list[FunnelStep]
    sessions: Count
    conversion_rate: float


class PageCount(Answer):
    page: str
    views: Count


class TopPages(Answer):
    pages: list[PageCount]
    other_views: Count | None = Field(None, description="views of the pages not listed")
    complete: bool | None = Field(None, description="true when no other page has views")
    max_error: Count | None = Field(None, description="no page left out has more views")


class BreakdownRow(Answer):
    value: str
    count: Count


class PeriodRange(Answer):
    period: str
    from_: str | None = Field(alias="from", description="null: all time")
    to: str
    granularity: Literal["minute", "hour", "day"] = Field(
        description="the buckets the period's series and counters are read in"
    )


class Breakdown(PeriodRange):
    dimension: str = _one_of(list(DIMENSIONS))
    metric: Literal["visits", "views", "events"]
    resolution: Literal["hour", "day"] = Field(
        description="hour: right now, and custom ranges of up to a day that are not whole "
        "days; day: the rest. The rows cover the whole hours or days the period touches"
    )
    covers_from: str | None = Field(description="where the rows begin (null: all time)")
    covers_to: str = Field(description="where the rows end")
    rows: list[BreakdownRow]
    other: Count = Field(description="the count of the values not listed")
    total: Count = Field(description="the count of every value together")
    complete: bool
    max_error: Count = Field(description="bound on a count's overestimate")


class RealtimeMinute(Answer):
    bucket: str
    visitors: Count
    events: Count


class Realtime(Answer):
    visitors_now: int
    minutes: list[RealtimeMinute]


class GoalConversions(Answer):
    goal: str
    visits: Count
    conversion_rate: float


class Goals(Answer):
    visits: Count
    goals: list[GoalConversions]


class Dashboard(Answer):
    """``/dashboard``: each section asked for, or why it could not be read."""

    period: PeriodRange
    stats: Stats | SectionError | None = None
    timeseries: Timeseries | SectionError | None = None
    funnel: Funnel | SectionError | None = None
    pages: TopPages | SectionError | None = None
    breakdowns: dict[str, Breakdown] | SectionError | None = None
    goals: Goals | SectionError | None = None
    realtime: Realtime | SectionError | None = None


class PageViews(Answer):
    page: str
    page_views: Count


class ExportPage(Answer):
    events: list[dict[str, Any]]
    count: int
    cursor: str | None = Field(
        description="opaque: the position after this page; null on the last page"
    )
    next: str | None = Field(
        description="the next page's path (also in the Link header); null on the last"
    )


class JobAccepted(Answer):
    job_id: str
    status: Literal["queued"]
    status_url: str
    user_hash: str | None = Field(None, description="an erasure's: SHA-256 of the user id")


class JobStatus(Answer):
    job_id: str
    kind: Literal["export", "erasure"]
    status: str = _one_of(JOB_STATUSES)
    created_at: str
    updated_at: str
    format: str | None = None
    from_: str | None = Field(None, alias="from")
    to: str | None = None
    user_hash: str | None = None
    progress: dict[str, Any]
    result: dict[str, Any] | None = None
    error: str | None = None
    url: str | None = Field(None, description="a finished export: presigned, 1 hour")
    url_expires_in_s: int | None = None


class GraphQLError(Answer):
    message: str
    extensions: dict[str, Any] | None = None


class GraphQLAnswer(Answer):
    data: dict[str, Any] | None = None
    errors: list[GraphQLError] | None = None


# Every answer the document names, by its component name.
ANSWERS: tuple[type[BaseModel], ...] = (
    RecordError, IngestAccepted, IngestError, TrackAccepted, ReadError, Stats, Timeseries,
    Funnel, TopPages, Breakdown, Realtime, Goals, Dashboard, PageViews, ExportPage,
    JobAccepted, JobStatus, GraphQLAnswer,
)  # fmt: skip
