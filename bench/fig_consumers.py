"""Figure 3 — consumer CPU: ms of CPU per 1,000 records for the aggregator and archiver Lambda
handlers, called with the Kinesis event Lambda builds (``localdev.runner.kinesis_event``)
against moto in-process, against just base64+JSON-decoding the same records."""

from __future__ import annotations

import base64
import contextlib
import importlib
import io
import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bench import awsmock, traffic
from bench.config import RunConfig, steady_heap
from bench.report import FigureResult, Row, md_table
from bench.stats import median
from clickstream.ingest import put_records_entries
from localdev.runner import LambdaContext, StreamRecord, kinesis_event

STREAM = "bench-stream"
ENV: dict[str, str | None] = {
    "CLICKSTREAM_STREAM_NAME": STREAM,
    "CLICKSTREAM_AGGREGATES_TABLE": "bench-aggregates",
    "CLICKSTREAM_ARCHIVE_BUCKET": "bench-archive",
    "CLICKSTREAM_DLQ_NAME": "bench-dlq",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_NAMESPACE": "Clickstream",
}
DEPLOYED_BATCH = {"aggregator": 500, "archiver": 1000}  # infra/template.yaml mappings
STREAM_ARN = f"arn:aws:kinesis:{awsmock.REGION}:123456789012:stream/{STREAM}"


@dataclass
class SdkClock:
    """CPU spent inside AWS SDK calls (botocore before-call .. after-call: serialisation,
    moto's emulation, parsing) and, of that, inside moto's request processing."""

    seconds: float = 0.0
    moto_seconds: float = 0.0
    _started: float = 0.0

    def before(self, **_: Any) -> None:
        self._started = time.process_time()

    def after(self, **_: Any) -> None:
        self.seconds += time.process_time() - self._started

    def attach(self, client: Any) -> None:
        client.meta.events.register("before-call", self.before)
        client.meta.events.register("after-call", self.after)

    def reset(self) -> None:
        self.seconds = self.moto_seconds = 0.0

    @contextlib.contextmanager
    def timing_moto(self) -> Iterator[None]:
        """Wrap moto's in-process request handler (patched in this process only)."""
        from moto.core.botocore_stubber import BotocoreStubber

        original = BotocoreStubber.process_request
        clock = self

        def timed(stubber: Any, *args: Any, **kwargs: Any) -> Any:
            started = time.process_time()
            try:
                return original(stubber, *args, **kwargs)
            finally:
                clock.moto_seconds += time.process_time() - started

        setattr(BotocoreStubber, "process_request", timed)  # noqa: B010
        try:
            yield
        finally:
            setattr(BotocoreStubber, "process_request", original)  # noqa: B010


def _events(count: int, seed: int) -> list[dict[str, Any]]:
    """Lambda-shaped Kinesis records: the API's own PutRecords entries for simulator traffic."""
    start = datetime.now(UTC) - timedelta(seconds=count / 100)
    records = traffic.records(count, seed=seed, start=start, rate=100.0)
    entries = put_records_entries(list(enumerate(traffic.to_canonical(records))))
    now = time.time()
    return [
        {
            "sequence_number": traffic.sequence_number(index),
            "partition_key": entry["PartitionKey"],
            "data": entry["Data"],
            "approximate_arrival": now,
        }
        for index, entry in enumerate(entries)
    ]


def lambda_events(records: list[dict[str, Any]], batch: int, shard_id: str) -> list[dict[str, Any]]:
    return [
        kinesis_event(
            [StreamRecord(**record) for record in records[i : i + batch]],
            shard_id=shard_id,
            stream_arn=STREAM_ARN,
            region=awsmock.REGION,
        )
        for i in range(0, len(records), batch)
    ]


def decode_only(events: list[dict[str, Any]]) -> int:
    decoded = 0
    for event in events:
        for record in event["Records"]:
            json.loads(base64.b64decode(record["kinesis"]["data"]))
            decoded += 1
    return decoded


@contextlib.contextmanager
def quiet_handlers(modules: list[Any]) -> Iterator[None]:
    """Powertools logs and EMF lines are formatted as on Lambda, then dropped."""
    sink = io.StringIO()
    saved = []
    for module in modules:
        handler = getattr(module.logger, "registered_handler", None)
        if isinstance(handler, logging.StreamHandler):
            saved.append((handler, handler.stream))
            handler.setStream(sink)
    try:
        with contextlib.redirect_stdout(sink):
            yield
    finally:
        for handler, stream in saved:
            handler.setStream(stream)


def _context(function: str) -> LambdaContext:
    return LambdaContext(
        function_name=function,
        invoked_function_arn=f"arn:aws:lambda:{awsmock.REGION}:123456789012:function:{function}",
    )


def cpu_ms_per_1000(
    handler: Callable[[dict[str, Any], Any], Any],
    events: list[dict[str, Any]],
    function: str,
    sdk: SdkClock,
) -> tuple[float, float, float, int]:
    """(total CPU ms per 1,000 records, of which inside SDK calls, of which inside moto,
    failures reported)."""
    records = sum(len(event["Records"]) for event in events)
    sdk.reset()
    failures = 0
    with steady_heap():
        started = time.process_time()
        for event in events:
            response = handler(event, _context(function))
            failures += len(response.get("batchItemFailures", []))
        cpu = time.process_time() - started
    scale = 1e6 / records
    return cpu * scale, sdk.seconds * scale, sdk.moto_seconds * scale, failures


def run(config: RunConfig) -> FigureResult:
    result = FigureResult(3, "Consumer CPU per 1,000 records")
    count = config.pick(5_000, 2_000)
    repeats = config.pick(3, 3)
    records = _events(count, config.seed)
    table: dict[tuple[str, int], list[tuple[float, float, float, float]]] = {}
    with awsmock.in_process_aws(ENV):
        dynamodb = awsmock.client("dynamodb")
        awsmock.create_aggregates_table(dynamodb, "bench-aggregates")
        awsmock.client("s3").create_bucket(Bucket="bench-archive")
        awsmock.client("sqs").create_queue(QueueName="bench-dlq")
        from clickstream.aws import client as product_client

        sdk = SdkClock()
        for service in ("dynamodb", "s3", "sqs"):
            sdk.attach(product_client(service))
        modules = {
            name: importlib.import_module(f"consumers.{name}")
            for name in ("aggregator", "archiver")
        }
        with quiet_handlers(list(modules.values())), sdk.timing_moto():
            shard = 0
            for repeat in range(repeats + 1):  # the first round warms up (imports, caches)
                for function, module in modules.items():
                    for batch in sorted({100, DEPLOYED_BATCH[function]}):
                        shard += 1
                        events = lambda_events(records, batch, f"shardId-{shard:012d}")
                        total, in_sdk, in_moto, failures = cpu_ms_per_1000(
                            module.handler, events, function, sdk
                        )
                        if failures:
                            raise RuntimeError(f"{function} reported {failures} failures")
                        started = time.process_time()
                        decode_only(events)
                        decode = (time.process_time() - started) * 1e6 / count
                        if repeat:
                            sample = (total, in_sdk, in_moto, decode)
                            table.setdefault((function, batch), []).append(sample)
    med = {
        key: tuple(median(sample[i] for sample in samples) for i in range(4))
        for key, samples in table.items()
    }
    for function in ("aggregator", "archiver"):
        batch = DEPLOYED_BATCH[function]
        total, _in_sdk, in_moto, decode = med[(function, batch)]
        result.rows.append(
            Row(
                f"{function}, batch {batch}: CPU ms / 1,000 records (moto excluded)",
                total - in_moto,
                "ms",
                decode,
                "base64+json decode",
            )
        )
    result.method = (
        f"{count:,} records: the API's own PutRecords entries for simulator traffic, wrapped "
        "as Lambda's Kinesis event by `localdev.runner.kinesis_event` in batches of the "
        "deployed mapping's size (aggregator 500, archiver 1,000; 100 in the details), each "
        "round on a fresh shard so nothing is skipped as already applied. "
        "`consumers.aggregator.handler` / `consumers.archiver.handler` called in-process "
        "(Powertools logger/metrics active, output discarded; tracing disabled) against moto "
        "in-process; `time.process_time` around the calls, the heap frozen before each pass so "
        "the garbage collector walks only what the handler allocates (as in a fresh Lambda) "
        "rather than the bench's fixtures and moto's state. moto's emulation of the requests "
        "(its `BotocoreStubber.process_request`, timed by wrapping it) is subtracted: on "
        "Lambda that work happens in DynamoDB/S3, not in the function. Botocore's own "
        "serialisation and parsing stay in. Baseline: `base64.b64decode` + `json.loads` of "
        f"the same records. One warm-up round, then {repeats} rounds, median."
    )
    result.details += md_table(
        (
            "handler",
            "batch",
            "CPU ms / 1k records (all)",
            "in moto's emulation",
            "in botocore (SDK minus moto)",
            "handler + Powertools",
            "decode-only baseline",
            "value / baseline",
        ),
        [
            (
                function,
                batch,
                total,
                in_moto,
                in_sdk - in_moto,
                total - in_sdk,
                decode,
                f"{(total - in_moto) / decode:.1f}x" if decode else "-",
            )
            for (function, batch), (total, in_sdk, in_moto, decode) in sorted(med.items())
        ],
    )
    pure = aggregation_cost(records, config.pick(5, 3))
    result.details += [
        "",
        f"Aggregator's in-memory work alone (`aggregate`, batches of 500): {pure:.1f} µs/event.",
    ]
    return result


def aggregation_cost(records: list[dict[str, Any]], repeats: int) -> float:
    """µs per event of the aggregator's pure in-memory work (sessions carried over)."""
    from clickstream.aggregates import aggregate
    from clickstream.records import decode_sequenced

    events = [decode_sequenced(r["data"], r["sequence_number"]).event for r in records]
    samples = []
    for _ in range(repeats):
        with steady_heap():
            started = time.process_time()
            sessions: dict[int, Any] = {}
            for i in range(0, len(events), 500):
                sessions.update(aggregate(events[i : i + 500], sessions).sessions)
            samples.append((time.process_time() - started) * 1e6 / len(events))
    return median(samples)
