"""The deployment's IAM policy allows exactly the calls the code makes, on the stack's
resources, with no wildcard action; the chalice stage points at the stack's outputs."""

from __future__ import annotations

import json
import re
from pathlib import Path

from infra.deploy import (
    dashboard_cognito,
    dashboard_config,
    least_privilege_policy,
    stage_config,
)

ROOT = Path(__file__).resolve().parents[2]
OUTPUTS = {
    "StreamName": "clickstream-events",
    "StreamArn": "arn:aws:kinesis:eu-west-1:111122223333:stream/clickstream-events",
    "AggregatesTableName": "clickstream-aggregates",
    "AggregatesTableArn": "arn:aws:dynamodb:eu-west-1:111122223333:table/clickstream-aggregates",
    "ArchiveBucketName": "acme-clickstream",
    "ArchiveBucketArn": "arn:aws:s3:::acme-clickstream",
    "DeadLetterQueueName": "clickstream-dlq",
    "DeadLetterQueueArn": "arn:aws:sqs:eu-west-1:111122223333:clickstream-dlq",
    "KeysTableName": "clickstream-keys",
    "KeysTableArn": "arn:aws:dynamodb:eu-west-1:111122223333:table/clickstream-keys",
    "JobsTableName": "clickstream-jobs",
    "JobsTableArn": "arn:aws:dynamodb:eu-west-1:111122223333:table/clickstream-jobs",
    "JobsQueueName": "clickstream-jobs",
    "JobsQueueArn": "arn:aws:sqs:eu-west-1:111122223333:clickstream-jobs",
    "ReadAuth": "cognito",
    "UserPoolArn": "arn:aws:cognito-idp:eu-west-1:111122223333:userpool/eu-west-1_abc",
}
# boto3 method -> IAM action, for every AWS call the deployed code can make.
CALLS = {
    "put_records": "kinesis:PutRecords",
    "get_item": "dynamodb:GetItem",
    "put_item": "dynamodb:PutItem",
    "update_item": "dynamodb:UpdateItem",
    "scan": "dynamodb:Scan",  # must not appear: listing keys is localdev/keys.py's job
    "batch_get_item": "dynamodb:BatchGetItem",
    "query": "dynamodb:Query",
    "transact_write_items": "dynamodb:UpdateItem",  # a transaction needs each item action
    "put_object": "s3:PutObject",
    "get_object": "s3:GetObject",
    "delete_objects": "s3:DeleteObject",
    "list_objects_v2": "s3:ListBucket",
    "get_paginator": "s3:ListBucket",
    "send_message": "sqs:SendMessage",
    "get_queue_url": "sqs:GetQueueUrl",
    "delete_item": "dynamodb:DeleteItem",
    "create_multipart_upload": "s3:PutObject",
    "upload_part": "s3:PutObject",
    "complete_multipart_upload": "s3:PutObject",
    "abort_multipart_upload": "s3:AbortMultipartUpload",
    "generate_presigned_url": "s3:GetObject",  # what the URL's holder may then do
}


def actions(policy: dict) -> set[str]:
    return {action for statement in policy["Statement"] for action in statement["Action"]}


def calls_in_deployed_code() -> set[str]:
    source = "\n".join(
        p.read_text()
        for folder in ("clickstream", "consumers")
        for p in (ROOT / folder).glob("*.py")
    )
    source += (ROOT / "api" / "app.py").read_text()
    return {name for name in CALLS if re.search(rf"\.{name}\(", source)}


def test_policy_has_no_wildcard_action_and_names_the_stacks_resources():
    policy = least_privilege_policy(OUTPUTS)
    assert all("*" not in action for action in actions(policy))
    for statement in policy["Statement"]:
        resources = (
            statement["Resource"]
            if isinstance(statement["Resource"], list)
            else [statement["Resource"]]
        )
        if statement["Sid"] != "Tracing":  # X-Ray has no resource-level permissions
            assert all(resource != "*" for resource in resources), statement["Sid"]


def test_policy_covers_every_call_the_code_makes():
    needed = {CALLS[name] for name in calls_in_deployed_code()}
    assert needed, "the scan found the code's AWS calls"
    assert needed <= actions(least_privilege_policy(OUTPUTS))


def test_the_api_reads_keys_and_writes_audit_items_but_cannot_scan_the_keys_table():
    policy = least_privilege_policy(OUTPUTS)
    on_keys = {
        action
        for statement in policy["Statement"]
        if OUTPUTS["KeysTableArn"] in str(statement["Resource"])
        for action in statement["Action"]
    }
    assert on_keys == {"dynamodb:GetItem", "dynamodb:PutItem"}
    assert "scan" not in calls_in_deployed_code()


def test_committed_stage_policy_has_no_wildcard_action():
    policy = json.loads((ROOT / "api" / ".chalice" / "policy-dev.json").read_text())
    assert all("*" not in action for action in actions(policy))


def test_stage_config_points_the_functions_at_the_stack_and_turns_tracing_on():
    config = stage_config(
        {"version": "2.0", "app_name": "clickstream"}, "prod", OUTPUTS, "eu-west-1"
    )
    stage = config["stages"]["prod"]
    assert stage["xray"] is True and stage["autogen_policy"] is False
    assert stage["iam_policy_file"] == "policy-prod.json"
    assert stage["environment_variables"]["CLICKSTREAM_ARCHIVE_BUCKET"] == "acme-clickstream"
    assert stage["lambda_functions"]["archiver"]["layers"][0].startswith(
        "arn:aws:lambda:eu-west-1:336392948345:"
    )
    environment = stage["environment_variables"]
    assert environment["CLICKSTREAM_KEYS_TABLE"] == "clickstream-keys"
    assert environment["CLICKSTREAM_READ_AUTH"] == "cognito"
    assert environment["CLICKSTREAM_COGNITO_USER_POOL_ARN"] == OUTPUTS["UserPoolArn"]
    # the API function reads Parquet for /export and user erasure
    assert stage["lambda_functions"]["api_handler"]["layers"]
    # GraphQL introspection is off on AWS unless asked for, and then on
    assert environment["CLICKSTREAM_GRAPHQL_INTROSPECTION"] == "false"
    asked = stage_config({}, "prod", OUTPUTS, "eu-west-1", graphql_introspection=True)
    assert (
        asked["stages"]["prod"]["environment_variables"]["CLICKSTREAM_GRAPHQL_INTROSPECTION"]
        == "true"
    )


def test_a_given_pyarrow_layer_replaces_the_managed_one_everywhere():
    mine = "arn:aws:lambda:eu-west-1:111122223333:layer:pyarrow-26:3"
    config = stage_config({}, "prod", OUTPUTS, "eu-west-1", pyarrow_layer=mine)
    functions = config["stages"]["prod"]["lambda_functions"]
    assert {
        name: functions[name]["layers"] for name in ("archiver", "compactor", "api_handler")
    } == {
        "archiver": [mine],
        "compactor": [mine],
        "api_handler": [mine],
    }


def test_stage_config_allows_the_dashboard_and_the_given_origins():
    outputs = {**OUTPUTS, "DashboardUrl": "http://site.s3-website.eu-west-1.amazonaws.com"}
    config = stage_config({}, "prod", outputs, "eu-west-1", cors_origins=["https://admin.example"])
    assert config["stages"]["prod"]["environment_variables"]["CLICKSTREAM_CORS_ORIGINS"] == (
        "http://site.s3-website.eu-west-1.amazonaws.com,https://admin.example"
    )


def test_dashboard_upload_writes_a_config_pointing_at_the_api(monkeypatch):
    import boto3
    from moto import mock_aws

    from infra.deploy import upload_dashboard

    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        s3 = boto3.client(
            "s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
        )
        s3.create_bucket(Bucket="site")
        count = upload_dashboard(s3, "site", "https://abc.execute-api.eu-west-1.amazonaws.com/api/")
        assert count == len([p for p in (ROOT / "web").rglob("*") if p.is_file()])
        config = s3.get_object(Bucket="site", Key="config.js")
        body = config["Body"].read().decode()
        assert 'apiBaseUrl: "https://abc.execute-api.eu-west-1.amazonaws.com/api"' in body
        assert config["ContentType"].startswith("text/javascript")
        assert s3.head_object(Bucket="site", Key="index.html")["CacheControl"] == "no-cache"


def test_dashboard_config_names_the_user_pool_when_reads_are_on_cognito():
    outputs = {**OUTPUTS, "UserPoolClientId": "4tq0ab12cd34ef56gh78ij90kl"}
    cognito = dashboard_cognito(outputs)
    assert cognito == {"region": "eu-west-1", "userPoolClientId": "4tq0ab12cd34ef56gh78ij90kl"}
    config = dashboard_config("https://abc.execute-api.eu-west-1.amazonaws.com/api/", cognito)
    assert '"userPoolClientId": "4tq0ab12cd34ef56gh78ij90kl"' in config
    assert '"region": "eu-west-1"' in config
    assert dashboard_cognito({k: v for k, v in OUTPUTS.items() if k != "UserPoolArn"}) is None
    assert "auth:" not in dashboard_config("https://x/api/")
