"""Every CloudWatch alarm of infra/template.yaml exists on the emulator after provisioning,
watches the right metric with the right threshold, and notifies the alarm topic."""

from __future__ import annotations

from typing import Any

import pytest

P = "clickstream-local-"

# name suffix -> (namespace, metric, dimensions, statistic, threshold, operator, missing data)
EXPECTED: dict[str, tuple[str, str, dict[str, str], str, float, str, str]] = {
    "stream-iterator-age": (
        "AWS/Kinesis",
        "GetRecords.IteratorAgeMilliseconds",
        {"StreamName": "clickstream-events"},
        "Maximum",
        60000.0,
        "GreaterThanThreshold",
        "notBreaching",
    ),
    "aggregator-errors": (
        "AWS/Lambda",
        "Errors",
        {"FunctionName": "clickstream-dev-aggregator"},
        "Sum",
        0.0,
        "GreaterThanThreshold",
        "notBreaching",
    ),
    "aggregator-throttles": (
        "AWS/Lambda",
        "Throttles",
        {"FunctionName": "clickstream-dev-aggregator"},
        "Sum",
        0.0,
        "GreaterThanThreshold",
        "notBreaching",
    ),
    "archiver-errors": (
        "AWS/Lambda",
        "Errors",
        {"FunctionName": "clickstream-dev-archiver"},
        "Sum",
        0.0,
        "GreaterThanThreshold",
        "notBreaching",
    ),
    "archiver-throttles": (
        "AWS/Lambda",
        "Throttles",
        {"FunctionName": "clickstream-dev-archiver"},
        "Sum",
        0.0,
        "GreaterThanThreshold",
        "notBreaching",
    ),
    "api-5xx-rate": (
        "AWS/ApiGateway",
        "5XXError",
        {"ApiName": "clickstream"},
        "Average",
        0.05,
        "GreaterThanThreshold",
        "notBreaching",
    ),
    "api-latency-p95": (
        "AWS/ApiGateway",
        "Latency",
        {"ApiName": "clickstream"},
        "p95",
        1000.0,
        "GreaterThanThreshold",
        "notBreaching",
    ),
    "dlq-depth": (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        {"QueueName": "clickstream-dlq"},
        "Maximum",
        0.0,
        "GreaterThanThreshold",
        "notBreaching",
    ),
    "jobs-dlq-depth": (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        {"QueueName": "clickstream-jobs-dlq"},
        "Maximum",
        0.0,
        "GreaterThanThreshold",
        "notBreaching",
    ),
    "stream-write-throttled": (
        "AWS/Kinesis",
        "WriteProvisionedThroughputExceeded",
        {"StreamName": "clickstream-events"},
        "Sum",
        0.0,
        "GreaterThanThreshold",
        "notBreaching",
    ),
    "api-putrecords-throttled": (
        "Clickstream",
        "PutRecordsThrottled",
        {"service": "clickstream-api"},
        "Sum",
        0.0,
        "GreaterThanThreshold",
        "notBreaching",
    ),
    "aggregator-consumer-errors": (
        "Clickstream",
        "ConsumerErrors",
        {"service": "clickstream-aggregator"},
        "Sum",
        0.0,
        "GreaterThanThreshold",
        "notBreaching",
    ),
    "archiver-consumer-errors": (
        "Clickstream",
        "ConsumerErrors",
        {"service": "clickstream-archiver"},
        "Sum",
        0.0,
        "GreaterThanThreshold",
        "notBreaching",
    ),
    "no-events": (
        "Clickstream",
        "EventsAccepted",
        {"service": "clickstream-api"},
        "Sum",
        1.0,
        "LessThanThreshold",
        "breaching",
    ),
}


@pytest.fixture(scope="module")
def alarms(deployed: dict[str, str], aws: Any) -> dict[str, dict[str, Any]]:
    found = aws("cloudwatch").describe_alarms(AlarmNamePrefix=P)["MetricAlarms"]
    return {a["AlarmName"][len(P) :]: a for a in found}


def test_alarm_set_is_complete(alarms: dict[str, dict[str, Any]], deployed: dict[str, str]):
    assert set(alarms) == set(EXPECTED)
    assert sorted(deployed["AlarmNames"].split(",")) == sorted(P + n for n in EXPECTED)
    # moto's CloudFormation has no AWS::CloudWatch::Alarm: provision() created them itself
    assert "NoEventsAlarm (AWS::CloudWatch::Alarm)" in deployed["ProvisionedByFallback"]


@pytest.mark.parametrize("suffix", sorted(EXPECTED))
def test_alarm_definition(
    suffix: str, alarms: dict[str, dict[str, Any]], deployed: dict[str, str]
) -> None:
    namespace, metric, dims, stat, threshold, operator, missing = EXPECTED[suffix]
    alarm = alarms[suffix]
    assert alarm["Namespace"] == namespace
    assert alarm["MetricName"] == metric
    assert {d["Name"]: d["Value"] for d in alarm["Dimensions"]} == dims
    assert alarm.get("Statistic", alarm.get("ExtendedStatistic")) == stat
    assert alarm["Threshold"] == threshold
    assert alarm["ComparisonOperator"] == operator
    assert alarm["TreatMissingData"] == missing
    assert alarm["ActionsEnabled"] is True
    assert alarm["AlarmActions"] == [deployed["AlarmTopicArn"]]
    assert alarm["OKActions"] == [deployed["AlarmTopicArn"]]


def test_no_events_window_is_a_parameter(alarms: dict[str, dict[str, Any]]) -> None:
    assert alarms["no-events"]["EvaluationPeriods"] == 10  # NoEventsMinutes default
    assert alarms["no-events"]["Period"] == 60
