"""``python -m clickstream.sql "SELECT ..."``: one query over the archive, printed as a
table, CSV or JSON. Errors are one line on stderr and exit status 1."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import duckdb
import pyarrow as pa
from rich.console import Console

from clickstream.settings import get_settings
from clickstream.sql.output import DEFAULT_TABLE_ROWS, FORMATS, print_table, write_csv, write_json
from clickstream.sql.samples import sample_queries
from clickstream.sql.view import (
    DEFAULT_DATABASE,
    DEFAULT_TABLE,
    ArchiveLocation,
    SqlError,
    open_archive,
    query,
    s3_endpoint,
)

LOCAL_EMULATOR = "http://127.0.0.1:{port}"


def parser() -> argparse.ArgumentParser:
    settings = get_settings()
    samples = sample_queries()
    p = argparse.ArgumentParser(
        prog="python -m clickstream.sql",
        description=(
            f"Run SQL over the Parquet archive with DuckDB. The archive is the view "
            f"{DEFAULT_TABLE} (also {DEFAULT_DATABASE}.{DEFAULT_TABLE}), as in Athena: "
            "every event once, partitioned by year, month, day, hour (UTC); filter on them "
            "to read only those hours."
        ),
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("sql", nargs="?", help="the query ('-' reads it from stdin)")
    source.add_argument("--file", help="read the query from this file")
    source.add_argument("--sample", choices=sorted(samples), help="run a shipped sample query")
    source.add_argument("--list-samples", action="store_true", help="list the sample queries")
    p.add_argument("--format", choices=FORMATS, default="table", help="output (default table)")
    p.add_argument("--max-rows", type=int, default=DEFAULT_TABLE_ROWS, help="rows a table shows")
    p.add_argument(
        "--bucket",
        default=settings.archive_bucket,
        help="archive bucket (default CLICKSTREAM_ARCHIVE_BUCKET, %(default)s)",
    )
    p.add_argument("--region", default=settings.region)
    p.add_argument(
        "--endpoint-url",
        help="S3 endpoint (default AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL; none: AWS)",
    )
    p.add_argument(
        "--local",
        action="store_true",
        help="the local stack's emulator (make local): AWS_ENDPOINT_URL, else "
        "127.0.0.1:CLICKSTREAM_EMULATOR_PORT (4567), with test credentials if none are set",
    )
    p.add_argument("--database", default=DEFAULT_DATABASE, help="the Glue database's name")
    p.add_argument("--table", default=DEFAULT_TABLE, help="the Glue table's name")
    return p


def location(args: argparse.Namespace) -> ArchiveLocation:
    endpoint = s3_endpoint(args.endpoint_url)
    if args.local and endpoint is None:
        port = os.environ.get("CLICKSTREAM_EMULATOR_PORT") or "4567"
        endpoint = LOCAL_EMULATOR.format(port=port)
    return ArchiveLocation(
        bucket=args.bucket,
        region=args.region,
        endpoint_url=endpoint,
        emulator_credentials=args.local and not os.environ.get("AWS_ACCESS_KEY_ID"),
    )


def query_text(args: argparse.Namespace) -> str:
    if args.sample:
        return sample_queries()[args.sample].sql
    if args.file:
        try:
            return Path(args.file).read_text(encoding="utf-8")
        except OSError as exc:
            raise SqlError(f"cannot read {args.file}: {exc.strerror}") from exc
    return sys.stdin.read() if args.sql == "-" else str(args.sql)


def write(reader: pa.RecordBatchReader, output_format: str, max_rows: int) -> None:
    if output_format == "csv":
        write_csv(reader, sys.stdout)
    elif output_format == "json":
        write_json(reader, sys.stdout)
    else:
        print_table(reader, Console(), max_rows)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.list_samples:
        for sample in sample_queries().values():
            print(f"{sample.name}: {sample.description}")
        return 0
    try:
        sql = query_text(args)
        if not sql.strip():
            raise SqlError("the query is empty")
        con = open_archive(location(args), database=args.database, table=args.table)
        reader = query(con, sql)
        if reader is not None:
            write(reader, args.format, args.max_rows)
    # SqlError, or what the scan raises while the rows stream out
    except (SqlError, duckdb.Error, pa.ArrowException, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
