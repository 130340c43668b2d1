"""Configuration from the environment, read once. Every name has a sane local default."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache


def _env(name: str, default: str) -> str:
    return os.environ.get(name) or default


@dataclass(frozen=True)
class Settings:
    region: str
    stream_name: str
    aggregates_table: str
    checkpoints_table: str
    archive_bucket: str
    dead_letter_queue: str
    alarm_topic: str
    metrics_namespace: str
    recent_events_kept: int
    max_put_attempts: int

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            region=_env("AWS_REGION", _env("AWS_DEFAULT_REGION", "us-east-1")),
            stream_name=_env("CLICKSTREAM_STREAM_NAME", "clickstream-events"),
            aggregates_table=_env("CLICKSTREAM_AGGREGATES_TABLE", "clickstream-aggregates"),
            checkpoints_table=_env("CLICKSTREAM_CHECKPOINTS_TABLE", "clickstream-checkpoints"),
            archive_bucket=_env("CLICKSTREAM_ARCHIVE_BUCKET", "clickstream-archive"),
            dead_letter_queue=_env("CLICKSTREAM_DLQ_NAME", "clickstream-dlq"),
            alarm_topic=_env("CLICKSTREAM_ALARM_TOPIC", "clickstream-alarms"),
            metrics_namespace=_env("POWERTOOLS_METRICS_NAMESPACE", "Clickstream"),
            recent_events_kept=int(_env("CLICKSTREAM_RECENT_EVENTS", "50")),
            max_put_attempts=int(_env("CLICKSTREAM_PUT_ATTEMPTS", "5")),
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_env()
