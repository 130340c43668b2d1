"""Exports of archived events: ``GET /export`` pages, and export jobs that write one file to S3.

Both read the archive one hour partition at a time (``hour_tables``): an hour's objects are
read, each ``event_id`` kept once (compaction's own rule) and sorted by
``(timestamp, event_id)``. Memory is bounded by one hour partition, never the window.

- **Pages** (``export_page``): at most ``limit`` rows and at most ``MAX_PAGE_BYTES`` of body
  (Lambda answers at most 6 MB, and a binary Parquet page travels base64-encoded, so its budget
  is three quarters of that). A page that stops before the range's end carries an opaque
  ``cursor``: the position (timestamp, event_id) of its last row and the range. The next page
  starts strictly after that position, so pages neither repeat nor skip an event, even when the
  hour is compacted between two requests.
- **Jobs** (``write_export``): every hour of the range streamed into one S3 object through a
  multipart upload (8 MB parts), in the asked format.
- **Erased users** are left out of both as they are read, from the moment their erasure is
  marked (the archive's own rewrite comes later, an hour at a time). A job that sees a new
  erasure while it runs writes its file again; a file written before an erasure that holds its
  hours is withdrawn by the erasure (``withdraw_exports``).
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from clickstream.errors import RequestError

DEFAULT_PAGE_ROWS = 1_000
MAX_PAGE_ROWS = 10_000
MAX_EXPORT_ROWS = MAX_PAGE_ROWS  # one page's rows (the OpenAPI document's bound)
DEFAULT_EXPORT_WINDOW = timedelta(hours=24)
MAX_EXPORT_WINDOW = timedelta(days=31)  # one GET /export range
MAX_JOB_WINDOW = timedelta(days=92)  # one job runs in one 15-minute invocation
# Lambda's response limit is 6 MB (the whole JSON envelope API Gateway gets); a page's body
# stays under 5 MB, a binary one (base64 on the way out) under 3.6 MB.
MAX_PAGE_BYTES = 4_800_000
MAX_BINARY_PAGE_BYTES = 3_600_000
FORMATS = {
    "json": "application/json",
    "ndjson": "application/x-ndjson",
    "csv": "text/csv; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
}
EXTENSIONS = {"json": "json", "ndjson": "ndjson", "csv": "csv", "parquet": "parquet"}


@dataclass(frozen=True)
class ExportRange:
    start: datetime
    end: datetime


@dataclass(frozen=True)
class Position:
    """The last row a page held: the next one starts after it."""

    timestamp_ms: int
    event_id: str


@dataclass(frozen=True)
class ExportPage:
    body: bytes
    content_type: str
    rows: int
    cursor: str | None  # None: the range is exhausted


def check_format(export_format: str) -> str:
    if export_format not in FORMATS:
        raise RequestError("format", "must be json, ndjson, csv or parquet")
    return export_format


def resolve_range(
    start: datetime | None,
    end: datetime | None,
    *,
    now: datetime | None = None,
    longest: timedelta = MAX_EXPORT_WINDOW,
) -> ExportRange:
    end = end or now or datetime.now(UTC)
    start = start or end - DEFAULT_EXPORT_WINDOW
    if start > end:
        raise RequestError("from", "'from' is after 'to'")
    if end - start > longest:
        days = longest.days
        raise RequestError("from", f"the range is longer than {days} days; export it in parts")
    return ExportRange(start, end)


def check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_PAGE_ROWS:
        raise RequestError("limit", f"must be between 1 and {MAX_PAGE_ROWS}")
    return limit


# --- the cursor ------------------------------------------------------------------------------


def encode_cursor(window: ExportRange, position: Position) -> str:
    raw = orjson.dumps(
        {
            "v": 1,
            "f": _ms(window.start),
            "t": _ms(window.end),
            "ts": position.timestamp_ms,
            "id": position.event_id,
        }
    )
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[ExportRange, Position]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
        if data.get("v") != 1:
            raise ValueError("version")
        window = ExportRange(_from_ms(int(data["f"])), _from_ms(int(data["t"])))
        position = Position(int(data["ts"]), str(data["id"]))
    except (ValueError, TypeError, KeyError, AttributeError, binascii.Error, OverflowError):
        raise RequestError("cursor", "not a cursor this API gave out") from None
    if window.start > window.end or window.end - window.start > MAX_EXPORT_WINDOW:
        raise RequestError("cursor", "not a cursor this API gave out")
    return window, position


def _ms(ts: datetime) -> int:
    return (ts - EPOCH) // timedelta(milliseconds=1)


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _from_ms(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


# --- reading hour by hour --------------------------------------------------------------------


def partitions_between(s3: Any, bucket: str, first: str, last: str) -> Iterator[tuple[str, list]]:
    """(prefix, keys) of every archive hour from ``first`` to ``last`` (prefixes) that holds
    objects, in order: one LIST page per 1,000 keys, never a call per empty hour."""
    from clickstream.layout import ARCHIVE_PREFIX, partition_of

    paginator = s3.get_paginator("list_objects_v2")
    current: str | None = None
    keys: list[str] = []
    start_after = first[:-1]  # sorts before every key under ``first``
    for page in paginator.paginate(Bucket=bucket, Prefix=ARCHIVE_PREFIX, StartAfter=start_after):
        for obj in page.get("Contents", []):
            key = obj["Key"]
            prefix = partition_of(key)
            if prefix is None or not key.endswith(".parquet") or prefix < first:
                continue
            if prefix > last:
                if current is not None:
                    yield current, keys
                return
            if prefix != current:
                if current is not None:
                    yield current, keys
                current, keys = prefix, []
            keys.append(key)
    if current is not None:
        yield current, keys


def hour_tables(
    s3: Any,
    bucket: str,
    window: ExportRange,
    after: Position | None = None,
    erased: Collection[str] = frozenset(),
) -> Iterator[Any]:
    """Each hour of ``window`` holding events after ``after``: a table of its events in the
    range, each once, sorted by (timestamp, event_id), without the users whose id hashes are
    in ``erased``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from clickstream.archive import read_parquet_objects
    from clickstream.compaction import deduplicate
    from clickstream.layout import partition_prefix
    from clickstream.privacy import without_users

    first = partition_prefix(_from_ms(after.timestamp_ms) if after else window.start)
    last = partition_prefix(window.end)
    low = pa.scalar(window.start, pa.timestamp("ms", tz="UTC"))
    high = pa.scalar(window.end, pa.timestamp("ms", tz="UTC"))
    for _prefix, keys in partitions_between(s3, bucket, first, last):
        table = read_parquet_objects(s3, bucket, keys)
        if after is not None:  # copies of an event share its timestamp: none is cut off
            low = pa.scalar(_from_ms(max(_ms(window.start), after.timestamp_ms)), low.type)
        table = table.filter(
            pc.and_(
                pc.greater_equal(table["timestamp"], low),
                pc.less_equal(table["timestamp"], high),
            )
        )
        table = without_users(deduplicate(table), erased)
        if after is not None and table.num_rows:
            at = pa.scalar(_from_ms(after.timestamp_ms), pa.timestamp("ms", tz="UTC"))
            later = pc.or_(
                pc.greater(table["timestamp"], at),
                pc.and_(
                    pc.equal(table["timestamp"], at),
                    pc.greater(table["event_id"], pa.scalar(after.event_id)),
                ),
            )
            table = table.filter(later)
        if table.num_rows:
            yield table
        del table  # not held while the next hour is read


# --- encoding --------------------------------------------------------------------------------

TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"  # timestamp[ms]: 2026-11-24T10:30:15.123Z


def batch_rows(batch: Any) -> Iterator[tuple[dict[str, Any], Position]]:
    """Each row of an archive batch with its times as ISO 8601 text (converted column by
    column: no datetime per row), and its position."""
    import pyarrow as pa
    import pyarrow.compute as pc

    names = batch.schema.names
    columns = []
    for name in names:
        column = batch.column(name)
        if pa.types.is_timestamp(column.type):
            column = pc.strftime(column, format=TIME_FORMAT)
        columns.append(column.to_pylist())
    stamps = batch.column("timestamp").cast(pa.int64()).to_pylist()
    event_ids = columns[names.index("event_id")]
    for index, values in enumerate(zip(*columns, strict=True)):
        yield dict(zip(names, values, strict=True)), Position(stamps[index], event_ids[index])


def jsonable(row: dict[str, Any]) -> dict[str, Any]:
    """A row as the JSON formats give it: nulls left out, properties as their JSON."""
    out = {name: value for name, value in row.items() if value is not None}
    if "properties" in out:
        out["properties"] = orjson.Fragment(out["properties"])
    return out


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


class TextEncoder:
    """Rows to json / ndjson / csv bytes, one row at a time (so a page knows its size)."""

    def __init__(self, export_format: str) -> None:
        self.format = export_format
        self._buffer = io.StringIO()
        self._csv = csv.writer(self._buffer, lineterminator="\n")
        self.count = 0

    def header(self) -> bytes:
        if self.format == "csv":
            from clickstream.archive import PARQUET_SCHEMA

            return self._line(PARQUET_SCHEMA.names)
        return b'{"events":[' if self.format == "json" else b""

    def _line(self, values: Any) -> bytes:
        self._buffer.seek(0)
        self._buffer.truncate()
        self._csv.writerow(values)
        return self._buffer.getvalue().encode()

    def row(self, row: dict[str, Any]) -> bytes:
        self.count += 1
        if self.format == "csv":
            return self._line([_csv_value(value) for value in row.values()])
        encoded = orjson.dumps(jsonable(row))
        if self.format == "ndjson":
            return encoded + b"\n"
        return encoded if self.count == 1 else b"," + encoded

    def unrow(self) -> None:
        """Forget the last row encoded (it did not fit)."""
        self.count -= 1

    def footer(self, cursor: str | None = None, next_url: str | None = None) -> bytes:
        if self.format != "json":
            return b""
        tail: dict[str, Any] = {"count": self.count, "cursor": cursor, "next": next_url}
        return b"]," + orjson.dumps(tail)[1:]


# JSON footer room: count, the cursor (~150 characters) and the next link holding it
_FOOTER_ROOM = 2_000


def export_page(
    s3: Any,
    bucket: str,
    *,
    export_format: str,
    window: ExportRange,
    after: Position | None,
    limit: int,
    max_bytes: int | None = None,
    link: Callable[[str], str] | None = None,
    erased: Collection[str] = frozenset(),
) -> ExportPage:
    """One page: up to ``limit`` rows after ``after``, the body under the size budget;
    ``link`` makes the next page's URL from its cursor (the JSON body carries it)."""
    check_format(export_format)
    check_limit(limit)
    if export_format == "parquet":
        return _parquet_page(
            s3, bucket, window, after, limit, max_bytes or MAX_BINARY_PAGE_BYTES, erased
        )
    budget = (max_bytes or MAX_PAGE_BYTES) - _FOOTER_ROOM
    encoder = TextEncoder(export_format)
    parts = [encoder.header()]
    size = len(parts[0])
    last: Position | None = None
    more = False
    for table in hour_tables(s3, bucket, window, after, erased):
        for batch in table.slice(0, limit - encoder.count + 1).to_batches(max_chunksize=2_000):
            for row, position in batch_rows(batch):
                if encoder.count >= limit:
                    more = True
                    break
                encoded = encoder.row(row)
                if size + len(encoded) > budget and encoder.count > 1:
                    encoder.unrow()
                    more = True
                    break
                parts.append(encoded)
                size += len(encoded)
                last = position
            if more:
                break
        if more:
            break
        del table  # not held while the next hour is read
    cursor = encode_cursor(window, last) if more and last is not None else None
    parts.append(encoder.footer(cursor, link(cursor) if link and cursor else None))
    return ExportPage(b"".join(parts), FORMATS[export_format], encoder.count, cursor)


def _parquet_page(
    s3: Any,
    bucket: str,
    window: ExportRange,
    after: Position | None,
    limit: int,
    max_bytes: int,
    erased: Collection[str],
) -> ExportPage:
    """A Parquet page: rows are taken while their Arrow size stays under the budget (zstd
    Parquet is smaller), then halved until the file itself fits."""
    import pyarrow as pa

    from clickstream.archive import PARQUET_SCHEMA, to_parquet_bytes

    taken: list[Any] = []
    rows = size = 0
    more = False
    for table in hour_tables(s3, bucket, window, after, erased):
        for batch in table.to_batches(max_chunksize=500):
            if rows >= limit or (size + batch.nbytes > max_bytes and rows):
                more = True
                break
            if batch.num_rows > limit - rows:  # the page ends inside this batch
                batch, more = batch.slice(0, limit - rows), True
            taken.append(batch)
            rows += batch.num_rows
            size += batch.nbytes
            if more:
                break
        if more:
            break
        del table
    page = (
        pa.Table.from_batches(taken, schema=PARQUET_SCHEMA)
        if taken
        else PARQUET_SCHEMA.empty_table()
    )
    body = to_parquet_bytes(page)
    while len(body) > max_bytes and page.num_rows > 1:
        page = page.slice(0, page.num_rows // 2)
        body = to_parquet_bytes(page)
        more = True
    cursor = None
    if more and page.num_rows:
        last = page.slice(page.num_rows - 1, 1).to_pylist()[0]
        cursor = encode_cursor(window, Position(_ms(last["timestamp"]), last["event_id"]))
    return ExportPage(body, FORMATS["parquet"], page.num_rows, cursor)


# --- the export job --------------------------------------------------------------------------

PART_BYTES = 8 * 1024 * 1024  # multipart parts (S3's minimum is 5 MB, but the last)


class MultipartWriter(io.RawIOBase):
    """A writable file that uploads itself to S3 in parts: memory holds about one part (its
    chunks, then the part they are joined into). boto3's ``upload_fileobj`` wants a readable
    file; a writer (ParquetWriter, the text encoder) needs this side of it."""

    def __init__(self, s3: Any, bucket: str, key: str, content_type: str) -> None:
        super().__init__()
        self.s3, self.bucket, self.key = s3, bucket, key
        self.upload_id = s3.create_multipart_upload(
            Bucket=bucket, Key=key, ContentType=content_type
        )["UploadId"]
        self.parts: list[dict[str, Any]] = []
        self.chunks: list[bytes] = []
        self.buffered = 0
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self.chunks.append(chunk)
        self.buffered += len(chunk)
        self.size += len(chunk)
        if self.buffered >= PART_BYTES:
            self._upload()
        return len(chunk)

    def _upload(self) -> None:
        body = b"".join(self.chunks)
        self.chunks, self.buffered = [], 0
        number = len(self.parts) + 1
        answer = self.s3.upload_part(
            Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, PartNumber=number, Body=body
        )
        self.parts.append({"ETag": answer["ETag"], "PartNumber": number})

    def complete(self) -> None:
        if self.chunks or not self.parts:
            self._upload()
        self.s3.complete_multipart_upload(
            Bucket=self.bucket,
            Key=self.key,
            UploadId=self.upload_id,
            MultipartUpload={"Parts": self.parts},
        )

    def abort(self) -> None:
        self.s3.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id)


@dataclass(frozen=True)
class ExportFile:
    key: str
    rows: int
    bytes: int
    content_type: str


EXPORTS_PREFIX = "exports/"


def export_key(job_id: str, export_format: str) -> str:
    return f"{EXPORTS_PREFIX}{job_id}/events.{EXTENSIONS[export_format]}"


def job_of_export_key(key: str) -> str | None:
    """The job id an export object's key names; None for any other key."""
    if not key.startswith(EXPORTS_PREFIX):
        return None
    job_id, _, name = key[len(EXPORTS_PREFIX) :].partition("/")
    return job_id if job_id and name.startswith("events.") else None


def write_export(
    s3: Any,
    bucket: str,
    key: str,
    *,
    export_format: str,
    window: ExportRange,
    erased: Collection[str] = frozenset(),
) -> ExportFile:
    """Every event of ``window``, each once and in time order, into one S3 object."""
    import pyarrow.parquet as pq

    from clickstream.archive import COMPRESSION, PARQUET_SCHEMA

    check_format(export_format)
    sink = MultipartWriter(s3, bucket, key, FORMATS[export_format])
    rows = 0
    try:
        if export_format == "parquet":
            with pq.ParquetWriter(sink, PARQUET_SCHEMA, compression=COMPRESSION) as writer:
                for table in hour_tables(s3, bucket, window, erased=erased):
                    writer.write_table(table, row_group_size=100_000)
                    rows += table.num_rows
                    del table
        else:
            encoder = TextEncoder(export_format)
            sink.write(encoder.header())
            for table in hour_tables(s3, bucket, window, erased=erased):
                for batch in table.to_batches(max_chunksize=2_000):
                    sink.write(b"".join(encoder.row(row) for row, _ in batch_rows(batch)))
                del table, batch
            sink.write(encoder.footer())
            rows = encoder.count
        sink.complete()
    except BaseException:
        sink.abort()
        raise
    return ExportFile(key, rows, sink.size, FORMATS[export_format])


ERASURE_RETRIES = 3  # writes of one export while erasures keep arriving, then the job fails


class ErasedDuringExport(RuntimeError):
    """Erasures kept arriving while the export was written; the job's step is retried."""


def write_export_without_erased(
    s3: Any,
    bucket: str,
    key: str,
    *,
    export_format: str,
    window: ExportRange,
    erased: Callable[[], Collection[str]],
) -> ExportFile:
    """``write_export`` leaving out every erased user, ``erased`` read before and after: an
    erasure marked while the file was written means writing it again, so no finished file
    holds a user erased before it finished."""
    before = set(erased())
    for _ in range(ERASURE_RETRIES):
        written = write_export(
            s3, bucket, key, export_format=export_format, window=window, erased=before
        )
        after = set(erased())
        if after <= before:
            return written
        before = after
    raise ErasedDuringExport(f"{ERASURE_RETRIES} erasures arrived while {key} was written")


def withdraw_exports(
    s3: Any,
    bucket: str,
    *,
    written_before: datetime,
    overlapping: ExportRange,
    window_of: Callable[[str], ExportRange | None],
) -> list[str]:
    """Delete every export file written before ``written_before`` whose range overlaps
    ``overlapping`` (the hours an erasure removed rows from); the job ids withdrawn.
    ``window_of`` gives a job's range (None: no such export job, withdrawn to be safe)."""
    withdrawn = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=EXPORTS_PREFIX):
        for obj in page.get("Contents", []):
            job_id = job_of_export_key(obj["Key"])
            if job_id is None or obj["LastModified"] >= written_before:
                continue
            window = window_of(job_id)
            if window is not None and (
                window.end < overlapping.start or window.start >= overlapping.end
            ):
                continue
            s3.delete_object(Bucket=bucket, Key=obj["Key"])
            withdrawn.append(job_id)
    return withdrawn


def presigned_url(s3: Any, bucket: str, key: str, expires_s: int = 3600) -> str:
    return str(
        s3.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires_s
        )
    )
