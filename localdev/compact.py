"""Compact archive hour partitions on demand: ``python -m localdev.compact`` runs what the
deployed stack's hourly schedule runs (every closed hour touched since its last compaction);
``--hours 24`` or ``--since`` compacts a range instead, the open hour included."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

from clickstream.aws import aggregate_store, client
from clickstream.compaction import compact_closed_hours, compact_hours
from clickstream.jobs import JobStore
from clickstream.settings import get_settings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hours", type=int, help="hours back from now, inclusive")
    parser.add_argument("--since", help="ISO time to start from instead of --hours")
    args = parser.parse_args(argv)
    now = datetime.now(UTC)
    s3, bucket = client("s3"), get_settings().archive_bucket
    if args.since or args.hours:
        start = (
            datetime.fromisoformat(args.since) if args.since else now - timedelta(hours=args.hours)
        )
        results = compact_hours(s3, bucket, start, now)
    else:
        results = compact_closed_hours(  # as the deployed schedule does it
            s3,
            bucket,
            now,
            erased=aggregate_store().erased_users(),
            locks=JobStore(client("dynamodb"), get_settings().jobs_table),
        )
    for result in results:
        print(
            f"{result.prefix}: {result.objects_read} objects, {result.rows_read} rows -> "
            f"{result.rows_written} ({result.duplicates_removed} duplicates removed)"
        )
    if not results:
        print("nothing to compact")


if __name__ == "__main__":
    main()
