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
    """The consumers' scrape once they are idle: both consumers report every shard read to
    its tip, and nothing has moved over three scrapes a second apart. (The event-source
    runner polls an idle shard once a second and batches for 0.2 s more: two seconds of
    stillness outlast a record already in the stream but not yet picked up.)"""
    shards = {
        s["ShardId"]
        for s in stack.client("kinesis").list_shards(StreamName=stack.stream_name)["Shards"]
    }
    expected = {(function, shard) for function in ("aggregator", "archiver") for shard in shards}
    history: list[Samples] = []

    def idle() -> Samples | None:
        current = scrape(url)
        counters = {k: v for k, v in current.items() if not k[0].startswith("clickstream_dlq")}
        lag = lags(current)
        history.append(counters)
        del history[:-3]
        ready = (
            len(history) == 3
            and all(seen == counters for seen in history)
            and expected <= lag.keys()
            and not any(lag.values())
        )
        return current if ready else None

    return stack.wait_until(idle, timeout=60, interval=1.0)
