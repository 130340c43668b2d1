"""Aggregator: near-real-time counters in DynamoDB, each accepted event counted once."""

from __future__ import annotations

from functools import partial
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from clickstream.aws import aggregate_store
from consumers.common import (
    applicable_prefix,
    handle_record,
    measured_batch,
    new_processor,
    shard_id_of_batch,
)

SERVICE = "clickstream-aggregator"
logger = Logger(service=SERVICE)
metrics = Metrics(service=SERVICE)
tracer = Tracer(service=SERVICE)
processor = new_processor()
decode = partial(handle_record, consumer="aggregator", logger=logger, metrics=metrics)


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
            result = aggregate_store().apply(shard_id, events)
        except Exception:
            metrics.add_metric(name="ConsumerErrors", unit=MetricUnit.Count, value=1)
            logger.exception("aggregate write failed; the batch will be retried")
            raise
        metrics.add_metric(name="EventsAggregated", unit=MetricUnit.Count, value=result.applied)
        metrics.add_metric(
            name="DuplicatesSkipped", unit=MetricUnit.Count, value=result.skipped_duplicates
        )
        metrics.add_metric(
            name="DuplicateEventIds", unit=MetricUnit.Count, value=result.duplicate_event_ids
        )
        metrics.add_metric(
            name="AggregateWriteUnits", unit=MetricUnit.Count, value=result.write_units
        )
        if result.fold_error:
            metrics.add_metric(name="FoldErrors", unit=MetricUnit.Count, value=1)
            logger.error("fold failed; the batch is stored", extra={"error": result.fold_error})
        if result.dedupe_ids_dropped:
            metrics.add_metric(
                name="DedupeIdsDropped", unit=MetricUnit.Count, value=result.dedupe_ids_dropped
            )
        logger.info("batch aggregated", extra={"shard_id": shard_id, **vars(result)})
    return dict(processor.response())
