"""Deploy the product to an AWS account, in order, and tear it down again.

``python -m infra.deploy up --stage dev --bucket my-clickstream-archive [--alarm-email me@x]``

1. deploys ``infra/template.yaml`` (stream, tables, bucket, DLQ, alarm topic, Glue table,
   alarms) as the data stack;
2. writes the stack's outputs into the stage of ``api/.chalice/config.json`` and a
   least-privilege ``policy-<stage>.json`` naming exactly those resources;
3. ``chalice deploy --stage <stage>`` ships the API and the consumer functions (X-Ray on);
4. updates the data stack with ``CreateEventSourceMappings=true`` so the stream feeds the
   consumers with bisect-on-error, bounded retries and record age, partial batch responses
   and the dead-letter queue as on-failure destination;
5. with ``--dashboard-bucket``, writes ``web/config.js`` pointing at the API and uploads the
   dashboard to that S3 static website (the API's CORS origin is set to it).

``python -m infra.deploy down --stage dev`` runs ``chalice delete``, empties the buckets and
deletes the stack.

Steps 1 and 4 go through ``localdev.provision``, the code that provisions the local stack
from the same template: on AWS (and LocalStack) CloudFormation creates everything and its
reconciliation finds nothing to do; on moto it creates what moto's CloudFormation lacks. With
``--endpoint-url`` (or ``AWS_ENDPOINT_URL``) every step, ``chalice deploy`` included, goes to
that emulator instead of AWS: ``make rehearse`` runs the whole deploy that way.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3

from clickstream.addresses import parse_networks
from localdev.provision import provision_stack, stack_outputs, teardown_stack

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "infra" / "template.yaml"
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
}


def least_privilege_policy(outputs: dict[str, str]) -> dict[str, Any]:
    """Only the actions the code calls, on only the stack's resources. X-Ray's two actions
    have no resource-level permissions, hence their ``*`` resource (never a ``*`` action)."""
    stream, table = outputs["StreamArn"], outputs["AggregatesTableArn"]
    bucket, queue = outputs["ArchiveBucketArn"], outputs["DeadLetterQueueArn"]
    keys = outputs["KeysTableArn"]
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
    # GET /export and DELETE /users/{user_id} read Parquet in the API function.
    api = functions.setdefault("api_handler", {})
    api["layers"] = archiver["layers"]
    api.setdefault("lambda_memory_size", 512)
    api.setdefault("lambda_timeout", 29)  # API Gateway's own limit
    return config


def gateway_error_headers(origins: list[str]) -> dict[str, str]:
    """``responseParameters`` for API Gateway's own 4XX/5XX answers: the Cognito authorizer's
    401, throttling's 429, an unknown route's 403. They never reach the function, so they lack
    its CORS headers and a browser reports only a network error. One allowed origin is named;
    with several, the request's Origin is echoed (these answers carry no data)."""
    if not origins:
        return {}
    if "*" in origins:
        allow = "'*'"
    elif len(origins) == 1:
        allow = f"'{origins[0]}'"
    else:
        allow = "method.request.header.Origin"
    return {
        "gatewayresponse.header.Access-Control-Allow-Origin": allow,
        "gatewayresponse.header.Vary": "'Origin'",
    }


def add_gateway_error_cors(apigateway: Any, api_id: str, stage: str, origins: list[str]) -> bool:
    headers = gateway_error_headers(origins)
    if not headers:
        return False
    for response_type in ("DEFAULT_4XX", "DEFAULT_5XX"):
        apigateway.put_gateway_response(
            restApiId=api_id, responseType=response_type, responseParameters=headers
        )
    apigateway.create_deployment(  # gateway responses take effect with a deployment
        restApiId=api_id, stageName=stage, description="CORS on API Gateway's own errors"
    )
    return True


def deployed_rest_api_id(stage: str) -> str:
    """The REST API chalice deployed for ``stage`` (its record in .chalice/deployed/)."""
    record = json.loads((CONFIG.parent / "deployed" / f"{stage}.json").read_text())
    for resource in record["resources"]:
        if "rest_api_id" in resource:
            return str(resource["rest_api_id"])
    raise RuntimeError(f"chalice deployed no REST API for stage {stage}")


def kcl_lease_tables(stream_name: str) -> list[str]:
    """The tables the KCL makes for each consumer's application (consumers/kcl_daemon.py):
    leases, coordinator state, worker metrics."""
    return [
        f"{stream_name}-{consumer}-kcl{suffix}"
        for consumer in ("aggregator", "archiver")
        for suffix in ("", "-CoordinatorState", "-WorkerMetricStats")
    ]


def kcl_task_policy(outputs: dict[str, str]) -> dict[str, Any]:
    """The KCL consumers' task role: the consumer half of :func:`least_privilege_policy`
    (reading the stream, the aggregates, the archive, dead letters) plus the KCL's own tables,
    which the daemon creates and keeps (a GSI on the lease table: UpdateTable). The daemon
    publishes no CloudWatch metrics (metricsLevel NONE); the processors' EMF goes to logs."""
    table_prefix = outputs["AggregatesTableArn"].rsplit("/", 1)[0]
    lease_tables = [f"{table_prefix}/{name}" for name in kcl_lease_tables(outputs["StreamName"])]
    consumer = {
        s["Sid"]: s
        for s in least_privilege_policy(outputs)["Statement"]
        if s["Sid"] in ("ConsumeStream", "Aggregates", "ArchiveObjects", "ArchiveListing")
    }
    return {
        "Version": "2012-10-17",
        "Statement": [
            consumer["ConsumeStream"],
            consumer["Aggregates"],
            {
                "Sid": "KclLeases",
                "Effect": "Allow",
                "Action": [
                    "dynamodb:CreateTable",
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
            },
            consumer["ArchiveObjects"],
            consumer["ArchiveListing"],
            {
                "Sid": "DeadLetters",
                "Effect": "Allow",
                "Action": ["sqs:SendMessage", "sqs:GetQueueUrl"],
                "Resource": outputs["DeadLetterQueueArn"],
            },
        ],
    }


def kcl_execution_policy(outputs: dict[str, str], image: str) -> dict[str, Any]:
    """What ECS needs to start the tasks: their log group, and pulling the image when it is
    in ECR (GetAuthorizationToken has no resource-level permission, hence its ``*``)."""
    statements: list[dict[str, Any]] = [
        {
            "Sid": "TaskLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": f"{outputs['KclLogGroupArn'].removesuffix(':*')}:*",
        }
    ]
    ecr = re.match(r"(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com/([^:@]+)", image)
    if ecr:
        account, region, repository = ecr.groups()
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
                "Resource": f"arn:aws:ecr:{region}:{account}:repository/{repository}",
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
        "KclSubnetIds": args.kcl_subnets,
        "KclSecurityGroupIds": args.kcl_security_groups,
        "KclDesiredCount": str(args.kcl_workers),
    }


def attach_kcl_policies(args: argparse.Namespace, outputs: dict[str, str]) -> None:
    iam = _client(args, "iam")
    for role, document in (
        (outputs["KclTaskRoleName"], kcl_task_policy(outputs)),
        (outputs["KclExecutionRoleName"], kcl_execution_policy(outputs, args.kcl_image)),
    ):
        iam.put_role_policy(
            RoleName=role, PolicyName="clickstream-kcl", PolicyDocument=json.dumps(document)
        )
    print(f"    KCL consumers: policies on {outputs['KclTaskRoleName']}", flush=True)


STACK_TIMEOUT_S = 1800.0  # a first AWS deploy takes a few minutes; this is the give-up point


def _deploy_stack(
    args: argparse.Namespace, region: str, parameters: dict[str, str]
) -> dict[str, str]:
    result = provision_stack(
        args.endpoint_url, region, parameters, args.stack, timeout=STACK_TIMEOUT_S
    )
    if result.fallback_resources:
        made = ", ".join(result.fallback_resources)
        print(f"    made directly (the emulator's CloudFormation lacks them): {made}", flush=True)
    return result.outputs


def _chalice_environment(args: argparse.Namespace) -> dict[str, str]:
    environment = dict(os.environ)
    if args.endpoint_url:
        environment["AWS_ENDPOINT_URL"] = args.endpoint_url
    return environment


def _session(args: argparse.Namespace) -> Any:
    return boto3.session.Session(region_name=args.region)


def _client(args: argparse.Namespace, service: str) -> Any:
    return _session(args).client(service, endpoint_url=args.endpoint_url)


def up(args: argparse.Namespace) -> None:
    region = str(_session(args).region_name)
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
    outputs = _deploy_stack(args, region, parameters)
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
    if "KclTaskRoleName" in outputs:
        attach_kcl_policies(args, outputs)
    print(f"3/5 chalice deploy --stage {args.stage}", flush=True)
    chalice = Path(sys.executable).parent / "chalice"
    environment = _chalice_environment(args)
    subprocess.run(
        [str(chalice), "deploy", "--stage", args.stage],
        cwd=CHALICE_DIR,
        check=True,
        env=environment,
    )
    origins = config["stages"][args.stage]["environment_variables"].get(
        "CLICKSTREAM_CORS_ORIGINS", ""
    )
    stage_name = config["stages"][args.stage]["api_gateway_stage"]
    allowed = [origin for origin in origins.split(",") if origin]
    if add_gateway_error_cors(
        _client(args, "apigateway"), deployed_rest_api_id(args.stage), stage_name, allowed
    ):
        print(f"    API Gateway's own errors carry CORS for {', '.join(allowed)}", flush=True)
    print("4/5 connecting the stream to the consumers (event source mappings)", flush=True)
    _deploy_stack(args, region, parameters | {"CreateEventSourceMappings": "true"})
    api_url = subprocess.run(
        [str(chalice), "url", "--stage", args.stage],
        cwd=CHALICE_DIR,
        check=True,
        capture_output=True,
        text=True,
        env=environment,
    ).stdout.strip()
    if args.dashboard_bucket:
        count = upload_dashboard(
            _client(args, "s3"), args.dashboard_bucket, api_url, cognito=dashboard_cognito(outputs)
        )
        print(f"5/5 dashboard: {count} files -> {outputs.get('DashboardUrl')}", flush=True)
    print(f"deployed; API: {api_url}", flush=True)


def kcl(args: argparse.Namespace) -> None:
    """Move a deployed stage's consumers to the KCL service: the stack updated with the KCL
    parameters (its event source mappings go), then the generated policies attached."""
    if not args.kcl_image:
        raise SystemExit("kcl needs --kcl-image")
    region = str(_session(args).region_name)
    print(f"deploying {TEMPLATE.name} with the KCL consumers as stack {args.stack}", flush=True)
    outputs = _deploy_stack(args, region, kcl_parameters(args))
    attach_kcl_policies(args, outputs)


def down(args: argparse.Namespace) -> None:
    chalice = Path(sys.executable).parent / "chalice"
    subprocess.run(
        [str(chalice), "delete", "--stage", args.stage],
        cwd=CHALICE_DIR,
        check=False,  # already deleted is fine: the stack still goes
        env=_chalice_environment(args),
    )
    region = str(_session(args).region_name)
    outputs = stack_outputs(args.endpoint_url, region, args.stack)
    s3 = _session(args).resource("s3", endpoint_url=args.endpoint_url)
    for output in ("ArchiveBucketName", "DashboardBucketName"):
        if output in outputs:
            bucket = s3.Bucket(outputs[output])
            bucket.object_versions.delete()
            bucket.objects.all().delete()
    leftovers = teardown_stack(args.endpoint_url, region, args.stack, timeout=STACK_TIMEOUT_S)
    if leftovers:
        print(f"    removed directly (made outside CloudFormation): {', '.join(leftovers)}")
    print(f"stack {args.stack} and stage {args.stage} removed", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("command", choices=["up", "kcl", "down"])
    parser.add_argument("--stage", default="dev")
    parser.add_argument("--stack", default="clickstream")
    parser.add_argument("--region", default=None)
    parser.add_argument(
        "--endpoint-url",
        default=os.environ.get("AWS_ENDPOINT_URL") or None,
        help="deploy to this emulator instead of AWS (default: $AWS_ENDPOINT_URL)",
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
        help="run the consumers under the KCL on ECS Fargate, from this image (README)",
    )
    parser.add_argument("--kcl-subnets", default="", help="comma-separated subnet ids (KCL)")
    parser.add_argument(
        "--kcl-security-groups", default="", help="comma-separated security group ids (KCL)"
    )
    parser.add_argument("--kcl-workers", type=int, default=1, help="KCL tasks (workers)")
    args = parser.parse_args(argv)
    if args.command == "kcl":
        kcl(args)
    elif args.command == "up":
        if not args.bucket:
            parser.error("up needs --bucket (S3 bucket names are global)")
        up(args)
    else:
        down(args)


if __name__ == "__main__":
    main()
