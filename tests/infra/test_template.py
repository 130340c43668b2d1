"""infra/template.yaml: cfn-lint clean, and deployable on moto's server through
localdev.provision with every resource really there."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from clickstream.archive import PARQUET_SCHEMA
from infra.template import load_template
from localdev.provision import provision, provision_stack

TEMPLATE = Path(__file__).resolve().parents[2] / "infra" / "template.yaml"

GLUE_TYPES = {"string": "string", "timestamp[ms, tz=UTC]": "timestamp", "double": "double"}
GLUE_TYPES |= {"int32": "int", "bool": "boolean"}
# The Glue table must say what the archiver writes, column by column, in its order.
PARQUET_COLUMNS = [(field.name, GLUE_TYPES[str(field.type)]) for field in PARQUET_SCHEMA]


def test_cfn_lint_clean() -> None:
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    result = subprocess.run(
        [str(cfn_lint), str(TEMPLATE)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_glue_columns_match_parquet_schema() -> None:
    table = load_template(TEMPLATE)["Resources"]["EventsTable"]["Properties"]["TableInput"]
    columns = [(c["Name"], c["Type"]) for c in table["StorageDescriptor"]["Columns"]]
    assert columns == PARQUET_COLUMNS
    try:
        from clickstream.archive import PARQUET_SCHEMA
    except ImportError:  # pragma: no cover - archive module owned by another part
        return
    assert [c[0] for c in columns] == PARQUET_SCHEMA.names


def test_outputs(deployed: dict[str, str], moto_endpoint: str) -> None:
    assert deployed["StreamName"] == "clickstream-events"
    assert deployed["StreamArn"].endswith(":stream/clickstream-events")
    assert deployed["AggregatesTableName"] == "clickstream-aggregates"
    assert deployed["KeysTableName"] == "clickstream-keys"
    assert deployed["ReadAuth"] == "apikey"
    assert "UserPoolArn" not in deployed  # Cognito only on AWS with ReadAuth=cognito
    assert deployed["CheckpointsTableName"] == "clickstream-checkpoints"
    assert deployed["ArchiveBucketName"] == "clickstream-archive"
    assert deployed["DeadLetterQueueUrl"].startswith(moto_endpoint)
    assert deployed["DeadLetterQueueArn"].endswith(":clickstream-dlq")
    assert deployed["AlarmTopicArn"].endswith(":clickstream-alarms")
    assert deployed["GlueDatabaseName"] == "clickstream"
    assert deployed["GlueTableName"] == "events"


def test_fallback_report_names_what_moto_lacks(deployed: dict[str, str]) -> None:
    # moto's CloudFormation has no AWS::Glue::* (nor CloudWatch alarms, SNS subscriptions,
    # bucket policies); those are created from the template's values by provision().
    fallback = deployed["ProvisionedByFallback"]
    assert "GlueDatabase (AWS::Glue::Database)" in fallback
    assert "EventsTable (AWS::Glue::Table)" in fallback
    assert "EventStream" not in fallback
    props = deployed["PropertiesAppliedByFallback"].split(",")
    assert "AggregatesTable.TimeToLiveSpecification" in props
    assert "ArchiveBucket.LifecycleConfiguration" in props
    assert "ArchiveBucket.PublicAccessBlockConfiguration" in props


def test_stream(deployed: dict[str, str], aws: Any) -> None:
    summary = aws("kinesis").describe_stream_summary(StreamName=deployed["StreamName"])[
        "StreamDescriptionSummary"
    ]
    assert summary["StreamStatus"] == "ACTIVE"
    assert summary["OpenShardCount"] == 1  # the template's default
    assert summary["StreamModeDetails"]["StreamMode"] == "PROVISIONED"


def test_tables(deployed: dict[str, str], aws: Any) -> None:
    ddb = aws("dynamodb")
    table = ddb.describe_table(TableName="clickstream-aggregates")["Table"]
    assert {(k["AttributeName"], k["KeyType"]) for k in table["KeySchema"]} == {
        ("pk", "HASH"),
        ("sk", "RANGE"),
    }
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    ttl = ddb.describe_time_to_live(TableName="clickstream-aggregates")["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}
    checkpoints = ddb.describe_table(TableName="clickstream-checkpoints")["Table"]
    assert checkpoints["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    keys = ddb.describe_table(TableName=deployed["KeysTableName"])["Table"]
    assert keys["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert keys["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    jobs = ddb.describe_table(TableName=deployed["JobsTableName"])["Table"]
    assert jobs["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    ttl = ddb.describe_time_to_live(TableName=deployed["JobsTableName"])["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}


def test_bucket(deployed: dict[str, str], aws: Any) -> None:
    s3 = aws("s3")
    bucket = deployed["ArchiveBucketName"]
    enc = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]
    assert enc["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    pab = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert all(pab.values()) and len(pab) == 4
    rules = {
        r["Filter"]["Prefix"]: r["Expiration"]["Days"]
        for r in s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    }
    assert rules == {"bad/": 30, "raw/": 7, "exports/": 7}
    s3.put_object(Bucket=bucket, Key="events/probe", Body=b"x")  # usable over local http


def test_queue_and_topic(deployed: dict[str, str], aws: Any) -> None:
    attrs = aws("sqs").get_queue_attributes(
        QueueUrl=deployed["DeadLetterQueueUrl"], AttributeNames=["All"]
    )["Attributes"]
    assert attrs["MessageRetentionPeriod"] == "1209600"
    assert attrs["QueueArn"] == deployed["DeadLetterQueueArn"]
    topics = [t["TopicArn"] for t in aws("sns").list_topics()["Topics"]]
    assert deployed["AlarmTopicArn"] in topics
    jobs = aws("sqs").get_queue_attributes(
        QueueUrl=deployed["JobsQueueUrl"], AttributeNames=["All"]
    )["Attributes"]
    assert jobs["QueueArn"] == deployed["JobsQueueArn"]
    assert jobs["VisibilityTimeout"] == "5400"  # six times the jobs function's 900 s
    redrive = json.loads(jobs["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"].endswith(":clickstream-jobs-dlq")
    assert int(redrive["maxReceiveCount"]) == 5


def test_glue_table_with_partition_projection(deployed: dict[str, str], aws: Any) -> None:
    table = aws("glue").get_table(DatabaseName="clickstream", Name="events")["Table"]
    params = table["Parameters"]
    assert params["projection.enabled"] == "true"
    for key in ("year", "month", "day", "hour"):
        assert params[f"projection.{key}.type"] == "integer"
    for key in ("month", "day", "hour"):
        assert params[f"projection.{key}.digits"] == "2"
    assert params["storage.location.template"] == (
        "s3://clickstream-archive/events/year=${year}/month=${month}/day=${day}/hour=${hour}/"
    )
    assert [p["Name"] for p in table["PartitionKeys"]] == ["year", "month", "day", "hour"]
    sd = table["StorageDescriptor"]
    assert sd["Location"] == "s3://clickstream-archive/events/"
    assert sd["SerdeInfo"]["SerializationLibrary"].endswith("ParquetHiveSerDe")
    assert [(c["Name"], c["Type"]) for c in sd["Columns"]] == PARQUET_COLUMNS


def test_idempotent(deployed: dict[str, str], moto_endpoint: str) -> None:
    again = provision(moto_endpoint)
    assert again["StackStatus"] == "UPDATE_COMPLETE"
    assert again["PropertiesAppliedByFallback"] == ""  # already applied the first time
    stable = {k: v for k, v in deployed.items() if k not in ("StackStatus",)}
    stable.pop("PropertiesAppliedByFallback")
    again.pop("PropertiesAppliedByFallback")
    again.pop("StackStatus")
    assert again == stable


def test_aws_like_parameters(moto_endpoint: str, aws: Any) -> None:
    """Environment=aws, on-demand stream, an alarm e-mail: conditions and fallbacks follow."""
    result = provision_stack(
        moto_endpoint,
        parameters={
            "Environment": "aws",
            "StreamMode": "ON_DEMAND",
            "StreamName": "aws-like-events",
            "AggregatesTableName": "aws-like-aggregates",
            "KeysTableName": "aws-like-keys",
            "JobsTableName": "aws-like-jobs",
            "JobsQueueName": "aws-like-jobs",
            "ArchiveBucketName": "aws-like-archive",
            "DeadLetterQueueName": "aws-like-dlq",
            "AlarmTopicName": "aws-like-alarms",
            "AlarmEmail": "ops@example.com",
            "GlueDatabaseName": "aws_like",
        },
        stack_name="aws-like",
    )
    assert "CheckpointsTableName" not in result.outputs
    assert "AlarmEmailSubscription (AWS::SNS::Subscription)" in result.fallback_resources
    assert "ArchiveBucketPolicy (AWS::S3::BucketPolicy)" in result.fallback_resources
    assert "EventStream.StreamModeDetails" in result.fallback_properties
    summary = aws("kinesis").describe_stream_summary(StreamName="aws-like-events")[
        "StreamDescriptionSummary"
    ]
    assert summary["StreamModeDetails"]["StreamMode"] == "ON_DEMAND"
    assert summary["EncryptionType"] == "KMS"
    subs = aws("sns").list_subscriptions_by_topic(TopicArn=result.outputs["AlarmTopicArn"])
    assert [(s["Protocol"], s["Endpoint"]) for s in subs["Subscriptions"]] == [
        ("email", "ops@example.com")
    ]
    policy = json.loads(aws("s3").get_bucket_policy(Bucket="aws-like-archive")["Policy"])
    assert policy["Statement"][0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_without_glue_catalog(moto_endpoint: str, aws: Any) -> None:
    """CreateGlueCatalog=false (emulators without Glue, e.g. LocalStack Community)."""
    result = provision_stack(
        moto_endpoint,
        parameters={
            "CreateGlueCatalog": "false",
            "StreamName": "noglue-events",
            "AggregatesTableName": "noglue-aggregates",
            "CheckpointsTableName": "noglue-checkpoints",
            "KeysTableName": "noglue-keys",
            "JobsTableName": "noglue-jobs",
            "JobsQueueName": "noglue-jobs",
            "ArchiveBucketName": "noglue-archive",
            "DeadLetterQueueName": "noglue-dlq",
            "AlarmTopicName": "noglue-alarms",
            "GlueDatabaseName": "noglue",
        },
        stack_name="noglue",
    )
    assert "GlueDatabaseName" not in result.outputs
    assert not [r for r in result.fallback_resources if "Glue" in r]
    names = [d["Name"] for d in aws("glue").get_databases()["DatabaseList"]]
    assert "noglue" not in names
    # like `aws cloudformation deploy`: a re-run without parameters keeps the stack's values
    again = provision_stack(moto_endpoint, stack_name="noglue")
    assert again.outputs["StreamName"] == "noglue-events"
    assert "GlueDatabaseName" not in again.outputs
