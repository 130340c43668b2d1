"""Command line: ``python -m simulator [run] ...``, ``reconcile`` and ``snapshot`` (see the
package docstring for the whole story)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.request
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from rich.console import Console

from simulator.config import ConfigError, load_config
from simulator.ledger import LedgerError, read_ledger
from simulator.pipeline import ArchiveReader, PipelineState, read_state
from simulator.reconcile import (
    Metric,
    ReconcileResult,
    compare,
    differences,
    print_result,
    reconcile_until_converged,
)
from simulator.runner import DEFAULT_ENDPOINT, MAX_BATCH, RunOptions, run, summary_table
from simulator.transport import API_KEY_ENV, WRITE_KEY_ENV, short_error

EXIT_NOT_ALL_ACCEPTED = 3
COMMANDS = ("run", "reconcile", "snapshot")


def _timestamp(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {value!r}") from exc
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _positive_float(value: str) -> float:
    number = float(value)
    if number <= 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return number


def _key_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--write-key",
        metavar="KEY",
        help=f"write key sent as X-Write-Key on POST /events (default: ${WRITE_KEY_ENV})",
    )
    parser.add_argument(
        "--api-key",
        metavar="KEY",
        help=f"read key sent as X-Api-Key on the read endpoints (default: ${API_KEY_ENV})",
    )


def use_keys(args: argparse.Namespace) -> None:
    """Keys given on the command line go where every sender and reader looks for them."""
    if getattr(args, "write_key", None):
        os.environ[WRITE_KEY_ENV] = args.write_key
    if getattr(args, "api_key", None):
        os.environ[API_KEY_ENV] = args.api_key


def run_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m simulator",
        description="Push realistic user-journey traffic at the clickstream API (or stream). "
        "Other commands: 'reconcile' (ledger vs pipeline), 'snapshot' (baseline).",
    )
    parser.add_argument("--endpoint", default=DEFAULT_ENDPOINT, help="API base URL (%(default)s)")
    _key_arguments(parser)
    parser.add_argument(
        "--duration",
        type=_positive_float,
        metavar="SECONDS",
        help="stop after this long (paced: wall seconds; simulated time covers "
        "SECONDS x --speedup)",
    )
    parser.add_argument("--max-events", type=int, metavar="N", help="stop after N events")
    parser.add_argument(
        "--users", type=int, default=50, metavar="N", help="concurrent user sessions (%(default)s)"
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=20.0,
        metavar="EVENTS_PER_S",
        help="events per simulated second across all users (%(default)s); "
        "0 = natural human think times and no pacing (flat out)",
    )
    parser.add_argument(
        "--flat-out",
        action="store_true",
        help="send as fast as possible (timestamps still follow --rate)",
    )
    parser.add_argument(
        "--speedup",
        type=_positive_float,
        default=1.0,
        metavar="X",
        help="compress time X-fold (back-fills); without --start the run ends about now",
    )
    parser.add_argument(
        "--start",
        type=_timestamp,
        metavar="ISO8601",
        help="simulated start time (default: now, or now minus the span for "
        "back-fills and flat-out runs)",
    )
    parser.add_argument("--seed", type=int, help="same seed + --start = identical events")
    parser.add_argument(
        "--batch",
        type=int,
        default=25,
        metavar="N",
        help=f"records per POST /events (1..{MAX_BATCH}, %(default)s)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=4,
        metavar="N",
        help="concurrent requests, each worker with its own HTTP session (%(default)s)",
    )
    parser.add_argument(
        "--direct-kinesis",
        action="store_true",
        help="PutRecords straight to the stream (bypass the API)",
    )
    parser.add_argument("--config", metavar="FILE", help="JSON overriding the journey model")
    parser.add_argument(
        "--ledger",
        type=Path,
        metavar="FILE",
        help="write the ground-truth ledger (and a baseline) for 'reconcile'",
    )
    parser.add_argument(
        "--no-baseline",
        action="store_true",
        help="do not record the pipeline's state before the run",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the events as NDJSON on stdout instead of sending them",
    )
    parser.add_argument("--quiet", action="store_true", help="no live progress line")
    return parser


def reconcile_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m simulator reconcile",
        description="Compare a run's ledger with the pipeline's aggregates and Parquet archive "
        "(deltas from the baseline); exit 1 on any difference.",
    )
    parser.add_argument("--ledger", type=Path, required=True, metavar="FILE")
    parser.add_argument("--endpoint", help="API base URL (default: the run's)")
    _key_arguments(parser)
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--baseline",
        type=Path,
        metavar="FILE",
        help="baseline from 'snapshot --out' (default: the one in the ledger)",
    )
    group.add_argument(
        "--no-baseline", action="store_true", help="compare absolute numbers (a fresh stack)"
    )
    parser.add_argument(
        "--wait",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="keep polling this long for the numbers to converge (%(default)s)",
    )
    parser.add_argument("--poll", type=_positive_float, default=2.0, metavar="SECONDS")
    parser.add_argument("--bucket", help="archive bucket (default: $CLICKSTREAM_ARCHIVE_BUCKET)")
    parser.add_argument("--no-archive", action="store_true", help="skip the archive check")
    parser.add_argument("--all-pages", action="store_true", help="list every page")
    return parser


def snapshot_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m simulator snapshot",
        description="Record the pipeline's current aggregates and archive objects as a "
        "baseline for 'reconcile --baseline'.",
    )
    parser.add_argument("--out", type=Path, required=True, metavar="FILE")
    parser.add_argument("--endpoint", default=DEFAULT_ENDPOINT)
    _key_arguments(parser)
    parser.add_argument("--bucket", help="archive bucket (default: $CLICKSTREAM_ARCHIVE_BUCKET)")
    parser.add_argument("--no-archive", action="store_true")
    parser.add_argument("--config", metavar="FILE", help="the run's --config (its pages)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    command = args.pop(0) if args and args[0] in COMMANDS else "run"
    # Dry runs print events on stdout, so everything else goes to stderr.
    console = Console(stderr=command == "run" and "--dry-run" in args)
    parser = {"reconcile": reconcile_parser, "snapshot": snapshot_parser}.get(command, run_parser)
    parsed = parser().parse_args(args)
    use_keys(parsed)
    try:
        if command == "reconcile":
            return reconcile_main(parsed, console)
        if command == "snapshot":
            return snapshot_main(parsed, console)
        return run_main(parsed, console)
    except (ConfigError, LedgerError, ValueError) as exc:
        console.print(f"[bold red]error:[/bold red] {exc}")
        return 2


LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=0.5) as response:
            return bool(response.status < 500)
    except OSError:
        return False


def use_local_emulator(api_endpoint: str, console: Console) -> str | None:
    """An API on loopback is the local stack: unless ``AWS_ENDPOINT_URL`` says otherwise, S3
    and Kinesis are its emulator too (LocalStack if it answers on :4566, else moto on
    ``CLICKSTREAM_EMULATOR_PORT``, as ``localdev`` chooses), never real AWS by accident.
    Returns the endpoint chosen, if any."""
    if os.environ.get("AWS_ENDPOINT_URL") or urlsplit(api_endpoint).hostname not in LOOPBACK_HOSTS:
        return None
    from localdev.localstack import edge_url, health_url

    if os.environ.get("CLICKSTREAM_USE_LOCALSTACK", "auto") != "false" and _answers(
        health_url(edge_url())
    ):
        emulator = edge_url()
    else:
        emulator = f"http://127.0.0.1:{os.environ.get('CLICKSTREAM_EMULATOR_PORT') or 4567}"
    os.environ["AWS_ENDPOINT_URL"] = emulator
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
    console.print(f"[dim]local stack: S3/Kinesis at {emulator} (AWS_ENDPOINT_URL unset)[/dim]")
    return emulator


def run_main(args: argparse.Namespace, console: Console) -> int:
    config = load_config(args.config)
    options = RunOptions(
        endpoint=args.endpoint,
        duration=args.duration,
        users=args.users,
        rate=args.rate,
        seed=args.seed,
        batch=args.batch,
        direct_kinesis=args.direct_kinesis,
        max_events=args.max_events,
        speedup=args.speedup,
        flat_out=args.flat_out,
        start=args.start,
        ledger=args.ledger,
        workers=args.workers,
        baseline=not args.no_baseline,
        dry_run=args.dry_run,
        show_progress=not args.quiet and not args.dry_run,
    )
    options.validate()
    if not options.dry_run:
        use_local_emulator(options.endpoint, console)
    if options.duration is None and options.max_events is None and not options.dry_run:
        console.print("[dim]no --duration or --max-events: running until Ctrl-C[/dim]")
    if options.dry_run and options.duration is None and options.max_events is None:
        raise ValueError("--dry-run needs --duration or --max-events")
    result = run(options, config, console=console)
    if options.dry_run:
        return 0
    console.print(summary_table(result, options))
    ledger = result.ledger
    if options.ledger is not None:
        console.print(f"ledger: {options.ledger}")
    for message, count in ledger.errors_by_message.most_common(5):
        console.print(f"[red]{count:,} x[/red] {message}")
    return EXIT_NOT_ALL_ACCEPTED if ledger.not_accepted else 0


def _archive_bucket(explicit: str | None, baseline_bucket: str | None) -> str:
    from clickstream.settings import get_settings

    return explicit or baseline_bucket or get_settings().archive_bucket


def snapshot_main(args: argparse.Namespace, console: Console) -> int:
    from simulator.catalogue import build_shop
    from simulator.pipeline import settled_state

    config = load_config(args.config)
    use_local_emulator(args.endpoint, console)
    bucket = None if args.no_archive else _archive_bucket(args.bucket, None)
    with console.status("reading the pipeline..."):
        state = settled_state(
            args.endpoint, archive_bucket=bucket, pages=build_shop(config.catalogue).all_pages()
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(state.as_dict(), indent=1) + "\n", encoding="utf-8")
    for error in state.errors:
        console.print(f"[yellow]incomplete:[/yellow] {error}")
    console.print(
        f"baseline: {args.out} (total_events {state.total_events}, "
        f"archive objects {state.archive_summary})"
    )
    return 1 if state.errors else 0


def _baseline_and_notes(
    args: argparse.Namespace, ledger: dict[str, Any]
) -> tuple[PipelineState | None, list[str]]:
    notes: list[str] = []
    baseline: PipelineState | None = None
    if args.no_baseline:
        notes.append("no baseline: absolute numbers compared (right only for a fresh stack)")
    elif args.baseline is not None:
        baseline = PipelineState.from_dict(json.loads(args.baseline.read_text(encoding="utf-8")))
    elif ledger.get("baseline"):
        baseline = PipelineState.from_dict(ledger["baseline"])
    else:
        notes.append("the ledger has no baseline: absolute numbers compared")
    if baseline is not None:
        notes.extend(
            f"baseline incomplete ({error}); missing parts count as 0" for error in baseline.errors
        )
    if ledger.get("possible_duplicates"):
        notes.append(
            f"{ledger['possible_duplicates']} record(s) were re-sent after an attempt that may "
            "have landed: duplicates in the pipeline are possible"
        )
    not_accepted = (ledger.get("not_accepted") or {}).get("total", 0)
    if not_accepted:
        notes.append(
            f"{not_accepted} record(s) were not accepted by the API; they are expected nowhere"
        )
    return baseline, notes


def reconcile_main(args: argparse.Namespace, console: Console) -> int:
    ledger = read_ledger(args.ledger)
    meta: dict[str, Any] = ledger.get("meta") or {}
    endpoint = args.endpoint or meta.get("endpoint") or DEFAULT_ENDPOINT
    use_local_emulator(endpoint, console)
    baseline, notes = _baseline_and_notes(args, ledger)
    accepted_ids: list[str] = ledger.get("accepted_event_ids") or []
    pages = list(ledger["accepted"]["page_views"])
    archive: ArchiveReader | None = None
    if not args.no_archive:
        bucket = _archive_bucket(args.bucket, baseline.archive_bucket if baseline else None)
        archive = ArchiveReader(bucket, baseline.archive_objects if baseline else None)
    problems: list[str] = []

    def measure() -> list[Metric]:
        problems.clear()
        state = read_state(endpoint, archive_bucket=None, pages=pages)
        problems.extend(short_error(error) for error in state.errors)
        summary = None
        if archive is not None:
            try:
                archive.refresh()
                summary = archive.summary(accepted_ids)
            except Exception as exc:  # S3 / DuckDB: report it, keep polling
                problems.append(short_error(f"archive: {type(exc).__name__}: {exc}"))
        return compare(ledger, state, baseline, summary, archive_expected=archive is not None)

    status = console.status("reading the pipeline...")
    status.start()

    def on_attempt(attempt: int, metrics: list[Metric]) -> None:
        status.update(
            f"waiting for the pipeline to converge: {len(differences(metrics))} metric(s) "
            f"differ (reading {attempt})"
        )

    try:
        metrics, attempts, waited = reconcile_until_converged(
            measure, wait=args.wait, poll=args.poll, on_attempt=on_attempt
        )
    finally:
        status.stop()
        if archive is not None:
            archive.close()
    result = ReconcileResult(metrics, attempts, waited, notes + problems)
    print_result(console, result, show_all_pages=args.all_pages)
    return 0 if result.ok else 1
