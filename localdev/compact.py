"""Compaction on the local stack. ``make compact`` (``python -m localdev.compact``) runs once
what the deployed stack's hourly schedule runs (``consumers.compactor``: every closed hour
touched since its last compaction, then the idle shards' folds); ``--hours 24`` or
``--since`` compacts a range instead, the open hour included. ``make local`` runs it with
``--every`` (``CLICKSTREAM_COMPACT_EVERY_S``, an hour), as the schedule does on AWS.

Without ``AWS_ENDPOINT_URL`` it reads the running ``make local`` stack's environment from
``.local/state.json``, so it never reaches an AWS account by accident."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType

from clickstream.aws import client, reset_clients
from clickstream.compaction import compact_hours
from clickstream.settings import get_settings
from localdev.state import read_state, state_path

STATE_DIR = Path(__file__).resolve().parent.parent / ".local"


def use_local_stack(state_dir: Path) -> None:
    """The running local stack's emulator, tables and bucket, unless an endpoint is set."""
    if os.environ.get("AWS_ENDPOINT_URL"):
        return
    state_dir = Path(os.environ.get("CLICKSTREAM_STATE_DIR", state_dir))
    state = read_state(state_dir)
    if state is None:
        raise SystemExit(
            f"no local stack is running ({state_path(state_dir)} is missing): start "
            "`make local`, or set AWS_ENDPOINT_URL and the CLICKSTREAM_* names to compact "
            "another archive"
        )
    os.environ.update(state["env"])
    reset_clients()


def compact_once(hours: int | None, since: str | None) -> None:
    now = datetime.now(UTC)
    if since or hours:
        start = datetime.fromisoformat(since) if since else now - timedelta(hours=hours or 0)
        results = compact_hours(client("s3"), get_settings().archive_bucket, start, now)
        for result in results:
            print(
                f"{result.prefix}: {result.objects_read} objects, {result.rows_read} rows -> "
                f"{result.rows_written} ({result.duplicates_removed} duplicates removed)"
            )
        print(f"{len(results)} hours compacted" if results else "nothing to compact")
        return
    from consumers.compactor import handler

    summary = handler()  # as the deployed schedule runs it
    print(
        f"{summary['partitions']} closed hours compacted ({summary['rows_written']} rows, "
        f"{summary['duplicates_removed']} duplicates removed); "
        f"{summary['deltas_folded']} aggregate deltas folded"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hours", type=int, help="hours back from now, inclusive")
    parser.add_argument("--since", help="ISO time to start from instead of --hours")
    parser.add_argument(
        "--every", type=float, help="run the schedule every this many seconds until stopped"
    )
    args = parser.parse_args(argv)
    use_local_stack(STATE_DIR)
    if args.every is None:
        compact_once(args.hours, args.since)
        return
    stopped = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        stopped.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    # The schedule's first run comes one period after the start, as on AWS.
    while not stopped.wait(args.every):
        try:
            compact_once(args.hours, args.since)
        except Exception as exc:  # a failed run is reported; the next one tries again
            print(f"compaction failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        sys.stdout.flush()


if __name__ == "__main__":
    main()
