"""``make soak``: a long run of simulated shoppers through the whole local stack with faults
injected, then a reconciliation. Not part of ``make test``.

    python -m localdev.soak --events 200000 --faults fail_every=11,crash_every=41,throttle_put=0.05

It starts a dedicated local stack (free loopback ports, its own state directory), pushes the
simulator's traffic through the API, waits for the consumers, runs ``simulator reconcile``
(accepted vs aggregates vs archive), compacts the archive and checks each accepted event is
there exactly once, and prints the figures. Exit status 0 only when nothing was lost or
double counted.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from clickstream.archive import list_archive_keys, read_parquet_objects
from clickstream.compaction import compact_hours
from localdev.harness import LoopbackStackHandle, start_loopback_stack

DEFAULT_FAULTS = "fail_every=11,crash_every=41,throttle_put=0.05"


def run_simulator(stack: LoopbackStackHandle, events: int, ledger: Path, workers: int) -> float:
    started = time.monotonic()
    command = [
        sys.executable, "-m", "simulator",
        "--endpoint", stack.api_url,
        "--flat-out", "--max-events", str(events), "--duration", "36000",
        "--users", "400", "--batch", "500", "--workers", str(workers),
        "--seed", "20261124", "--ledger", str(ledger),
    ]  # fmt: skip
    subprocess.run(command, env=stack.env, check=True)
    return time.monotonic() - started


def reconcile(stack: LoopbackStackHandle, ledger: Path, wait_s: int) -> int:
    command = [
        sys.executable, "-m", "simulator", "reconcile",
        "--ledger", str(ledger), "--endpoint", stack.api_url, "--wait", str(wait_s),
    ]  # fmt: skip
    return subprocess.run(command, env=stack.env, check=False).returncode


def archive_after_compaction(stack: LoopbackStackHandle, span: timedelta) -> dict[str, int]:
    os.environ.update({k: v for k, v in stack.env.items() if k.startswith("AWS_")})
    s3 = stack.client("s3")
    now = datetime.now(UTC)
    results = compact_hours(s3, stack.archive_bucket, now - span, now + timedelta(hours=1))
    table = read_parquet_objects(
        s3, stack.archive_bucket, list_archive_keys(s3, stack.archive_bucket)
    )
    return {
        "rows": table.num_rows,
        "distinct": len(set(table["event_id"].to_pylist())),
        "duplicates_removed": sum(result.duplicates_removed for result in results),
        "objects_compacted": sum(result.objects_read for result in results),
    }


def dead_letters(stack: LoopbackStackHandle) -> int:
    attributes = stack.client("sqs").get_queue_attributes(
        QueueUrl=stack.resources["DeadLetterQueueUrl"],
        AttributeNames=["ApproximateNumberOfMessages"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--faults", default=DEFAULT_FAULTS)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--wait", type=int, default=900, help="seconds reconcile may wait")
    args = parser.parse_args(argv)
    console = Console()
    with tempfile.TemporaryDirectory(prefix="clickstream-soak-") as workdir:
        stack = start_loopback_stack(Path(workdir) / "stack", {"CLICKSTREAM_FAULTS": args.faults})
        try:
            console.print(
                f"soak: {args.events:,} events, faults: {args.faults}, API {stack.api_url}"
            )
            ledger = Path(workdir) / "ledger.json"
            send_s = run_simulator(stack, args.events, ledger, args.workers)
            started = time.monotonic()
            reconciled = reconcile(stack, ledger, args.wait)
            drain_s = time.monotonic() - started
            archive = archive_after_compaction(stack, timedelta(days=2))
            tally = json.loads(ledger.read_text())["accepted"]
            counted, bots = tally["events"], tally.get("bots", 0)  # bots: archived, not counted
            accepted = counted + bots
            stats: dict[str, Any] = stack.get("/stats")
            restarts = "".join(stack.output).count("restarting it")
            dlq = dead_letters(stack)
        finally:
            stack.stop()
    figures = Table(title="soak")
    for column in ("figure", "value"):
        figures.add_column(column)
    exact = archive["rows"] == archive["distinct"] == accepted
    exact = exact and stats["total_events"] == counted and stats.get("bots_excluded") == bots
    rows = [
        ("events accepted by the API", f"{accepted:,}"),
        ("of them from bots (left out of the aggregates)", f"{bots:,}"),
        ("events aggregated (/stats total)", f"{stats['total_events']:,}"),
        ("bot events left out (/stats bots_excluded)", f"{stats.get('bots_excluded', 0):,}"),
        ("archive rows after compaction", f"{archive['rows']:,}"),
        ("distinct event ids in the archive", f"{archive['distinct']:,}"),
        ("duplicates removed by compaction", f"{archive['duplicates_removed']:,}"),
        ("Parquet objects compacted", f"{archive['objects_compacted']:,}"),
        ("consumer restarts (injected crashes)", str(restarts)),
        ("dead-letter queue messages", str(dlq)),
        ("send time / rate", f"{send_s:.0f} s / {accepted / send_s:,.0f} events/s"),
        ("drain + reconcile time", f"{drain_s:.0f} s"),
        ("reconcile exit status", str(reconciled)),
        ("exactly once", "yes" if exact and reconciled == 0 else "NO"),
    ]
    for name, value in rows:
        figures.add_row(name, value)
    console.print(figures)
    return 0 if exact and reconciled == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
