"""Fallbacks for the resource types an emulator's CloudFormation skips: each made (and later
deleted) directly from its resolved template properties."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from localdev.provision.deployment import error_code
from localdev.provision.resolver import ProvisionError

if TYPE_CHECKING:
    from localdev.provision.reconcile import Reconciler


# -- fallback creators: (reconciler, logical id, resolved properties) -> Ref value -------------


def _create_glue_database(rc: Reconciler, logical: str, props: dict[str, Any]) -> str:
    glue = rc.clients("glue")
    db_input = props["DatabaseInput"]
    name = db_input["Name"]
    try:
        glue.get_database(Name=name)
        glue.update_database(Name=name, DatabaseInput=db_input)
    except ClientError as exc:
        if error_code(exc) != "EntityNotFoundException":
            raise
        glue.create_database(DatabaseInput=db_input)
    return str(name)


def _create_glue_table(rc: Reconciler, logical: str, props: dict[str, Any]) -> str:
    glue = rc.clients("glue")
    database, table_input = props["DatabaseName"], props["TableInput"]
    name = table_input["Name"]
    try:
        glue.get_table(DatabaseName=database, Name=name)
        glue.update_table(DatabaseName=database, TableInput=table_input)
    except ClientError as exc:
        if error_code(exc) != "EntityNotFoundException":
            raise
        glue.create_table(DatabaseName=database, TableInput=table_input)
    return str(name)


def _create_sns_subscription(rc: Reconciler, logical: str, props: dict[str, Any]) -> str:
    attributes: dict[str, str] = {}
    for key in ("RawMessageDelivery", "FilterPolicyScope", "RedrivePolicy"):
        if key in props:
            value = props[key]
            attributes[key] = json.dumps(value) if isinstance(value, dict) else str(value).lower()
    if "FilterPolicy" in props:
        attributes["FilterPolicy"] = json.dumps(props["FilterPolicy"])
    response = rc.clients("sns").subscribe(
        TopicArn=props["TopicArn"],
        Protocol=props["Protocol"],
        Endpoint=props["Endpoint"],
        Attributes=attributes,
        ReturnSubscriptionArn=True,
    )
    return str(response["SubscriptionArn"])


def _create_bucket_policy(rc: Reconciler, logical: str, props: dict[str, Any]) -> str:
    policy = props["PolicyDocument"]
    rc.clients("s3").put_bucket_policy(
        Bucket=props["Bucket"], Policy=policy if isinstance(policy, str) else json.dumps(policy)
    )
    return str(props["Bucket"])


_ALARM_INT = ("Period", "EvaluationPeriods", "DatapointsToAlarm")
_ALARM_BOOL = ("ActionsEnabled",)


def _typed(
    props: Mapping[str, Any], integers: tuple[str, ...], booleans: tuple[str, ...]
) -> dict[str, Any]:
    """Template properties as API arguments: parameters resolve to strings, the API wants
    numbers and booleans."""
    args = dict(props)
    for key in integers:
        if key in args:
            args[key] = int(args[key])
    for key in booleans:
        if key in args:
            args[key] = str(args[key]).lower() == "true"
    return args


def alarm_api_arguments(props: Mapping[str, Any]) -> dict[str, Any]:
    """AWS::CloudWatch::Alarm properties -> PutMetricAlarm arguments (same names, typed)."""
    args = _typed(props, _ALARM_INT, _ALARM_BOOL)
    if "Threshold" in args:
        args["Threshold"] = float(args["Threshold"])
    for metric in args.get("Metrics", []):
        if "MetricStat" in metric and "Period" in metric["MetricStat"]:
            metric["MetricStat"]["Period"] = int(metric["MetricStat"]["Period"])
    return args


def _create_alarm(rc: Reconciler, logical: str, props: dict[str, Any]) -> str:
    args = alarm_api_arguments(props)
    args["AlarmName"] = alarm_name(rc, logical, props)
    rc.clients("cloudwatch").put_metric_alarm(**args)
    return str(args["AlarmName"])


_MAPPING_SETTINGS = (
    "BatchSize",
    "MaximumBatchingWindowInSeconds",
    "ParallelizationFactor",
    "BisectBatchOnFunctionError",
    "MaximumRetryAttempts",
    "MaximumRecordAgeInSeconds",
    "FunctionResponseTypes",
    "DestinationConfig",
    "TumblingWindowInSeconds",
    "FilterCriteria",
    "Enabled",
)
_MAPPING_INT = (
    "BatchSize",
    "MaximumBatchingWindowInSeconds",
    "ParallelizationFactor",
    "MaximumRetryAttempts",
    "MaximumRecordAgeInSeconds",
    "TumblingWindowInSeconds",
)


def mapping_api_arguments(props: Mapping[str, Any]) -> dict[str, Any]:
    """AWS::Lambda::EventSourceMapping properties -> CreateEventSourceMapping arguments."""
    return _typed(props, _MAPPING_INT, ("BisectBatchOnFunctionError", "Enabled"))


def find_mapping(rc: Reconciler, source_arn: str, function: str) -> dict[str, Any] | None:
    listed = rc.clients("lambda").list_event_source_mappings(
        EventSourceArn=source_arn, FunctionName=function
    )["EventSourceMappings"]
    return listed[0] if listed else None


def _create_event_source_mapping(rc: Reconciler, logical: str, props: dict[str, Any]) -> str:
    args = mapping_api_arguments(props)
    existing = find_mapping(rc, args["EventSourceArn"], args["FunctionName"])
    awslambda = rc.clients("lambda")
    if existing is None:
        return str(awslambda.create_event_source_mapping(**args)["UUID"])
    settings = {key: args[key] for key in _MAPPING_SETTINGS if key in args}
    awslambda.update_event_source_mapping(
        UUID=existing["UUID"], FunctionName=args["FunctionName"], **settings
    )
    return str(existing["UUID"])


def _mapping_exists(rc: Reconciler, uuid: str) -> bool:
    try:
        rc.clients("lambda").get_event_source_mapping(UUID=uuid)
    except ClientError as exc:
        if error_code(exc) in ("ResourceNotFoundException", "404"):
            return False
        raise
    return True


EXISTENCE_CHECKS: dict[str, Callable[[Reconciler, str], bool]] = {
    "AWS::Lambda::EventSourceMapping": _mapping_exists,
}

FALLBACK_CREATORS: dict[str, Callable[[Reconciler, str, dict[str, Any]], str]] = {
    "AWS::Lambda::EventSourceMapping": _create_event_source_mapping,
    "AWS::Glue::Database": _create_glue_database,
    "AWS::Glue::Table": _create_glue_table,
    "AWS::SNS::Subscription": _create_sns_subscription,
    "AWS::S3::BucketPolicy": _create_bucket_policy,
    "AWS::CloudWatch::Alarm": _create_alarm,
}


# -- teardown: what the fallback made, found again from the template -------------------------


def alarm_name(rc: Reconciler, logical: str, props: dict[str, Any]) -> str:
    return str(props.get("AlarmName") or f"{rc.resolver.values['AWS::StackName']}-{logical}")


def _mapping_uuid(rc: Reconciler, logical: str, props: dict[str, Any]) -> str:
    mapping = find_mapping(rc, props["EventSourceArn"], props["FunctionName"])
    if mapping is None:
        raise ProvisionError(f"{logical} is gone")
    return str(mapping["UUID"])


# The Ref value of what a fallback creator made, from its properties (nothing is created).
FALLBACK_NAMES: dict[str, Callable[[Reconciler, str, dict[str, Any]], str]] = {
    "AWS::Glue::Database": lambda rc, logical, props: str(props["DatabaseInput"]["Name"]),
    "AWS::Glue::Table": lambda rc, logical, props: str(props["TableInput"]["Name"]),
    "AWS::S3::BucketPolicy": lambda rc, logical, props: str(props["Bucket"]),
    "AWS::CloudWatch::Alarm": alarm_name,
    "AWS::Lambda::EventSourceMapping": _mapping_uuid,
}


def _ignoring(codes: tuple[str, ...], call: Callable[[], Any]) -> bool:
    """Run ``call``; False when it failed because the thing was already gone."""
    try:
        call()
    except ClientError as exc:
        if error_code(exc) in codes:
            return False
        raise
    return True


def _delete_glue_table(rc: Reconciler, logical: str, props: dict[str, Any]) -> bool:
    glue = rc.clients("glue")
    database, name = props["DatabaseName"], props["TableInput"]["Name"]
    return _ignoring(
        ("EntityNotFoundException",), lambda: glue.delete_table(DatabaseName=database, Name=name)
    )


def _delete_glue_database(rc: Reconciler, logical: str, props: dict[str, Any]) -> bool:
    glue, name = rc.clients("glue"), props["DatabaseInput"]["Name"]
    return _ignoring(("EntityNotFoundException",), lambda: glue.delete_database(Name=name))


def _delete_alarm(rc: Reconciler, logical: str, props: dict[str, Any]) -> bool:
    cloudwatch = rc.clients("cloudwatch")
    name = alarm_name(rc, logical, props)
    if not cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"]:
        return False
    cloudwatch.delete_alarms(AlarmNames=[name])
    return True


def _delete_sns_subscription(rc: Reconciler, logical: str, props: dict[str, Any]) -> bool:
    sns = rc.clients("sns")
    removed = False
    for page in sns.get_paginator("list_subscriptions").paginate():
        for subscription in page["Subscriptions"]:
            arn = str(subscription["SubscriptionArn"])
            same = (subscription["TopicArn"], subscription["Endpoint"]) == (
                props["TopicArn"],
                props["Endpoint"],
            )
            if same and arn.startswith("arn:"):  # not "PendingConfirmation"
                sns.unsubscribe(SubscriptionArn=arn)
                removed = True
    return removed


def _delete_event_source_mapping(rc: Reconciler, logical: str, props: dict[str, Any]) -> bool:
    mapping = find_mapping(rc, props["EventSourceArn"], props["FunctionName"])
    if mapping is None:
        return False
    rc.clients("lambda").delete_event_source_mapping(UUID=mapping["UUID"])
    return True


# Dependants first: a table before its database.
FALLBACK_DELETERS: dict[str, Callable[[Reconciler, str, dict[str, Any]], bool]] = {
    "AWS::Lambda::EventSourceMapping": _delete_event_source_mapping,
    "AWS::CloudWatch::Alarm": _delete_alarm,
    "AWS::SNS::Subscription": _delete_sns_subscription,
    "AWS::Glue::Table": _delete_glue_table,
    "AWS::Glue::Database": _delete_glue_database,
}
