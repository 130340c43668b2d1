"""infra/template.yaml's KCL option (KclConsumers): off by default, and when on, its roles hold
exactly the policies infra.deploy generates from the consumers' part of the functions'
least-privilege policy; the stream's Lambda mappings give way, the jobs queue's stays."""

from __future__ import annotations

from typing import Any

import pytest

from infra.deploy import ecr_repository_arn, kcl_execution_policy, kcl_task_policy
from infra.template import load_template
from localdev.provision.resolver import Resolver

REGION, ACCOUNT = "eu-west-1", "111122223333"
STREAM = "clickstream-events"
OUTPUTS = {
    "StreamName": STREAM,
    "StreamArn": f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{STREAM}",
    "AggregatesTableArn": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/clickstream-aggregates",
    "ArchiveBucketArn": "arn:aws:s3:::acme-clickstream",
    "DeadLetterQueueArn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:clickstream-dlq",
    "KeysTableArn": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/clickstream-keys",
    "JobsTableArn": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/clickstream-jobs",
    "JobsQueueArn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:clickstream-jobs",
    "KclLogGroupArn": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/ecs/clickstream-dev-kcl:*",
}
ATTRIBUTES = {
    ("EventStream", "Arn"): OUTPUTS["StreamArn"],
    ("AggregatesTable", "Arn"): OUTPUTS["AggregatesTableArn"],
    ("ArchiveBucket", "Arn"): OUTPUTS["ArchiveBucketArn"],
    ("DeadLetterQueue", "Arn"): OUTPUTS["DeadLetterQueueArn"],
    ("KclLogGroup", "Arn"): OUTPUTS["KclLogGroupArn"],
}
ECR_IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/clickstream-kcl:1.0"
PUBLIC_IMAGE = "ghcr.io/acme/clickstream-kcl:1.0"


def resolver(**parameters: str) -> Resolver:
    def ref(logical: str) -> Any:
        assert logical == "EventStream", logical
        return STREAM

    def get_att(logical: str, attribute: str) -> Any:
        return ATTRIBUTES[(logical, attribute)]

    pseudo = {"AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::Partition": "aws"}
    return Resolver(load_template(), {"Environment": "aws", **parameters}, pseudo, ref, get_att)


def kcl_on(image: str) -> Resolver:
    return resolver(
        KclConsumers="true",
        KclImage=image,
        KclImageRepositoryArn=ecr_repository_arn(image),
        CreateEventSourceMappings="true",
    )


def inline_policy(resolved: Resolver, role: str) -> dict[str, Any]:
    properties = load_template()["Resources"][role]["Properties"]
    (policy,) = properties["Policies"]
    assert policy["PolicyName"] == "clickstream-kcl"
    document: dict[str, Any] = resolved.resolve(policy["PolicyDocument"])
    return document


def active(resolved: Resolver) -> set[str]:
    resources = load_template()["Resources"]
    return {logical for logical, resource in resources.items() if resolved.active(resource)}


def test_the_kcl_service_is_off_by_default_and_the_stream_feeds_the_lambdas():
    deployed = active(resolver(CreateEventSourceMappings="true"))
    assert not {logical for logical in deployed if logical.startswith("Kcl")}
    assert {
        "AggregatorEventSourceMapping",
        "ArchiverEventSourceMapping",
        "JobsEventSourceMapping",
    } <= deployed


def test_with_the_kcl_consumers_the_streams_mappings_go_and_the_jobs_queues_stays():
    deployed = active(kcl_on(ECR_IMAGE))
    assert {"KclCluster", "KclTask", "KclService", "KclTaskRole", "KclExecutionRole"} <= deployed
    assert "JobsEventSourceMapping" in deployed
    assert not {"AggregatorEventSourceMapping", "ArchiverEventSourceMapping"} & deployed


def test_the_kcl_task_roles_policy_is_the_generated_one():
    assert inline_policy(kcl_on(ECR_IMAGE), "KclTaskRole") == kcl_task_policy(OUTPUTS)


@pytest.mark.parametrize("image", [ECR_IMAGE, PUBLIC_IMAGE])
def test_the_execution_roles_policy_is_the_generated_one_ecr_only_for_an_ecr_image(image):
    policy = inline_policy(kcl_on(image), "KclExecutionRole")
    assert policy == kcl_execution_policy(OUTPUTS, image)
    sids = [statement["Sid"] for statement in policy["Statement"]]
    assert sids == (["TaskLogs", "ImageToken", "ImagePull"] if image == ECR_IMAGE else ["TaskLogs"])


def test_no_kcl_statement_grants_a_wildcard_action_or_another_tables_leases():
    for role in ("KclTaskRole", "KclExecutionRole"):
        policy = inline_policy(kcl_on(ECR_IMAGE), role)
        actions = [a for s in policy["Statement"] for a in s["Action"]]
        assert not any("*" in action for action in actions), actions
    (leases,) = [s for s in kcl_task_policy(OUTPUTS)["Statement"] if s["Sid"] == "KclLeases"]
    prefix = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{STREAM}-"
    assert all(resource.startswith(prefix) for resource in leases["Resource"])
    assert len(leases["Resource"]) == 12  # 2 consumers x 3 tables, each with its indexes


def test_the_ecr_repository_is_derived_from_the_image():
    assert ecr_repository_arn(ECR_IMAGE) == (
        f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/clickstream-kcl"
    )
    assert ecr_repository_arn(f"{ECR_IMAGE.split(':')[0]}@sha256:ab").endswith("/clickstream-kcl")
    assert ecr_repository_arn(PUBLIC_IMAGE) == ""
