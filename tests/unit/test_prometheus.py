"""EMF -> Prometheus (localdev.prometheus): the API's real EMF output after known traffic,
scraped and read back with prometheus-client's own parser; the translation's rules on
documents of each shape; the dead-letter queue's depth; the README's table and the Grafana
dashboard against the table in code."""

from __future__ import annotations

import io
import json
import re
import threading
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit
from botocore.awsrequest import AWSResponse, HTTPHeaders
from moto import mock_aws
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from clickstream import aws
from clickstream.ingest import rejection_reason
from clickstream.schema import RecordError
from localdev.prometheus import (
    DLQ_METRIC,
    TWINS,
    DeadLetterQueueDepth,
    EmfTee,
    PrometheusMetrics,
    observations,
    twins_markdown,
)
from localdev.runner import iterator_age_emf

ROOT = Path(__file__).resolve().parents[2]
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(metrics: PrometheusMetrics) -> Samples:
    """Every sample of a scrape, read by prometheus-client's parser: (name, labels) -> value."""
    text = generate_latest(metrics.registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def powertools_lines(capsys: pytest.CaptureFixture[str], *emit: Any) -> list[str]:
    capsys.readouterr()
    for action in emit:
        action()
    return [line for line in capsys.readouterr().out.splitlines() if line.strip()]


# --- the API's own EMF, after known traffic ------------------------------------------------


def _throttle_first_put(service: str, made: Any) -> None:
    """The first PutRecords call comes back with every entry throttled; later ones go."""
    calls = {"n": 0}

    def before_call(params: dict[str, Any], **_: Any) -> Any:
        calls["n"] += 1
        if calls["n"] > 1:
            return None
        entries = json.loads(params["body"])["Records"]
        throttled = {
            "ErrorCode": "ProvisionedThroughputExceededException",
            "ErrorMessage": "Rate exceeded",
        }
        ok = AWSResponse(made.meta.endpoint_url, 200, HTTPHeaders(), None)
        return ok, {"FailedRecordCount": len(entries), "Records": [throttled] * len(entries)}

    if service == "kinesis":
        made.meta.events.register("before-call.kinesis.PutRecords", before_call)


def _post(api: dict[str, Any], path: str, body: Any) -> int:
    response = api["client"].http.post(
        path,
        body=json.dumps(body),
        headers={"Content-Type": "application/json", "X-Write-Key": api["write"]},
    )
    return int(response.status_code)


def test_known_ingest_traffic_scrapes_as_exact_counts_per_route_and_reason(
    api: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the API's EMF output feeding the Prometheus metrics, and a stream that throttles
    # the first PutRecords call entirely
    monkeypatch.setattr(aws, "CLIENT_HOOKS", [_throttle_first_put])
    aws.reset_clients()
    good = {"event_type": "click", "session_id": "s1"}
    capsys.readouterr()  # (what the fixture printed)
    statuses = []

    # WHEN /events takes 3 good records (retried once after the throttle) and 3 bad ones of
    # two kinds, /track one good and one bad event, and a wrong key is refused
    statuses.append(
        _post(
            api,
            "/events",
            {
                "records": [
                    good,
                    {"session_id": "s1"},  # no event_type
                    good,
                    {"event_type": "click", "timestamp": "3000-01-01T00:00:00Z"},
                    {"event_type": "click", "timestamp": "not a time"},
                    good,
                ]
            },
        )
    )
    statuses.append(_post(api, "/track", good))
    statuses.append(_post(api, "/track", {"event_type": ""}))
    refused = api["client"].http.post(
        "/track", body=json.dumps(good), headers={"X-Write-Key": "wrong"}
    )
    lines = capsys.readouterr().out.splitlines()
    metrics = PrometheusMetrics()
    for line in lines:
        metrics.record_line(line)
    samples = scrape(metrics)

    # THEN every figure is in the scrape with exactly the numbers sent
    assert statuses == [200, 200, 400] and refused.status_code in (401, 403)
    api_labels = {"service": "clickstream-api"}
    events, track = {**api_labels, "route": "/events"}, {**api_labels, "route": "/track"}
    assert value(samples, "clickstream_events_accepted_total", **events) == 3
    assert value(samples, "clickstream_events_accepted_total", **track) == 1
    rejected = {
        (labels["route"], labels["reason"]): count
        for (name, label_items), count in samples.items()
        if name == "clickstream_events_rejected_total"
        for labels in [dict(label_items)]
    }
    assert rejected == {
        ("/events", "invalid_event_type"): 1,
        ("/events", "invalid_timestamp"): 2,
        ("/track", "invalid_event_type"): 1,
    }
    assert value(samples, "clickstream_putrecords_throttled_total", **events) == 3
    assert value(samples, "clickstream_putrecords_retries_total", **events) == 1
    assert value(samples, "clickstream_putrecords_retries_total", **track) == 0
    assert value(samples, "clickstream_putrecords_failed_total", **events) == 0
    assert value(samples, "clickstream_auth_rejected_total", **api_labels) == 1


# --- the translation's rules -----------------------------------------------------------------


def _consumer_flush(service: str, **values: tuple[str, list[float]]) -> Any:
    def flush() -> None:
        emitter = Metrics(namespace="Clickstream", service=service)
        for name, (unit, numbers) in values.items():
            for number in numbers:
                emitter.add_metric(name=name, unit=MetricUnit[unit], value=number)
        emitter.flush_metrics()

    return flush


def test_counters_sum_histograms_observe_each_value_and_gauges_keep_the_last(
    capsys: pytest.CaptureFixture[str],
) -> None:
    lines = powertools_lines(
        capsys,
        _consumer_flush(
            "clickstream-aggregator",
            BatchSize=("Count", [100.0]),
            BatchDuration=("Milliseconds", [40.0]),
            DuplicatesSkipped=("Count", [2.0]),
            DuplicateEventIds=("Count", [1.0]),
            PoisonRecords=("Count", [1.0, 1.0]),
        ),
        _consumer_flush(
            "clickstream-archiver",
            BatchSize=("Count", [3.0]),
            BatchDuration=("Milliseconds", [2000.0]),
        ),
    )
    lines += [
        json.dumps(iterator_age_emf("aggregator", "shardId-000", millis, 1.0e9))
        for millis in (5000, 0)
    ]
    lines.append(json.dumps(iterator_age_emf("archiver", "shardId-001", 700, 1.0e9)))
    metrics = PrometheusMetrics()
    assert [metrics.record_line(line) for line in lines] == [True] * 5
    samples = scrape(metrics)

    agg, arch = {"service": "clickstream-aggregator"}, {"service": "clickstream-archiver"}
    assert value(samples, "clickstream_consumer_batch_size_count", **agg) == 1
    assert value(samples, "clickstream_consumer_batch_size_sum", **agg) == 100
    assert value(samples, "clickstream_consumer_batch_size_bucket", **agg, le="50.0") == 0
    assert value(samples, "clickstream_consumer_batch_size_bucket", **agg, le="100.0") == 1
    assert value(samples, "clickstream_consumer_batch_size_sum", **arch) == 3
    # milliseconds in EMF, seconds in Prometheus
    assert value(
        samples, "clickstream_consumer_batch_duration_seconds_sum", **agg
    ) == pytest.approx(0.04)
    assert (
        value(samples, "clickstream_consumer_batch_duration_seconds_bucket", **arch, le="1.0") == 0
    )
    assert (
        value(samples, "clickstream_consumer_batch_duration_seconds_bucket", **arch, le="2.5") == 1
    )
    duplicates = "clickstream_duplicates_skipped_total"
    assert value(samples, duplicates, **agg, kind="redelivered") == 2
    assert value(samples, duplicates, **agg, kind="event_id") == 1
    assert value(samples, "clickstream_poison_records_total", **agg) == 2
    lag = "clickstream_consumer_millis_behind_latest"
    assert value(samples, lag, function="aggregator", shard="shardId-000") == 0
    assert value(samples, lag, function="archiver", shard="shardId-001") == 700


def _doc(dimension_sets: list[list[str]], namespace: str = "Clickstream", **members: Any) -> Any:
    metric_names = [name for name, member in members.items() if isinstance(member, list)]
    return {
        "_aws": {
            "Timestamp": 0,
            "CloudWatchMetrics": [
                {
                    "Namespace": namespace,
                    "Dimensions": dimension_sets,
                    "Metrics": [{"Name": name, "Unit": "Count"} for name in metric_names],
                }
            ],
        },
        **members,
    }


EVENTS = "clickstream_events_accepted"
REJECTED = "clickstream_events_rejected"
A_ROUTE = (("service", "a"), ("route", "/e"))


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        # a label from a property of the line (the route), beside the dimension
        (
            _doc([["service"]], service="a", route="/e", EventsAccepted=[4]),
            [(EVENTS, A_ROUTE, (4.0,))],
        ),
        # an extra dimension set is not read a second time
        (
            _doc([["service"], ["service", "route"]], service="a", route="/e", EventsAccepted=[4]),
            [(EVENTS, A_ROUTE, (4.0,))],
        ),
        # a label whose member is missing: the value is dropped, not labelled empty
        (_doc([["service"]], service="a", EventsAccepted=[4]), []),
        # a value split by a property; what the parts leave is "unspecified"
        (
            _doc(
                [["service"]],
                service="a",
                route="/e",
                rejected_by_reason={"invalid_x": 2, "stream_refused": 1},
                EventsRejected=[4],
            ),
            [
                (REJECTED, (*A_ROUTE, ("reason", "invalid_x")), (2.0,)),
                (REJECTED, (*A_ROUTE, ("reason", "stream_refused")), (1.0,)),
                (REJECTED, (*A_ROUTE, ("reason", "unspecified")), (1.0,)),
            ],
        ),
        # parts that are not counts are ignored; nothing rejected is no sample
        (
            _doc(
                [["service"]],
                service="a",
                route="/e",
                rejected_by_reason={"x": True, "y": -1, "z": "2"},
                EventsRejected=[2],
            ),
            [(REJECTED, (*A_ROUTE, ("reason", "unspecified")), (2.0,))],
        ),
        (_doc([["service"]], service="a", route="/e", EventsRejected=[0]), []),
        # metrics the table does not know
        (_doc([["service"]], service="a", AggregateWriteUnits=[9]), []),
        # Lambda's figure under another namespace than AWS/Lambda
        (_doc([["FunctionName"]], FunctionName="f", ShardId="s", IteratorAge=[1]), []),
        (
            _doc([["FunctionName"]], namespace="AWS/Lambda", FunctionName="f", IteratorAge=[1]),
            [],
        ),
        # values that are not finite numbers are skipped
        (_doc([["service"]], service="a", PoisonRecords=["x", True]), []),
    ],
)
def test_documents_map_through_the_table_only(doc: Any, expected: list[Any]) -> None:
    found = [(o.twin.name, o.labels, o.values) for o in observations(doc)]
    assert found == expected


@pytest.mark.parametrize(
    "line",
    ["", "plain text", "{not json", '{"_aws": 1}', '["_aws"]', '{"level": "INFO"}'],
)
def test_lines_that_are_not_emf_change_nothing(line: str) -> None:
    metrics = PrometheusMetrics()
    before = scrape(metrics)
    assert metrics.record_line(line) is False
    assert scrape(metrics) == before


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (RecordError(0, "record", "x", retryable=True), "stream_refused"),
        (RecordError(0, "timestamp", "x"), "invalid_timestamp"),
        (RecordError(0, "context.page.url", "x"), "invalid_context"),
        (RecordError(0, "records[3]", "x"), "invalid_records"),
        (RecordError(0, "", "x"), "invalid_record"),
        (RecordError(0, "f" * 500, "x"), "invalid_" + "f" * 40),
    ],
)
def test_a_rejection_reason_is_a_top_level_field_or_the_stream(
    error: RecordError, reason: str
) -> None:
    assert rejection_reason(error) == reason


# --- the tee that lets a process read its own EMF output ------------------------------------


def test_the_tee_passes_output_through_and_reads_lines_split_across_writes() -> None:
    sink, seen = io.StringIO(), []
    tee = EmfTee(sink, seen.append)
    tee.write('{"a":')
    tee.write("1}")
    tee.write("\n")
    tee.write("log line\n{")
    tee.write('"b":2}\n')
    assert sink.getvalue() == '{"a":1}\nlog line\n{"b":2}\n'
    assert seen == ['{"a":1}', '{"b":2}']


def test_the_tee_keeps_each_threads_line_apart() -> None:
    sink, seen = io.StringIO(), []
    tee = EmfTee(sink, seen.append)
    first_half = threading.Event()

    def other() -> None:
        tee.write('{"other":1}')
        first_half.set()
        tee.write("\n")

    tee.write('{"mine":')
    thread = threading.Thread(target=other, daemon=True)
    thread.start()
    first_half.wait(5)
    thread.join(5)
    assert not thread.is_alive()
    tee.write("2}\n")
    assert sorted(seen) == ['{"mine":2}', '{"other":1}']


# --- the dead-letter queue -------------------------------------------------------------------


def test_dlq_depth_is_asked_of_sqs_at_each_scrape(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        sqs = boto3.client("sqs", aws_access_key_id="x", aws_secret_access_key="x")
        url = sqs.create_queue(QueueName="clickstream-dlq")["QueueUrl"]
        metrics = PrometheusMetrics()
        metrics.registry.register(DeadLetterQueueDepth(sqs, url))
        depth = DLQ_METRIC
        assert value(scrape(metrics), depth, queue="clickstream-dlq", state="visible") == 0
        for body in ("a", "b", "c"):
            sqs.send_message(QueueUrl=url, MessageBody=body)
        sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, VisibilityTimeout=60)
        samples = scrape(metrics)
        assert value(samples, depth, queue="clickstream-dlq", state="visible") == 2
        assert value(samples, depth, queue="clickstream-dlq", state="in_flight") == 1
        # a queue SQS does not know: the scrape goes on without the figure
        metrics = PrometheusMetrics()
        metrics.registry.register(DeadLetterQueueDepth(sqs, url + "-gone"))
        assert not any(name == depth for name, _ in scrape(metrics))


# --- what documents the metrics ----------------------------------------------------------------


def test_the_readme_carries_the_table_of_twins_as_generated() -> None:
    assert twins_markdown() in (ROOT / "README.md").read_text()


def test_the_grafana_dashboard_queries_only_metrics_that_exist() -> None:
    dashboard = json.loads((ROOT / "infra" / "grafana" / "clickstream.json").read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    known = {twin.name for twin in TWINS} | {DLQ_METRIC}
    suffixes = ("_total", "_bucket", "_sum", "_count")
    used = {
        re.sub("(" + "|".join(suffixes) + ")$", "", name)
        for expr in exprs
        for name in re.findall(r"\bclickstream_[a-z_]+", expr)
    }
    assert exprs and used <= known
    # every metric of the table has a panel
    assert known <= used
