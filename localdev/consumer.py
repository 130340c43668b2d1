"""One consumer function behind its local event-source mapping, as a process of its own:
``python -m localdev.consumer aggregator`` (``archiver``; ``jobs``, on the jobs queue). Stops
cleanly on SIGTERM/SIGINT (in-flight batches finish; the next start resumes from the DynamoDB
checkpoints)."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import threading
from typing import Any

from clickstream.aws import client
from clickstream.settings import get_settings
from infra.template import load_template
from localdev.faults import Faults, faulty_handler
from localdev.runner import EventSourceMapping, Handler, MappingSettings, SqsEventSourceMapping

FUNCTIONS = {
    "aggregator": "consumers.aggregator:handler",
    "archiver": "consumers.archiver:handler",
    "jobs": "consumers.jobs:handler",
}


MAPPING_RESOURCES = {
    "aggregator": "AggregatorEventSourceMapping",
    "archiver": "ArchiverEventSourceMapping",
}


def mapping_settings(function: str) -> MappingSettings:
    """The event source mapping settings infra/template.yaml deploys on AWS for this
    function, each overridable from the environment (tests shorten the batching window)."""
    properties = load_template()["Resources"][MAPPING_RESOURCES[function]]["Properties"]
    env = os.environ
    queue = env.get("CLICKSTREAM_ON_FAILURE_QUEUE_URL")
    if not queue:
        queue = client("sqs").get_queue_url(QueueName=get_settings().dead_letter_queue)["QueueUrl"]

    def setting(variable: str, template_value: Any) -> str:
        return env.get(f"CLICKSTREAM_ESM_{variable}") or str(template_value)

    return MappingSettings(
        batch_size=int(setting("BATCH_SIZE", properties["BatchSize"])),
        maximum_batching_window_s=float(
            setting("BATCHING_WINDOW_S", properties["MaximumBatchingWindowInSeconds"])
        ),
        starting_position=setting("STARTING_POSITION", properties["StartingPosition"]),
        maximum_retry_attempts=int(setting("MAX_RETRIES", properties["MaximumRetryAttempts"])),
        maximum_record_age_s=int(
            setting("MAX_RECORD_AGE_S", properties["MaximumRecordAgeInSeconds"])
        ),
        bisect_batch_on_function_error=setting(
            "BISECT", properties["BisectBatchOnFunctionError"]
        ).lower()
        == "true",
        report_batch_item_failures="ReportBatchItemFailures"
        in properties.get("FunctionResponseTypes", []),
        on_failure_queue_url=queue,
        poll_interval_s=float(env.get("CLICKSTREAM_ESM_POLL_INTERVAL_S", "0.1")),
        idle_poll_interval_s=float(env.get("CLICKSTREAM_ESM_IDLE_POLL_S", "1.0")),
        retry_backoff_s=float(env.get("CLICKSTREAM_ESM_RETRY_BACKOFF_S", "0.2")),
        shard_discovery_interval_s=float(env.get("CLICKSTREAM_ESM_SHARD_DISCOVERY_S", "10")),
    )


def load_handler(function: str) -> Handler:
    module_name, _, attribute = FUNCTIONS[function].partition(":")
    handler: Handler = getattr(importlib.import_module(module_name), attribute)
    return handler


def run_jobs(handler: Handler | None = None) -> dict[str, Any]:
    """The jobs function behind its SQS event source (the template's JobsEventSourceMapping:
    batch size 1, partial batch responses)."""
    settings = get_settings()
    properties = load_template()["Resources"]["JobsEventSourceMapping"]["Properties"]
    mapping = SqsEventSourceMapping(
        function_name="jobs",
        handler=handler or load_handler("jobs"),
        sqs=client("sqs"),
        queue_name=settings.jobs_queue,
        region=settings.region,
        batch_size=int(properties["BatchSize"]),
    )
    stopped = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopped.set())
    mapping.start()
    logging.getLogger("localdev.consumer").info("jobs: consuming %s", settings.jobs_queue)
    stopped.wait()
    mapping.stop()
    return {"invocations": mapping.invocations, "failures": mapping.failures}


def run(function: str, handler: Handler | None = None) -> dict[str, Any]:
    if function == "jobs":
        return run_jobs(handler)
    settings = get_settings()
    handler = handler or load_handler(function)
    faults = Faults.from_env()
    if faults.any_consumer_fault:
        logging.getLogger("localdev.consumer").warning("%s: injecting %s", function, faults)
        handler = faulty_handler(handler, faults)
    mapping = EventSourceMapping(
        function_name=function,
        handler=handler,
        kinesis=client("kinesis"),
        dynamodb=client("dynamodb"),
        sqs=client("sqs"),
        stream_name=settings.stream_name,
        # The runner's own table (Lambda keeps its checkpoints itself): a local-only setting.
        checkpoints_table=os.environ.get(
            "CLICKSTREAM_CHECKPOINTS_TABLE", "clickstream-checkpoints"
        ),
        region=settings.region,
        settings=mapping_settings(function),
    )
    stopped = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopped.set())
    mapping.start()
    logging.getLogger("localdev.consumer").info("%s: consuming %s", function, settings.stream_name)
    stopped.wait()
    mapping.stop()
    return mapping.stats()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("function", choices=sorted(FUNCTIONS))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    stats = run(args.function)
    logging.getLogger("localdev.consumer").info("%s stopped: %s", args.function, stats)


if __name__ == "__main__":
    main()
