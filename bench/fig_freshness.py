"""Figure 5 — freshness: how long from ``POST /events`` until the event is counted in
``/stats``, at 100, 1,000 and 5,000 events/s offered to the local stack; against the
emulator's own round trip (``PutRecord`` then ``GetRecords`` until it is there)."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson

from bench import procstat, traffic
from bench.config import RunConfig
from bench.report import FigureResult, Row, md_table
from bench.stack import Stack
from bench.stats import counter_catch_up, median, percentile, weighted_expand

RATES = (100, 1_000, 5_000)
REQUESTS_PER_S = 10  # batch = rate / 10: 10, 100, 500 events per POST
TARGET_P99_S = 2.0
POLL_INTERVAL_S = 0.1


@dataclass(frozen=True)
class Ack:
    sent: float
    acked: float
    accepted: int
    status: int


class StatsPoller(threading.Thread):
    """Polls ``/stats`` every ``interval`` s: (response received at, total_events delta)."""

    def __init__(self, stack: Stack, base: int, interval: float = POLL_INTERVAL_S) -> None:
        super().__init__(name="stats-poller", daemon=True)
        self.stack = stack
        self.base = base
        self.interval = interval
        self.polls: list[tuple[float, float]] = []
        self.response_times: list[float] = []
        self.stop_event = threading.Event()

    def run(self) -> None:
        while not self.stop_event.is_set():
            started = time.monotonic()
            try:
                total = self.stack.total_events(timeout=5)
            except Exception:
                total = -1
            received = time.monotonic()
            if total >= 0:
                self.polls.append((received, float(total - self.base)))
                self.response_times.append(received - started)
            self.stop_event.wait(max(0.0, self.interval - (received - started)))

    def latest(self) -> float:
        return self.polls[-1][1] if self.polls else 0.0


def offered_run(
    stack: Stack,
    rate: float,
    duration: float,
    seed: int,
    workers: int = 8,
    quiet_s: float = 1.0,
) -> dict[str, float]:
    batch = max(1, round(rate / REQUESTS_PER_S))
    batches = max(1, math.ceil(rate * duration / batch))
    lead = 1.0
    wall_start = datetime.now(UTC) + timedelta(seconds=lead)
    records = traffic.records(batches * batch, seed=seed, start=wall_start, rate=rate)
    bodies = [
        orjson.dumps({"records": records[i : i + batch]}) for i in range(0, len(records), batch)
    ]
    base = stack.wait_idle(quiet_s=quiet_s)
    poller = StatsPoller(stack, base)
    acks: list[Ack] = []
    lock = threading.Lock()

    def post(body: bytes) -> None:
        sent = time.monotonic()
        try:
            status, payload = stack.post_body(body)
        except Exception:
            status, payload = 0, {}
        accepted = int(payload.get("processed", 0)) if status == 200 else 0
        with lock:
            acks.append(Ack(sent, time.monotonic(), accepted, status))

    poller.start()
    before = procstat.snapshot(stack.pids)
    t0 = time.monotonic() + max(0.0, (wall_start - datetime.now(UTC)).total_seconds())
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="poster")
    stop_at = t0 + duration
    try:
        for index, body in enumerate(bodies):
            due = t0 + index * batch / rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            pool.submit(post, body)
    finally:
        # Offered for ``duration`` only: POSTs not started by then are dropped, not queued.
        remaining = stop_at - time.monotonic()
        if remaining > 0:
            time.sleep(remaining)
        pool.shutdown(wait=True, cancel_futures=True)
        skipped = len(bodies) - len(acks)
    cpu = procstat.usage(before, procstat.snapshot(stack.pids))
    accepted = sum(ack.accepted for ack in acks)
    deadline = time.monotonic() + 30.0
    while poller.latest() < accepted and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(POLL_INTERVAL_S * 2)
    poller.stop_event.set()
    poller.join(10)
    latencies = weighted_expand(
        counter_catch_up([(a.sent, a.acked, a.accepted) for a in acks], poller.polls)
    )
    first = min(ack.sent for ack in acks)
    last = max(ack.acked for ack in acks)
    visible = sum(1 for value in latencies if math.isfinite(value))
    return {
        "offered": rate,
        "achieved": accepted / max(1e-9, last - first),
        "accepted": accepted,
        "sent": float(len(records)),
        "failed_posts": float(sum(1 for ack in acks if ack.status != 200)),
        "not_sent": float(skipped * batch),
        "visible_share": visible / max(1, len(latencies)),
        "p50": percentile(latencies, 50),
        "p95": percentile(latencies, 95),
        "p99": percentile(latencies, 99),
        "ack_p50": percentile([a.acked - a.sent for a in acks], 50),
        "ack_p99": percentile([a.acked - a.sent for a in acks], 99),
        "poll_p50": percentile(poller.response_times, 50),
        "batch": float(batch),
        "busy": cpu.machine_busy_cores,
        "others": cpu.others_cores,
        "emulator": cpu.cores.get("emulator", 0.0),
        "api": cpu.cores.get("api", 0.0),
    }


def roundtrip_baseline(stack: Stack, samples: int) -> list[float]:
    """PutRecord then GetRecords (tight loop) until the record is read, on a stream of the
    bench's own on the same emulator (deleted afterwards)."""
    kinesis = stack.client("kinesis")
    name = f"bench-roundtrip-{int(time.time())}"
    kinesis.create_stream(StreamName=name, ShardCount=1)
    try:
        stack.wait_for(
            lambda: (
                kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"][
                    "StreamStatus"
                ]
                == "ACTIVE"
            ),
            timeout=30,
        )
        shard = kinesis.list_shards(StreamName=name)["Shards"][0]["ShardId"]
        iterator = kinesis.get_shard_iterator(
            StreamName=name, ShardId=shard, ShardIteratorType="LATEST"
        )["ShardIterator"]
        timings = []
        for index in range(samples):
            started = time.perf_counter()
            kinesis.put_record(StreamName=name, Data=b'{"n":%d}' % index, PartitionKey="k")
            while True:
                response = kinesis.get_records(ShardIterator=iterator, Limit=100)
                iterator = response["NextShardIterator"]
                if response["Records"]:
                    break
            timings.append(time.perf_counter() - started)
        return timings
    finally:
        kinesis.delete_stream(StreamName=name, EnforceConsumerDeletion=True)


def run(open_stack: Callable[[], AbstractContextManager[Stack]], config: RunConfig) -> FigureResult:
    """Full run: a fresh stack per offered rate (the emulator slows down as its stream
    fills, so the 5,000 ev/s runs must not tax the 1,000 ev/s ones); --quick: one stack."""
    result = FigureResult(5, "Freshness: POST -> counted in /stats (local stack)")
    duration = config.pickf(10.0, 2.0)
    repeats = 3
    runs: dict[int, list[dict[str, float]]] = {}
    roundtrips: list[float] = []

    def measure(stack: Stack, rate: int, repeat: int, held: float) -> float:
        seed = config.seed + 100 * repeat + rate
        outcome = offered_run(stack, rate, duration, seed, quiet_s=config.pickf(1.0, 0.6))
        outcome["held"] = held
        runs.setdefault(rate, []).append(outcome)
        return held + outcome["accepted"]

    if config.quick:
        with open_stack() as stack:
            roundtrips = roundtrip_baseline(stack, 20)
            total = 0.0
            for repeat in range(repeats):
                for rate in RATES:
                    total = measure(stack, rate, repeat, total)
    else:
        for rate in RATES:
            with open_stack() as stack:
                if not roundtrips:
                    roundtrips = roundtrip_baseline(stack, 50)
                total = 0.0
                for repeat in range(repeats):
                    total = measure(stack, rate, repeat, total)
    rt = {q: percentile(roundtrips, q) for q in (50, 95, 99)}
    med = {
        rate: {k: median(r[k] for r in samples) for k in samples[0]}
        for rate, samples in runs.items()
    }
    for rate in RATES:
        m = med[rate]
        result.rows.append(
            Row(
                f"offered {rate:,} ev/s (achieved {m['achieved']:,.0f}): p99 s "
                f"[p50 {m['p50']:.2f}, p95 {m['p95']:.2f}]",
                m["p99"],
                "s",
                rt[99],
                "emulator PutRecord+GetRecords p99",
                target=f"p99 <= {TARGET_P99_S:.0f} s" if rate == 1_000 else "",
                holds=(m["p99"] <= TARGET_P99_S and m["achieved"] >= 0.9 * rate)
                if rate == 1_000
                else None,
            )
        )
    result.method = (
        f"Local stack (moto server, `chalice local`, both consumers behind the local "
        "event-source runner with the template's mapping settings: aggregator batch 500, "
        "1 s window). Each offered rate runs on a fresh stack (one stack for all in --quick), "
        "because the emulator slows down as its stream fills. Simulator events with "
        "timestamps at their send "
        f"time are POSTed in batches of rate/{REQUESTS_PER_S} on a schedule of "
        f"{REQUESTS_PER_S} POSTs/s by a pool of 8 threads for {duration:.0f} s. A poller "
        f"reads `GET /stats` every {POLL_INTERVAL_S * 1000:.0f} ms. Latency per event "
        "('counter catch-up'): batches ordered by acknowledgement; a batch counts as visible "
        "at the first poll *response* whose `total_events` + `bots_excluded` growth covers all "
        "events accepted up to and including it; latency = that time minus the moment its "
        "POST was sent (so it includes the POST itself and up to one poll interval + one "
        "/stats response time). Percentiles over events, median of 3 runs per rate. "
        "'Achieved' = accepted events / (last ack - first send). Baseline: on the same "
        "emulator, `PutRecord` then `GetRecords` in a tight loop until the record is read, "
        f"{len(roundtrips)} times."
    )
    result.details += [
        f"Emulator round trip (PutRecord + GetRecords): p50 {rt[50] * 1000:.1f} ms, "
        f"p95 {rt[95] * 1000:.1f} ms, p99 {rt[99] * 1000:.1f} ms.",
        "",
        *md_table(
            (
                "offered ev/s",
                "batch",
                "achieved ev/s",
                "POSTs failed",
                "visible",
                "p50 s",
                "p95 s",
                "p99 s",
                "POST p50 / p99 s",
                "/stats poll p50 ms",
                "not sent in time",
                "cores busy (others / emulator / api)",
                "records in the stream at the start (median run)",
            ),
            [
                (
                    f"{rate:,}",
                    int(m["batch"]),
                    m["achieved"],
                    int(m["failed_posts"]),
                    f"{m['visible_share']:.1%}",
                    m["p50"],
                    m["p95"],
                    m["p99"],
                    f"{m['ack_p50']:.3f} / {m['ack_p99']:.3f}",
                    m["poll_p50"] * 1000,
                    int(m["not_sent"]),
                    f"{m['busy']:.2f} ({m['others']:.2f} / {m['emulator']:.2f} / {m['api']:.2f})",
                    int(m["held"]),
                )
                for rate, m in med.items()
            ],
        ),
    ]
    return result
