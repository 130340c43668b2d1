"""A local CloudWatch alarm evaluator: moto stores alarms and never evaluates them; this
thread does, and notifies their SNS actions (its limits: docs/local-stack.md)."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

log = logging.getLogger("localdev.alarms")

STATES = ("OK", "ALARM", "INSUFFICIENT_DATA")
_ACTIONS_FOR_STATE = {
    "ALARM": "AlarmActions",
    "OK": "OKActions",
    "INSUFFICIENT_DATA": "InsufficientDataActions",
}
_OPERATORS: dict[str, tuple[Callable[[float, float], bool], str]] = {
    "GreaterThanThreshold": (lambda v, t: v > t, "greater than"),
    "GreaterThanOrEqualToThreshold": (lambda v, t: v >= t, "greater than or equal to"),
    "LessThanThreshold": (lambda v, t: v < t, "less than"),
    "LessThanOrEqualToThreshold": (lambda v, t: v <= t, "less than or equal to"),
}
_SQS_ATTRIBUTES = {
    "ApproximateNumberOfMessagesVisible": "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible": "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed": "ApproximateNumberOfMessagesDelayed",
}
_STAT_FIELDS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")


@lru_cache(maxsize=64)
def region_description(region: str) -> str:
    """'us-east-1' -> 'US East (N. Virginia)', from botocore's own endpoint data."""
    try:
        import botocore.loaders

        data = botocore.loaders.Loader().load_data("endpoints")
        for partition in data.get("partitions", []):
            described = partition.get("regions", {}).get(region, {}).get("description")
            if described:
                return str(described)
    except Exception:  # pragma: no cover - botocore data layout changed
        log.debug("no region description for %s", region, exc_info=True)
    return region


def _iso(ts: datetime) -> str:
    """CloudWatch's notification timestamp format: 2026-11-24T02:51:00.000+0000."""
    ts = ts.astimezone(UTC)
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}+0000"


def _short(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%d/%m/%y %H:%M:%S")


@dataclass(frozen=True)
class Datapoint:
    start: datetime
    value: float | None  # None = missing
    sample_count: float = 0.0


@dataclass(frozen=True)
class Evaluation:
    state: str
    reason: str
    reason_data: dict[str, Any]


@dataclass(frozen=True)
class Transition:
    alarm_name: str
    old_state: str
    new_state: str
    reason: str
    message: dict[str, Any]
    subject: str
    published_to: tuple[str, ...]


def _format_value(value: float | None) -> str:
    return "null" if value is None else repr(float(value))


def evaluate(alarm: Mapping[str, Any], datapoints: Sequence[Datapoint]) -> Evaluation | None:
    """CloudWatch's decision for one alarm over its evaluation windows (oldest first);
    None = keep the current state (TreatMissingData=ignore with no data)."""
    compare, words = _OPERATORS[alarm["ComparisonOperator"]]
    threshold = float(alarm["Threshold"])
    n = len(datapoints)
    m = int(alarm.get("DatapointsToAlarm") or n)
    treat = alarm.get("TreatMissingData") or "missing"
    present = [d for d in datapoints if d.value is not None]
    stat = alarm.get("Statistic") or alarm.get("ExtendedStatistic") or ""
    reason_data: dict[str, Any] = {
        "version": "1.0",
        "queryDate": _iso(datetime.now(tz=UTC)),
        "statistic": stat,
        "period": int((datapoints[1].start - datapoints[0].start).total_seconds())
        if n > 1
        else int(alarm["Period"]),
        "recentDatapoints": [d.value for d in present],
        "threshold": threshold,
        "evaluatedDatapoints": [
            {"timestamp": _iso(d.start), "sampleCount": d.sample_count, "value": d.value}
            for d in reversed(present)
        ],
    }
    if datapoints:
        reason_data["startDate"] = _iso(datapoints[0].start)

    if not present:
        if treat == "ignore":
            return None
        if treat == "missing":
            return Evaluation(
                "INSUFFICIENT_DATA",
                f"Insufficient Data: {n} datapoint{'s' if n != 1 else ''} were unknown.",
                reason_data,
            )
        state = "ALARM" if treat == "breaching" else "OK"
        treated = "Breaching" if treat == "breaching" else "NonBreaching"
        plural = "s" if n != 1 else ""
        return Evaluation(
            state,
            f"Threshold Crossed: no datapoints were received for {n} period{plural} and "
            f"{n} missing datapoint{plural} {'were' if n != 1 else 'was'} treated as "
            f"[{treated}].",
            reason_data,
        )

    breaching = 0
    for d in datapoints:
        if d.value is None:
            breaching += treat == "breaching"
        elif compare(d.value, threshold):
            breaching += 1
    state = "ALARM" if breaching >= m else "OK"
    shown = ", ".join(f"{_format_value(d.value)} ({_short(d.start)})" for d in reversed(present))
    if state == "ALARM":
        counted, relation, direction = breaching, words, "OK -> ALARM"
    else:
        counted, relation, direction = n - breaching, f"not {words}", "ALARM -> OK"
    reason = (
        f"Threshold Crossed: {counted} out of the last {n} datapoint{'s' if n != 1 else ''} "
        f"[{shown}] {'was' if counted == 1 else 'were'} {relation} the threshold "
        f"({_format_value(threshold)}) (minimum {m} datapoint{'s' if m != 1 else ''} "
        f"for {direction} transition)."
    )
    return Evaluation(state, reason, reason_data)


def notification(
    alarm: Mapping[str, Any],
    old_state: str,
    new_state: str,
    reason: str,
    region: str,
    account_id: str,
    changed_at: datetime,
) -> tuple[str, dict[str, Any]]:
    """(Subject, Message) exactly as CloudWatch publishes them to SNS."""
    region_name = region_description(region)
    trigger: dict[str, Any] = {
        "MetricName": alarm.get("MetricName"),
        "Namespace": alarm.get("Namespace"),
    }
    if alarm.get("ExtendedStatistic"):
        trigger["StatisticType"] = "ExtendedStatistic"
        trigger["ExtendedStatistic"] = alarm["ExtendedStatistic"]
    else:
        trigger["StatisticType"] = "Statistic"
        trigger["Statistic"] = str(alarm.get("Statistic", "")).upper()
    trigger.update(
        {
            "Unit": alarm.get("Unit"),
            "Dimensions": [
                {"value": d["Value"], "name": d["Name"]} for d in alarm.get("Dimensions", [])
            ],
            "Period": int(alarm["Period"]),
            "EvaluationPeriods": int(alarm["EvaluationPeriods"]),
        }
    )
    if alarm.get("DatapointsToAlarm"):
        trigger["DatapointsToAlarm"] = int(alarm["DatapointsToAlarm"])
    trigger.update(
        {
            "ComparisonOperator": alarm["ComparisonOperator"],
            "Threshold": float(alarm["Threshold"]),
            "TreatMissingData": alarm.get("TreatMissingData") or "missing",
            "EvaluateLowSampleCountPercentile": alarm.get("EvaluateLowSampleCountPercentile", ""),
        }
    )
    updated = alarm.get("AlarmConfigurationUpdatedTimestamp")
    message: dict[str, Any] = {
        "AlarmName": alarm["AlarmName"],
        "AlarmDescription": alarm.get("AlarmDescription"),
        "AWSAccountId": account_id,
        "AlarmConfigurationUpdatedTimestamp": _iso(updated)
        if isinstance(updated, datetime)
        else None,
        "NewStateValue": new_state,
        "NewStateReason": reason,
        "StateChangeTime": _iso(changed_at),
        "Region": region_name,
        "AlarmArn": alarm.get("AlarmArn"),
        "OldStateValue": old_state,
        "OKActions": list(alarm.get("OKActions", [])),
        "AlarmActions": list(alarm.get("AlarmActions", [])),
        "InsufficientDataActions": list(alarm.get("InsufficientDataActions", [])),
        "Trigger": trigger,
    }
    subject = f'{new_state}: "{alarm["AlarmName"]}" in {region_name}'
    if len(subject) > 100:  # SNS subjects are at most 100 characters
        subject = subject[:97] + "..."
    return subject, message


class AlarmEvaluator(threading.Thread):
    """Evaluates the emulator's alarms periodically; ``start()`` / ``stop()``.

    ``period_override`` (seconds) replaces every alarm's Period (tests use 1-2 s);
    ``alarm_name_prefix`` limits evaluation to matching alarms; ``now`` is the clock.
    """

    def __init__(
        self,
        cloudwatch: Any,
        sns: Any,
        *,
        interval: float = 10.0,
        period_override: int | None = None,
        region: str | None = None,
        account_id: str | None = None,
        alarm_name_prefix: str | None = None,
        now: Callable[[], datetime] | None = None,
        sqs: Any | None = None,
    ) -> None:
        super().__init__(name="alarm-evaluator", daemon=True)
        self.cloudwatch = cloudwatch
        self.sns = sns
        self.interval = interval
        self.period_override = period_override
        self.region = region or str(cloudwatch.meta.region_name)
        self._account_id = account_id
        self.alarm_name_prefix = alarm_name_prefix
        self._now = now or (lambda: datetime.now(tz=UTC))
        self.sqs = sqs
        self._stop_event = threading.Event()
        self.transitions: list[Transition] = []
        self.errors = 0

    # -- thread ------------------------------------------------------------------------------
    def run(self) -> None:
        while not self._stop_event.is_set():
            started = time.monotonic()
            try:
                self.evaluate_once()
            except Exception:
                self.errors += 1
                log.exception("alarm evaluation failed")
            self._stop_event.wait(max(0.0, self.interval - (time.monotonic() - started)))

    def stop(self, timeout: float = 5.0) -> None:
        self._stop_event.set()
        if self.is_alive():
            self.join(timeout)

    # -- evaluation ----------------------------------------------------------------------------
    @property
    def account_id(self) -> str:
        if self._account_id is None:
            self._account_id = self._account_from_alarms() or "123456789012"
        return self._account_id

    def _account_from_alarms(self) -> str | None:
        for alarm in self._alarms():
            arn = str(alarm.get("AlarmArn", ""))
            parts = arn.split(":")
            if len(parts) > 4 and parts[4]:
                return parts[4]
        return None

    def _alarms(self) -> list[dict[str, Any]]:
        alarms: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"AlarmTypes": ["MetricAlarm"]}
        if self.alarm_name_prefix:
            kwargs["AlarmNamePrefix"] = self.alarm_name_prefix
        while True:
            page = self.cloudwatch.describe_alarms(**kwargs)
            alarms.extend(page.get("MetricAlarms", []))
            token = page.get("NextToken")
            if not token:
                return alarms
            kwargs["NextToken"] = token

    def evaluate_once(self) -> list[Transition]:
        """One pass over every alarm; returns the transitions it made."""
        done: list[Transition] = []
        alarms = self._alarms()
        self.publish_queue_metrics(alarms)
        for alarm in alarms:
            if not alarm.get("MetricName") or alarm.get("ComparisonOperator") not in _OPERATORS:
                continue  # metric math / anomaly detection: not evaluated locally
            transition = self._evaluate_alarm(alarm)
            if transition is not None:
                done.append(transition)
        self.transitions.extend(done)
        return done

    def publish_queue_metrics(self, alarms: Sequence[Mapping[str, Any]]) -> None:
        """What SQS does on AWS: AWS/SQS ApproximateNumberOf* per watched queue."""
        sqs = self.sqs
        if sqs is None:
            return
        wanted: dict[str, set[str]] = {}
        for alarm in alarms:
            if alarm.get("Namespace") != "AWS/SQS":
                continue
            metric = str(alarm.get("MetricName", ""))
            if metric not in _SQS_ATTRIBUTES:
                continue
            for dim in alarm.get("Dimensions", []):
                if dim.get("Name") == "QueueName":
                    wanted.setdefault(str(dim["Value"]), set()).add(metric)
        for queue, metrics in wanted.items():
            try:
                url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
                attrs = sqs.get_queue_attributes(
                    QueueUrl=url, AttributeNames=[_SQS_ATTRIBUTES[m] for m in sorted(metrics)]
                )["Attributes"]
            except Exception:
                log.debug("queue %s not readable", queue, exc_info=True)
                continue
            stamp = self._now()
            self.cloudwatch.put_metric_data(
                Namespace="AWS/SQS",
                MetricData=[
                    {
                        "MetricName": metric,
                        "Dimensions": [{"Name": "QueueName", "Value": queue}],
                        "Timestamp": stamp,
                        "Value": float(attrs.get(_SQS_ATTRIBUTES[metric], 0)),
                        "Unit": "Count",
                    }
                    for metric in sorted(metrics)
                ],
            )

    def _period(self, alarm: Mapping[str, Any]) -> int:
        return int(self.period_override or alarm["Period"])

    def datapoints(self, alarm: Mapping[str, Any]) -> list[Datapoint]:
        """The alarm's statistic over its last EvaluationPeriods complete periods."""
        period = self._period(alarm)
        n = int(alarm["EvaluationPeriods"])
        now = self._now().astimezone(UTC).replace(microsecond=0)
        end = datetime.fromtimestamp(int(now.timestamp()) // period * period, tz=UTC)
        points: list[Datapoint] = []
        for i in range(n, 0, -1):
            start = end - timedelta(seconds=i * period)
            points.append(self._window(alarm, start, period))
        return points

    def _window(self, alarm: Mapping[str, Any], start: datetime, period: int) -> Datapoint:
        kwargs: dict[str, Any] = {
            "Namespace": alarm["Namespace"],
            "MetricName": alarm["MetricName"],
            "Dimensions": alarm.get("Dimensions", []),
            "StartTime": start,
            "EndTime": start + timedelta(seconds=period),
            "Period": period,
            "Statistics": list(_STAT_FIELDS),
        }
        extended = alarm.get("ExtendedStatistic")
        if extended:
            kwargs["ExtendedStatistics"] = [extended]
        if alarm.get("Unit"):
            kwargs["Unit"] = alarm["Unit"]
        response = self.cloudwatch.get_metric_statistics(**kwargs)
        points = response.get("Datapoints", [])
        if not points:
            return Datapoint(start, None)
        # an emulator that buckets from somewhere else may split the window: merge
        merged = _merge(points) if len(points) > 1 else points[0]
        if extended:
            value = merged.get("ExtendedStatistics", {}).get(extended, merged.get("Maximum"))
        else:
            value = merged.get(alarm["Statistic"])
        count = float(merged.get("SampleCount", 0.0))
        return Datapoint(start, None if value is None else float(value), count)

    def _evaluate_alarm(self, alarm: Mapping[str, Any]) -> Transition | None:
        result = evaluate(alarm, self.datapoints(alarm))
        old = str(alarm.get("StateValue", "INSUFFICIENT_DATA"))
        if result is None or result.state == old:
            return None
        name = str(alarm["AlarmName"])
        reason = result.reason
        if self.period_override:
            reason += f" [evaluated locally with a {self.period_override}s period]"
        self.cloudwatch.set_alarm_state(
            AlarmName=name,
            StateValue=result.state,
            StateReason=reason[:1023],
            StateReasonData=json.dumps(result.reason_data),
        )
        subject, message = notification(
            alarm, old, result.state, reason, self.region, self.account_id, self._now()
        )
        published: list[str] = []
        if alarm.get("ActionsEnabled", True):
            for action in alarm.get(_ACTIONS_FOR_STATE[result.state], []):
                if ":sns:" not in str(action):
                    continue  # autoscaling/EC2 actions have no local meaning
                self.sns.publish(TopicArn=action, Subject=subject, Message=json.dumps(message))
                published.append(str(action))
        log.info("alarm %s: %s -> %s (%s)", name, old, result.state, reason)
        return Transition(name, old, result.state, reason, message, subject, tuple(published))


def _merge(points: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    count = sum(float(p.get("SampleCount", 0.0)) for p in points)
    total = sum(float(p.get("Sum", 0.0)) for p in points)
    merged: dict[str, Any] = {
        "SampleCount": count,
        "Sum": total,
        "Average": total / count if count else 0.0,
        "Minimum": min(float(p.get("Minimum", 0.0)) for p in points),
        "Maximum": max(float(p.get("Maximum", 0.0)) for p in points),
    }
    return merged
