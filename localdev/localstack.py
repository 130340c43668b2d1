"""What the local stack sends LocalStack, in one place: the edge endpoint from LocalStack's own
conventions (``localstack-client``: ``LOCALSTACK_HOST``, the edge port 4566, ``USE_SSL``), the
region and the credentials every client uses, and what of ``infra/template.yaml`` LocalStack
Community serves. ``tests/unit/test_localstack_contract.py`` checks it all without a
LocalStack process; ``localstack/README.md`` says what was and was not run."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from localstack_client import config as localstack_config

from infra.template import load_template
from localdev.provision.resolver import Resolver

# LocalStack accepts any credentials; "test" is its documented default (account 000000000000).
CREDENTIALS = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}
HEALTH_PATH = "/_localstack/health"

# CloudFormation resource types in infra/template.yaml, by LocalStack edition (LocalStack's
# resource coverage documentation; not run here). Pro-only ones must stay off on Community.
COMMUNITY_TYPES = frozenset(
    {
        "AWS::CloudWatch::Alarm",
        "AWS::DynamoDB::Table",
        "AWS::IAM::Role",
        "AWS::Kinesis::Stream",
        "AWS::Lambda::EventSourceMapping",
        "AWS::Logs::LogGroup",
        "AWS::S3::Bucket",
        "AWS::S3::BucketPolicy",
        "AWS::SNS::Subscription",
        "AWS::SNS::Topic",
        "AWS::SQS::Queue",
    }
)
PRO_TYPES = frozenset(
    {
        "AWS::Cognito::UserPool",
        "AWS::Cognito::UserPoolClient",
        "AWS::Cognito::UserPoolGroup",
        "AWS::ECS::Cluster",
        "AWS::ECS::Service",
        "AWS::ECS::TaskDefinition",
        "AWS::Glue::Database",
        "AWS::Glue::Table",
    }
)


def edge_url() -> str:
    """LocalStack's edge endpoint, as ``localstack-client`` builds it from the environment:
    ``LOCALSTACK_HOST`` (host[:port], port 4566 by default), ``USE_SSL``; ``AWS_ENDPOINT_URL``
    when set (the stack uses that one before it looks for LocalStack at all)."""
    return str(localstack_config.get_service_endpoint("edge"))


def health_url(edge: str) -> str:
    return f"{edge}{HEALTH_PATH}"


def template_types(parameters: Mapping[str, str]) -> dict[str, str]:
    """The template's resources deployed with ``parameters`` (their Condition holding): logical
    id -> type."""
    template = load_template()
    resolver = Resolver(template, parameters, {"AWS::Region": "us-east-1"}, str, _no_att)
    return {
        logical: str(resource["Type"])
        for logical, resource in template["Resources"].items()
        if "Condition" not in resource or resolver.condition(resource["Condition"])
    }


def _no_att(logical: str, attribute: str) -> Any:
    raise KeyError(f"{logical}.{attribute}: conditions use no Fn::GetAtt")
