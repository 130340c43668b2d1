"""Jobs worker: the Lambda on the jobs queue (SQS). Each message is one step of an export or
an erasure (``clickstream.jobs``); a failed step is reported in ``batchItemFailures``, so SQS
delivers it again (and, after 5 receives, to the jobs dead-letter queue)."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import orjson
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from clickstream.aws import aggregate_store, client, job_store
from clickstream.jobs import JobQueue
from clickstream.settings import get_settings

SERVICE = "clickstream-jobs"
MAX_RECEIVES = 5  # the jobs queue's RedrivePolicy maxReceiveCount (infra/template.yaml)
logger = Logger(service=SERVICE)
metrics = Metrics(service=SERVICE)
tracer = Tracer(service=SERVICE)


def run_export(message: dict[str, Any]) -> None:
    from clickstream.exports import ExportRange, export_key, write_export_without_erased

    jobs = job_store()
    job = jobs.get(message["job"])
    if job is None or job.status in ("succeeded", "failed", "withdrawn"):
        return
    jobs.update(job.job_id, status="running")
    params = job.params
    window = ExportRange(
        _parse(params["from"]),
        _parse(params["to"]),
    )
    settings = get_settings()
    started = time.perf_counter()
    written = write_export_without_erased(
        client("s3"),
        settings.archive_bucket,
        export_key(job.job_id, params["format"]),
        export_format=params["format"],
        window=window,
        erased=aggregate_store().erased_users,
    )
    jobs.update(
        job.job_id,
        status="succeeded",
        result={
            "key": written.key,
            "rows": written.rows,
            "bytes": written.bytes,
            "content_type": written.content_type,
            "seconds": round(time.perf_counter() - started, 3),
        },
    )
    metrics.add_metric(name="EventsExported", unit=MetricUnit.Count, value=written.rows)
    logger.info("export written", extra={"job_id": job.job_id, "rows": written.rows})


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def run_erasure(message: dict[str, Any], context: Any) -> None:
    from clickstream.privacy import ErasureContext, run_erasure_step

    settings = get_settings()
    ctx = ErasureContext(
        s3=client("s3"),
        dynamodb=client("dynamodb"),
        store=aggregate_store(),
        jobs=job_store(),
        queue=JobQueue(client("sqs"), settings.jobs_queue),
        bucket=settings.archive_bucket,
        keys_table=settings.keys_table,
        settle_s=settings.erasure_settle_s,
        remaining_ms=(
            context.get_remaining_time_in_millis
            if hasattr(context, "get_remaining_time_in_millis")
            else lambda: 10**9
        ),
    )
    run_erasure_step(ctx, message)
    job = ctx.jobs.get(message["job"])
    logger.info(
        "erasure step",
        extra={
            "job_id": message["job"],
            "status": job.status if job else None,
            "progress": job.progress if job else {},
        },
    )


RUNNERS = {"export": lambda message, context: run_export(message), "erasure": run_erasure}


def fail_job(message: dict[str, Any], error: str) -> None:
    """A message that can never succeed (malformed): its job fails, with the reason."""
    job_id = message.get("job")
    if isinstance(job_id, str):
        job_store().update(job_id, status="failed", error=error)


@tracer.capture_lambda_handler
@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    failures = []
    for record in event.get("Records") or []:
        try:
            message = orjson.loads(record["body"])
        except orjson.JSONDecodeError:
            message = None
        if not isinstance(message, dict):  # (a JSON array or string is no job either)
            logger.error("not a job message; dropped", extra={"message_id": record["messageId"]})
            metrics.add_metric(name="JobMessagesDropped", unit=MetricUnit.Count, value=1)
            continue
        kind = message.get("kind")
        runner = RUNNERS.get(kind) if isinstance(kind, str) else None
        if runner is None:
            logger.error("unknown job kind; dropped", extra={"kind": kind})
            metrics.add_metric(name="JobMessagesDropped", unit=MetricUnit.Count, value=1)
            fail_job(message, "unknown job kind")
            continue
        try:
            runner(message, context)
            metrics.add_metric(name="JobSteps", unit=MetricUnit.Count, value=1)
        except Exception as exc:
            metrics.add_metric(name="JobStepErrors", unit=MetricUnit.Count, value=1)
            received = int((record.get("attributes") or {}).get("ApproximateReceiveCount", 1))
            logger.exception(  # the job id and kind only: an erasure's message holds a user id
                "job step failed; SQS delivers it again",
                extra={"job_id": message.get("job"), "kind": message.get("kind"),
                       "receive_count": received},
            )  # fmt: skip
            if received >= MAX_RECEIVES:  # the queue's redrive moves it to the jobs DLQ now
                fail_job(message, f"{type(exc).__name__} after {received} attempts")
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}
