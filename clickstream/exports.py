"""``GET /export``: archived events as JSON or NDJSON, for a time range."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from clickstream.queries import QueryError

MAX_EXPORT_ROWS = 100_000
DEFAULT_EXPORT_WINDOW = timedelta(hours=24)
MAX_EXPORT_WINDOW = timedelta(days=31)
FORMATS = {"json": "application/json", "ndjson": "application/x-ndjson"}


@dataclass(frozen=True)
class ExportResult:
    body: str
    content_type: str
    rows: int


def export_response(
    s3: Any,
    bucket: str,
    *,
    export_format: str,
    start: datetime | None,
    end: datetime | None,
    limit: int,
) -> ExportResult:
    if export_format not in FORMATS:
        raise QueryError("format", "must be json or ndjson")
    if not 1 <= limit <= MAX_EXPORT_ROWS:
        raise QueryError("limit", f"must be between 1 and {MAX_EXPORT_ROWS}")
    end = end or datetime.now(UTC)
    start = start or end - DEFAULT_EXPORT_WINDOW
    if start > end:
        raise QueryError("from", "'from' is after 'to'")
    if end - start > MAX_EXPORT_WINDOW:
        raise QueryError("from", "the range is longer than 31 days; export it in parts")
    from clickstream.archive import export_rows  # pyarrow only when exporting

    rows = export_rows(s3, bucket, start, end, limit)
    if export_format == "ndjson":
        body = "".join(orjson.dumps(row).decode() + "\n" for row in rows)
    else:
        body = orjson.dumps({"events": rows, "count": len(rows)}).decode()
    return ExportResult(body=body, content_type=FORMATS[export_format], rows=len(rows))
