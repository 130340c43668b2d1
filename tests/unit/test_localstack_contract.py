"""What the project sends LocalStack, checked without a LocalStack process: the endpoint,
region and credentials of every client; the template's resources LocalStack Community
serves; what the local stack leaves to LocalStack that it adds to moto."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from clickstream.aws import client, reset_clients
from localdev import stack as stack_module
from localdev.localstack import COMMUNITY_TYPES, PRO_TYPES, edge_url, health_url, template_types
from localdev.stack import LoopbackStack, StackConfig

ROOT = Path(__file__).resolve().parents[2]
# Every AWS service the product and the local stack call (clickstream.aws.client's callers,
# localdev's own clients).
SERVICES = ("kinesis", "dynamodb", "s3", "sqs", "sns", "cloudwatch", "logs", "cloudformation")


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "http://localhost:4566"),
        ({"LOCALSTACK_HOST": "127.0.0.1"}, "http://127.0.0.1:4566"),
        ({"LOCALSTACK_HOST": "localstack.internal:4510"}, "http://localstack.internal:4510"),
        ({"LOCALSTACK_HOST": "127.0.0.1:4566", "USE_SSL": "true"}, "https://127.0.0.1:4566"),
    ],
)
def test_the_edge_endpoint_follows_localstacks_conventions(monkeypatch, env, expected):
    for name in ("AWS_ENDPOINT_URL", "LOCALSTACK_HOST", "USE_SSL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert edge_url() == expected
    assert health_url(edge_url()) == expected + "/_localstack/health"


@pytest.fixture
def on_localstack(monkeypatch):
    """The stack's start as it goes when LocalStack answers at LOCALSTACK_HOST (nothing is
    started: the health probe answers yes)."""
    for name in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "USE_SSL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LOCALSTACK_HOST", "127.0.0.1:4566")
    probed: list[str] = []
    monkeypatch.setattr(stack_module, "answers", lambda url, **_: probed.append(url) or True)
    stack = LoopbackStack(StackConfig(region="eu-west-1", use_localstack=True))
    stack._start_emulator()
    stack.env = stack._base_env()
    return stack, probed


def test_the_stack_probes_localstacks_health_and_points_every_client_at_its_edge(
    on_localstack, monkeypatch
):
    stack, probed = on_localstack
    assert probed == ["http://127.0.0.1:4566/_localstack/health"]
    assert (stack.emulator, stack.endpoint_url) == ("localstack", "http://127.0.0.1:4566")
    env = stack.env
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:4566"
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "eu-west-1"
    # What every process of the stack (API, consumers, tools) builds its clients from
    for name, value in env.items():
        if name.startswith("AWS_"):
            monkeypatch.setenv(name, value)
    reset_clients()
    try:
        for service in SERVICES:
            made = client(service)
            assert made.meta.endpoint_url == "http://127.0.0.1:4566", service
            assert made.meta.region_name == "eu-west-1", service
            credentials = made._request_signer._credentials
            assert (credentials.access_key, credentials.secret_key) == ("test", "test"), service
            made = stack._client(service)  # the launcher's own clients
            assert made.meta.endpoint_url == "http://127.0.0.1:4566", service
            assert made.meta.region_name == "eu-west-1", service
    finally:
        reset_clients()


def test_the_stack_leaves_alarms_to_localstack(on_localstack):
    stack, _ = on_localstack
    stack._start_alarm_evaluator()
    assert stack.alarm_evaluator is None  # LocalStack evaluates them; on moto localdev does


def test_an_explicit_endpoint_wins_and_localstack_is_not_probed(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4599")
    monkeypatch.setattr(stack_module, "answers", lambda *a, **k: pytest.fail("probed"))
    stack = LoopbackStack(StackConfig())
    stack._start_emulator()
    assert (stack.emulator, stack.endpoint_url) == ("external", "http://127.0.0.1:4599")


@pytest.mark.parametrize(
    "parameters",
    [
        # the init hook's stack without a Pro token (localstack/init/ready.d/provision.sh)
        {"Environment": "local", "CreateGlueCatalog": "false"},
        # make deploy READ_AUTH=apikey onto it; the Glue catalog off (README)
        {"Environment": "aws", "ReadAuth": "apikey", "CreateGlueCatalog": "false"},
    ],
)
def test_what_is_deployed_on_localstack_community_uses_only_community_types(parameters):
    deployed = template_types(parameters)
    assert deployed, "nothing deployed?"
    pro = {logical: kind for logical, kind in deployed.items() if kind not in COMMUNITY_TYPES}
    assert not pro, f"LocalStack Pro types in a Community deployment: {pro}"


def test_every_template_type_is_classified_and_pro_ones_sit_behind_an_option():
    every = {
        str(resource["Type"])
        for resource in yaml.safe_load(
            (ROOT / "infra" / "template.yaml").read_text().replace("!", "")
        )["Resources"].values()
    }
    assert every <= COMMUNITY_TYPES | PRO_TYPES, every - COMMUNITY_TYPES - PRO_TYPES
    # each Pro type comes with an option: Cognito reads, the Glue catalog, the KCL service
    everything = template_types(
        {
            "Environment": "aws",
            "ReadAuth": "cognito",
            "CreateGlueCatalog": "true",
            "KclConsumers": "true",
        }
    )
    assert set(everything.values()) >= PRO_TYPES


def test_the_compose_file_binds_loopback_and_runs_the_templates_services():
    compose = yaml.safe_load((ROOT / "localstack" / "docker-compose.yml").read_text())
    service = compose["services"]["localstack"]
    assert service["ports"] == ["127.0.0.1:4566:4566"]
    enabled = set(service["environment"]["SERVICES"].split(","))
    needed = {
        kind.split("::")[1].lower() for kind in template_types({"Environment": "local"}).values()
    }
    aliases = {"cloudwatch": "cloudwatch", "logs": "logs", "iam": "iam", "lambda": "lambda"}
    assert {aliases.get(name, name) for name in needed} <= enabled | {"cloudformation"}
    assert "cloudformation" in enabled
