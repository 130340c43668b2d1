"""Checks of the properties an emulator's CloudFormation ignores, each applying the template's
value when it is missing."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from localdev.provision.reconcile import Reconciler


# -- property checkers: (reconciler, physical id, resolved value) -> True if applied -----------


def _check_ttl(rc: Reconciler, table: str, spec: dict[str, Any]) -> bool:
    ddb = rc.clients("dynamodb")
    wanted = str(spec.get("Enabled", "false")).lower() == "true"
    current = ddb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    enabled = current.get("TimeToLiveStatus") in ("ENABLED", "ENABLING")
    if enabled == wanted and (not wanted or current.get("AttributeName") == spec["AttributeName"]):
        return False
    ddb.update_time_to_live(
        TableName=table,
        TimeToLiveSpecification={"AttributeName": spec["AttributeName"], "Enabled": wanted},
    )
    return True


def _check_public_access_block(rc: Reconciler, bucket: str, spec: dict[str, Any]) -> bool:
    s3 = rc.clients("s3")
    wanted = {k: str(v).lower() == "true" for k, v in spec.items()}
    try:
        current = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    except ClientError:
        current = {}
    if all(current.get(k) == v for k, v in wanted.items()):
        return False
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=wanted)
    return True


def lifecycle_rules_to_api(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The subset of CloudFormation lifecycle rules the template uses -> the S3 API shape."""
    api_rules: list[dict[str, Any]] = []
    for rule in rules:
        api: dict[str, Any] = {"Status": rule.get("Status", "Enabled")}
        if "Id" in rule:
            api["ID"] = rule["Id"]
        api["Filter"] = {"Prefix": rule.get("Prefix", "")}
        if "ExpirationInDays" in rule:
            api["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
        if "AbortIncompleteMultipartUpload" in rule:
            days = int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
            api["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": days}
        api_rules.append(api)
    return api_rules


def _check_lifecycle(rc: Reconciler, bucket: str, spec: dict[str, Any]) -> bool:
    s3 = rc.clients("s3")
    wanted = lifecycle_rules_to_api(spec.get("Rules", []))
    try:
        current = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    except ClientError:
        current = []
    have = {(r.get("ID"), r.get("Expiration", {}).get("Days")) for r in current}
    if all((r.get("ID"), r.get("Expiration", {}).get("Days")) in have for r in wanted):
        return False
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": wanted})
    return True


def _check_bucket_encryption(rc: Reconciler, bucket: str, spec: dict[str, Any]) -> bool:
    s3 = rc.clients("s3")
    try:
        s3.get_bucket_encryption(Bucket=bucket)
        return False
    except ClientError:
        pass
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={"Rules": spec["ServerSideEncryptionConfiguration"]},
    )
    return True


def _check_stream_mode(rc: Reconciler, stream: str, spec: dict[str, Any]) -> bool:
    kinesis = rc.clients("kinesis")
    summary = kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]
    current = summary.get("StreamModeDetails", {}).get("StreamMode", "PROVISIONED")
    if current == spec["StreamMode"]:
        return False
    kinesis.update_stream_mode(
        StreamARN=summary["StreamARN"], StreamModeDetails={"StreamMode": spec["StreamMode"]}
    )
    return True


def _check_stream_encryption(rc: Reconciler, stream: str, spec: dict[str, Any]) -> bool:
    kinesis = rc.clients("kinesis")
    summary = kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]
    if summary.get("EncryptionType", "NONE") != "NONE":
        return False
    kinesis.start_stream_encryption(
        StreamName=stream, EncryptionType=spec["EncryptionType"], KeyId=spec["KeyId"]
    )
    return True


def _check_queue_retention(rc: Reconciler, queue_url: str, value: Any) -> bool:
    sqs = rc.clients("sqs")
    url = rc.queue_url(queue_url.rstrip("/").rsplit("/", 1)[-1])
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["MessageRetentionPeriod"])
    if attrs.get("Attributes", {}).get("MessageRetentionPeriod") == str(value):
        return False
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"MessageRetentionPeriod": str(value)})
    return True


PROPERTY_CHECKERS: dict[str, dict[str, Callable[[Reconciler, str, Any], bool]]] = {
    "AWS::DynamoDB::Table": {"TimeToLiveSpecification": _check_ttl},
    "AWS::S3::Bucket": {
        "BucketEncryption": _check_bucket_encryption,
        "PublicAccessBlockConfiguration": _check_public_access_block,
        "LifecycleConfiguration": _check_lifecycle,
    },
    "AWS::Kinesis::Stream": {
        "StreamModeDetails": _check_stream_mode,
        "StreamEncryption": _check_stream_encryption,
    },
    "AWS::SQS::Queue": {"MessageRetentionPeriod": _check_queue_retention},
}
