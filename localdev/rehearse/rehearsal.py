"""The rehearsal of ``make deploy`` and ``make destroy`` on an emulator, and its checks
(docs/rehearsal.md)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3

from clickstream.settings import Settings
from consumers.kcl_daemon import daemon_properties
from infra.api_deploy import NO_ROUTE_BODY, NO_ROUTE_RESPONSE
from infra.deploy import (
    PANDAS_LAYER,
    STAGE_ENVIRONMENT,
    kcl_execution_policy,
    kcl_lease_tables,
    kcl_task_policy,
    least_privilege_policy,
)
from infra.template import load_template
from localdev.harness import embedded_emulator, patched_env
from localdev.provision import mapping_api_arguments, stack_outputs
from localdev.rehearse.gateway import Gateway, traffic
from localdev.runner import StreamRecord, kinesis_event, read_stream, sqs_event
from localdev.sandbox import (
    LAMBDA_RUNTIME_MODULES,
    DeployedFunction,
    XRayDaemon,
    linked_modules,
    unpack,
)
from localdev.tls import loopback_certificate

ROOT = Path(__file__).resolve().parents[2]
PROJECT_PARTS = ("api", "clickstream", "consumers", "infra", "localdev", "web")
STAGE, STACK = "dev", "clickstream"
ARCHIVE_BUCKET, SITE_BUCKET = "clickstream-rehearsal-archive", "clickstream-rehearsal-site"
ALARM_EMAIL = "ops@example.com"
FUNCTIONS = {  # chalice's name for each function of the app
    "api": f"clickstream-{STAGE}",
    "aggregator": f"clickstream-{STAGE}-aggregator",
    "archiver": f"clickstream-{STAGE}-archiver",
    "compactor": f"clickstream-{STAGE}-compactor",
    "jobs": f"clickstream-{STAGE}-jobs",
}
HANDLERS = {
    "api": "app.app",
    "aggregator": "app.aggregator",
    "archiver": "app.archiver",
    "compactor": "app.compactor",
    "jobs": "app.jobs",
}
NEEDS_PYARROW = ("api", "archiver", "compactor", "jobs")
LOG_SETTLE_S = 5.0  # for a function's last output lines to be read


@dataclass
class Check:
    step: str
    name: str
    ok: bool
    detail: str


@dataclass
class Rehearsal:
    endpoint_url: str
    workdir: Path
    ca_bundle: str | None = None  # the emulator's certificate when it serves https
    region: str = "us-east-1"
    checks: list[Check] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)
    before: set[str] = field(default_factory=set)  # the emulator's resources before deploying

    # -- plumbing ------------------------------------------------------------------------------
    def client(self, service: str) -> Any:
        session: Any = boto3.session.Session(region_name=self.region)
        return session.client(
            service,
            endpoint_url=self.endpoint_url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            verify=self.ca_bundle,
        )

    def check(self, step: str, name: str, run: Callable[[], str]) -> bool:
        """Record ``run``'s outcome: its return value is the detail; an AssertionError (or
        any error) is a failure with the reason."""
        try:
            detail, ok = run(), True
        except AssertionError as failure:
            detail, ok = str(failure) or "assertion failed", False
        except Exception as error:  # a check that cannot run has failed, with the reason
            detail, ok = f"{type(error).__name__}: {error}", False
        self.checks.append(Check(step, name, ok, detail))
        return ok

    def environment(self) -> dict[str, str]:
        return {
            **os.environ,
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": self.region,
            "PYTHONPATH": str(self.workdir),
            **self.tls_environment(),
        }

    def tls_environment(self) -> dict[str, str]:
        return {"AWS_CA_BUNDLE": self.ca_bundle} if self.ca_bundle else {}

    def run_deploy(self, *arguments: str) -> str:
        completed = subprocess.run(
            [sys.executable, "-m", "localdev.deploy", *arguments],
            cwd=self.workdir,
            env=self.environment(),
            capture_output=True,
            text=True,
            timeout=600,
        )
        output = completed.stdout + completed.stderr
        assert completed.returncode == 0, f"exit {completed.returncode}:\n{output[-3000:]}"
        return output

    def function(self, role: str) -> dict[str, Any]:
        configuration: dict[str, Any] = self.client("lambda").get_function_configuration(
            FunctionName=FUNCTIONS[role]
        )
        return configuration

    # -- 2. deploy -----------------------------------------------------------------------------
    def deploy(self) -> bool:
        def run() -> str:
            self.before = self.inventory()
            output = self.run_deploy(
                "up",
                "--stage",
                STAGE,
                "--stack",
                STACK,
                "--bucket",
                ARCHIVE_BUCKET,
                "--dashboard-bucket",
                SITE_BUCKET,
                "--alarm-email",
                ALARM_EMAIL,
            )
            steps = [line for line in output.splitlines() if re.match(r"\d/5 ", line)]
            assert len(steps) == 5, f"expected 5 steps, saw {steps}"
            stack = self.client("cloudformation").describe_stacks(StackName=STACK)["Stacks"][0]
            with patched_env(dict(self.tls_environment())):
                self.outputs = stack_outputs(self.endpoint_url, self.region, STACK)
            made = re.search(r"made directly[^:]*: (.*)", output)
            directly = len(made.group(1).split("), ")) if made else 0
            return (
                f"5/5 steps; stack {stack['StackStatus']}; {directly} resources made directly "
                "(types the emulator's CloudFormation lacks)"
            )

        return self.check("deploy", "make deploy runs its five steps", run)

    # -- 3. what was deployed ------------------------------------------------------------------
    def inspect(self) -> None:
        checks: list[tuple[str, Callable[[], str]]] = [
            ("five functions with chalice's handlers", self._functions),
            ("environment points at the stack's outputs", self._environment),
            ("X-Ray active tracing on every function", self._tracing),
            ("log groups with a retention, owned by the stack", self._log_groups),
            ("pyarrow layer on the functions that read Parquet", self._layers),
            ("IAM: the generated least-privilege policy only", self._policies),
            ("compactor scheduled hourly", self._schedule),
            ("event source mappings carry the template's settings", self._mappings),
            ("alarms notify the topic, e-mail subscribed", self._alarms),
            ("Glue table with partition projection", self._glue),
            ("dashboard uploaded with the API's URL", self._dashboard),
            ("API Gateway's own errors carry CORS", self._gateway_errors),
        ]
        for name, run in checks:
            self.check("deployed", name, run)

    def _functions(self) -> str:
        for role, name in FUNCTIONS.items():
            configuration = self.function(role)
            assert configuration["Handler"] == HANDLERS[role], (name, configuration["Handler"])
        return ", ".join(FUNCTIONS.values())

    def _environment(self) -> str:
        for role in FUNCTIONS:
            variables = self.function(role)["Environment"]["Variables"]
            for variable, output in STAGE_ENVIRONMENT.items():
                assert variables.get(variable) == self.outputs[output], (role, variable)
            assert variables["CLICKSTREAM_COGNITO_USER_POOL_ARN"] == self.outputs["UserPoolArn"]
            assert self.outputs["DashboardUrl"] in variables["CLICKSTREAM_CORS_ORIGINS"]
        return f"{len(STAGE_ENVIRONMENT) + 2} variables x {len(FUNCTIONS)} functions"

    def _tracing(self) -> str:
        modes = {role: self.function(role)["TracingConfig"]["Mode"] for role in FUNCTIONS}
        assert set(modes.values()) == {"Active"}, modes
        return f"Active x {len(FUNCTIONS)}"

    def _log_groups(self) -> str:
        logs = self.client("logs")
        groups = {
            group["logGroupName"]: group
            for group in logs.describe_log_groups(logGroupNamePrefix="/aws/lambda/")["logGroups"]
        }
        retention = {int(g.get("retentionInDays", 0)) for g in groups.values()}
        for name in FUNCTIONS.values():
            assert f"/aws/lambda/{name}" in groups, f"no log group for {name}: {sorted(groups)}"
        assert retention == {30}, retention
        stack = self.client("cloudformation").describe_stack_resources(StackName=STACK)
        owned = {
            r["PhysicalResourceId"]
            for r in stack["StackResources"]
            if r.get("ResourceType") == "AWS::Logs::LogGroup"
        }
        assert owned == {f"/aws/lambda/{name}" for name in FUNCTIONS.values()}, owned
        return f"{len(FUNCTIONS)} x /aws/lambda/<function>, 30 days"

    def _layers(self) -> str:
        expected = PANDAS_LAYER.format(region=self.region)
        for role in NEEDS_PYARROW:
            layers = [layer["Arn"] for layer in self.function(role).get("Layers", [])]
            assert layers == [expected], (role, layers)
        return expected

    def _policies(self) -> str:
        iam = self.client("iam")
        expected = least_privilege_policy(self.outputs)
        for role in FUNCTIONS:
            role_name = self.function(role)["Role"].rsplit("/", 1)[-1]
            names = iam.list_role_policies(RoleName=role_name)["PolicyNames"]
            attached = iam.list_attached_role_policies(RoleName=role_name)["AttachedPolicies"]
            assert len(names) == 1 and not attached, (role_name, names, attached)
            document = iam.get_role_policy(RoleName=role_name, PolicyName=names[0])
            policy = document["PolicyDocument"]
            policy = json.loads(policy) if isinstance(policy, str) else policy
            assert policy == expected, f"{role_name}: the policy differs from the generated one"
            actions = [a for s in policy["Statement"] for a in s["Action"]]
            assert not any("*" in action for action in actions), actions
        return (
            f"{len(expected['Statement'])} statements, no wildcard action, "
            f"on {len(FUNCTIONS)} roles"
        )

    def _schedule(self) -> str:
        events = self.client("events")
        rules = events.list_rules(NamePrefix=f"{FUNCTIONS['compactor']}-")["Rules"]
        assert len(rules) == 1 and rules[0]["ScheduleExpression"] == "rate(1 hour)", rules
        targets = events.list_targets_by_rule(Rule=rules[0]["Name"])["Targets"]
        assert [t["Arn"] for t in targets] == [self.function("compactor")["FunctionArn"]]
        return f"{rules[0]['Name']}: rate(1 hour)"

    def _mappings(self) -> str:
        awslambda = self.client("lambda")
        template = load_template()["Resources"]
        found = []
        for logical, role in (
            ("AggregatorEventSourceMapping", "aggregator"),
            ("ArchiverEventSourceMapping", "archiver"),
        ):
            mappings = awslambda.list_event_source_mappings(
                EventSourceArn=self.outputs["StreamArn"], FunctionName=FUNCTIONS[role]
            )["EventSourceMappings"]
            assert len(mappings) == 1, (role, mappings)
            mapping = mappings[0]
            wanted = mapping_api_arguments(template[logical]["Properties"])
            for setting in (
                "BatchSize",
                "MaximumBatchingWindowInSeconds",
                "BisectBatchOnFunctionError",
                "MaximumRetryAttempts",
                "MaximumRecordAgeInSeconds",
                "FunctionResponseTypes",
                "StartingPosition",
            ):
                assert mapping.get(setting) == wanted[setting], (
                    role,
                    setting,
                    mapping.get(setting),
                )
            destination = mapping["DestinationConfig"]["OnFailure"]["Destination"]
            assert destination == self.outputs["DeadLetterQueueArn"], destination
            found.append(f"{role} batch {mapping['BatchSize']}")
        jobs = awslambda.list_event_source_mappings(
            EventSourceArn=self.outputs["JobsQueueArn"], FunctionName=FUNCTIONS["jobs"]
        )["EventSourceMappings"]
        assert len(jobs) == 1, jobs
        wanted = mapping_api_arguments(template["JobsEventSourceMapping"]["Properties"])
        for setting in ("BatchSize", "FunctionResponseTypes"):
            assert jobs[0].get(setting) == wanted[setting], ("jobs", setting, jobs[0])
        found.append(f"jobs queue batch {jobs[0]['BatchSize']}")
        return "; ".join(found) + "; bisect, retries 5, 24 h, partial failures, DLQ"

    def _alarms(self) -> str:
        names = self.outputs["AlarmNames"].split(",")
        alarms = self.client("cloudwatch").describe_alarms(AlarmNames=names)["MetricAlarms"]
        defined = [r for r in load_template()["Resources"].values() if r["Type"].endswith("Alarm")]
        assert len(alarms) == len(names) == len(defined), (len(alarms), len(names))
        topic = self.outputs["AlarmTopicArn"]
        for alarm in alarms:
            assert alarm["AlarmActions"] == [topic], alarm["AlarmName"]
            assert alarm["OKActions"] == [topic], alarm["AlarmName"]
        subscriptions = self.client("sns").list_subscriptions_by_topic(TopicArn=topic)
        endpoints = {(s["Protocol"], s["Endpoint"]) for s in subscriptions["Subscriptions"]}
        assert ("email", ALARM_EMAIL) in endpoints, endpoints
        return f"{len(alarms)} alarms -> {topic.rsplit(':', 1)[-1]} on ALARM and OK; {ALARM_EMAIL}"

    def _glue(self) -> str:
        glue = self.client("glue")
        databases = glue.get_databases()["DatabaseList"]
        assert len(databases) == 1, databases
        table = glue.get_tables(DatabaseName=databases[0]["Name"])["TableList"][0]
        parameters = table["Parameters"]
        assert parameters["projection.enabled"] == "true", parameters
        location = table["StorageDescriptor"]["Location"]
        assert location == f"s3://{ARCHIVE_BUCKET}/events/", location
        return f"{databases[0]['Name']}.{table['Name']} at {location}"

    def _dashboard(self) -> str:
        s3 = self.client("s3")
        keys = {o["Key"] for o in s3.list_objects_v2(Bucket=SITE_BUCKET).get("Contents", [])}
        assert {"index.html", "config.js"} <= keys, keys
        config = s3.get_object(Bucket=SITE_BUCKET, Key="config.js")["Body"].read().decode()
        api_url = self.api_url()
        assert json.dumps(api_url.rstrip("/")) in config, config
        client_id = self.outputs["UserPoolClientId"]
        assert f'"userPoolClientId": "{client_id}"' in config, "config.js names no user pool"
        return f"{len(keys)} files; config.js -> {api_url}, sign-in to client {client_id}"

    def _gateway_errors(self) -> str:
        apigateway = self.client("apigateway")
        api_id = self.rest_api()["id"]
        origin = f"'{self.outputs['DashboardUrl']}'"
        for response_type in ("DEFAULT_4XX", "DEFAULT_5XX", NO_ROUTE_RESPONSE):
            response = apigateway.get_gateway_response(restApiId=api_id, responseType=response_type)
            headers = response.get("responseParameters", {})
            allowed = headers.get("gatewayresponse.header.Access-Control-Allow-Origin")
            assert allowed == origin, (response_type, headers)
        no_route = apigateway.get_gateway_response(restApiId=api_id, responseType=NO_ROUTE_RESPONSE)
        assert no_route["statusCode"] == "404", no_route
        assert no_route["responseTemplates"] == {"application/json": NO_ROUTE_BODY}, no_route
        return f"DEFAULT_4XX, DEFAULT_5XX and an unknown route's 404 allow {origin}"

    def api_url(self) -> str:
        api = self.rest_api()
        return f"https://{api['id']}.execute-api.{self.region}.amazonaws.com/api/"

    def rest_api(self) -> dict[str, Any]:
        apis = self.client("apigateway").get_rest_apis()["items"]
        assert len(apis) == 1, [a["name"] for a in apis]
        return dict(apis[0])

    # -- 4. the deployed package, run ----------------------------------------------------------
    @contextmanager
    def deployed_functions(
        self, scratch: Path, daemon: XRayDaemon
    ) -> Iterator[dict[str, DeployedFunction]]:
        packages = {
            base64.b64encode(hashlib.sha256(path.read_bytes()).digest()).decode(): path
            for path in (self.workdir / "api" / ".chalice" / "deployments").glob("*.zip")
        }
        runtime = linked_modules(LAMBDA_RUNTIME_MODULES, scratch / "var-runtime")
        pyarrow_layer = linked_modules(("pyarrow",), scratch / "opt" / "python")
        started: dict[str, DeployedFunction] = {}
        try:
            for role in FUNCTIONS:
                configuration = self.function(role)
                package = packages.get(configuration["CodeSha256"])
                assert package is not None, f"no deployment package has {role}'s CodeSha256"
                task_root = unpack(package, scratch / "task" / role)
                layers = [pyarrow_layer] if configuration.get("Layers") else []
                started[role] = DeployedFunction(
                    configuration,
                    task_root,
                    [*layers, runtime],
                    endpoint_url=self.endpoint_url,
                    xray_daemon=daemon.address,
                    extra_environment={
                        **self.tls_environment(),
                        # The rehearsal runs the archiver itself, synchronously: no archiver
                        # batch can be in flight for an erasure's sweep to wait out.
                        **({"CLICKSTREAM_ERASURE_SETTLE_S": "1"} if role == "jobs" else {}),
                    },
                )
            yield started
        finally:
            for deployed in started.values():
                deployed.close()

    def run_package(self, scratch: Path) -> None:
        step = "package"
        daemon = XRayDaemon()
        try:
            with ExitStack() as running:
                functions: dict[str, DeployedFunction] = {}

                def load() -> str:
                    functions.update(
                        running.enter_context(self.deployed_functions(scratch, daemon))
                    )
                    return (
                        f"{len(FUNCTIONS)} functions loaded from the deployed zip + runtime SDK "
                        "(+ pyarrow layer)"
                    )

                if not self.check(step, "each function loads from its own package", load):
                    return
                gateway = Gateway(self, functions["api"])
                self.check(step, "API Gateway routes = the package's OpenAPI", gateway.routes_match)
                self.check(step, "reads need a Cognito token, writes a key", gateway.authorization)
                sent = traffic()
                self.check(step, "POST /events through the gateway", lambda: gateway.ingest(sent))
                records = self.stream_records()
                self.check(
                    step,
                    "aggregator counts the stream once (redelivered too)",
                    lambda: self.aggregate(functions["aggregator"], gateway, records, len(sent)),
                )
                self.check(
                    step,
                    "archiver writes Parquet",
                    lambda: self.archive(functions["archiver"], records),
                )
                self.pause_jobs_mapping()  # the rehearsal plays the SQS poller, as below
                gateway.jobs = lambda: self.drain_jobs(functions["jobs"])
                self.check(
                    step,
                    "export pages and jobs; erasure is an admin's job",
                    lambda: gateway.export_and_erase(sent),
                )
                self.check(
                    step,
                    "compactor runs on its schedule event",
                    lambda: self.compact(functions["compactor"]),
                )
                self.check(
                    step,
                    "JSON logs carry request and event ids, never a key",
                    lambda: self.logs(functions, gateway),
                )
                self.check(
                    step,
                    "EMF metrics match the custom-metric alarms",
                    lambda: self.metrics(functions),
                )
            time.sleep(0.5)  # the last UDP datagrams
            self.check(step, "X-Ray segments around Kinesis, DynamoDB, S3", daemon_report(daemon))
        finally:
            daemon.close()

    def pause_jobs_mapping(self) -> None:
        """The emulator would hand the jobs queue's messages to a container; the rehearsal
        delivers them to the deployed zip itself (``drain_jobs``), as it does the stream's."""
        awslambda = self.client("lambda")
        for mapping in awslambda.list_event_source_mappings(
            EventSourceArn=self.outputs["JobsQueueArn"]
        )["EventSourceMappings"]:
            awslambda.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)

    def drain_jobs(self, jobs: DeployedFunction, timeout: float = 90.0) -> int:
        """What the SQS event source does: each message (batch size 1) to the jobs function,
        deleted unless reported failed, until the queue stays empty (delayed steps too)."""
        sqs = self.client("sqs")
        url = self.outputs["JobsQueueUrl"]
        handled, deadline, idle = 0, time.monotonic() + timeout, 0
        while time.monotonic() < deadline and idle < 3:
            messages = sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=1, WaitTimeSeconds=1, AttributeNames=["All"]
            ).get("Messages", [])
            if not messages:
                attributes = sqs.get_queue_attributes(
                    QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesDelayed"]
                )["Attributes"]
                idle += 0 if int(attributes.get("ApproximateNumberOfMessagesDelayed", 0)) else 1
                continue
            idle = 0
            answer = jobs.invoke(sqs_event(messages, queue_arn=self.outputs["JobsQueueArn"],
                                           region=self.region))  # fmt: skip
            assert not (answer or {}).get("batchItemFailures"), answer
            sqs.delete_message(QueueUrl=url, ReceiptHandle=messages[0]["ReceiptHandle"])
            handled += 1
        return handled

    def stream_records(self) -> dict[str, list[StreamRecord]]:
        return read_stream(self.client("kinesis"), self.outputs["StreamName"])

    def _kinesis_event(self, shard_id: str, records: list[StreamRecord]) -> dict[str, Any]:
        return kinesis_event(
            records, shard_id=shard_id, stream_arn=self.outputs["StreamArn"], region=self.region
        )

    def aggregate(
        self,
        aggregator: DeployedFunction,
        gateway: Gateway,
        by_shard: dict[str, list[StreamRecord]],
        sent: int,
    ) -> str:
        total = sum(len(records) for records in by_shard.values())
        assert total == sent, f"{total} records in the stream, {sent} accepted"
        for delivery in ("first", "redelivery"):
            for shard_id, records in by_shard.items():
                answer = aggregator.invoke(self._kinesis_event(shard_id, records))
                assert answer == {"batchItemFailures": []}, (delivery, answer)
            status, stats = gateway.request("GET", "/stats", token=gateway.reader_token())
            assert status == 200, (status, stats)
            assert stats["total_events"] == sent, (delivery, stats["total_events"], sent)
        return f"{sent} events in {len(by_shard)} shard batches; total_events {sent} twice"

    def archive(self, archiver: DeployedFunction, by_shard: dict[str, list[StreamRecord]]) -> str:
        for shard_id, records in by_shard.items():
            answer = archiver.invoke(self._kinesis_event(shard_id, records))
            assert answer == {"batchItemFailures": []}, answer
        listed = self.client("s3").list_objects_v2(Bucket=ARCHIVE_BUCKET, Prefix="events/")
        keys = [o["Key"] for o in listed.get("Contents", [])]
        assert keys and all(k.endswith(".parquet") for k in keys), keys
        partition = keys[0].rsplit("/", 1)[0]
        return f"{len(keys)} Parquet objects (one per shard batch) under {partition}/"

    def logs(self, functions: dict[str, DeployedFunction], gateway: Gateway) -> str:
        def lines(role: str) -> list[dict[str, Any]]:
            parsed = []
            for line in functions[role].logs:
                if line.startswith("{"):
                    parsed.append(json.loads(line))
            return parsed

        ingest = [
            line
            for line in lines("api")
            if line.get("message") == "request"
            and line.get("path") == "/events"
            and line.get("status") == 200
        ]
        assert len(ingest) == 1, f"{len(ingest)} log lines for the accepted POST /events"
        line = ingest[0]
        for name in ("request_id", "lambda_request_id", "xray_trace_id"):
            assert line.get(name), f"the ingest log line has no {name}: {line}"
        assert line["event_ids"] == gateway.accepted_ids, "the log's event ids differ"
        for role, message in (("aggregator", "batch aggregated"), ("archiver", "batch archived")):
            batches = [x for x in lines(role) if x.get("message") == message]
            assert batches, f"no '{message}' line from the {role}"
            assert all(x.get("function_request_id") and x.get("shard_id") for x in batches), batches
        secret = gateway.write_key()
        for role, function in functions.items():
            assert not any(secret in raw for raw in function.logs), f"{role} logged the write key"
        return (
            f"POST /events line: request_id, lambda_request_id, xray_trace_id, "
            f"{len(line['event_ids'])} event_ids; consumer lines: function_request_id, shard_id"
        )

    def metrics(self, functions: dict[str, DeployedFunction]) -> str:
        """Every alarm on a custom metric must watch a namespace and dimension set the package
        really emits (else it never sees data), and the no-events alarm's metric must be
        among what a successful ingest emitted. A function's output is read by a thread: its
        last lines may still be on their way, so the check is given a few seconds."""
        deadline = time.monotonic() + LOG_SETTLE_S
        while True:
            try:
                return self._metrics_match(functions)
            except AssertionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def _metrics_match(self, functions: dict[str, DeployedFunction]) -> str:
        emitted: dict[tuple[str, frozenset[tuple[str, str]]], set[str]] = {}
        for function in functions.values():
            for line in function.logs:
                if not line.startswith('{"_aws"'):
                    continue
                document = json.loads(line)
                for directive in document["_aws"]["CloudWatchMetrics"]:
                    for dimension_names in directive["Dimensions"]:
                        dimensions = frozenset((n, str(document[n])) for n in dimension_names)
                        key = (directive["Namespace"], dimensions)
                        emitted.setdefault(key, set()).update(
                            metric["Name"] for metric in directive["Metrics"]
                        )
        assert emitted, "no EMF line in any function's output"
        names = self.outputs["AlarmNames"].split(",")
        alarms = self.client("cloudwatch").describe_alarms(AlarmNames=names)["MetricAlarms"]
        custom = [alarm for alarm in alarms if not alarm["Namespace"].startswith("AWS/")]
        assert custom, "no alarm on a custom metric"
        for alarm in custom:
            dimensions = frozenset((d["Name"], d["Value"]) for d in alarm["Dimensions"])
            key = (alarm["Namespace"], dimensions)
            assert key in emitted, f"{alarm['AlarmName']} watches {key}; emitted: {list(emitted)}"
            if alarm["MetricName"] == "EventsAccepted":
                assert "EventsAccepted" in emitted[key], emitted[key]
        metric_count = len(set().union(*emitted.values()))
        return f"{len(custom)} custom-metric alarms match the emitted sets ({metric_count} metrics)"

    def compact(self, compactor: DeployedFunction) -> str:
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": self.function("compactor")["FunctionArn"].split(":")[4],
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": self.region,
            "resources": [],
            "detail": {},
        }
        answer = compactor.invoke(event)
        assert isinstance(answer, dict) and "partitions" in answer, answer
        return f"{answer['partitions']} closed hours to compact (the events are this hour's)"

    # -- 5. destroy ----------------------------------------------------------------------------
    # -- 5. the consumers moved to the KCL (ECS Fargate) --------------------------------------
    def kcl(self) -> None:
        step = "kcl"
        account = self.outputs["StreamArn"].split(":")[4]
        image = f"{account}.dkr.ecr.{self.region}.amazonaws.com/clickstream-kcl:rehearsal"
        ec2 = self.client("ec2")
        subnets = [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]][:2]
        groups = [g["GroupId"] for g in ec2.describe_security_groups()["SecurityGroups"]][:1]

        def run() -> str:
            self.run_deploy(
                "kcl", "--stage", STAGE, "--stack", STACK, "--kcl-image", image,
                "--kcl-subnets", ",".join(subnets), "--kcl-security-groups", ",".join(groups),
                "--kcl-workers", "2",
            )  # fmt: skip
            with patched_env(dict(self.tls_environment())):
                self.outputs = stack_outputs(self.endpoint_url, self.region, STACK)
            assert "KclServiceName" in self.outputs, sorted(self.outputs)
            return f"service {self.outputs['KclServiceName']} in {self.outputs['KclClusterName']}"

        if not self.check(step, "make deploy with KCL_IMAGE updates the stack", run):
            return
        self.check(step, "Fargate service: both consumers' daemons", self._kcl_service(image))
        self.check(step, "IAM: the generated KCL policies only", lambda: self._kcl_policies(image))
        self.check(step, "the KCL's tables are the stack's", self._kcl_tables)
        self.check(step, "the Lambda event source mappings are gone", self._no_mappings)

    def _kcl_service(self, image: str) -> Callable[[], str]:
        def run() -> str:
            ecs = self.client("ecs")
            cluster = self.outputs["KclClusterName"]
            service = ecs.describe_services(
                cluster=cluster, services=[self.outputs["KclServiceName"]]
            )["services"][0]
            assert service["launchType"] == "FARGATE" and service["desiredCount"] == 2, service
            task = ecs.describe_task_definition(taskDefinition=service["taskDefinition"])
            containers = {c["name"]: c for c in task["taskDefinition"]["containerDefinitions"]}
            assert sorted(containers) == ["aggregator", "archiver"], sorted(containers)
            for name, container in containers.items():
                assert container["image"] == image, container["image"]
                assert container["command"] == ["python", "-m", "consumers.kcl_daemon", name]
                env = {e["name"]: e["value"] for e in container["environment"]}
                for variable in ("CLICKSTREAM_STREAM_NAME", "CLICKSTREAM_AGGREGATES_TABLE",
                                 "CLICKSTREAM_ARCHIVE_BUCKET", "CLICKSTREAM_DLQ_NAME"):  # fmt: skip
                    assert env[variable] == self.outputs[STAGE_ENVIRONMENT[variable]], variable
                assert env["CLICKSTREAM_STREAM_ARN"] == self.outputs["StreamArn"]
                # what the daemon will run with there: AWS's own endpoints, polling, no CBOR
                with patched_env(dict(env)):
                    settings = Settings.from_env()
                properties = daemon_properties(name, settings, env)
                assert properties["streamName"] == self.outputs["StreamName"]
                assert "kinesisEndpoint" not in properties and "dynamoDBEndpoint" not in properties
            return f"2 tasks x {len(containers)} containers; {image}"

        return run

    def _kcl_policies(self, image: str) -> str:
        iam = self.client("iam")
        expected = {
            self.outputs["KclTaskRoleName"]: kcl_task_policy(self.outputs),
            self.outputs["KclExecutionRoleName"]: kcl_execution_policy(self.outputs, image),
        }
        for role, document in expected.items():
            names = iam.list_role_policies(RoleName=role)["PolicyNames"]
            attached = iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]
            assert names == ["clickstream-kcl"] and not attached, (role, names, attached)
            policy = iam.get_role_policy(RoleName=role, PolicyName=names[0])["PolicyDocument"]
            policy = json.loads(policy) if isinstance(policy, str) else policy
            assert policy == document, f"{role}: the policy differs from the generated one"
            actions = [a for s in policy["Statement"] for a in s["Action"]]
            assert not any("*" in action for action in actions), actions
        statements = sum(len(d["Statement"]) for d in expected.values())
        return f"{statements} statements on 2 roles, no wildcard action"

    def _kcl_tables(self) -> str:
        """Each consumer's lease, coordinator-state and worker-metrics tables exist before a
        daemon runs (none runs here), made by the stack, so `make destroy` removes them."""
        dynamodb, cfn = self.client("dynamodb"), self.client("cloudformation")
        owned = {
            r.get("PhysicalResourceId")
            for r in cfn.describe_stack_resources(StackName=STACK)["StackResources"]
            if r.get("ResourceType") == "AWS::DynamoDB::Table"  # moto leaves it off some kinds
        }
        names = kcl_lease_tables(self.outputs["StreamName"])
        for name in names:
            table = dynamodb.describe_table(TableName=name)["Table"]
            assert name in owned, f"{name} is not the stack's"
            if name.endswith("-kcl"):
                indexes = [i["IndexName"] for i in table.get("GlobalSecondaryIndexes", [])]
                assert indexes == ["LeaseOwnerToLeaseKeyIndex"], (name, indexes)
        return f"{len(names)} tables, the lease tables with the KCL's owner index"

    def _no_mappings(self) -> str:
        mappings = self.client("lambda").list_event_source_mappings()["EventSourceMappings"]
        ours = [m for m in mappings if m.get("EventSourceArn") == self.outputs["StreamArn"]]
        assert not ours, ours
        return "the stream feeds only the KCL service"

    def destroy(self) -> None:
        step = "destroy"

        def run() -> str:
            output = self.run_deploy("down", "--stage", STAGE)
            assert f"stack {STACK} and stage {STAGE} removed" in output, output[-2000:]
            removed = re.search(r"removed directly[^:]*: (.*)", output)
            directly = len(removed.group(1).split("), ")) if removed else 0
            return f"chalice delete, buckets emptied, stack deleted, {directly} made directly"

        if not self.check(step, "make destroy runs", run):
            return
        self.check(step, "nothing is left", self._nothing_left)

    def inventory(self) -> set[str]:
        """Every resource of the kinds a deployment makes, as "kind name"."""
        awslambda, found = self.client("lambda"), set()
        found |= {f"function {f['FunctionName']}" for f in awslambda.list_functions()["Functions"]}
        mappings = awslambda.list_event_source_mappings()["EventSourceMappings"]
        found |= {f"mapping {m['UUID']}" for m in mappings}
        found |= {f"api {a['name']}" for a in self.client("apigateway").get_rest_apis()["items"]}
        found |= {f"role {r['RoleName']}" for r in self.client("iam").list_roles()["Roles"]}
        found |= {f"rule {r['Name']}" for r in self.client("events").list_rules()["Rules"]}
        found |= {f"bucket {b['Name']}" for b in self.client("s3").list_buckets()["Buckets"]}
        alarms = self.client("cloudwatch").describe_alarms()["MetricAlarms"]
        found |= {f"alarm {a['AlarmName']}" for a in alarms}
        databases = self.client("glue").get_databases()["DatabaseList"]
        found |= {f"database {d['Name']}" for d in databases}
        found |= {f"queue {q}" for q in self.client("sqs").list_queues().get("QueueUrls", [])}
        found |= {f"topic {t['TopicArn']}" for t in self.client("sns").list_topics()["Topics"]}
        found |= {f"stream {n}" for n in self.client("kinesis").list_streams()["StreamNames"]}
        found |= {f"table {n}" for n in self.client("dynamodb").list_tables()["TableNames"]}
        ecs = self.client("ecs")
        if clusters := ecs.list_clusters()["clusterArns"]:  # a deleted one stays, INACTIVE
            described = ecs.describe_clusters(clusters=clusters)["clusters"]
            found |= {f"cluster {c['clusterArn']}" for c in described if c["status"] == "ACTIVE"}
        log_groups = self.client("logs").describe_log_groups()["logGroups"]
        found |= {f"log group {g['logGroupName']}" for g in log_groups}
        pools = self.client("cognito-idp").list_user_pools(MaxResults=60)["UserPools"]
        found |= {f"user pool {p['Id']}" for p in pools}
        stacks = self.client("cloudformation").list_stacks()["StackSummaries"]
        found |= {
            f"stack {s['StackName']}" for s in stacks if s["StackStatus"] != "DELETE_COMPLETE"
        }
        return found

    def _nothing_left(self) -> str:
        left = sorted(self.inventory() - self.before)
        assert not left, f"left behind: {left}"
        return (
            "no function, mapping, API, role, rule, bucket, alarm, database, queue, topic, "
            "stream, table, cluster, log group, user pool or stack more than before the deploy"
        )


def daemon_report(daemon: XRayDaemon) -> Callable[[], str]:
    def run() -> str:
        traced = {(service.lower(), operation) for service, operation in daemon.traced_calls()}
        for wanted in (
            ("kinesis", "PutRecords"),
            ("dynamodb", "PutItem"),
            ("s3", "PutObject"),
        ):
            assert wanted in traced, f"no {wanted} subsegment; received {sorted(traced)}"
        return ", ".join(f"{service}.{operation}" for service, operation in sorted(traced))

    return run


# -- orchestration ---------------------------------------------------------------------------


def copy_project(into: Path) -> Path:
    for part in PROJECT_PARTS:
        shutil.copytree(
            ROOT / part,
            into / part,
            symlinks=True,  # api/vendor links stay relative, into the copy
            ignore=shutil.ignore_patterns("__pycache__", "deployed", "node_modules"),
        )
    shutil.copy2(ROOT / "requirements-lock.txt", into / "requirements-lock.txt")
    return into


def rehearse(endpoint_url: str | None = None) -> list[Check]:
    with tempfile.TemporaryDirectory(prefix="clickstream-rehearsal-") as scratch_name:
        scratch = Path(scratch_name)
        workdir = copy_project(scratch / "project")
        certificate, key = loopback_certificate(scratch / "tls")
        ca_bundle: str | None
        if endpoint_url is None:
            context, ca_bundle = embedded_emulator((certificate, key)), str(certificate)
        else:
            context, ca_bundle = _given(endpoint_url), os.environ.get("AWS_CA_BUNDLE")
        with context as url:
            rehearsal = Rehearsal(endpoint_url=url, workdir=workdir, ca_bundle=ca_bundle)
            if rehearsal.deploy():
                rehearsal.inspect()
                rehearsal.run_package(scratch)
                rehearsal.kcl()
                rehearsal.destroy()
            return rehearsal.checks


@contextmanager
def _given(url: str) -> Iterator[str]:
    yield url
