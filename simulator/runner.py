"""Running a simulation: pace the model's events in real time (or compressed, or flat out),
batch them, deliver them on worker threads, keep the ledger, show progress."""

from __future__ import annotations

import collections
import contextlib
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from clickstream.schema import FUNNEL_STEPS
from simulator.config import SimulatorConfig, config_as_dict
from simulator.journeys import SimEvent, Simulation, iso_z
from simulator.ledger import Delivery, Ledger
from simulator.transport import HttpSender, KinesisSender, Sender, short_error

DEFAULT_ENDPOINT = "http://127.0.0.1:8000"
MAX_BATCH = 500


@dataclass
class RunOptions:
    endpoint: str = DEFAULT_ENDPOINT
    duration: float | None = None  # wall seconds (paced: simulated = duration * speedup)
    users: int = 50
    rate: float = 20.0  # events per simulated second; 0 = natural think times, unpaced
    seed: int | None = None
    batch: int = 25
    direct_kinesis: bool = False
    max_events: int | None = None
    speedup: float = 1.0
    flat_out: bool = False
    start: datetime | None = None
    ledger: Path | None = None
    workers: int = 4
    baseline: bool = True
    archive_bucket: str | None = None
    max_batch_delay: float = 1.0  # paced mode: a partial batch waits at most this long
    dry_run: bool = False
    show_progress: bool = True

    @property
    def paced(self) -> bool:
        return not (self.flat_out or self.rate <= 0 or self.dry_run)

    def validate(self) -> None:
        if not 1 <= self.batch <= MAX_BATCH:
            raise ValueError(f"--batch must be 1..{MAX_BATCH}")
        if self.users < 1:
            raise ValueError("--users must be at least 1")
        if self.rate < 0:
            raise ValueError("--rate must be >= 0 (0 = flat out)")
        if self.speedup <= 0:
            raise ValueError("--speedup must be > 0")
        if self.workers < 1:
            raise ValueError("--workers must be at least 1")
        if self.duration is not None and self.duration <= 0:
            raise ValueError("--duration must be > 0")
        if self.max_events is not None and self.max_events < 1:
            raise ValueError("--max-events must be at least 1")


def default_start(options: RunOptions, expected_rate: float, now: datetime) -> datetime:
    """Where simulated time begins when ``--start`` is not given: now for real-time pacing;
    for back-fills (``--speedup`` > 1) and flat-out runs, early enough that the last event's
    timestamp is about now (the API refuses timestamps more than a day ahead)."""
    now = now.replace(microsecond=(now.microsecond // 1000) * 1000)
    compressed = options.speedup > 1 or not options.paced
    if not compressed:
        return now
    spans: list[float] = []
    if options.duration is not None and (options.paced or options.dry_run):
        spans.append(options.duration * options.speedup)
    if options.max_events is not None and expected_rate > 0:
        spans.append(options.max_events / expected_rate)
    return now - timedelta(seconds=min(spans)) if spans else now


@dataclass
class Progress:
    """The live progress line (rendered by rich on its own refresh thread)."""

    ledger: Ledger
    started: float = field(default_factory=time.monotonic)
    sim_now: str = ""
    generated: int = 0
    in_flight: int = 0
    _samples: collections.deque[tuple[float, int]] = field(
        default_factory=lambda: collections.deque(maxlen=64)
    )

    def rate(self) -> float:
        now = time.monotonic()
        sent = self.ledger.snapshot_counts()["sent"]
        self._samples.append((now, sent))
        while len(self._samples) > 2 and now - self._samples[0][0] > 5.0:
            self._samples.popleft()
        first_t, first_n = self._samples[0]
        if now - first_t > 0.5:
            return (sent - first_n) / (now - first_t)
        elapsed = now - self.started  # too few samples yet: the average so far
        return sent / elapsed if elapsed > 0 else 0.0

    def __rich__(self) -> Text:
        counts = self.ledger.snapshot_counts()
        errors = counts["rejected"] + counts["undelivered"]
        text = Text()
        text.append(f"sent {counts['sent']:,}", style="bold")
        text.append(f"  accepted {counts['accepted']:,}", style="green")
        text.append(f"  {self.rate():,.1f} ev/s")
        text.append(f"  errors {errors:,}", style="bold red" if errors else "")
        if counts["retries"]:
            text.append(f"  retries {counts['retries']:,}", style="yellow")
        text.append(f"  in flight {self.in_flight}")
        text.append(f"  sim time {self.sim_now}", style="dim")
        text.append(f"  elapsed {time.monotonic() - self.started:,.0f}s", style="dim")
        return text


@contextlib.contextmanager
def _progress_display(progress: Progress, console: Console, enabled: bool) -> Iterator[None]:
    """A live line on a terminal; elsewhere (CI logs, pipes) a line every 10 s and at the end."""
    if not enabled:
        yield
        return
    if console.is_terminal:
        with Live(progress, console=console, refresh_per_second=4):
            yield
        return
    stop = threading.Event()

    def tick() -> None:
        while not stop.wait(10.0):
            console.print(progress)

    ticker = threading.Thread(target=tick, name="progress", daemon=True)
    ticker.start()
    try:
        yield
    finally:
        stop.set()
        ticker.join()
        console.print(progress)


class _Dispatcher:
    """Hands batches to worker threads (one sender each) with bounded in-flight work, and
    records every outcome in the ledger."""

    def __init__(self, make_sender: Callable[[], Sender], workers: int, ledger: Ledger) -> None:
        self.ledger = ledger
        self._make_sender = make_sender
        self._local = threading.local()
        self._senders: list[Sender] = []
        self._senders_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sender")
        self._slots = threading.BoundedSemaphore(workers * 2)
        self.in_flight = 0

    def _sender(self) -> Sender:
        sender: Sender | None = getattr(self._local, "sender", None)
        if sender is None:
            sender = self._make_sender()
            self._local.sender = sender
            with self._senders_lock:
                self._senders.append(sender)
        return sender

    def _deliver(self, batch: list[SimEvent]) -> None:
        records = [event.record for event in batch]
        try:
            delivery = self._sender().send(records)
        except Exception as exc:  # never lose the count, whatever went wrong
            delivery = Delivery(undelivered=len(records), errors=[f"{type(exc).__name__}: {exc}"])
        self.ledger.record(records, delivery, (e.journey for e in batch if e.session_start))

    def submit(self, batch: list[SimEvent]) -> None:
        self._slots.acquire()
        self.in_flight += 1
        future: Future[None] = self._pool.submit(self._deliver, batch)
        future.add_done_callback(self._done)

    def _done(self, _future: Future[None]) -> None:
        self.in_flight -= 1
        self._slots.release()

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        for sender in self._senders:
            sender.close()


@dataclass
class RunResult:
    ledger: Ledger
    generated: int
    wall_seconds: float
    interrupted: bool
    start: datetime
    simulated_seconds: float


def _stop_reason(options: RunOptions, event: SimEvent, generated: int, wall_started: float) -> bool:
    if options.max_events is not None and generated >= options.max_events:
        return True
    if options.duration is not None:
        if options.paced or options.dry_run:
            return event.offset_ms / 1000.0 > options.duration * options.speedup
        return time.monotonic() - wall_started >= options.duration
    return False


def run(
    options: RunOptions,
    config: SimulatorConfig,
    *,
    console: Console,
    make_sender: Callable[[], Sender] | None = None,
    out: TextIO | None = None,
) -> RunResult:
    """Generate, pace and deliver events until a limit is reached or Ctrl-C."""
    options.validate()
    seed = options.seed if options.seed is not None else int.from_bytes(os.urandom(4), "big")
    probe = Simulation(
        config, seed=seed, start=datetime.now(UTC), users=options.users, rate=options.rate
    )
    start = options.start or default_start(options, probe.expected_rate, datetime.now(UTC))
    simulation = Simulation(config, seed=seed, start=start, users=options.users, rate=options.rate)
    ledger = Ledger()
    ledger.meta = {
        "seed": seed,
        "start": iso_z(start),
        "users": options.users,
        "rate": options.rate,
        "speedup": options.speedup,
        "flat_out": not options.paced,
        "batch": options.batch,
        "mode": "direct-kinesis" if options.direct_kinesis else "http",
        "endpoint": options.endpoint,
        "max_events": options.max_events,
        "duration": options.duration,
        "config": config_as_dict(config),
        "started_at": iso_z(datetime.now(UTC)),
    }
    if options.dry_run:
        return _dry_run(options, simulation, ledger, out or sys.stdout)

    if options.ledger is not None and options.baseline:
        ledger.baseline = _take_baseline(options, simulation, console)

    if make_sender is None:
        make_sender = _sender_factory(options)
    dispatcher = _Dispatcher(make_sender, options.workers, ledger)
    progress = Progress(ledger)
    interrupted = False
    generated = 0
    last_offset_ms = 0
    wall_started = time.monotonic()
    with _progress_display(progress, console, options.show_progress):
        try:
            generated, last_offset_ms = _pump(
                options, iter(simulation), dispatcher, progress, wall_started
            )
        except KeyboardInterrupt:
            interrupted = True
            console.print("[yellow]interrupted: delivering what is in flight...[/yellow]")
        finally:
            dispatcher.close()
            generated = max(generated, progress.generated)
            progress.in_flight = 0
    wall = time.monotonic() - wall_started
    ledger.meta["finished_at"] = iso_z(datetime.now(UTC))
    ledger.meta["wall_seconds"] = round(wall, 3)
    ledger.meta["simulated_seconds"] = last_offset_ms / 1000.0
    ledger.meta["interrupted"] = interrupted
    if options.ledger is not None:
        ledger.write(options.ledger)
    return RunResult(ledger, generated, wall, interrupted, start, last_offset_ms / 1000.0)


def _sender_factory(options: RunOptions) -> Callable[[], Sender]:
    if options.direct_kinesis:
        return KinesisSender
    return lambda: HttpSender(options.endpoint)


def _take_baseline(options: RunOptions, simulation: Simulation, console: Console) -> dict[str, Any]:
    from clickstream.settings import get_settings
    from simulator.pipeline import settled_state

    bucket = options.archive_bucket or get_settings().archive_bucket
    with console.status("recording the pipeline's baseline (for reconcile)..."):
        state = settled_state(
            options.endpoint, archive_bucket=bucket, pages=simulation.shop.all_pages()
        )
    for error in state.errors:
        console.print(f"[yellow]baseline incomplete:[/yellow] {short_error(error)}")
    return state.as_dict()


def _pump(
    options: RunOptions,
    events: Iterator[SimEvent],
    dispatcher: _Dispatcher,
    progress: Progress,
    wall_started: float,
) -> tuple[int, int]:
    batch: list[SimEvent] = []
    batch_since = time.monotonic()
    generated = 0
    last_offset = 0
    for event in events:
        if _stop_reason(options, event, generated, wall_started):
            break
        if options.paced:
            due = wall_started + event.offset_ms / 1000.0 / options.speedup
            while (now := time.monotonic()) < due:
                if batch and now - batch_since >= options.max_batch_delay:
                    dispatcher.submit(batch)
                    batch = []
                wake = due if not batch else min(due, batch_since + options.max_batch_delay)
                time.sleep(max(0.0, min(wake - now, 0.25)))
        if not batch:
            batch_since = time.monotonic()
        batch.append(event)
        generated += 1
        last_offset = event.offset_ms
        progress.generated = generated
        progress.sim_now = str(event.record["timestamp"])
        progress.in_flight = dispatcher.in_flight
        if len(batch) >= options.batch:
            dispatcher.submit(batch)
            batch = []
    if batch:
        dispatcher.submit(batch)
    return generated, last_offset


def _dry_run(options: RunOptions, simulation: Simulation, ledger: Ledger, out: TextIO) -> RunResult:
    """Print the events as NDJSON instead of sending them (nothing is accepted)."""
    generated = 0
    last = 0
    started = time.monotonic()
    for event in simulation:
        if _stop_reason(options, event, generated, started):
            break
        try:
            out.write(json.dumps(event.record, separators=(",", ":")) + "\n")
        except BrokenPipeError:  # e.g. piped into head
            break
        ledger.record([event.record], Delivery(), [event.journey] if event.session_start else [])
        generated += 1
        last = event.offset_ms
    out.flush()
    return RunResult(
        ledger, generated, time.monotonic() - started, False, simulation.start, last / 1000.0
    )


def summary_table(result: RunResult, options: RunOptions) -> Table:
    ledger = result.ledger
    sent, accepted = ledger.sent.as_dict(), ledger.accepted.as_dict()
    table = Table(title="simulation summary", show_header=True)
    table.add_column("metric")
    table.add_column("sent", justify="right")
    table.add_column("accepted", justify="right")
    mode = (
        "dry run"
        if options.dry_run
        else ("direct-kinesis" if options.direct_kinesis else options.endpoint)
    )
    pacing = "flat out" if not options.paced else f"real time x{options.speedup:g}"
    table.add_row("target / pacing", mode, pacing, style="dim")
    table.add_row("seed / start", str(ledger.meta.get("seed")), iso_z(result.start), style="dim")
    table.add_row("events", f"{sent['events']:,}", f"{accepted['events']:,}", style="bold")
    for name in sorted(sent["events_by_type"]):
        table.add_row(
            f"  {name}",
            f"{sent['events_by_type'][name]:,}",
            f"{accepted['events_by_type'].get(name, 0):,}",
        )
    table.add_row("sessions", f"{sent['sessions']:,}", f"{accepted['sessions']:,}")
    for step in FUNNEL_STEPS:
        table.add_row(
            f"  funnel {step}", f"{sent['funnel'][step]:,}", f"{accepted['funnel'][step]:,}"
        )
    table.add_row("revenue", f"{sent['revenue']:,.2f}", f"{accepted['revenue']:,.2f}")
    sessions_started = sum(ledger.journeys.values())
    if sessions_started:
        table.add_row("sessions started, by journey", f"{sessions_started:,}", "")
    for journey, count in sorted(ledger.journeys.items()):
        table.add_row(f"  {journey}", f"{count:,} ({count / sessions_started:.0%})", "")
    table.add_row(
        "not accepted: rejected / undelivered",
        f"{ledger.rejected:,}",
        f"{ledger.undelivered:,}",
        style="bold red" if ledger.not_accepted else "",
    )
    table.add_row("requests / retries", f"{ledger.requests:,}", f"{ledger.retries:,}")
    rate = sent["events"] / result.wall_seconds if result.wall_seconds > 0 else 0.0
    table.add_row("wall time / avg rate", f"{result.wall_seconds:,.1f}s", f"{rate:,.1f} ev/s")
    table.add_row("simulated time", f"{result.simulated_seconds:,.0f}s", "")
    return table
