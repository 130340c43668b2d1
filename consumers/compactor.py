"""The hourly compactor (the Chalice schedule ``compactor``; ``make local`` runs it on the same
schedule): each closed hour touched since its last compaction becomes one file, each event
once, and the aggregates of shards no consumer folds any more (closed by a reshard, idle)
are folded."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger

from clickstream.aws import aggregate_store, client, job_store
from clickstream.compaction import compact_closed_hours
from clickstream.settings import get_settings

logger = Logger(service="clickstream-compactor")


def handler(event: Any = None, context: Any = None) -> dict[str, Any]:
    settings = get_settings()
    # Under each hour's lock (an erasure's step takes the same), erased users left out.
    results = compact_closed_hours(
        client("s3"),
        settings.archive_bucket,
        datetime.now(UTC),
        erased=aggregate_store().erased_users(),
        locks=job_store(),
    )
    folded = aggregate_store().fold_all()
    logger.info(
        "compacted",
        extra={"partitions": [vars(result) for result in results], "deltas_folded": folded},
    )
    return {
        "partitions": len(results),
        "rows_written": sum(result.rows_written for result in results),
        "duplicates_removed": sum(result.duplicates_removed for result in results),
        "deltas_folded": folded,
    }
