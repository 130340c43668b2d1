"""``make deploy`` / ``make destroy``: the product on an AWS account, through CloudFormation
change sets and ``chalice deploy``; the steps are in docs/deploy.md."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import boto3

from clickstream.addresses import parse_networks
from infra import cloudformation
from infra.cloudformation import Change
from infra.template import TEMPLATE_PATH as TEMPLATE
from infra.template import load_template, stack_parameters

ROOT = Path(__file__).resolve().parent.parent
CHALICE_DIR = ROOT / "api"
CONFIG = CHALICE_DIR / ".chalice" / "config.json"
# pyarrow for the functions that read or write Parquet: AWS's managed "AWS SDK for pandas"
# layer (published by account 336392948345 in every commercial region). --pyarrow-layer
# overrides it, e.g. with a newer version or a layer of your own.
PANDAS_LAYER = "arn:aws:lambda:{region}:336392948345:layer:AWSSDKPandas-Python311:21"

STAGE_ENVIRONMENT = {
    "CLICKSTREAM_STREAM_NAME": "StreamName",
    "CLICKSTREAM_AGGREGATES_TABLE": "AggregatesTableName",
    "CLICKSTREAM_ARCHIVE_BUCKET": "ArchiveBucketName",
    "CLICKSTREAM_DLQ_NAME": "DeadLetterQueueName",
    "CLICKSTREAM_KEYS_TABLE": "KeysTableName",
    "CLICKSTREAM_READ_AUTH": "ReadAuth",
    "CLICKSTREAM_VISITOR_SALT": "VisitorSaltSecret",
    "CLICKSTREAM_JOBS_TABLE": "JobsTableName",
    "CLICKSTREAM_JOBS_QUEUE": "JobsQueueName",
}


def least_privilege_policy(outputs: dict[str, str]) -> dict[str, Any]:
    """Only the actions the code calls, on only the stack's resources. X-Ray's two actions
    have no resource-level permissions, hence their ``*`` resource (never a ``*`` action)."""
    stream, table = outputs["StreamArn"], outputs["AggregatesTableArn"]
    bucket, queue = outputs["ArchiveBucketArn"], outputs["DeadLetterQueueArn"]
    keys = outputs["KeysTableArn"]
    jobs_table, jobs_queue = outputs["JobsTableArn"], outputs["JobsQueueArn"]
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "IngestToStream",
                "Effect": "Allow",
                "Action": ["kinesis:PutRecords"],
                "Resource": stream,
            },
            {
                "Sid": "ConsumeStream",
                "Effect": "Allow",
                "Action": [
                    "kinesis:GetRecords",
                    "kinesis:GetShardIterator",
                    "kinesis:DescribeStream",
                    "kinesis:DescribeStreamSummary",
                    "kinesis:ListShards",
                ],
                "Resource": stream,
            },
            {
                "Sid": "Aggregates",
                "Effect": "Allow",
                "Action": [
                    "dynamodb:GetItem",
                    "dynamodb:BatchGetItem",
                    "dynamodb:Query",
                    "dynamodb:UpdateItem",
                    "dynamodb:PutItem",
                ],
                "Resource": table,
            },
            {
                # Key lookups on ingest/read, and the audit items of user erasures. Listing
                # and revoking keys (a Scan) is an operator's job (localdev/keys.py).
                "Sid": "ApiKeys",
                "Effect": "Allow",
                "Action": ["dynamodb:GetItem", "dynamodb:PutItem"],
                "Resource": keys,
            },
            {
                "Sid": "ArchiveObjects",
                "Effect": "Allow",
                "Action": ["s3:PutObject", "s3:GetObject", "s3:DeleteObject"],
                "Resource": [f"{bucket}/events/*", f"{bucket}/bad/*"],
            },
            {
                # Export jobs write their file (a multipart upload) and the API presigns it.
                "Sid": "Exports",
                "Effect": "Allow",
                "Action": ["s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload"],
                "Resource": f"{bucket}/exports/*",
            },
            {
                # Job state and the archive hours' locks (the compactor's, an erasure's).
                "Sid": "Jobs",
                "Effect": "Allow",
                "Action": [
                    "dynamodb:GetItem",
                    "dynamodb:PutItem",
                    "dynamodb:UpdateItem",
                    "dynamodb:DeleteItem",
                ],
                "Resource": jobs_table,
            },
            {
                # The API and the jobs function queue steps; the jobs function's event
                # source mapping receives and deletes them.
                "Sid": "JobSteps",
                "Effect": "Allow",
                "Action": [
                    "sqs:SendMessage",
                    "sqs:GetQueueUrl",
                    "sqs:ReceiveMessage",
                    "sqs:DeleteMessage",
                    "sqs:GetQueueAttributes",
                ],
                "Resource": jobs_queue,
            },
            {
                "Sid": "ArchiveListing",
                "Effect": "Allow",
                "Action": ["s3:ListBucket"],
                "Resource": bucket,
            },
            {
                "Sid": "DeadLetters",
                "Effect": "Allow",
                "Action": ["sqs:SendMessage", "sqs:GetQueueUrl"],
                "Resource": queue,
            },
            {
                "Sid": "Tracing",
                "Effect": "Allow",
                "Action": ["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
                "Resource": "*",
            },
            {
                "Sid": "Logs",
                "Effect": "Allow",
                "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": "arn:aws:logs:*:*:log-group:/aws/lambda/clickstream-*",
            },
        ],
    }


KCL_CONSUMERS = ("aggregator", "archiver")
KCL_STATEMENTS = ("ConsumeStream", "Aggregates", "ArchiveObjects", "ArchiveListing", "DeadLetters")


def kcl_lease_tables(stream_name: str) -> list[str]:
    """The tables the KCL makes for each consumer's application (consumers/kcl_daemon.py
    lease_tables): leases, coordinator state, worker metrics."""
    return [
        f"{stream_name}-{consumer}-kcl{suffix}"
        for consumer in KCL_CONSUMERS
        for suffix in ("", "-CoordinatorState", "-WorkerMetricStats")
    ]


def kcl_task_policy(outputs: dict[str, str]) -> dict[str, Any]:
    """The KCL consumers' task role: the consumers' statements of
    :func:`least_privilege_policy` (the stream, the aggregates, the archive, dead letters)
    plus the KCL's own tables, which the template makes and the daemon keeps (UpdateTable: a
    KCL that finds the lease table's GSI missing adds it). The daemon publishes no CloudWatch
    metrics (metricsLevel NONE); the processors' EMF goes to their logs.
    infra/template.yaml's KclTaskRole holds this policy (tests/unit/test_kcl_template.py)."""
    table_prefix = outputs["AggregatesTableArn"].rsplit("/", 1)[0]
    lease_tables = [f"{table_prefix}/{name}" for name in kcl_lease_tables(outputs["StreamName"])]
    consumer = {
        statement["Sid"]: statement
        for statement in least_privilege_policy(outputs)["Statement"]
        if statement["Sid"] in KCL_STATEMENTS
    }
    leases = {
        "Sid": "KclLeases",
        "Effect": "Allow",
        "Action": [
            "dynamodb:DescribeTable",
            "dynamodb:UpdateTable",
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
            "dynamodb:Scan",
            "dynamodb:Query",
        ],
        "Resource": lease_tables + [f"{name}/index/*" for name in lease_tables],
    }
    return {
        "Version": "2012-10-17",
        "Statement": [
            consumer["ConsumeStream"],
            consumer["Aggregates"],
            leases,
            consumer["ArchiveObjects"],
            consumer["ArchiveListing"],
            consumer["DeadLetters"],
        ],
    }


def ecr_repository_arn(image: str) -> str:
    """The ECR repository an image is pulled from; empty for an image outside ECR."""
    ecr = re.match(r"(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com/([^:@]+)", image)
    if not ecr:
        return ""
    account, region, repository = ecr.groups()
    return f"arn:aws:ecr:{region}:{account}:repository/{repository}"


def kcl_execution_policy(outputs: dict[str, str], image: str) -> dict[str, Any]:
    """What ECS needs to start the KCL tasks: their log streams, and pulling the image when it
    is in ECR (GetAuthorizationToken has no resource-level permission, hence its ``*``).
    infra/template.yaml's KclExecutionRole holds this policy."""
    statements: list[dict[str, Any]] = [
        {
            "Sid": "TaskLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": outputs["KclLogGroupArn"],
        }
    ]
    repository = ecr_repository_arn(image)
    if repository:
        statements += [
            {
                "Sid": "ImageToken",
                "Effect": "Allow",
                "Action": ["ecr:GetAuthorizationToken"],
                "Resource": "*",
            },
            {
                "Sid": "ImagePull",
                "Effect": "Allow",
                "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                "Resource": repository,
            },
        ]
    return {"Version": "2012-10-17", "Statement": statements}


def kcl_parameters(args: argparse.Namespace) -> dict[str, str]:
    """The template's KCL parameters from the command line; none when no image is given."""
    if not args.kcl_image:
        return {}
    return {
        "KclConsumers": "true",
        "KclImage": args.kcl_image,
        "KclImageRepositoryArn": ecr_repository_arn(args.kcl_image),
        "KclSubnetIds": args.kcl_subnets,
        "KclSecurityGroupIds": args.kcl_security_groups,
        "KclDesiredCount": str(args.kcl_workers),
    }


CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".txt": "text/plain; charset=utf-8",
    ".md": "text/markdown; charset=utf-8",
}
NO_CACHE = {"index.html", "config.js"}  # everything else may be cached by browsers


def dashboard_config(api_url: str, cognito: dict[str, str] | None = None) -> str:
    """``web/config.js`` for a deployed dashboard: plain data, no logic. With ``cognito``
    (``region``, ``userPoolClientId``, optionally ``endpoint``) the page signs readers in to
    the user pool and sends their ID token."""
    auth = f"  auth: {json.dumps({'cognito': cognito})},\n" if cognito else ""
    return (
        "// Written at deploy time (make deploy, or the local stack's web server): the API\n"
        "// this dashboard reads and, when reads are on a user pool, where readers sign in.\n"
        "export default {\n"
        f"  apiBaseUrl: {json.dumps(api_url.rstrip('/'))},\n"
        '  apiKey: "",  // never a key in a public bucket: open the page with ?key=\n'
        f"{auth}"
        "  pollIntervalMs: 2000,\n"
        "  requestTimeoutMs: 5000,\n"
        "  topPagesLimit: 10,\n"
        "  feedLimit: 20,\n"
        '  currency: "USD",\n'
        "};\n"
    )


def dashboard_cognito(outputs: dict[str, str]) -> dict[str, str] | None:
    """The dashboard's sign-in settings when the stack made a user pool (reads on Cognito)."""
    if not outputs.get("UserPoolClientId") or not outputs.get("UserPoolArn"):
        return None
    return {
        "region": outputs["UserPoolArn"].split(":")[3],
        "userPoolClientId": outputs["UserPoolClientId"],
    }


def upload_dashboard(
    s3: Any,
    bucket: str,
    api_url: str,
    web_dir: Path = ROOT / "web",
    cognito: dict[str, str] | None = None,
) -> int:
    """Upload the static dashboard with a deploy-time config; returns files uploaded."""
    uploaded = 0
    config = dashboard_config(api_url, cognito).encode()
    for path in sorted(p for p in web_dir.rglob("*") if p.is_file()):
        key = path.relative_to(web_dir).as_posix()
        body = config if key == "config.js" else path.read_bytes()
        s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=body,
            ContentType=CONTENT_TYPES.get(path.suffix, "application/octet-stream"),
            CacheControl="no-cache" if key in NO_CACHE else "max-age=300",
        )
        uploaded += 1
    return uploaded


def stage_config(
    config: dict[str, Any],
    stage: str,
    outputs: dict[str, str],
    region: str,
    cors_origins: list[str] | None = None,
    pyarrow_layer: str | None = None,
    trusted_proxies: str = "",
    graphql_introspection: bool = False,
) -> dict[str, Any]:
    """The chalice config with ``stage`` pointing at the stack's outputs."""
    stages = config.setdefault("stages", {})
    current = stages.setdefault(stage, {})
    current.update(
        {
            "api_gateway_stage": "api",
            "xray": True,
            "autogen_policy": False,
            "iam_policy_file": f"policy-{stage}.json",
        }
    )
    environment = current.setdefault("environment_variables", {})
    environment.update(
        {name: outputs[key] for name, key in STAGE_ENVIRONMENT.items() if key in outputs}
    )
    if outputs.get("UserPoolArn"):
        environment["CLICKSTREAM_COGNITO_USER_POOL_ARN"] = outputs["UserPoolArn"]
    # Off on AWS unless asked for: the schema is public knowledge to any reader otherwise.
    environment["CLICKSTREAM_GRAPHQL_INTROSPECTION"] = str(graphql_introspection).lower()
    if trusted_proxies:
        parse_networks(trusted_proxies)  # a typo fails here, not in the deployed function
        environment["CLICKSTREAM_TRUSTED_PROXIES"] = trusted_proxies
    origins = [origin for origin in (cors_origins or []) if origin]
    if outputs.get("DashboardUrl"):
        origins.insert(0, outputs["DashboardUrl"])
    if origins:
        environment["CLICKSTREAM_CORS_ORIGINS"] = ",".join(dict.fromkeys(origins))
        environment.pop("CLICKSTREAM_CORS_ORIGIN", None)
    functions = current.setdefault("lambda_functions", {})
    archiver = functions.setdefault("archiver", {})
    archiver.setdefault("lambda_memory_size", 512)
    archiver.setdefault("lambda_timeout", 60)
    archiver["layers"] = [pyarrow_layer or PANDAS_LAYER.format(region=region)]
    functions.setdefault("aggregator", {}).setdefault("lambda_timeout", 60)
    functions.setdefault("compactor", {}).update(
        {"lambda_timeout": 300, "lambda_memory_size": 1024, "layers": archiver["layers"]}
    )
    # Export and erasure steps: up to Lambda's 15 minutes, one archive hour in memory at once.
    functions.setdefault("jobs", {}).update(
        {"lambda_timeout": 900, "lambda_memory_size": 1024, "layers": archiver["layers"]}
    )
    # GET /export reads Parquet in the API function (a page: one archive hour at a time).
    api = functions.setdefault("api_handler", {})
    api["layers"] = archiver["layers"]
    api.setdefault("lambda_memory_size", 512)
    api.setdefault("lambda_timeout", 29)  # API Gateway's own limit
    return config


STACK_TIMEOUT_S = 1800.0  # a first AWS deploy takes a few minutes; this is the give-up point


class Stacks(Protocol):
    """The data stack: deployed with parameters, its outputs read, deleted."""

    def deploy(self, parameters: dict[str, str]) -> dict[str, str]: ...

    def outputs(self) -> dict[str, str]: ...

    def delete(self) -> None: ...

    def owned_buckets(self) -> list[str]: ...


def confirm_on_terminal(title: str, changes: list[Change]) -> bool:
    """Show a change set and ask before it runs; no terminal answers no."""
    print(f"    {title}:", flush=True)
    for change in changes or []:
        print(f"    {change}", flush=True)
    if not changes:
        print("      (no resource changes)", flush=True)
    try:
        answer = input("    execute it? [y/N] ")
    except EOFError:
        print("\n    no answer (stdin closed): pass --yes to run without asking", flush=True)
        return False
    return answer.strip().lower() in ("y", "yes")


def accept_shown(title: str, changes: list[Change]) -> bool:
    """--yes: show the change set and run it."""
    print(f"    {title} (--yes):", flush=True)
    for change in changes:
        print(f"    {change}", flush=True)
    return True


@dataclass
class CloudFormationStacks:
    """The data stack on AWS: every change through a change set, nothing made beside it."""

    session: Any
    stack_name: str
    confirm: cloudformation.Confirm = confirm_on_terminal
    endpoint_url: str | None = None
    timeout: float = STACK_TIMEOUT_S

    def _cfn(self) -> Any:
        return self.session.client("cloudformation", endpoint_url=self.endpoint_url)

    def deploy(self, parameters: dict[str, str]) -> dict[str, str]:
        cfn = self._cfn()
        previous = cloudformation.previous_parameters(
            cloudformation.describe_stack(cfn, self.stack_name)
        )
        values = stack_parameters(load_template(), parameters, previous)
        stack = cloudformation.deploy_with_change_set(
            cfn,
            self.stack_name,
            TEMPLATE.read_text(encoding="utf-8"),
            values,
            self.confirm,
            self.timeout,
        )
        return cloudformation.outputs_of(stack)

    def outputs(self) -> dict[str, str]:
        stack = cloudformation.describe_stack(self._cfn(), self.stack_name)
        if stack is None:
            raise cloudformation.StackError(f"stack {self.stack_name} does not exist")
        return cloudformation.outputs_of(stack)

    def owned_buckets(self) -> list[str]:
        if cloudformation.describe_stack(self._cfn(), self.stack_name) is None:
            return []
        return cloudformation.owned_resources(self._cfn(), self.stack_name, "AWS::S3::Bucket")

    def delete(self) -> None:
        cloudformation.delete_stack(self._cfn(), self.stack_name, self.timeout)


@dataclass
class Target:
    """Where a deploy goes: AWS by default; ``localdev.deploy`` passes an emulator's."""

    session: Any
    stacks: Stacks
    endpoint_url: str | None = None
    run: Callable[..., subprocess.CompletedProcess[str]] = field(default=subprocess.run)

    def client(self, service: str) -> Any:
        return self.session.client(service, endpoint_url=self.endpoint_url)

    def chalice_environment(self) -> dict[str, str]:
        environment = dict(os.environ)
        if self.endpoint_url:
            environment["AWS_ENDPOINT_URL"] = self.endpoint_url
        return environment

    def deploy_api(self, stage: str) -> None:
        """``chalice deploy`` with the gateway responses in the API definition (api_deploy)."""
        module = ["-m", "infra.api_deploy", "--project-dir", str(CHALICE_DIR)]
        self.run(
            [sys.executable, *module, "--stage", stage],
            cwd=ROOT,
            check=True,
            env=self.chalice_environment(),
            text=True,
        )

    def chalice(self, *arguments: str, capture: bool = False) -> str:
        chalice = Path(sys.executable).parent / "chalice"
        completed = self.run(
            [str(chalice), *arguments],
            cwd=CHALICE_DIR,
            check=arguments[0] != "delete",  # already deleted is fine: the stack still goes
            env=self.chalice_environment(),
            capture_output=capture,
            text=True,
        )
        return str(completed.stdout or "").strip() if capture else ""


def aws_target(args: argparse.Namespace) -> Target:
    session = boto3.session.Session(region_name=args.region)
    confirm = accept_shown if args.yes else confirm_on_terminal
    return Target(session, CloudFormationStacks(session, args.stack, confirm))


def up(args: argparse.Namespace, target: Target) -> None:
    region = str(target.session.region_name)
    parameters = {
        "Environment": "aws",
        "Stage": args.stage,
        "ArchiveBucketName": args.bucket,
        "AlarmEmail": args.alarm_email or "",
        "ApiName": "clickstream",
        "CreateEventSourceMappings": "false",
        "DashboardBucketName": args.dashboard_bucket or "",
        "ReadAuth": args.read_auth,
        "CognitoUserPoolArn": args.user_pool_arn or "",
        **kcl_parameters(args),
    }
    print(f"1/5 deploying {TEMPLATE.name} as stack {args.stack}", flush=True)
    outputs = target.stacks.deploy(parameters)
    print("2/5 writing chalice stage config and least-privilege policy", flush=True)
    config = stage_config(
        json.loads(CONFIG.read_text()),
        args.stage,
        outputs,
        region,
        cors_origins=[o.strip() for o in (args.cors_origins or "").split(",") if o.strip()],
        pyarrow_layer=args.pyarrow_layer or None,
        trusted_proxies=args.trusted_proxies,
        graphql_introspection=args.graphql_introspection == "true",
    )
    CONFIG.write_text(json.dumps(config, indent=2) + "\n")
    policy_path = CONFIG.parent / f"policy-{args.stage}.json"
    policy_path.write_text(json.dumps(least_privilege_policy(outputs), indent=2) + "\n")
    print(f"3/5 chalice deploy --stage {args.stage}", flush=True)
    target.deploy_api(args.stage)
    print("4/5 connecting the stream to the consumers (event source mappings)", flush=True)
    target.stacks.deploy(parameters | {"CreateEventSourceMappings": "true"})
    api_url = target.chalice("url", "--stage", args.stage, capture=True)
    if args.dashboard_bucket:
        count = upload_dashboard(
            target.client("s3"),
            args.dashboard_bucket,
            api_url,
            cognito=dashboard_cognito(outputs),
        )
        print(f"5/5 dashboard: {count} files -> {outputs.get('DashboardUrl')}", flush=True)
    print(f"deployed; API: {api_url}", flush=True)


def kcl(args: argparse.Namespace, target: Target) -> None:
    """Move a deployed stage's stream consumers to the KCL service: one change set with the
    KCL parameters (the ECS service and its roles come, the stream's mappings go)."""
    print(f"deploying {TEMPLATE.name} with the KCL consumers as stack {args.stack}", flush=True)
    outputs = target.stacks.deploy(kcl_parameters(args))
    print(f"    KCL consumers: service {outputs.get('KclServiceName')}", flush=True)


def down(args: argparse.Namespace, target: Target) -> None:
    """chalice's deployed record, then the stack: its buckets are emptied first (CloudFormation
    deletes only empty buckets), and only the buckets the stack itself lists."""
    target.chalice("delete", "--stage", args.stage)
    s3 = target.session.resource("s3", endpoint_url=target.endpoint_url)
    for name in target.stacks.owned_buckets():
        bucket = s3.Bucket(name)
        bucket.object_versions.delete()
        bucket.objects.all().delete()
    target.stacks.delete()
    print(f"stack {args.stack} and stage {args.stage} removed", flush=True)


def argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", choices=["up", "kcl", "down"])
    parser.add_argument("--stage", default="dev")
    parser.add_argument("--stack", default="clickstream")
    parser.add_argument("--region", default=None)
    parser.add_argument(
        "--yes", action="store_true", help="run each change set without asking (it is shown)"
    )
    parser.add_argument("--bucket", help="globally unique archive bucket name (up)")
    parser.add_argument("--alarm-email", default="")
    parser.add_argument("--dashboard-bucket", default="", help="S3 website bucket for web/")
    parser.add_argument(
        "--read-auth",
        choices=["cognito", "apikey"],
        default="cognito",
        help="read endpoints: Cognito JWTs (default on AWS) or X-Api-Key keys",
    )
    parser.add_argument("--user-pool-arn", default="", help="trust this existing user pool")
    parser.add_argument(
        "--pyarrow-layer",
        default="",
        help="layer ARN providing pyarrow (default: AWS SDK for pandas, Python 3.11)",
    )
    parser.add_argument(
        "--cors-origins", default="", help="comma-separated browser origins allowed (CORS)"
    )
    parser.add_argument(
        "--trusted-proxies",
        default="",
        help="comma-separated CIDRs whose X-Forwarded-For entries are believed "
        "(e.g. CloudFront's ranges when a distribution is in front of the API)",
    )
    parser.add_argument(
        "--graphql-introspection",
        choices=("true", "false"),
        default="false",
        help="answer GraphQL introspection (schema) queries on this stage",
    )
    parser.add_argument(
        "--kcl-image",
        default="",
        help="run the stream's consumers under the KCL on ECS Fargate, from this image "
        "(README: Lambda or KCL consumers); kcl: required",
    )
    parser.add_argument("--kcl-subnets", default="", help="comma-separated subnet ids (KCL)")
    parser.add_argument(
        "--kcl-security-groups", default="", help="comma-separated security group ids (KCL)"
    )
    parser.add_argument("--kcl-workers", type=int, default=2, help="KCL tasks (workers)")
    return parser


def run(
    parser: argparse.ArgumentParser,
    args: argparse.Namespace,
    target_of: Callable[[argparse.Namespace], Target],
) -> None:
    if args.command == "up" and not args.bucket:
        parser.error("up needs --bucket (S3 bucket names are global)")
    if args.command == "kcl" and not args.kcl_image:
        parser.error("kcl needs --kcl-image")
    target = target_of(args)
    commands = {"up": up, "kcl": kcl, "down": down}
    try:
        commands[args.command](args, target)
    except cloudformation.NotConfirmed as stopped:
        raise SystemExit(f"stopped: {stopped}") from None


def main(argv: list[str] | None = None) -> None:
    parser = argument_parser()
    args = parser.parse_args(argv)
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:  # the emulator path, with its fallbacks, is localdev's
        parser.error(
            f"AWS_ENDPOINT_URL is set ({endpoint}): infra.deploy deploys to AWS only; "
            "for an emulator run python -m localdev.deploy (make deploy ENDPOINT_URL=...)"
        )
    run(parser, args, aws_target)


if __name__ == "__main__":
    main()
