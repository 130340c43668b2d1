"""The local stack's Prometheus endpoints through real HTTP: known traffic (accepted and
rejected events, a client's retry of an event, a poison record) and the figures in the two
scrapes, read with prometheus-client's own parser, moved by exactly that much."""

from __future__ import annotations

import time
import uuid

import pytest
import requests

from tests.integration.consumers_idle import Samples, lags, scrape, settled

pytestmark = pytest.mark.integration

AGGREGATOR = {"service": "clickstream-aggregator"}
ARCHIVER = {"service": "clickstream-archiver"}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def dlq_messages(samples: Samples) -> float:
    return sum(v for (name, _), v in samples.items() if name == "clickstream_dlq_messages")


def test_known_traffic_moves_each_figure_of_both_scrapes_by_exactly_that_much(local_stack):
    api_url, consumers_url = (local_stack.metrics_urls[k] for k in ("api", "consumers"))
    # GIVEN both scrapes with the consumers idle
    consumers_before = settled(consumers_url, local_stack)
    api_before = scrape(api_url)
    tag = uuid.uuid4().hex[:8]
    good = [{"event_type": "click", "session_id": f"{tag}-s{i}"} for i in range(4)]
    retried = {"event_type": "click", "session_id": f"{tag}-r", "event_id": f"{tag}-retried"}

    # WHEN /events gets 4 good and 2 bad records, /track the same event twice (a client's
    # retry), and a record that is not JSON goes straight into the stream
    body = local_stack.post_events(
        [*good, {"session_id": tag}, {"event_type": "click", "timestamp": "3000-01-01T00:00:00Z"}]
    )
    tracked = [
        requests.post(
            f"{local_stack.api_url}/track",
            json=retried,
            headers=local_stack.write_headers,
            timeout=30,
        ).status_code
        for _ in range(2)
    ]
    local_stack.client("kinesis").put_record(
        StreamName=local_stack.stream_name, Data=b"\xff not json", PartitionKey=tag
    )
    assert body["processed"] == 4 and tracked == [200, 200]
    delivered = 4 + 2 + 1  # records in the stream, the poison one included

    # THEN the API's scrape counts them per route and reason
    api = scrape(api_url)
    events, track = (
        {"service": "clickstream-api", "route": "/events"},
        {"service": "clickstream-api", "route": "/track"},
    )

    def moved(name: str, **labels: str) -> float:
        return value(api, name, **labels) - value(api_before, name, **labels)

    assert moved("clickstream_events_accepted_total", **events) == 4
    assert moved("clickstream_events_accepted_total", **track) == 2
    assert moved("clickstream_events_rejected_total", **events, reason="invalid_event_type") == 1
    assert moved("clickstream_events_rejected_total", **events, reason="invalid_timestamp") == 1
    assert moved("clickstream_putrecords_failed_total", **events) == 0

    # ... and, once both consumers have read every record, theirs counts the batches, the
    # client's retry, the poison record and its two dead letters (one per consumer)
    def consumed() -> Samples | None:
        now = scrape(consumers_url)
        done = all(
            value(now, "clickstream_consumer_batch_size_sum", **who)
            - value(consumers_before, "clickstream_consumer_batch_size_sum", **who)
            >= delivered
            for who in (AGGREGATOR, ARCHIVER)
        )
        return now if done and dlq_messages(now) - dlq_messages(consumers_before) >= 2 else None

    after = local_stack.wait_until(consumed, timeout=60)
    time.sleep(1.5)  # a figure that overshoots would show by now
    after = scrape(consumers_url)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(consumers_before, name, **labels)

    for who in (AGGREGATOR, ARCHIVER):
        assert grew("clickstream_consumer_batch_size_sum", **who) == delivered
        assert (
            grew("clickstream_consumer_batch_duration_seconds_count", **who)
            == grew("clickstream_consumer_batch_size_count", **who)
            > 0
        )
        assert grew("clickstream_poison_records_total", **who) == 1
    assert grew("clickstream_events_aggregated_total", **AGGREGATOR) == 5
    assert grew("clickstream_duplicates_skipped_total", **AGGREGATOR, kind="event_id") == 1
    assert grew("clickstream_duplicates_skipped_total", **AGGREGATOR, kind="redelivered") == 0
    assert grew("clickstream_events_archived_total", **ARCHIVER) == 6
    assert dlq_messages(after) - dlq_messages(consumers_before) == 2
    # every shard, for both consumers, is read to its tip again
    settled_lags = lags(settled(consumers_url, local_stack))
    assert {function for function, _ in settled_lags} == {"aggregator", "archiver"}
