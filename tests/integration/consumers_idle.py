"""The local stack's consumers read from outside, through their Prometheus scrape: the
samples, each shard's lag, and a wait until both consumers are idle, so that a test that
reads totals before its own traffic does not count what earlier tests sent."""

from __future__ import annotations

from typing import Any

import requests
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str) -> Samples:
    response = requests.get(url, timeout=10)
    response.raise_for_status()
    assert response.headers["Content-Type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def lags(samples: Samples) -> dict[tuple[str, str], float]:
    return {
        (dict(labels)["function"], dict(labels)["shard"]): v
        for (name, labels), v in samples.items()
        if name == "clickstream_consumer_millis_behind_latest"
    }


def settled(url: str, stack: Any) -> Samples:
    """The consumers' scrape once they are idle: every shard read to its tip by both
    consumers and nothing moving for a second (earlier tests' records are done)."""
    shards = {
        s["ShardId"]
        for s in stack.client("kinesis").list_shards(StreamName=stack.stream_name)["Shards"]
    }
    previous: Samples = {}

    def idle() -> Samples | None:
        nonlocal previous
        current = scrape(url)
        counters = {k: v for k, v in current.items() if not k[0].startswith("clickstream_dlq")}
        lag = lags(current)
        ready = (
            counters == previous and {shard for _, shard in lag} >= shards and not any(lag.values())
        )
        previous = counters
        return current if ready else None

    return stack.wait_until(idle, timeout=60, interval=1.0)
