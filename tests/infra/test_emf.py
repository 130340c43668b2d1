"""localdev.emf: a real aws-lambda-powertools Metrics flush, captured from stdout, becomes
PutMetricData on the emulator with its namespace, dimensions, values and timestamp."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from localdev.emf import forward_emf_line, parse_emf


def _powertools_line(capsys: pytest.CaptureFixture[str], **metrics: list[float]) -> str:
    emitter = Metrics(namespace="Clickstream", service="clickstream-api")
    for name, values in metrics.items():
        for value in values:
            emitter.add_metric(name=name, unit=MetricUnit.Count, value=value)
    capsys.readouterr()
    emitter.flush_metrics()
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.strip()]
    assert len(lines) == 1, lines
    return lines[0]


def _stats(cw: Any, metric: str, dims: list[dict[str, str]], at: datetime) -> list[dict]:
    return cw.get_metric_statistics(
        Namespace="Clickstream",
        MetricName=metric,
        Dimensions=dims,
        StartTime=at - timedelta(minutes=5),
        EndTime=at + timedelta(minutes=5),
        Period=600,
        Statistics=["Sum", "SampleCount", "Maximum"],
    )["Datapoints"]


def test_powertools_flush_is_forwarded(
    capsys: pytest.CaptureFixture[str], deployed: dict[str, str], aws: Any
) -> None:
    line = _powertools_line(capsys, EventsRejected=[3.0, 2.0], PutRecordsFailed=[7.0])
    doc = json.loads(line)
    assert doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service"]]
    stamp = datetime.fromtimestamp(doc["_aws"]["Timestamp"] / 1000, tz=UTC)

    cw = aws("cloudwatch")
    assert forward_emf_line(line + "\n", cw) is True

    dims = [{"Name": "service", "Value": "clickstream-api"}]
    (rejected,) = _stats(cw, "EventsRejected", dims, stamp)
    assert rejected["Sum"] == 5.0 and rejected["SampleCount"] == 2.0
    assert rejected["Unit"] == "Count"
    (failed,) = _stats(cw, "PutRecordsFailed", dims, stamp)
    assert failed["Maximum"] == 7.0
    # the datapoint carries the EMF timestamp, not the forwarding time
    assert _stats(cw, "EventsRejected", dims, stamp - timedelta(hours=1)) == []
    metrics = cw.list_metrics(Namespace="Clickstream", MetricName="EventsRejected")["Metrics"]
    assert [m["Dimensions"] for m in metrics] == [dims]


def test_multiple_dimension_sets_and_high_resolution(deployed: dict[str, str], aws: Any) -> None:
    stamp = datetime.now(tz=UTC).replace(microsecond=0)
    line = json.dumps(
        {
            "_aws": {
                "Timestamp": int(stamp.timestamp() * 1000),
                "CloudWatchMetrics": [
                    {
                        "Namespace": "Clickstream",
                        "Dimensions": [["service"], ["service", "shard"]],
                        "Metrics": [
                            {"Name": "EventsArchived", "Unit": "Count", "StorageResolution": 1}
                        ],
                    }
                ],
            },
            "service": "clickstream-archiver",
            "shard": "shardId-000000000001",
            "EventsArchived": 12,
        }
    )
    cw = aws("cloudwatch")
    assert forward_emf_line(line, cw) is True
    both = [
        {"Name": "service", "Value": "clickstream-archiver"},
        {"Name": "shard", "Value": "shardId-000000000001"},
    ]
    (point,) = _stats(cw, "EventsArchived", both, stamp)
    assert point["Sum"] == 12.0
    listed = cw.list_metrics(Namespace="Clickstream", MetricName="EventsArchived")["Metrics"]
    assert sorted(len(m["Dimensions"]) for m in listed) == [1, 2]


@pytest.mark.parametrize(
    "line",
    [
        "",
        "START RequestId: 1 Version: $LATEST",
        '{"level":"INFO","message":"batch aggregated","service":"clickstream-aggregator"}',
        '{"_aws": {"Timestamp": 1}}',
        '{"_aws": "nope"',
        "[1, 2]",
        '{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"X","Dimensions":[[]],'
        '"Metrics":[{"Name":"M"}]}]},"M":"not a number"}',
    ],
)
def test_non_emf_lines_are_ignored(line: str) -> None:
    class Exploding:
        def put_metric_data(self, **_: Any) -> None:
            raise AssertionError("must not be called")

    assert forward_emf_line(line, Exploding()) is False


def test_parse_emf_accepts_powertools_shape() -> None:
    doc = parse_emf(
        '{"_aws":{"Timestamp":1795489091851,"CloudWatchMetrics":[{"Namespace":"Clickstream",'
        '"Dimensions":[["service"]],"Metrics":[{"Name":"EventsAccepted","Unit":"Count"}]}]},'
        '"service":"clickstream-api","EventsAccepted":[3.0,2.0]}'
    )
    assert doc is not None and doc["EventsAccepted"] == [3.0, 2.0]
