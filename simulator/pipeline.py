"""Reading what the pipeline shows: the API's aggregates (``GET /stats``, ``/pages/top``,
``/funnel``) and the Parquet archive in S3 (listed with boto3, read with DuckDB).

``PipelineState`` is one reading of the aggregates plus the archive's object keys; as JSON it
is the *baseline* (``snapshot --out``, or recorded into the ledger by a run) that
``reconcile`` subtracts, because the aggregates are cumulative for the whole stack.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

from clickstream.schema import FUNNEL_STEPS
from simulator.ledger import VISIT_DIMENSIONS
from simulator.transport import api_key_headers

PAGES_LIMIT = 100  # the most /pages/top lists
_FINAL_STATUS = frozenset(range(400, 500)) - {429}
ARCHIVE_PREFIX = "events/"


@dataclass
class PipelineState:
    """One reading. ``None`` means "could not be read" (see ``errors``)."""

    taken_at: str = ""
    endpoint: str = ""
    total_events: int | None = None
    events_by_type: dict[str, int] | None = None
    sessions: int | None = None
    revenue: float | None = None
    page_views_total: int | None = None
    pages: dict[str, int] | None = None
    pages_complete: bool = True
    funnel_sessions: int | None = None
    funnel: dict[str, int] | None = None
    visitors: int | None = None
    bounces: int | None = None
    visit_duration_s: int | None = None
    bots: int | None = None
    visits_by: dict[str, dict[str, int]] | None = None  # breakdowns: dimension -> value -> visits
    archive_bucket: str | None = None
    archive_objects: dict[str, str] | None = None  # key -> ETag
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PipelineState:
        known = set(cls.__dataclass_fields__)
        return cls(**{key: value for key, value in data.items() if key in known})

    @property
    def archive_summary(self) -> str:
        return "n/a" if self.archive_objects is None else str(len(self.archive_objects))


class ApiReader:
    """GETs against the API, with a short retry for transient failures."""

    def __init__(self, endpoint: str, *, timeout: float = 10.0, attempts: int = 3) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.timeout = timeout
        self.attempts = attempts
        self.session = requests.Session()
        self.session.headers.update(api_key_headers())  # $CLICKSTREAM_API_KEY, if set

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        last: Exception | None = None
        for attempt in range(self.attempts):
            try:
                response = self.session.get(
                    self.endpoint + path, params=params, timeout=self.timeout
                )
                if response.status_code in (429, 500, 502, 503, 504):
                    raise requests.HTTPError(f"HTTP {response.status_code}", response=response)
                response.raise_for_status()
                return response.json()
            except (requests.RequestException, ValueError) as exc:
                last = exc
                failed = getattr(exc, "response", None)
                if failed is not None and failed.status_code in _FINAL_STATUS:
                    break
                time.sleep(0.3 * (attempt + 1))
        raise ApiError(f"GET {path}: {last}")

    def close(self) -> None:
        self.session.close()


class ApiError(RuntimeError):
    """A GET failed after its retries."""


def _int_map(value: Any) -> dict[str, int]:
    if not isinstance(value, Mapping):
        return {}
    return {str(key): int(count) for key, count in value.items()}


def read_stats(api: ApiReader, state: PipelineState) -> None:
    stats = api.get("/stats")
    state.total_events = int(stats.get("total_events") or 0)
    state.events_by_type = _int_map(stats.get("events_by_type"))
    state.sessions = int(stats.get("sessions") or 0)
    state.revenue = float(stats.get("revenue") or 0.0)
    state.page_views_total = int(stats.get("page_views") or 0)
    state.visitors = int(stats.get("visitors") or 0)
    state.bounces = int(stats.get("bounces") or 0)
    state.visit_duration_s = int(stats.get("visit_duration_s") or 0)
    state.bots = int(stats.get("bots_excluded") or 0)


def read_breakdowns(api: ApiReader, state: PipelineState, dimensions: Iterable[str]) -> None:
    """Visits per value of each visit dimension, all time (``/breakdown``); a list that is
    not complete (more values than it shows) is an error, not a silent shortfall."""
    found: dict[str, dict[str, int]] = {}
    for dimension in dimensions:
        body = api.get("/breakdown", {"dimension": dimension, "limit": PAGES_LIMIT})
        if not body.get("complete", False) or body.get("max_error"):
            state.errors.append(
                f"/breakdown {dimension}: not exact (max_error {body.get('max_error')})"
            )
        found[dimension] = {str(row["value"]): int(row["count"]) for row in body.get("rows") or []}
    state.visits_by = found


def read_pages(api: ApiReader, state: PipelineState, must_have: Iterable[str] = ()) -> None:
    """All pages from ``/pages/top``; if that list may be truncated, each page of
    ``must_have`` it lacks is read from ``/analytics/page-views/{page}``."""
    body = api.get("/pages/top", {"limit": PAGES_LIMIT})
    pages = {str(item["page"]): int(item["views"]) for item in body.get("pages") or []}
    state.pages_complete = bool(body.get("complete", len(pages) < PAGES_LIMIT))
    if not state.pages_complete:
        for page in must_have:
            if page not in pages:
                one = api.get("/analytics/page-views/" + quote(page.lstrip("/"), safe=""))
                pages[page] = int(one.get("page_views") or 0)
    state.pages = pages


def read_funnel(api: ApiReader, state: PipelineState) -> None:
    body = api.get("/funnel")
    steps = {str(item["step"]): int(item["sessions"]) for item in body.get("steps") or []}
    state.funnel = {step: steps.get(step, 0) for step in FUNNEL_STEPS}
    state.funnel_sessions = int(body.get("sessions") or 0)


def list_archive_objects(bucket: str, prefix: str = ARCHIVE_PREFIX) -> dict[str, str]:
    """Every Parquet object under ``prefix``: key -> ETag. The ETag tells a rewritten object
    (an hour compacted into ``compacted.parquet`` again) from the one in a baseline."""
    from clickstream import aws

    s3 = aws.client("s3")
    objects: dict[str, str] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents") or []:
            if item["Key"].endswith(".parquet"):
                objects[item["Key"]] = str(item.get("ETag", ""))
    return dict(sorted(objects.items()))


def read_state(
    endpoint: str | None,
    *,
    archive_bucket: str | None,
    pages: Iterable[str] = (),
) -> PipelineState:
    """Read everything that can be read; what cannot is ``None`` with a note in ``errors``."""
    state = PipelineState(
        taken_at=datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        endpoint=endpoint or "",
        archive_bucket=archive_bucket,
    )
    if endpoint:
        api = ApiReader(endpoint)
        try:
            for reader in (read_stats, read_funnel):
                try:
                    reader(api, state)
                except (ApiError, KeyError, TypeError, ValueError, AttributeError) as exc:
                    state.errors.append(f"{reader.__name__}: {exc}")
            try:
                read_pages(api, state, pages)
            except (ApiError, KeyError, TypeError, ValueError, AttributeError) as exc:
                state.errors.append(f"read_pages: {exc}")
            try:
                read_breakdowns(api, state, VISIT_DIMENSIONS)
            except (ApiError, KeyError, TypeError, ValueError, AttributeError) as exc:
                state.errors.append(f"read_breakdowns: {exc}")
        finally:
            api.close()
    if archive_bucket:
        try:
            state.archive_objects = list_archive_objects(archive_bucket)
        except Exception as exc:  # botocore raises many unrelated types
            state.errors.append(f"archive listing s3://{archive_bucket}/{ARCHIVE_PREFIX}: {exc}")
    return state


def settled_state(
    endpoint: str | None,
    *,
    archive_bucket: str | None,
    pages: Iterable[str] = (),
    settle_seconds: float = 10.0,
    interval: float = 1.5,
) -> PipelineState:
    """A reading taken once ``total_events`` stops moving (bounded by ``settle_seconds``), so
    a baseline is not taken while consumers are still applying an earlier run."""
    pages = list(pages)
    deadline = time.monotonic() + settle_seconds
    state = read_state(endpoint, archive_bucket=archive_bucket, pages=pages)
    while time.monotonic() < deadline and state.total_events is not None:
        time.sleep(interval)
        again = read_state(endpoint, archive_bucket=archive_bucket, pages=pages)
        if (again.total_events, again.archive_objects) == (
            state.total_events,
            state.archive_objects,
        ):
            return again
        state = again
    return state


@dataclass(frozen=True)
class ArchiveSummary:
    """What the archive objects written since the baseline hold."""

    objects: int
    rows: int
    distinct_ids: int
    run_rows: int  # rows whose event_id is one of the run's accepted ids
    run_distinct_ids: int
    missing_ids: int  # accepted ids found in no object
    missing_sample: tuple[str, ...] = ()


class ArchiveReader:
    """Keeps a local copy of the archive objects that are not in the baseline (new keys, or
    baseline keys rewritten since, e.g. by compaction), in a temporary directory, and counts
    them with DuckDB. Each refresh downloads only what changed and forgets objects that were
    deleted (compaction removes the objects it merged), so no row is counted twice."""

    def __init__(self, bucket: str, baseline_objects: Mapping[str, str] | None = None) -> None:
        self.bucket = bucket
        self.baseline = dict(baseline_objects or {})
        self._tmp = tempfile.TemporaryDirectory(prefix="simulator-archive-")
        self.root = Path(self._tmp.name)
        self._have: dict[str, str] = {}  # key -> ETag of the local copy

    def close(self) -> None:
        self._tmp.cleanup()

    @property
    def files(self) -> list[Path]:
        return [self.root / key for key in sorted(self._have)]

    def refresh(self) -> None:
        from clickstream import aws

        s3 = aws.client("s3")
        current = list_archive_objects(self.bucket)
        for key in [key for key in self._have if key not in current]:
            (self.root / key).unlink(missing_ok=True)
            del self._have[key]
        for key, etag in current.items():
            if self.baseline.get(key) == etag or self._have.get(key) == etag:
                continue
            target = self.root / key
            target.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(self.bucket, key, str(target))
            self._have[key] = etag

    def summary(self, accepted_ids: list[str]) -> ArchiveSummary:
        return summarize_parquet(self.files, accepted_ids)


def summarize_parquet(files: list[Path], accepted_ids: list[str]) -> ArchiveSummary:
    """Rows and distinct event ids in ``files``, and how the run's accepted ids appear."""
    import duckdb
    import pyarrow as pa

    accepted = pa.table({"event_id": pa.array(sorted(set(accepted_ids)), pa.string())})
    con = duckdb.connect()
    try:
        con.register("accepted", accepted)
        if files:
            listing = ", ".join("'" + str(path).replace("'", "''") + "'" for path in files)
            con.execute(
                "CREATE VIEW archived AS SELECT CAST(event_id AS VARCHAR) AS event_id "
                f"FROM read_parquet([{listing}], hive_partitioning=true, union_by_name=true)"
            )
        else:
            con.execute("CREATE VIEW archived AS SELECT NULL::VARCHAR AS event_id WHERE false")
        rows, distinct = _one(con, "SELECT count(*), count(DISTINCT event_id) FROM archived")
        run_rows, run_distinct = _one(
            con,
            "SELECT count(*), count(DISTINCT r.event_id) FROM archived r "
            "JOIN accepted a ON a.event_id = r.event_id",
        )
        missing = con.execute(
            "SELECT a.event_id FROM accepted a ANTI JOIN archived r ON a.event_id = r.event_id "
            "ORDER BY 1"
        ).fetchall()
    finally:
        con.close()
    return ArchiveSummary(
        objects=len(files),
        rows=rows,
        distinct_ids=distinct,
        run_rows=run_rows,
        run_distinct_ids=run_distinct,
        missing_ids=len(missing),
        missing_sample=tuple(str(row[0]) for row in missing[:5]),
    )


def _one(con: Any, sql: str) -> tuple[int, int]:
    row = con.execute(sql).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)
