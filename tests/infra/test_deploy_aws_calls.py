"""``make deploy`` / ``make destroy`` on AWS, every botocore call recorded and answered by a
stub (a ``before-call`` hook, as botocore.stub.Stubber uses): the only calls that change
anything are CloudFormation's, ``chalice``'s own, and content written into or emptied from
the stack's own buckets; each change set is shown before it runs and runs only when confirmed."""

from __future__ import annotations

import argparse
import io
import shutil
import subprocess
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse

from infra import deploy

ROOT = Path(__file__).resolve().parents[2]
REGION = "eu-west-1"
STACK = "clickstream"
READ_ONLY_PREFIXES = ("Describe", "Get", "List", "Head")
OUTPUTS = {
    "StreamName": "clickstream-events",
    "StreamArn": f"arn:aws:kinesis:{REGION}:111122223333:stream/clickstream-events",
    "AggregatesTableName": "clickstream-aggregates",
    "AggregatesTableArn": f"arn:aws:dynamodb:{REGION}:111122223333:table/clickstream-aggregates",
    "ArchiveBucketName": "acme-clickstream",
    "ArchiveBucketArn": "arn:aws:s3:::acme-clickstream",
    "DeadLetterQueueName": "clickstream-dlq",
    "DeadLetterQueueArn": f"arn:aws:sqs:{REGION}:111122223333:clickstream-dlq",
    "KeysTableName": "clickstream-keys",
    "KeysTableArn": f"arn:aws:dynamodb:{REGION}:111122223333:table/clickstream-keys",
    "JobsTableName": "clickstream-jobs",
    "JobsTableArn": f"arn:aws:dynamodb:{REGION}:111122223333:table/clickstream-jobs",
    "JobsQueueName": "clickstream-jobs",
    "JobsQueueArn": f"arn:aws:sqs:{REGION}:111122223333:clickstream-jobs",
    "ReadAuth": "apikey",
    "DashboardBucketName": "acme-clickstream-site",
    "DashboardUrl": "http://acme-clickstream-site.s3-website-eu-west-1.amazonaws.com",
}


class FakeAccount:
    """Answers the calls a deploy makes from a small model of one stack; records every call
    as (service, operation, params). An unexpected call fails the test."""

    def __init__(self, owned_buckets: tuple[str, ...]) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.stack_status: str | None = None
        self.owned_buckets = owned_buckets
        self._params: dict[str, Any] = {}

    def install(self, session: Any) -> None:
        session.events.register("before-parameter-build", self.record)
        session.events.register("before-call", self.answer)

    def record(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        """The call's own arguments (before-call sees only the serialized request)."""
        self._params = dict(params)

    def answer(self, model: Any, **_: Any) -> Any:
        service, params = model.service_model.service_name, self._params
        self.calls.append((service, model.name, params))
        answer = getattr(self, f"{service.replace('-', '_')}_{model.name}", None)
        assert answer is not None, f"unexpected call {service}.{model.name}"
        result = answer(params)
        if isinstance(result, tuple):
            status, body = result
            return AWSResponse("https://stub", status, {}, None), body
        return AWSResponse("https://stub", 200, {}, None), result

    def _stack(self) -> dict[str, Any]:
        return {
            "StackName": STACK,
            "StackId": f"arn:aws:cloudformation:{REGION}:111122223333:stack/{STACK}/1",
            "StackStatus": self.stack_status,
            "CreationTime": "2026-01-01T00:00:00Z",
            "Parameters": [],
            "Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in OUTPUTS.items()],
        }

    def cloudformation_DescribeStacks(self, params: dict[str, Any]) -> Any:
        if self.stack_status is None:
            error = {"Code": "ValidationError", "Message": f"Stack with id {STACK} does not exist"}
            return 400, {"Error": error}
        return {"Stacks": [self._stack()]}

    def cloudformation_CreateChangeSet(self, params: dict[str, Any]) -> Any:
        if params["ChangeSetType"] == "CREATE":
            self.stack_status = "REVIEW_IN_PROGRESS"
        return {"Id": f"arn:changeSet/{params['ChangeSetName']}", "StackId": "arn:stack"}

    def cloudformation_DescribeChangeSet(self, params: dict[str, Any]) -> Any:
        change = {"Action": "Add", "LogicalResourceId": "EventStream"}
        change["ResourceType"] = "AWS::Kinesis::Stream"
        return {
            "ChangeSetName": params["ChangeSetName"],
            "Status": "CREATE_COMPLETE",
            "Changes": [{"Type": "Resource", "ResourceChange": change}],
        }

    def cloudformation_ExecuteChangeSet(self, params: dict[str, Any]) -> Any:
        self.stack_status = "CREATE_COMPLETE"
        return {}

    def cloudformation_DeleteChangeSet(self, params: dict[str, Any]) -> Any:
        return {}

    def cloudformation_ListStackResources(self, params: dict[str, Any]) -> Any:
        summaries = [
            {
                "LogicalResourceId": f"Bucket{number}",
                "PhysicalResourceId": name,
                "ResourceType": "AWS::S3::Bucket",
                "ResourceStatus": "CREATE_COMPLETE",
                "LastUpdatedTimestamp": "2026-01-01T00:00:00Z",
            }
            for number, name in enumerate(self.owned_buckets)
        ]
        return {"StackResourceSummaries": summaries}

    def cloudformation_DeleteStack(self, params: dict[str, Any]) -> Any:
        self.stack_status = None
        return {}

    def s3_PutObject(self, params: dict[str, Any]) -> Any:
        return {}

    def s3_ListObjectVersions(self, params: dict[str, Any]) -> Any:
        version = {"Key": "events/x.parquet", "VersionId": "v1"}
        return {"Versions": [version], "IsTruncated": False}

    def s3_ListObjects(self, params: dict[str, Any]) -> Any:
        return {"Contents": [{"Key": "events/x.parquet"}], "IsTruncated": False}

    def s3_DeleteObjects(self, params: dict[str, Any]) -> Any:
        return {"Deleted": [{"Key": o["Key"]} for o in params["Delete"]["Objects"]]}

    def mutating(self) -> list[tuple[str, str, dict[str, Any]]]:
        return [c for c in self.calls if not c[1].startswith(READ_ONLY_PREFIXES)]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of api/.chalice for the deploy to write the stage's config into."""
    chalice_dir = tmp_path / "api"
    shutil.copytree(ROOT / "api" / ".chalice", chalice_dir / ".chalice", dirs_exist_ok=True)
    monkeypatch.setattr(deploy, "CHALICE_DIR", chalice_dir)
    monkeypatch.setattr(deploy, "CONFIG", chalice_dir / ".chalice" / "config.json")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "stub")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    return chalice_dir


def run_deploy(
    argv: list[str], account: FakeAccount, stdin: str = ""
) -> tuple[list[list[str]], str]:
    """``python -m infra.deploy`` with the stubbed account; the chalice commands it ran and
    what it printed."""
    commands: list[list[str]] = []
    printed = io.StringIO()

    def chalice(command: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        commands.append(command[1:])
        return subprocess.CompletedProcess(command, 0, "https://abc123.example/api/\n", "")

    def target_of(args: argparse.Namespace) -> deploy.Target:
        session = boto3.session.Session(region_name=REGION)
        account.install(session)
        confirm = deploy.accept_shown if args.yes else deploy.confirm_on_terminal
        stacks = deploy.CloudFormationStacks(session, args.stack, confirm)
        return deploy.Target(session, stacks, run=chalice)

    parser = deploy.argument_parser()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("sys.stdin", io.StringIO(stdin))
        patch.setattr("sys.stdout", printed)
        deploy.run(parser, parser.parse_args(argv), target_of)
    return commands, printed.getvalue()


UP = ["up", "--stack", STACK, "--bucket", "acme-clickstream"]
UP += ["--dashboard-bucket", "acme-clickstream-site", "--read-auth", "apikey"]


def test_deploy_changes_aws_only_through_cloudformation_change_sets(project: Path) -> None:
    # GIVEN an account without the stack
    account = FakeAccount(owned_buckets=("acme-clickstream", "acme-clickstream-site"))
    # WHEN make deploy runs with --yes
    commands, printed = run_deploy([*UP, "--yes"], account)
    # THEN the stack is made and updated by two executed change sets, and nothing else on
    # AWS is created, changed or deleted but the site's files (and chalice's API, by chalice)
    mutating = account.mutating()
    by_service = {(service, operation) for service, operation, _ in mutating}
    cloudformation = [op for service, op, _ in mutating if service == "cloudformation"]
    assert cloudformation == ["CreateChangeSet", "ExecuteChangeSet"] * 2
    assert by_service - {("cloudformation", op) for op in cloudformation} <= {
        ("s3", "PutObject"),  # the dashboard's files, into the stack's own site bucket
    }
    for service, _, params in mutating:
        if service == "s3":
            assert params["Bucket"] in account.owned_buckets, params["Bucket"]
    # chalice's deploy (with the gateway responses in its definition), then its URL
    assert commands == [
        ["-m", "infra.api_deploy", "--project-dir", str(project), "--stage", "dev"],
        ["url", "--stage", "dev"],
    ]
    # and each change set was shown before it ran
    assert printed.count("Add      EventStream") == 2, printed


def test_an_unconfirmed_change_set_is_deleted_not_run(project: Path) -> None:
    # GIVEN no --yes and a terminal that answers no
    account = FakeAccount(owned_buckets=("acme-clickstream",))
    with pytest.raises(SystemExit, match="not run"):
        run_deploy(UP, account, stdin="n\n")
    # THEN the change set was shown, deleted, never executed, and chalice never ran
    operations = [operation for _, operation, _ in account.mutating()]
    assert operations == ["CreateChangeSet", "DeleteChangeSet"]


def test_a_stack_left_in_review_is_created_by_the_next_change_set(project: Path) -> None:
    # GIVEN a stack whose first change set was never run (REVIEW_IN_PROGRESS, no resources)
    account = FakeAccount(owned_buckets=("acme-clickstream",))
    account.stack_status = "REVIEW_IN_PROGRESS"
    # WHEN make deploy runs again
    run_deploy([*UP, "--yes"], account)
    # THEN it does not wait for the review to end: its first change set creates the stack
    types = [p["ChangeSetType"] for _, op, p in account.calls if op == "CreateChangeSet"]
    assert types == ["CREATE", "UPDATE"]


def test_destroy_deletes_only_what_the_stack_and_chalice_own(project: Path) -> None:
    # GIVEN a stack that owns the archive bucket but not the site bucket its outputs name
    account = FakeAccount(owned_buckets=("acme-clickstream",))
    account.stack_status = "CREATE_COMPLETE"
    # WHEN make destroy runs
    commands, printed = run_deploy(["down", "--stack", STACK], account)
    # THEN chalice deletes its own deployment, the stack's bucket is emptied, CloudFormation
    # deletes the stack, and nothing else is touched
    assert commands == [["delete", "--stage", "dev"]]
    mutating = account.mutating()
    assert {(s, op) for s, op, _ in mutating} == {
        ("s3", "DeleteObjects"),
        ("cloudformation", "DeleteStack"),
    }
    touched = {params.get("Bucket") for service, _, params in account.calls if service == "s3"}
    assert touched == {"acme-clickstream"}
    assert f"stack {STACK} and stage dev removed" in printed


def test_aws_deploy_refuses_an_emulator_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    with pytest.raises(SystemExit):
        deploy.main(["down"])


KCL_IMAGE = f"111122223333.dkr.ecr.{REGION}.amazonaws.com/clickstream-kcl:1"
KCL = ["--kcl-image", KCL_IMAGE, "--kcl-subnets", "subnet-1,subnet-2"]
KCL += ["--kcl-security-groups", "sg-1", "--kcl-workers", "2"]


def change_set_parameters(account: FakeAccount) -> list[dict[str, str]]:
    return [
        {p["ParameterKey"]: p.get("ParameterValue", "") for p in params["Parameters"]}
        for _, operation, params in account.calls
        if operation == "CreateChangeSet"
    ]


def test_the_kcl_consumers_come_by_the_same_change_sets_and_no_iam_call(project: Path) -> None:
    # GIVEN an account without the stack
    account = FakeAccount(owned_buckets=("acme-clickstream", "acme-clickstream-site"))
    # WHEN make deploy runs with a KCL image
    run_deploy([*UP, *KCL, "--yes"], account)
    # THEN the KCL service and its roles' policies come with the stack's change sets: no IAM
    # call, nothing mutated outside CloudFormation but chalice's API and the site's files
    assert not [call for call in account.calls if call[0] in ("iam", "ecs")]
    cloudformation = [op for s, op, _ in account.mutating() if s == "cloudformation"]
    assert cloudformation == ["CreateChangeSet", "ExecuteChangeSet"] * 2
    for parameters in change_set_parameters(account):
        assert parameters["KclConsumers"] == "true"
        assert parameters["KclImage"] == KCL_IMAGE
        assert parameters["KclImageRepositoryArn"].endswith(":repository/clickstream-kcl")
        assert parameters["KclSubnetIds"] == "subnet-1,subnet-2"
        assert parameters["KclDesiredCount"] == "2"


def test_moving_a_stage_to_the_kcl_is_one_change_set(project: Path) -> None:
    # GIVEN a deployed stack
    account = FakeAccount(owned_buckets=("acme-clickstream",))
    account.stack_status = "CREATE_COMPLETE"
    # WHEN python -m infra.deploy kcl runs
    commands, _ = run_deploy(["kcl", "--stack", STACK, *KCL, "--yes"], account)
    # THEN one change set turns the option on; chalice and IAM are not called
    assert commands == []
    assert [op for _, op, _ in account.mutating()] == ["CreateChangeSet", "ExecuteChangeSet"]
    (parameters,) = change_set_parameters(account)
    assert parameters["KclConsumers"] == "true"
