"""Alarms are observable end to end on the local stack: the API's EMF metrics reach the
emulator's CloudWatch, the local evaluator moves the template's alarms, and CloudWatch-shaped
notifications arrive through SNS on a subscribed SQS queue."""

from __future__ import annotations

import json
import time

import pytest

from tests.conftest import start_loopback_stack

pytestmark = pytest.mark.integration
PERIOD_S = 2  # every alarm's period on this stack (the template's are 60 s)


@pytest.fixture
def alarm_stack(tmp_path):
    stack = start_loopback_stack(
        tmp_path / "stack",
        {"CLICKSTREAM_ALARM_EVALUATION_S": "1", "CLICKSTREAM_ALARM_PERIOD_S": "2"},
    )
    try:
        yield stack
    finally:
        stack.stop()


def subscribe_queue(stack) -> str:
    sqs, sns = stack.client("sqs"), stack.client("sns")
    queue_url = sqs.create_queue(QueueName="alarm-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    sns.subscribe(
        TopicArn=stack.resources["AlarmTopicArn"],
        Protocol="sqs",
        Endpoint=queue_arn,
        Attributes={"RawMessageDelivery": "false"},
    )
    return queue_url


def notifications(stack, queue_url: str, seen: list[dict]) -> list[dict]:
    sqs = stack.client("sqs")
    for message in sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
    ).get("Messages", []):
        envelope = json.loads(message["Body"])
        seen.append({"subject": envelope.get("Subject"), **json.loads(envelope["Message"])})
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return seen


def alarm_state(stack) -> str:
    alarms = stack.client("cloudwatch").describe_alarms()["MetricAlarms"]
    return next(a["StateValue"] for a in alarms if a["AlarmName"].endswith("-no-events"))


def send_until(stack, done, timeout: float = 60) -> None:
    """Keep traffic flowing (the API's EMF lines become CloudWatch datapoints) until done()."""
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        stack.post_events([{"event_type": "page_view", "session_id": "alarm-test"}] * 5)
        time.sleep(0.5)
    assert done(), "condition not met while sending traffic"


def test_no_events_alarm_fires_when_traffic_stops_and_clears_when_it_resumes(alarm_stack):
    queue_url = subscribe_queue(alarm_stack)
    seen: list[dict] = []

    def state_messages(state: str) -> list[dict]:
        notifications(alarm_stack, queue_url, seen)
        return [
            m for m in seen if m["AlarmName"].endswith("-no-events") and m["NewStateValue"] == state
        ]

    # GIVEN traffic flowing for several periods, the alarm is OK with datapoints in its window
    warm_until = time.monotonic() + 4 * PERIOD_S
    send_until(
        alarm_stack, lambda: time.monotonic() > warm_until and alarm_state(alarm_stack) == "OK"
    )
    while notifications(alarm_stack, queue_url, []):
        pass  # drain what the start-up transitions published before this point
    seen.clear()
    stopped = time.monotonic()

    # WHEN the traffic stops, THEN the ALARM notification arrives on the subscribed queue once
    # the datapoints have aged out of the evaluation window
    alarm = alarm_stack.wait_until(lambda: state_messages("ALARM"), timeout=90)[0]
    assert time.monotonic() - stopped >= 2 * PERIOD_S, (
        "the alarm fired while data was in its window"
    )
    assert alarm["subject"].startswith('ALARM: "') and "no-events" in alarm["subject"]
    assert alarm["OldStateValue"] == "OK"
    assert alarm["Trigger"]["MetricName"] == "EventsAccepted"
    assert alarm["Trigger"]["Namespace"] == "Clickstream"
    assert {"name": "service", "value": "clickstream-api"} in alarm["Trigger"]["Dimensions"]
    assert alarm["AlarmArn"].startswith("arn:aws:cloudwatch:")

    # WHEN events flow again, THEN the OK notification arrives after recovery
    send_until(alarm_stack, lambda: state_messages("OK"))
    assert state_messages("OK")[0]["OldStateValue"] == "ALARM"
    metrics = alarm_stack.client("cloudwatch").list_metrics(
        Namespace="Clickstream", MetricName="EventsAccepted"
    )
    assert metrics["Metrics"], "the API's EMF metrics reached the emulator"
