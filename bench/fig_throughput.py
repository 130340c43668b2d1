"""Figure 7 — local throughput: events/s the whole local stack sustains with nothing lost
(accepted == aggregated == archived, checked event by event), and what bounds it (CPU of
each process from /proc while under load, optional py-spy profiles, and the emulator's cost
per aggregator transaction as its table grows)."""

from __future__ import annotations

import io
import itertools
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pyarrow.parquet as pq

from bench import emulator_costs, procstat, profiling, traffic
from bench.config import RunConfig
from bench.report import FigureResult, Row, md_table
from bench.stack import Stack
from bench.stats import slope_rate

BATCH = 500
WORKERS = 4
ARCHIVE_PREFIX = "events/"


@dataclass
class LoadResult:
    started: float
    ended: float
    accepted_ids: set[str] = field(default_factory=set)
    posts: int = 0
    failed_posts: int = 0
    rejected: int = 0
    exhausted: bool = False
    acks: list[tuple[float, int]] = field(default_factory=list)  # (acked at, accepted)

    @property
    def accepted(self) -> int:
        return len(self.accepted_ids)

    @property
    def rate(self) -> float:
        return self.accepted / max(1e-9, self.ended - self.started)


def bodies(count: int, seed: int) -> Iterator[bytes]:
    """POST bodies of ``BATCH`` simulator events with timestamps around now."""
    rate = 2_000.0
    start = datetime.now(UTC) - timedelta(seconds=count / rate / 2)
    records = traffic.records(count, seed=seed, start=start, rate=rate)
    for i in range(0, len(records), BATCH):
        yield orjson.dumps({"records": records[i : i + BATCH]})


def flat_out(stack: Stack, payloads: Iterator[bytes], duration: float) -> LoadResult:
    """``WORKERS`` threads POST batches back to back for ``duration`` seconds."""
    lock = threading.Lock()
    result = LoadResult(started=time.monotonic(), ended=0.0)
    stop_at = result.started + duration

    def worker() -> None:
        while time.monotonic() < stop_at:
            with lock:
                body = next(payloads, None)
            if body is None:
                result.exhausted = True
                return
            try:
                status, payload = stack.post_body(body)
            except Exception:
                status, payload = 0, {}
            with lock:
                result.posts += 1
                if status == 200:
                    ids = payload.get("event_ids", [])
                    result.accepted_ids.update(ids)
                    result.acks.append((time.monotonic(), len(ids)))
                    result.rejected += int(payload.get("failed", 0))
                else:
                    result.failed_posts += 1

    threads = [threading.Thread(target=worker, name=f"load-{i}") for i in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.ended = time.monotonic()
    return result


class ArchiveReader:
    """Event ids in the archive's Parquet objects, each object read once."""

    def __init__(self, stack: Stack) -> None:
        self.s3 = stack.client("s3")
        self.bucket = stack.archive_bucket
        self.ids: dict[str, list[str]] = {}

    def keys(self) -> list[str]:
        keys: list[str] = []
        paginator = self.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=ARCHIVE_PREFIX):
            keys.extend(
                item["Key"] for item in page.get("Contents", []) if item["Key"].endswith(".parquet")
            )
        return keys

    def refresh(self) -> None:
        for key in self.keys():
            if key not in self.ids:
                body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
                table = pq.read_table(io.BytesIO(body), columns=["event_id"])
                self.ids[key] = [str(value) for value in table.column("event_id").to_pylist()]

    def rows(self, keys: set[str] | None = None) -> list[str]:
        return list(
            itertools.chain.from_iterable(
                ids for key, ids in self.ids.items() if keys is None or key in keys
            )
        )


class Timeline(threading.Thread):
    """While the load runs and drains: ``/stats`` total every 0.5 s and the archive's new
    rows every 2 s, as (time, count since the start) pairs."""

    def __init__(self, stack: Stack, archive: ArchiveReader, base_total: int) -> None:
        super().__init__(name="timeline", daemon=True)
        self.stack = stack
        self.archive = archive
        self.base_total = base_total
        self.base_keys = set(archive.ids)
        self.aggregated: list[tuple[float, int]] = []
        self.archived: list[tuple[float, int]] = []
        self.archived_ids: set[str] = set()
        self.archived_rows = 0
        self.stop_event = threading.Event()

    def poll_archive(self) -> None:
        self.archive.refresh()
        rows = self.archive.rows(set(self.archive.ids) - self.base_keys)
        self.archived_ids, self.archived_rows = set(rows), len(rows)
        self.archived.append((time.monotonic(), len(self.archived_ids)))

    def run(self) -> None:
        last_archive = 0.0
        while not self.stop_event.is_set():
            try:
                total = self.stack.total_events() - self.base_total
                self.aggregated.append((time.monotonic(), total))
                if time.monotonic() - last_archive >= 2.0:
                    self.poll_archive()
                    last_archive = time.monotonic()
            except Exception:
                pass
            self.stop_event.wait(0.5)

    def latest_aggregated(self) -> int:
        return self.aggregated[-1][1] if self.aggregated else 0


def run(stack: Stack, config: RunConfig, *, profile: bool) -> FigureResult:
    result = FigureResult(7, "Local throughput with zero loss, and what bounds it")
    duration = config.pickf(20.0, 6.0)
    pids = stack.pids
    archive = ArchiveReader(stack)
    base_total = stack.wait_idle()
    archive.refresh()
    payloads = bodies(config.pick(80_000, 30_000), config.seed + 7)
    timeline = Timeline(stack, archive, base_total)
    before = procstat.snapshot(pids)
    timeline.start()
    load = flat_out(stack, payloads, duration)
    cpu = procstat.usage(before, procstat.snapshot(pids))
    aggregated_at_end = timeline.latest_aggregated()
    deadline = time.monotonic() + config.pickf(90.0, 60.0)
    while time.monotonic() < deadline and not (
        timeline.latest_aggregated() >= load.accepted and load.accepted_ids <= timeline.archived_ids
    ):
        time.sleep(0.5)
    timeline.stop_event.set()
    timeline.join(30)
    timeline.poll_archive()
    aggregated = stack.total_events() - base_total
    drained_at = time.monotonic()
    missing_archive = len(load.accepted_ids - timeline.archived_ids)
    zero_loss = aggregated == load.accepted and missing_archive == 0
    accepted_series: list[tuple[float, int]] = []
    running = 0
    for at, count in sorted(load.acks):
        running += count
        accepted_series.append((at, running))
    rates = {
        "ingest (API -> stream)": slope_rate(accepted_series, load.accepted),
        "aggregator (stream -> /stats)": slope_rate(timeline.aggregated, load.accepted),
        "archiver (stream -> Parquet)": slope_rate(timeline.archived, load.accepted),
    }
    known = {name: rate for name, rate in rates.items() if rate}
    bound_name, sustained = min(known.items(), key=lambda kv: kv[1]) if known else ("?", 0.0)
    quarter = (load.ended - load.started) / 4
    first_quarter = sum(n for at, n in load.acks if at <= load.started + quarter) / quarter
    last_quarter = sum(n for at, n in load.acks if at >= load.ended - quarter) / quarter
    result.rows.append(
        Row(
            f"ingest, {WORKERS} posters x {BATCH}-event batches flat out: accepted ev/s "
            f"(first / last quarter {first_quarter:,.0f} / {last_quarter:,.0f})",
            load.rate,
            "ev/s",
        )
    )
    result.rows.append(
        Row(
            f"sustained end to end, zero loss checked (slowest stage: {bound_name})",
            sustained,
            "ev/s",
            target="zero loss",
            holds=zero_loss,
        )
    )
    ranked = sorted(cpu.cores.items(), key=lambda kv: -kv[1])
    top_name, top_cores = ranked[0]
    result.method = (
        "A fresh local stack (template batch sizes: aggregator 500, archiver 1,000; batching "
        "window 1 s for both, so the last partial archive batch is not held 30 s). "
        f"{WORKERS} threads POST {BATCH}-event batches "
        f"of simulator events back to back for {duration:.0f} s (bodies built beforehand); "
        "accepted = event ids in the 200 answers. Then the bench waits until `/stats` "
        "`total_events` + `bots_excluded` has grown by exactly the accepted count and every "
        "accepted id is in the new Parquet objects under `events/` (read with pyarrow). "
        "Sustained end to end = the slowest stage's rate while backlogged (see the stage "
        "table). CPU per process from /proc/<pid>/stat (utime+stime, all threads) over the "
        "load window, in cores (1.0 = one core busy); the machine's total from /proc/stat."
    )
    result.details += [
        f"Accepted {load.accepted:,} events in {load.ended - load.started:.1f} s "
        f"({load.posts} POSTs, {load.failed_posts} failed, {load.rejected} records rejected"
        f"{'; bodies ran out' if load.exhausted else ''}); the stream already held "
        f"~{base_total:,} records before this load. At the end of the load "
        f"{aggregated_at_end:,} were aggregated (lag {load.accepted - aggregated_at_end:,}); "
        f"everything was in {drained_at - load.ended:.1f} s later. Aggregated "
        f"{aggregated:,}; archived {len(timeline.archived_ids):,} distinct ids in "
        f"{timeline.archived_rows:,} rows ({timeline.archived_rows - len(timeline.archived_ids):,}"
        f" duplicates); accepted ids missing from the archive: {missing_archive:,}. Zero loss: "
        f"{'yes' if zero_loss else 'NO'}.",
        "",
        "Rate of each stage while it had a backlog (events/s between reaching 10% and 90% "
        "of the accepted count, so start-up and the last partial batch are excluded):",
        "",
        *md_table(
            ("stage", "ev/s"),
            [(name, rate if rate else "-") for name, rate in rates.items()],
        ),
        "",
        f"CPU during the load ({cpu.seconds:.1f} s; machine: {cpu.machine_busy_cores:.2f} of "
        f"{cpu.machine_cores} cores busy, {cpu.others_cores:.2f} by processes outside this "
        "bench and its stack):",
        "",
        *md_table(
            ("process", "cores", "share of the machine's busy CPU", "µs CPU per accepted event"),
            [
                (
                    name,
                    cores,
                    f"{cores / max(1e-9, cpu.machine_busy_cores):.0%}",
                    cores * cpu.seconds * 1e6 / max(1, load.accepted),
                )
                for name, cores in ranked
            ],
        ),
    ]
    saturated = cpu.machine_busy_cores >= 0.85 * cpu.machine_cores
    verdict = "is CPU-saturated" if saturated else "is not CPU-saturated"
    gil = (
        f"; at {top_cores:.2f} of a core it is at the ceiling of one Python process (the GIL "
        "lets its Python code use one core), so it is the limit"
        if top_cores >= 0.75
        else ""
    )
    result.findings.append(
        f"Slowest stage: {bound_name} ({sustained:,.0f} ev/s). Under load the machine "
        f"{verdict} ({cpu.machine_busy_cores:.2f} of {cpu.machine_cores} cores busy); the "
        f"largest CPU user is {top_name} with {top_cores:.2f} cores "
        f"({top_cores / max(1e-9, cpu.machine_busy_cores):.0%} of the busy CPU){gil}."
    )
    per_event = {name: cores * cpu.seconds * 1e6 / max(1, load.accepted) for name, cores in ranked}
    product = sum(per_event.get(name, 0.0) for name in ("api", "aggregator", "archiver"))
    if "emulator" in per_event:
        result.findings.append(
            f"The emulator (moto) spends {per_event['emulator']:.0f} µs of CPU per accepted "
            f"event, against {product:.0f} µs for the API, aggregator and archiver together: "
            f"every stage reads or writes through it{_pace(known)} (see its costs below)."
        )
    if profile and profiling.py_spy():
        result.details += profile_pass(stack, config, ranked, pids)
    shard_sizes = (0, 50_000, 200_000) if not config.quick else (0, 50_000)
    kinesis = emulator_costs.kinesis_costs(shard_sizes)
    result.details += [
        "",
        "The emulator's Kinesis cost as a shard fills (moto's `Shard` objects in this "
        "process; ms CPU; 'fixed' = the last sequence number read in O(1) and the next "
        "records looked up by key, patched on the object only):",
        "",
        *md_table(
            (
                "records in the shard",
                "500 x put_record today",
                "fixed",
                "GetRecords(500) today",
                "fixed",
            ),
            kinesis,
        ),
    ]
    return result


def _pace(rates: dict[str, float]) -> str:
    """What the stages' measured rates say of the emulator as their common bound."""
    if len(rates) < 2:
        return ""
    low, high = min(rates.values()), max(rates.values())
    if high <= 1.25 * low:
        return ", the stages run at about the same rate, and it is their common bound"
    return (
        f", but the stages' rates differ ({low:,.0f} to {high:,.0f} ev/s), so it is not "
        "their only bound"
    )


def profile_pass(
    stack: Stack, config: RunConfig, ranked: list[tuple[str, float]], pids: dict[str, int]
) -> list[str]:
    """A second, shorter flat-out load with py-spy sampling the three busiest processes."""
    seconds = config.pickf(10.0, 5.0)
    chosen = {name: pids[name] for name, _ in ranked[:3] if name in pids}
    stack.wait_idle(quiet_s=1.0, timeout=60)
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as directory:
        handles = profiling.record(chosen, seconds, Path(directory))
        flat_out(stack, bodies(config.pick(40_000, 15_000), config.seed + 8), seconds)
        profiles = profiling.collect(handles)
    lines = [
        "",
        f"py-spy profiles of the three busiest processes under a second {seconds:.0f} s "
        "flat-out load (50 Hz, non-blocking; self time of the sampled leaf frames):",
    ]
    for prof in profiles:
        if prof.error or not prof.samples:
            lines += ["", f"- {prof.name}: no profile ({prof.error or 'no samples'})"]
            continue
        packages = ", ".join(
            f"{name} {count / prof.samples:.0%}" for name, count in prof.by_package.most_common(6)
        )
        functions = "; ".join(
            f"`{name}` {count / prof.samples:.0%}"
            for name, count in prof.by_function.most_common(5)
        )
        lines += [
            "",
            f"- **{prof.name}** ({prof.samples} samples) — by package: {packages}. "
            f"Hottest: {functions}.",
        ]
    return lines
