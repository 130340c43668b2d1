"""Archiver: each batch becomes Parquet under Hive partitions in S3."""

from __future__ import annotations

from functools import partial
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from clickstream.archive import plan_objects, write_objects
from clickstream.aws import aggregate_store, client
from clickstream.settings import get_settings
from consumers.common import (
    applicable_prefix,
    handle_record,
    measured_batch,
    new_processor,
    shard_id_of_batch,
)

SERVICE = "clickstream-archiver"
logger = Logger(service=SERVICE)
metrics = Metrics(service=SERVICE)
tracer = Tracer(service=SERVICE)
processor = new_processor()
decode = partial(handle_record, consumer="archiver", logger=logger, metrics=metrics)


@tracer.capture_lambda_handler
@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return process_batch(event)


def process_batch(event: dict[str, Any]) -> dict[str, Any]:
    """One batch in Lambda's Kinesis event shape, written once; answers Lambda's partial batch
    response. The Lambda handler and the KCL record processor (consumers/kcl.py) both call it."""
    with measured_batch(metrics, event):
        return _handle(event)


def _handle(event: dict[str, Any]) -> dict[str, Any]:
    shard_id = shard_id_of_batch(event)
    with processor(records=event["Records"], handler=decode):
        outcomes = processor.process()
    events = applicable_prefix(outcomes)
    if events and shard_id:
        try:
            # Read for every batch: a user erased from now on is never archived again.
            planned = plan_objects(events, shard_id, aggregate_store().erased_users())
            written = write_objects(client("s3"), get_settings().archive_bucket, planned)
        except Exception:
            metrics.add_metric(name="ConsumerErrors", unit=MetricUnit.Count, value=1)
            logger.exception("archive write failed; the batch will be retried")
            raise
        metrics.add_metric(name="EventsArchived", unit=MetricUnit.Count, value=len(events))
        metrics.add_metric(name="ArchiveObjectsWritten", unit=MetricUnit.Count, value=len(planned))
        logger.info(
            "batch archived",
            extra={
                "shard_id": shard_id,
                "events": len(events),
                "objects": sorted(planned),
                "bytes": written,
            },
        )
    return dict(processor.response())
