"""localdev.alarms.AlarmEvaluator: evaluates the provisioned alarms against the emulator's
metrics, moves their state and delivers CloudWatch-shaped notifications through the real
SNS topic to an SQS queue subscribed to it (SNS -> SQS delivery inside moto)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from localdev.alarms import AlarmEvaluator, Datapoint, evaluate
from localdev.emf import forward_emf_line

THROTTLED = "clickstream-local-api-putrecords-throttled"  # Sum > 0, 2 of 5 periods
NO_EVENTS = "clickstream-local-no-events"  # Sum < 1 for 10 periods, missing = breaching
TRIGGER_KEYS = {
    "MetricName",
    "Namespace",
    "StatisticType",
    "Statistic",
    "Unit",
    "Dimensions",
    "Period",
    "EvaluationPeriods",
    "DatapointsToAlarm",
    "ComparisonOperator",
    "Threshold",
    "TreatMissingData",
    "EvaluateLowSampleCountPercentile",
}


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(tz=UTC).replace(microsecond=0) - timedelta(hours=1)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def inbox(deployed: dict[str, str], aws: Any) -> Iterator[str]:
    sqs, sns = aws("sqs"), aws("sns")
    url = sqs.create_queue(QueueName=f"alarm-inbox-{time.monotonic_ns()}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sub = sns.subscribe(
        TopicArn=deployed["AlarmTopicArn"], Protocol="sqs", Endpoint=arn, ReturnSubscriptionArn=True
    )["SubscriptionArn"]
    yield url
    sns.unsubscribe(SubscriptionArn=sub)
    sqs.delete_queue(QueueUrl=url)


def _drain(aws: Any, url: str, expected: int, timeout: float = 5.0) -> list[dict[str, Any]]:
    sqs = aws("sqs")
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while len(got) < expected and time.monotonic() < deadline:
        for msg in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            got.append(json.loads(msg["Body"]))  # the SNS envelope
            sqs.delete_message(QueueUrl=url, ReceiptHandle=msg["ReceiptHandle"])
    return got


def _state(aws: Any, name: str) -> str:
    return str(
        aws("cloudwatch").describe_alarms(AlarmNames=[name])["MetricAlarms"][0]["StateValue"]
    )


def _put(aws: Any, metric: str, value: float, at: datetime) -> None:
    aws("cloudwatch").put_metric_data(
        Namespace="Clickstream",
        MetricData=[
            {
                "MetricName": metric,
                "Dimensions": [{"Name": "service", "Value": "clickstream-api"}],
                "Timestamp": at,
                "Value": value,
                "Unit": "Count",
            }
        ],
    )


def test_threshold_crossing_alarms_then_recovers(
    deployed: dict[str, str], aws: Any, inbox: str
) -> None:
    clock = Clock()
    evaluator = AlarmEvaluator(
        aws("cloudwatch"), aws("sns"), period_override=2, alarm_name_prefix=THROTTLED, now=clock
    )
    assert evaluator.evaluate_once() == []  # no data, notBreaching: stays OK
    assert _state(aws, THROTTLED) == "OK"

    # two of the last five 2-second periods see throttled PutRecords entries
    _put(aws, "PutRecordsThrottled", 4, clock.now - timedelta(seconds=3))
    _put(aws, "PutRecordsThrottled", 1, clock.now - timedelta(seconds=6))
    (transition,) = evaluator.evaluate_once()
    assert (transition.old_state, transition.new_state) == ("OK", "ALARM")
    assert _state(aws, THROTTLED) == "ALARM"
    assert evaluator.evaluate_once() == []  # no repeated notification while it stays

    clock.now += timedelta(seconds=30)  # the datapoints age out of the window
    (back,) = evaluator.evaluate_once()
    assert (back.old_state, back.new_state) == ("ALARM", "OK")
    assert _state(aws, THROTTLED) == "OK"

    envelopes = _drain(aws, inbox, 2)
    assert [e["Subject"] for e in envelopes] == [
        f'ALARM: "{THROTTLED}" in US East (N. Virginia)',
        f'OK: "{THROTTLED}" in US East (N. Virginia)',
    ]
    alarm_msg, ok_msg = (json.loads(e["Message"]) for e in envelopes)
    assert alarm_msg["AlarmName"] == THROTTLED
    assert alarm_msg["AlarmDescription"].startswith("The API saw throttled PutRecords")
    assert alarm_msg["AWSAccountId"] == "123456789012"
    assert (alarm_msg["OldStateValue"], alarm_msg["NewStateValue"]) == ("OK", "ALARM")
    assert (ok_msg["OldStateValue"], ok_msg["NewStateValue"]) == ("ALARM", "OK")
    assert alarm_msg["Region"] == "US East (N. Virginia)"
    assert alarm_msg["AlarmArn"].endswith(f":alarm:{THROTTLED}")
    assert alarm_msg["NewStateReason"].startswith("Threshold Crossed: 2 out of the last 5")
    datetime.strptime(alarm_msg["StateChangeTime"], "%Y-%m-%dT%H:%M:%S.%f%z")
    trigger = alarm_msg["Trigger"]
    assert set(trigger) == TRIGGER_KEYS
    assert trigger["MetricName"] == "PutRecordsThrottled"
    assert trigger["Namespace"] == "Clickstream"
    assert (trigger["StatisticType"], trigger["Statistic"]) == ("Statistic", "SUM")
    assert trigger["Dimensions"] == [{"value": "clickstream-api", "name": "service"}]
    assert (trigger["Period"], trigger["EvaluationPeriods"]) == (60, 5)
    assert trigger["ComparisonOperator"] == "GreaterThanThreshold"
    assert trigger["Threshold"] == 0.0
    assert trigger["TreatMissingData"] == "notBreaching"
    assert trigger["EvaluateLowSampleCountPercentile"] == ""


def test_missing_data_breaching_no_events(deployed: dict[str, str], aws: Any, inbox: str) -> None:
    clock = Clock()
    clock.now -= timedelta(hours=1)  # a span no other test wrote to
    evaluator = AlarmEvaluator(
        aws("cloudwatch"), aws("sns"), period_override=1, alarm_name_prefix=NO_EVENTS, now=clock
    )
    (silent,) = evaluator.evaluate_once()  # ten empty periods count as breaching
    assert silent.new_state == "ALARM"
    assert "treated as [Breaching]" in silent.reason

    for seconds in range(1, 11):  # events accepted in each of the last ten periods
        _put(aws, "EventsAccepted", 5, clock.now - timedelta(seconds=seconds))
    (busy,) = evaluator.evaluate_once()
    assert busy.new_state == "OK"
    subjects = [e["Subject"] for e in _drain(aws, inbox, 2)]
    assert subjects == [
        f'ALARM: "{NO_EVENTS}" in US East (N. Virginia)',
        f'OK: "{NO_EVENTS}" in US East (N. Virginia)',
    ]


def test_thread_with_emf_metrics(
    capsys: pytest.CaptureFixture[str], deployed: dict[str, str], aws: Any, inbox: str
) -> None:
    """The local pipeline end to end: Powertools EMF line -> forward_emf_line -> evaluator
    thread (real clock) -> ALARM -> notification on the subscribed queue."""
    from aws_lambda_powertools import Metrics
    from aws_lambda_powertools.metrics import MetricUnit

    name = "clickstream-local-aggregator-consumer-errors"
    emitter = Metrics(namespace="Clickstream", service="clickstream-aggregator")
    emitter.add_metric(name="ConsumerErrors", unit=MetricUnit.Count, value=1)
    capsys.readouterr()
    emitter.flush_metrics()
    line = capsys.readouterr().out.strip()
    doc = json.loads(line)
    # two datapoints, in two different one-second periods (DatapointsToAlarm is 2)
    assert forward_emf_line(line, aws("cloudwatch"))
    doc["_aws"]["Timestamp"] -= 1000
    assert forward_emf_line(json.dumps(doc), aws("cloudwatch"))

    evaluator = AlarmEvaluator(
        aws("cloudwatch"), aws("sns"), interval=0.2, period_override=1, alarm_name_prefix=name
    )
    evaluator.start()
    try:
        deadline = time.monotonic() + 8
        while _state(aws, name) != "ALARM" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _state(aws, name) == "ALARM"
    finally:
        evaluator.stop()
    assert not evaluator.is_alive()
    assert evaluator.errors == 0
    envelopes = _drain(aws, inbox, 1)
    assert envelopes and envelopes[0]["Subject"] == f'ALARM: "{name}" in US East (N. Virginia)'


def _dp(value: float | None, second: int) -> Datapoint:
    return Datapoint(datetime(2026, 1, 1, 0, 0, second, tzinfo=UTC), value, 1.0)


ALARM = {
    "AlarmName": "a",
    "ComparisonOperator": "GreaterThanOrEqualToThreshold",
    "Threshold": 10.0,
    "Period": 60,
    "EvaluationPeriods": 3,
    "Statistic": "Maximum",
}


@pytest.mark.parametrize(
    ("overrides", "values", "expected"),
    [
        ({}, [1, 10, 11], "OK"),  # 2 of 3 but M defaults to N
        ({"DatapointsToAlarm": 2}, [1, 10, 11], "ALARM"),
        ({"TreatMissingData": "missing"}, [None, None, None], "INSUFFICIENT_DATA"),
        ({"TreatMissingData": "ignore"}, [None, None, None], None),
        ({"TreatMissingData": "notBreaching"}, [None, None, None], "OK"),
        ({"TreatMissingData": "breaching"}, [None, 12, None], "ALARM"),
        ({"TreatMissingData": "notBreaching"}, [None, 12, None], "OK"),
        ({"ComparisonOperator": "LessThanThreshold"}, [1, 2, 3], "ALARM"),
        ({"ComparisonOperator": "LessThanOrEqualToThreshold"}, [10, 10, 11], "OK"),
    ],
)
def test_evaluate_rules(overrides: dict, values: list, expected: str | None) -> None:
    points = [_dp(v, i) for i, v in enumerate(values)]
    result = evaluate({**ALARM, **overrides}, points)
    assert (result.state if result else None) == expected


def test_dlq_depth_from_queue_attributes(deployed: dict[str, str], aws: Any, inbox: str) -> None:
    """moto publishes no AWS/SQS metrics; with an sqs client the evaluator samples the queue
    like AWS does, so the DLQ-depth alarm fires locally."""
    name = "clickstream-local-dlq-depth"
    clock = Clock()
    clock.now -= timedelta(hours=3)
    evaluator = AlarmEvaluator(
        aws("cloudwatch"),
        aws("sns"),
        sqs=aws("sqs"),
        period_override=1,
        alarm_name_prefix=name,
        now=clock,
    )
    sqs = aws("sqs")
    dlq = deployed["DeadLetterQueueUrl"]
    sqs.send_message(QueueUrl=dlq, MessageBody='{"KinesisBatchInfo": {"shardId": "0"}}')
    assert evaluator.evaluate_once() == []  # sampled now; judged once its period is complete
    clock.now += timedelta(seconds=1)
    (alarmed,) = evaluator.evaluate_once()
    assert alarmed.new_state == "ALARM"
    assert alarmed.message["Trigger"]["Dimensions"] == [
        {"value": "clickstream-dlq", "name": "QueueName"}
    ]
    sqs.purge_queue(QueueUrl=dlq)
    clock.now += timedelta(seconds=1)
    evaluator.evaluate_once()  # samples the empty queue
    clock.now += timedelta(seconds=1)
    (cleared,) = evaluator.evaluate_once()
    assert cleared.new_state == "OK"
    assert [e["Subject"].split(":")[0] for e in _drain(aws, inbox, 2)] == ["ALARM", "OK"]
