"""Compact archive hour partitions on demand: ``python -m localdev.compact --hours 24``
(the deployed stack runs the same function every hour on a schedule)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

from clickstream.aws import client
from clickstream.compaction import compact_hours
from clickstream.settings import get_settings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hours", type=int, default=24, help="hours back from now, inclusive")
    parser.add_argument("--since", help="ISO time to start from instead of --hours")
    args = parser.parse_args(argv)
    now = datetime.now(UTC)
    start = datetime.fromisoformat(args.since) if args.since else now - timedelta(hours=args.hours)
    results = compact_hours(client("s3"), get_settings().archive_bucket, start, now)
    for result in results:
        print(
            f"{result.prefix}: {result.objects_read} objects, {result.rows_read} rows -> "
            f"{result.rows_written} ({result.duplicates_removed} duplicates removed)"
        )
    if not results:
        print("nothing to compact")


if __name__ == "__main__":
    main()
