"""The aggregator and archiver as record processors under the KCL's MultiLangDaemon
(``amazon-kclpy``), for fleets that run them always on (ECS, EC2): ``python -m consumers.kcl
aggregator`` is the daemon's ``executableName``.

The batch function is the Lambda handler's (``process_batch``), fed the records the daemon
delivers in Lambda's Kinesis event shape, so decoding, quarantine and the exactly-once write
(the aggregates' per-shard watermark, the archive's deterministic keys) are the same code.
What differs is delivery: the daemon never delivers a batch twice to a live processor, so a
failed write is retried here, in place, and the checkpoint is taken only after the write of
everything up to it. A worker that dies between write and checkpoint is re-delivered the
batch by the next lease owner; the watermark makes that write a no-op.

The daemon speaks to this process over stdin/stdout, so everything else the process prints
(Powertools' logs and EMF metrics) is sent to stderr, which the daemon copies to its log.
"""

from __future__ import annotations

import logging
import os
import random
import sys
import time
from collections.abc import Callable, Sequence
from typing import IO, Any, Protocol

from amazon_kclpy import kcl
from amazon_kclpy.checkpoint_error import CheckpointError
from amazon_kclpy.v3 import processor

log = logging.getLogger("consumers.kcl")

BatchFunction = Callable[[dict[str, Any]], dict[str, Any]]
CONSUMERS = ("aggregator", "archiver")
# Retrying a failed write: doubling from 0.2 s, capped at 10 s, with jitter; forever, as
# the shard must not move past a batch that is not written (the lag alarm says it is stuck).
RETRY_BASE_S = 0.2
RETRY_CAP_S = 10.0
# Checkpoint errors the daemon reports: the lease is gone (stop; the next owner resumes from
# the last checkpoint), or a transient one (try again).
LEASE_GONE = {"ShutdownException", "InvalidStateException"}


class KclRecord(Protocol):
    """What the processor reads of ``amazon_kclpy.messages.Record``."""

    @property
    def sequence_number(self) -> str: ...
    @property
    def partition_key(self) -> str: ...
    @property
    def data(self) -> str: ...
    @property
    def timestamp_millis(self) -> int: ...


class Checkpointer(Protocol):
    def checkpoint(
        self, sequence_number: str | None = None, sub_sequence_number: int | None = None
    ) -> None: ...


def lambda_event(
    records: Sequence[KclRecord], *, shard_id: str, stream_arn: str, region: str
) -> dict[str, Any]:
    """The daemon's records as the event Lambda's Kinesis event source mapping builds."""
    return {
        "Records": [
            {
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": record.partition_key,
                    "sequenceNumber": record.sequence_number,
                    "data": record.data,  # base64 already, as in Lambda's event
                    "approximateArrivalTimestamp": record.timestamp_millis / 1000,
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": f"{shard_id}:{record.sequence_number}",
                "eventName": "aws:kinesis:record",
                "awsRegion": region,
                "eventSourceARN": stream_arn,
            }
            for record in records
        ]
    }


def retry_delay(attempt: int) -> float:
    return float(min(RETRY_CAP_S, RETRY_BASE_S * 2 ** min(attempt, 16)) * random.uniform(0.5, 1))


class BatchRecordProcessor(processor.RecordProcessorBase):
    """One shard's processor: write the batch, then checkpoint its last record."""

    def __init__(
        self,
        process_batch: BatchFunction,
        *,
        stream_arn: str,
        region: str,
        sleep: Callable[[float], None] = time.sleep,
        after_batch: Callable[[], None] = lambda: None,
    ) -> None:
        self.process_batch = process_batch
        self.stream_arn = stream_arn
        self.region = region
        self.sleep = sleep
        self.after_batch = after_batch
        self.shard_id = ""
        self.stopped = False

    def initialize(self, initialize_input: Any) -> None:
        self.shard_id = str(initialize_input.shard_id)
        log.info("processing %s from %s", self.shard_id, initialize_input.sequence_number)

    def process_records(self, process_records_input: Any) -> None:
        records = list(process_records_input.records)
        if not records:
            return
        try:
            self.write_then_checkpoint(records, process_records_input.checkpointer)
        except Exception:
            # kclpy would log this and answer "done", and the daemon would deliver the next
            # batch past an unwritten one: the worker exits instead, and its shards resume
            # from their last checkpoint (here after a restart, or on another worker).
            log.exception("%s: stopping the worker, nothing past the checkpoint", self.shard_id)
            raise SystemExit(1) from None

    def write_then_checkpoint(self, records: list[KclRecord], checkpointer: Checkpointer) -> None:
        """Apply ``records`` in order; checkpoint each written prefix. A record the batch
        function reports failed (Lambda's partial batch response) and everything after it
        are tried again; so is the whole batch when the function raises."""
        pending, attempt = records, 0
        while pending and not self.stopped:
            event = lambda_event(
                pending, shard_id=self.shard_id, stream_arn=self.stream_arn, region=self.region
            )
            try:
                response = self.process_batch(event)
            except Exception:
                log.exception("%s: batch failed; retrying it", self.shard_id)
                response = {"batchItemFailures": [{"itemIdentifier": pending[0].sequence_number}]}
            finally:
                self.flush_metrics()
            failed = {item["itemIdentifier"] for item in response.get("batchItemFailures") or []}
            written = next(
                (i for i, record in enumerate(pending) if record.sequence_number in failed),
                len(pending),
            )
            if written:
                self.checkpoint(checkpointer, pending[written - 1].sequence_number)
                attempt = 0
            pending = pending[written:]
            if pending:
                self.sleep(retry_delay(attempt))
                attempt += 1

    def flush_metrics(self) -> None:
        try:
            self.after_batch()
        except Exception:  # a metric is not worth a batch
            log.exception("%s: metrics not flushed", self.shard_id)

    def checkpoint(self, checkpointer: Checkpointer, sequence_number: str | None) -> None:
        for attempt in range(10):
            try:
                checkpointer.checkpoint(sequence_number)
                return
            except CheckpointError as error:
                if error.value in LEASE_GONE:
                    log.warning("%s: lease lost (%s); stopping", self.shard_id, error.value)
                    self.stopped = True
                    return
                log.warning("%s: checkpoint failed (%s); retrying", self.shard_id, error.value)
                self.sleep(retry_delay(attempt))
        raise RuntimeError(f"{self.shard_id}: could not checkpoint at {sequence_number}")

    def lease_lost(self, lease_lost_input: Any) -> None:
        # Nothing to flush: every written batch is checkpointed; the next owner resumes there.
        log.info("%s: lease lost", self.shard_id)

    def shard_ended(self, shard_ended_input: Any) -> None:
        # Required at a shard's end (split or merge): the children start after this.
        try:
            self.checkpoint(shard_ended_input.checkpointer, None)
        except Exception:
            log.exception("%s: shard end not checkpointed; stopping the worker", self.shard_id)
            raise SystemExit(1) from None

    def shutdown_requested(self, shutdown_requested_input: Any) -> None:
        log.info("%s: worker shutting down", self.shard_id)


def protocol_channel() -> IO[str]:
    """The daemon's channel (the original stdout), with fd 1 then pointed at stderr so that
    no other output of this process can corrupt the protocol."""
    channel = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    return channel


def batch_function(consumer: str) -> tuple[BatchFunction, Callable[[], None]]:
    """The consumer's batch function, and the flush of its metrics after each batch (the
    Lambda handler's ``log_metrics`` decorator does that per invocation)."""
    if consumer == "aggregator":
        from consumers import aggregator as module
    else:
        from consumers import archiver as module  # type: ignore[no-redef]
    return module.process_batch, module.metrics.flush_metrics


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or args[0] not in CONSUMERS:
        raise SystemExit(f"usage: python -m consumers.kcl {{{','.join(CONSUMERS)}}}")
    channel = protocol_channel()
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(name)s %(message)s")
    process_batch, flush = batch_function(args[0])
    from clickstream.settings import get_settings

    settings = get_settings()
    record_processor = BatchRecordProcessor(
        process_batch,
        stream_arn=os.environ.get("CLICKSTREAM_STREAM_ARN", ""),
        region=settings.region,
        after_batch=flush,
    )
    kcl.KCLProcess(record_processor, output_file=channel).run()


if __name__ == "__main__":
    main()
