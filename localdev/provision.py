"""Deploy ``infra/template.yaml`` — the same template used on AWS — onto a local emulator.

The template goes to the emulator's own CloudFormation (``CreateStack`` / ``UpdateStack``).
LocalStack implements every resource type in it. moto's server implements the stream, the
tables, the bucket, the queue and the topic, silently skips the types it does not know
(``AWS::Glue::*``, ``AWS::CloudWatch::Alarm``, ``AWS::SNS::Subscription``,
``AWS::S3::BucketPolicy``) and ignores some properties of the types it does know (DynamoDB
``TimeToLiveSpecification``, S3 ``LifecycleConfiguration`` / ``PublicAccessBlockConfiguration``,
Kinesis ``StreamModeDetails`` / ``StreamEncryption``).

After the stack settles, this module reconciles: every resource of the template (whose
Condition holds) that the stack does not list is created directly with boto3, and every
property of the list above that the emulator did not apply is applied with boto3 — in both
cases from the template's own values, resolved here by a small intrinsic-function resolver
(Ref, Fn::Sub, Fn::GetAtt, Fn::If, Fn::Join, Fn::Select, Fn::Split, Fn::FindInMap,
Conditions). Nothing is special-cased by emulator: on LocalStack the reconciliation finds
nothing to do. Running it twice is safe (the stack update is a no-op, fallback creators
update-or-skip). As with ``aws cloudformation deploy``, parameters not given keep the values
of an existing stack (so a stack deployed by LocalStack's init hook keeps its choices), and
default to the template's defaults for a new one.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import yaml
from botocore.exceptions import ClientError

log = logging.getLogger("localdev.provision")

TEMPLATE_PATH = Path(__file__).resolve().parent.parent / "infra" / "template.yaml"

_NO_VALUE: Any = object()  # AWS::NoValue: the key/item disappears
_SUB_TOKEN = re.compile(r"\$\{([^}]*)\}")
_FAILED_STATUSES = {
    "CREATE_FAILED",
    "ROLLBACK_COMPLETE",
    "ROLLBACK_FAILED",
    "DELETE_COMPLETE",
    "DELETE_FAILED",
    "UPDATE_ROLLBACK_COMPLETE",
    "UPDATE_ROLLBACK_FAILED",
}
_RECREATABLE_STATUSES = {"ROLLBACK_COMPLETE", "CREATE_FAILED", "ROLLBACK_FAILED"}


class ProvisionError(RuntimeError):
    pass


@dataclass
class ProvisionResult:
    outputs: dict[str, str]
    stack_status: str
    # "LogicalId (AWS::Type)" for resources the emulator's CloudFormation did not create.
    fallback_resources: list[str] = field(default_factory=list)
    # "LogicalId.Property" for properties the emulator ignored and this module applied.
    fallback_properties: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, str]:
        result = dict(self.outputs)
        result["StackStatus"] = self.stack_status
        result["ProvisionedByFallback"] = ",".join(self.fallback_resources)
        result["PropertiesAppliedByFallback"] = ",".join(self.fallback_properties)
        return result


def load_template(path: str | Path = TEMPLATE_PATH) -> dict[str, Any]:
    with Path(path).open(encoding="utf-8") as fh:
        template = yaml.safe_load(fh)
    if not isinstance(template, dict) or "Resources" not in template:
        raise ProvisionError(f"{path} is not a CloudFormation template")
    return template


def table_arguments(logical_id: str, table_name: str) -> dict[str, Any]:
    """``CreateTable`` arguments for one of the template's DynamoDB tables under another name
    (tests and benchmarks on in-process moto use the template's own key schema)."""
    properties = load_template()["Resources"][logical_id]["Properties"]
    return {
        "TableName": table_name,
        "BillingMode": properties["BillingMode"],
        "KeySchema": properties["KeySchema"],
        "AttributeDefinitions": properties["AttributeDefinitions"],
    }


# --------------------------------------------------------------------------------------------
# Resolver
# --------------------------------------------------------------------------------------------

RefProvider = Callable[[str], Any]
AttProvider = Callable[[str, str], Any]


class Resolver:
    """Evaluates intrinsic functions of one template against known parameter values and two
    callbacks: the Ref value and the Fn::GetAtt value of a resource."""

    def __init__(
        self,
        template: Mapping[str, Any],
        parameters: Mapping[str, str],
        pseudo: Mapping[str, str],
        ref: RefProvider,
        get_att: AttProvider,
    ) -> None:
        self.template = template
        self.values: dict[str, Any] = {**effective_parameters(template, parameters), **pseudo}
        self._ref = ref
        self._get_att = get_att
        self._conditions: dict[str, bool] = {}

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            expr = self.template.get("Conditions", {}).get(name)
            if expr is None:
                raise ProvisionError(f"unknown condition {name}")
            self._conditions[name] = bool(self._condition_expr(expr))
        return self._conditions[name]

    def _condition_expr(self, expr: Any) -> Any:
        if isinstance(expr, dict) and len(expr) == 1:
            ((fn, arg),) = expr.items()
            if fn == "Condition":
                return self.condition(arg)
            if fn == "Fn::Equals":
                left, right = (self.resolve(a) for a in arg)
                return str(left) == str(right)
            if fn == "Fn::Not":
                return not self._condition_expr(arg[0])
            if fn == "Fn::And":
                return all(self._condition_expr(a) for a in arg)
            if fn == "Fn::Or":
                return any(self._condition_expr(a) for a in arg)
        return self.resolve(expr)

    def active(self, resource: Mapping[str, Any]) -> bool:
        cond = resource.get("Condition")
        return cond is None or self.condition(cond)

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name in self.values:
            return self.values[name]
        if name in self.template.get("Resources", {}):
            return self._ref(name)
        raise ProvisionError(f"Ref to unknown name {name}")

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            return [v for v in (self.resolve(x) for x in node) if v is not _NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, arg),) = node.items()
            handler = _INTRINSICS.get(key)
            if handler is not None:
                return handler(self, arg)
            if key == "Condition" and isinstance(arg, str):
                return self.condition(arg)
        out: dict[str, Any] = {}
        for key, value in node.items():
            resolved = self.resolve(value)
            if resolved is not _NO_VALUE:
                out[key] = resolved
        return out

    def sub(self, arg: Any) -> str:
        if isinstance(arg, list):
            text, variables = arg[0], {k: self.resolve(v) for k, v in arg[1].items()}
        else:
            text, variables = arg, {}

        def replace(match: re.Match[str]) -> str:
            token = match.group(1)
            if token.startswith("!"):
                return "${" + token[1:] + "}"
            if token in variables:
                return str(variables[token])
            if "." in token and token.split(".", 1)[0] in self.template.get("Resources", {}):
                logical, attr = token.split(".", 1)
                return str(self._get_att(logical, attr))
            return str(self.ref(token))

        return _SUB_TOKEN.sub(replace, text)

    def get_att(self, arg: Any) -> Any:
        if isinstance(arg, str):
            arg = arg.split(".", 1)
        logical, attr = arg[0], self.resolve(arg[1])
        return self._get_att(logical, attr)

    def if_(self, arg: Any) -> Any:
        name, when_true, when_false = arg
        return self.resolve(when_true if self.condition(name) else when_false)

    def join(self, arg: Any) -> str:
        sep, items = arg
        return str(sep).join(str(x) for x in self.resolve(items))

    def select(self, arg: Any) -> Any:
        index, items = arg
        return self.resolve(items)[int(self.resolve(index))]

    def split(self, arg: Any) -> list[str]:
        sep, text = arg
        return str(self.resolve(text)).split(sep)

    def find_in_map(self, arg: Any) -> Any:
        name, top, second = (self.resolve(a) for a in arg)
        return self.template["Mappings"][name][top][second]


_INTRINSICS: dict[str, Callable[[Resolver, Any], Any]] = {
    "Ref": lambda r, a: r.ref(a),
    "Fn::Sub": Resolver.sub,
    "Fn::GetAtt": Resolver.get_att,
    "Fn::If": Resolver.if_,
    "Fn::Join": Resolver.join,
    "Fn::Select": Resolver.select,
    "Fn::Split": Resolver.split,
    "Fn::FindInMap": Resolver.find_in_map,
    "Fn::ToJsonString": lambda r, a: json.dumps(r.resolve(a)),
}


def _references(node: Any) -> set[str]:
    """Names a template fragment refers to (Ref, Fn::GetAtt, ${...} in Fn::Sub)."""
    found: set[str] = set()
    if isinstance(node, list):
        for item in node:
            found |= _references(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt":
                found.add(value.split(".", 1)[0] if isinstance(value, str) else value[0])
            elif key == "Fn::Sub":
                text = value[0] if isinstance(value, list) else value
                found |= {t.split(".", 1)[0] for t in _SUB_TOKEN.findall(text)}
                if isinstance(value, list):
                    found |= _references(value[1])
            else:
                found |= _references(value)
    return found


def effective_parameters(
    template: Mapping[str, Any], overrides: Mapping[str, str]
) -> dict[str, str]:
    declared = template.get("Parameters", {})
    unknown = set(overrides) - set(declared)
    if unknown:
        raise ProvisionError(f"parameters not declared in the template: {sorted(unknown)}")
    values: dict[str, str] = {}
    for name, spec in declared.items():
        if name in overrides:
            values[name] = str(overrides[name])
        elif "Default" in spec:
            values[name] = str(spec["Default"])
        else:
            raise ProvisionError(f"parameter {name} has no default and was not given")
    return values


# --------------------------------------------------------------------------------------------
# Emulator session
# --------------------------------------------------------------------------------------------


class _Clients:
    def __init__(self, endpoint_url: str | None, region: str) -> None:
        session: Any = boto3.session.Session(region_name=region)
        # emulators accept any key; only invent one for them when the environment has none
        dummy = "testing" if endpoint_url and session.get_credentials() is None else None
        self._session = session
        self._endpoint = endpoint_url
        self._dummy = dummy
        self._cache: dict[str, Any] = {}

    def __call__(self, service: str) -> Any:
        if service not in self._cache:
            self._cache[service] = self._session.client(
                service,
                endpoint_url=self._endpoint,
                aws_access_key_id=self._dummy,
                aws_secret_access_key=self._dummy,
            )
        return self._cache[service]


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _error_message(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message", ""))


# --------------------------------------------------------------------------------------------
# Stack deployment
# --------------------------------------------------------------------------------------------


def _describe_stack(cfn: Any, stack_name: str) -> dict[str, Any] | None:
    try:
        stacks = cfn.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as exc:
        if "does not exist" in _error_message(exc):
            return None
        raise
    return stacks[0] if stacks else None


def _pauses(first: float = 0.5, longest: float = 5.0) -> Iterator[float]:
    """Polling intervals: quick for an emulator, gentle on AWS's DescribeStacks quota."""
    pause = first
    while True:
        yield pause
        pause = min(longest, pause * 1.5)


def _wait_for_stack(cfn: Any, stack_name: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    pauses = _pauses()
    while True:
        stack = _describe_stack(cfn, stack_name)
        if stack is None:
            raise ProvisionError(f"stack {stack_name} disappeared")
        status = str(stack["StackStatus"])
        if not status.endswith("_IN_PROGRESS"):
            if status in _FAILED_STATUSES:
                reason = stack.get("StackStatusReason", "")
                raise ProvisionError(f"stack {stack_name} ended in {status}: {reason}")
            return stack
        if time.monotonic() > deadline:
            raise ProvisionError(f"stack {stack_name} still {status} after {timeout:.0f}s")
        time.sleep(next(pauses))


def _previous_parameters(stack: Mapping[str, Any] | None) -> dict[str, str]:
    if stack is None:
        return {}
    return {
        str(p["ParameterKey"]): str(p.get("ParameterValue", ""))
        for p in stack.get("Parameters", []) or []
        if "ParameterKey" in p
    }


def _deploy_stack(
    cfn: Any, stack_name: str, body: str, parameters: Mapping[str, str], timeout: float
) -> dict[str, Any]:
    """Create or update the stack with ``parameters``, which must already hold every value
    (see :func:`_stack_parameters`)."""
    params = [{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()]
    caps = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"]
    existing = _existing_stack(cfn, stack_name, timeout)
    if existing is None:
        cfn.create_stack(
            StackName=stack_name, TemplateBody=body, Parameters=params, Capabilities=caps
        )
    else:
        try:
            cfn.update_stack(
                StackName=stack_name, TemplateBody=body, Parameters=params, Capabilities=caps
            )
        except ClientError as exc:
            if "No updates are to be performed" not in _error_message(exc):
                raise
    return _wait_for_stack(cfn, stack_name, timeout)


def _existing_stack(cfn: Any, stack_name: str, timeout: float) -> dict[str, Any] | None:
    existing = _describe_stack(cfn, stack_name)
    if existing is not None and existing["StackStatus"] in _RECREATABLE_STATUSES:
        log.warning("stack %s is %s; recreating it", stack_name, existing["StackStatus"])
        cfn.delete_stack(StackName=stack_name)
        _wait_gone(cfn, stack_name, timeout)
        return None
    if existing is not None and str(existing["StackStatus"]).endswith("_IN_PROGRESS"):
        existing = _wait_for_stack(cfn, stack_name, timeout)  # e.g. LocalStack's init hook
    return existing


def _stack_parameters(
    template: Mapping[str, Any], overrides: Mapping[str, str], previous: Mapping[str, str]
) -> dict[str, str]:
    """Like ``aws cloudformation deploy``: parameters not given keep the existing stack's
    values (e.g. CreateGlueCatalog=false chosen by LocalStack's init hook), else defaults."""
    declared = template.get("Parameters", {})
    kept = {k: v for k, v in previous.items() if k in declared and k not in overrides}
    return effective_parameters(template, {**kept, **overrides})


def _wait_gone(cfn: Any, stack_name: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    pauses = _pauses()
    while time.monotonic() < deadline:
        stack = _describe_stack(cfn, stack_name)
        if stack is None or stack["StackStatus"] == "DELETE_COMPLETE":
            return
        time.sleep(next(pauses))
    raise ProvisionError(f"stack {stack_name} could not be deleted")


def _stack_resources(cfn: Any, stack_name: str) -> dict[str, str]:
    """LogicalResourceId -> PhysicalResourceId of what the stack really created (moto lists
    the types it skipped as entries without a logical id)."""
    found: dict[str, str] = {}
    for res in cfn.describe_stack_resources(StackName=stack_name)["StackResources"]:
        logical, physical = res.get("LogicalResourceId"), res.get("PhysicalResourceId")
        status = str(res.get("ResourceStatus", ""))
        if logical and physical and not status.endswith("FAILED"):
            found[str(logical)] = str(physical)
    return found


# --------------------------------------------------------------------------------------------
# Reconciliation
# --------------------------------------------------------------------------------------------


class _Reconciler:
    def __init__(
        self,
        clients: _Clients,
        template: dict[str, Any],
        parameters: Mapping[str, str],
        stack: Mapping[str, Any],
        region: str,
    ) -> None:
        self.clients = clients
        self.template = template
        self.resources: dict[str, Any] = template["Resources"]
        self.region = region
        self.account = str(clients("sts").get_caller_identity()["Account"])
        self.partition = "aws"
        stack_name = str(stack["StackName"])
        self.physical: dict[str, str] = _stack_resources(clients("cloudformation"), stack_name)
        self.fallback_resources: list[str] = []
        self.fallback_properties: list[str] = []
        self._creating: set[str] = set()
        self.read_only = False
        pseudo = {
            "AWS::AccountId": self.account,
            "AWS::Region": region,
            "AWS::Partition": self.partition,
            "AWS::StackName": stack_name,
            "AWS::StackId": str(stack["StackId"]),
            "AWS::URLSuffix": "amazonaws.com",
        }
        self.resolver = Resolver(template, parameters, pseudo, self._ref, self._get_att)

    # -- Ref / GetAtt ------------------------------------------------------------------------
    def _ref(self, logical: str) -> str:
        if logical not in self.physical and self.read_only:
            # what the fallback named it, without making anything
            resource = self.resources[logical]
            name_of = _FALLBACK_NAMES.get(resource["Type"])
            if name_of is None:
                raise ProvisionError(f"{logical} is gone")
            return name_of(self, logical, self.resolver.resolve(resource.get("Properties", {})))
        if logical not in self.physical:
            self._ensure_fallback(logical)
        return self.physical[logical]

    def _get_att(self, logical: str, attr: str) -> Any:
        rtype = self.resources[logical]["Type"]
        ref = self._ref(logical)
        arn = f"arn:{self.partition}"
        region_account = f"{self.region}:{self.account}"
        if rtype == "AWS::SQS::Queue":
            name = ref.rstrip("/").rsplit("/", 1)[-1]
            attrs = {
                "Arn": f"{arn}:sqs:{region_account}:{name}",
                "QueueName": name,
                "QueueUrl": self.queue_url(name),
            }
            return attrs[attr]
        table = {
            ("AWS::Kinesis::Stream", "Arn"): f"{arn}:kinesis:{region_account}:stream/{ref}",
            ("AWS::DynamoDB::Table", "Arn"): f"{arn}:dynamodb:{region_account}:table/{ref}",
            ("AWS::S3::Bucket", "Arn"): f"{arn}:s3:::{ref}",
            ("AWS::S3::Bucket", "DomainName"): f"{ref}.s3.amazonaws.com",
            ("AWS::SNS::Topic", "TopicArn"): ref,
            ("AWS::SNS::Topic", "TopicName"): ref.rsplit(":", 1)[-1],
            ("AWS::CloudWatch::Alarm", "Arn"): f"{arn}:cloudwatch:{region_account}:alarm:{ref}",
        }
        if (rtype, attr) not in table:
            raise ProvisionError(f"Fn::GetAtt {logical}.{attr} ({rtype}) is not supported")
        return table[(rtype, attr)]

    def queue_url(self, name: str) -> str:
        return str(self.clients("sqs").get_queue_url(QueueName=name)["QueueUrl"])

    # -- resources the emulator's CloudFormation did not create -------------------------------
    def _ensure_fallback(self, logical: str) -> None:
        resource = self.resources.get(logical)
        if resource is None:
            raise ProvisionError(f"unknown resource {logical}")
        if not self.resolver.active(resource):
            raise ProvisionError(f"{logical} is referenced but its Condition is false")
        if logical in self._creating:
            raise ProvisionError(f"circular reference through {logical}")
        rtype = resource["Type"]
        creator = _FALLBACK_CREATORS.get(rtype)
        if creator is None:
            raise ProvisionError(
                f"the emulator did not create {logical} ({rtype}) and there is no fallback for it"
            )
        self._creating.add(logical)
        try:
            props = self.resolver.resolve(resource.get("Properties", {}))
            self.physical[logical] = creator(self, logical, props)
        except ClientError as exc:
            raise ProvisionError(
                f"could not create {logical} ({rtype}) directly on the emulator: {exc}. "
                "If the emulator lacks that service, turn the resource off with the "
                "template's parameters (e.g. CreateGlueCatalog=false)."
            ) from exc
        finally:
            self._creating.discard(logical)
        self.fallback_resources.append(f"{logical} ({rtype})")
        log.info("provisioned %s (%s) directly (emulator lacks it)", logical, rtype)

    def reconcile(self) -> None:
        for logical, resource in self.resources.items():
            if not self.resolver.active(resource):
                continue
            exists = _EXISTENCE_CHECKS.get(resource["Type"])
            if logical in self.physical and exists and not exists(self, self.physical[logical]):
                # listed by the stack but never made (moto's update of a resource whose
                # Condition turned true)
                del self.physical[logical]
            if logical not in self.physical:
                self._ensure_fallback(logical)
                continue
            checkers = _PROPERTY_CHECKERS.get(resource["Type"], {})
            props = resource.get("Properties", {})
            for prop, checker in checkers.items():
                if prop not in props:
                    continue
                value = self.resolver.resolve(props[prop])
                if value is _NO_VALUE or value == {}:
                    continue
                if checker(self, self.physical[logical], value):
                    self.fallback_properties.append(f"{logical}.{prop}")
                    log.info("applied %s.%s directly (emulator ignored it)", logical, prop)

    @property
    def fallback_logical_ids(self) -> set[str]:
        if self.read_only:  # nothing made in this run: whatever the stack does not list
            return {
                logical
                for logical, resource in self.resources.items()
                if logical not in self.physical and self.resolver.active(resource)
            }
        return {entry.split(" ", 1)[0] for entry in self.fallback_resources}

    def outputs(self, stack: Mapping[str, Any]) -> dict[str, str]:
        from_stack = {
            str(o["OutputKey"]): str(o["OutputValue"])
            for o in stack.get("Outputs", []) or []
            if o.get("OutputValue") not in (None, "", "None")
        }
        result: dict[str, str] = {}
        for key, spec in self.template.get("Outputs", {}).items():
            cond = spec.get("Condition")
            if cond is not None and not self.resolver.condition(cond):
                continue
            value = spec["Value"]
            ref = value.get("Ref") if isinstance(value, dict) else None
            if ref in self.resources and self.resources[ref]["Type"] == "AWS::SQS::Queue":
                # the URL the emulator itself serves the queue under
                result[key] = self._get_att(ref, "QueueUrl")
            elif key in from_stack and not (_references(value) & self.fallback_logical_ids):
                result[key] = from_stack[key]
            else:
                result[key] = str(self.resolver.resolve(value))
        return result


# -- fallback creators: (reconciler, logical id, resolved properties) -> Ref value -------------


def _create_glue_database(rc: _Reconciler, logical: str, props: dict[str, Any]) -> str:
    glue = rc.clients("glue")
    db_input = props["DatabaseInput"]
    name = db_input["Name"]
    try:
        glue.get_database(Name=name)
        glue.update_database(Name=name, DatabaseInput=db_input)
    except ClientError as exc:
        if _error_code(exc) != "EntityNotFoundException":
            raise
        glue.create_database(DatabaseInput=db_input)
    return str(name)


def _create_glue_table(rc: _Reconciler, logical: str, props: dict[str, Any]) -> str:
    glue = rc.clients("glue")
    database, table_input = props["DatabaseName"], props["TableInput"]
    name = table_input["Name"]
    try:
        glue.get_table(DatabaseName=database, Name=name)
        glue.update_table(DatabaseName=database, TableInput=table_input)
    except ClientError as exc:
        if _error_code(exc) != "EntityNotFoundException":
            raise
        glue.create_table(DatabaseName=database, TableInput=table_input)
    return str(name)


def _create_sns_subscription(rc: _Reconciler, logical: str, props: dict[str, Any]) -> str:
    attributes: dict[str, str] = {}
    for key in ("RawMessageDelivery", "FilterPolicyScope", "RedrivePolicy"):
        if key in props:
            value = props[key]
            attributes[key] = json.dumps(value) if isinstance(value, dict) else str(value).lower()
    if "FilterPolicy" in props:
        attributes["FilterPolicy"] = json.dumps(props["FilterPolicy"])
    response = rc.clients("sns").subscribe(
        TopicArn=props["TopicArn"],
        Protocol=props["Protocol"],
        Endpoint=props["Endpoint"],
        Attributes=attributes,
        ReturnSubscriptionArn=True,
    )
    return str(response["SubscriptionArn"])


def _create_bucket_policy(rc: _Reconciler, logical: str, props: dict[str, Any]) -> str:
    policy = props["PolicyDocument"]
    rc.clients("s3").put_bucket_policy(
        Bucket=props["Bucket"], Policy=policy if isinstance(policy, str) else json.dumps(policy)
    )
    return str(props["Bucket"])


_ALARM_INT = ("Period", "EvaluationPeriods", "DatapointsToAlarm")
_ALARM_BOOL = ("ActionsEnabled",)


def _typed(
    props: Mapping[str, Any], integers: tuple[str, ...], booleans: tuple[str, ...]
) -> dict[str, Any]:
    """Template properties as API arguments: parameters resolve to strings, the API wants
    numbers and booleans."""
    args = dict(props)
    for key in integers:
        if key in args:
            args[key] = int(args[key])
    for key in booleans:
        if key in args:
            args[key] = str(args[key]).lower() == "true"
    return args


def alarm_api_arguments(props: Mapping[str, Any]) -> dict[str, Any]:
    """AWS::CloudWatch::Alarm properties -> PutMetricAlarm arguments (same names, typed)."""
    args = _typed(props, _ALARM_INT, _ALARM_BOOL)
    if "Threshold" in args:
        args["Threshold"] = float(args["Threshold"])
    for metric in args.get("Metrics", []):
        if "MetricStat" in metric and "Period" in metric["MetricStat"]:
            metric["MetricStat"]["Period"] = int(metric["MetricStat"]["Period"])
    return args


def _create_alarm(rc: _Reconciler, logical: str, props: dict[str, Any]) -> str:
    args = alarm_api_arguments(props)
    args["AlarmName"] = _alarm_name(rc, logical, props)
    rc.clients("cloudwatch").put_metric_alarm(**args)
    return str(args["AlarmName"])


_MAPPING_SETTINGS = (
    "BatchSize",
    "MaximumBatchingWindowInSeconds",
    "ParallelizationFactor",
    "BisectBatchOnFunctionError",
    "MaximumRetryAttempts",
    "MaximumRecordAgeInSeconds",
    "FunctionResponseTypes",
    "DestinationConfig",
    "TumblingWindowInSeconds",
    "FilterCriteria",
    "Enabled",
)
_MAPPING_INT = (
    "BatchSize",
    "MaximumBatchingWindowInSeconds",
    "ParallelizationFactor",
    "MaximumRetryAttempts",
    "MaximumRecordAgeInSeconds",
    "TumblingWindowInSeconds",
)


def mapping_api_arguments(props: Mapping[str, Any]) -> dict[str, Any]:
    """AWS::Lambda::EventSourceMapping properties -> CreateEventSourceMapping arguments."""
    return _typed(props, _MAPPING_INT, ("BisectBatchOnFunctionError", "Enabled"))


def _find_mapping(rc: _Reconciler, source_arn: str, function: str) -> dict[str, Any] | None:
    listed = rc.clients("lambda").list_event_source_mappings(
        EventSourceArn=source_arn, FunctionName=function
    )["EventSourceMappings"]
    return listed[0] if listed else None


def _create_event_source_mapping(rc: _Reconciler, logical: str, props: dict[str, Any]) -> str:
    args = mapping_api_arguments(props)
    existing = _find_mapping(rc, args["EventSourceArn"], args["FunctionName"])
    awslambda = rc.clients("lambda")
    if existing is None:
        return str(awslambda.create_event_source_mapping(**args)["UUID"])
    settings = {key: args[key] for key in _MAPPING_SETTINGS if key in args}
    awslambda.update_event_source_mapping(
        UUID=existing["UUID"], FunctionName=args["FunctionName"], **settings
    )
    return str(existing["UUID"])


def _mapping_exists(rc: _Reconciler, uuid: str) -> bool:
    try:
        rc.clients("lambda").get_event_source_mapping(UUID=uuid)
    except ClientError as exc:
        if _error_code(exc) in ("ResourceNotFoundException", "404"):
            return False
        raise
    return True


_EXISTENCE_CHECKS: dict[str, Callable[[_Reconciler, str], bool]] = {
    "AWS::Lambda::EventSourceMapping": _mapping_exists,
}

_FALLBACK_CREATORS: dict[str, Callable[[_Reconciler, str, dict[str, Any]], str]] = {
    "AWS::Lambda::EventSourceMapping": _create_event_source_mapping,
    "AWS::Glue::Database": _create_glue_database,
    "AWS::Glue::Table": _create_glue_table,
    "AWS::SNS::Subscription": _create_sns_subscription,
    "AWS::S3::BucketPolicy": _create_bucket_policy,
    "AWS::CloudWatch::Alarm": _create_alarm,
}


# -- teardown: what the fallback made, found again from the template -------------------------


def _alarm_name(rc: _Reconciler, logical: str, props: dict[str, Any]) -> str:
    return str(props.get("AlarmName") or f"{rc.resolver.values['AWS::StackName']}-{logical}")


def _mapping_uuid(rc: _Reconciler, logical: str, props: dict[str, Any]) -> str:
    mapping = _find_mapping(rc, props["EventSourceArn"], props["FunctionName"])
    if mapping is None:
        raise ProvisionError(f"{logical} is gone")
    return str(mapping["UUID"])


# The Ref value of what a fallback creator made, from its properties (nothing is created).
_FALLBACK_NAMES: dict[str, Callable[[_Reconciler, str, dict[str, Any]], str]] = {
    "AWS::Glue::Database": lambda rc, logical, props: str(props["DatabaseInput"]["Name"]),
    "AWS::Glue::Table": lambda rc, logical, props: str(props["TableInput"]["Name"]),
    "AWS::S3::BucketPolicy": lambda rc, logical, props: str(props["Bucket"]),
    "AWS::CloudWatch::Alarm": _alarm_name,
    "AWS::Lambda::EventSourceMapping": _mapping_uuid,
}


def _ignoring(codes: tuple[str, ...], call: Callable[[], Any]) -> bool:
    """Run ``call``; False when it failed because the thing was already gone."""
    try:
        call()
    except ClientError as exc:
        if _error_code(exc) in codes:
            return False
        raise
    return True


def _delete_glue_table(rc: _Reconciler, logical: str, props: dict[str, Any]) -> bool:
    glue = rc.clients("glue")
    database, name = props["DatabaseName"], props["TableInput"]["Name"]
    return _ignoring(
        ("EntityNotFoundException",), lambda: glue.delete_table(DatabaseName=database, Name=name)
    )


def _delete_glue_database(rc: _Reconciler, logical: str, props: dict[str, Any]) -> bool:
    glue, name = rc.clients("glue"), props["DatabaseInput"]["Name"]
    return _ignoring(("EntityNotFoundException",), lambda: glue.delete_database(Name=name))


def _delete_alarm(rc: _Reconciler, logical: str, props: dict[str, Any]) -> bool:
    cloudwatch = rc.clients("cloudwatch")
    name = _alarm_name(rc, logical, props)
    if not cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"]:
        return False
    cloudwatch.delete_alarms(AlarmNames=[name])
    return True


def _delete_sns_subscription(rc: _Reconciler, logical: str, props: dict[str, Any]) -> bool:
    sns = rc.clients("sns")
    removed = False
    for page in sns.get_paginator("list_subscriptions").paginate():
        for subscription in page["Subscriptions"]:
            arn = str(subscription["SubscriptionArn"])
            same = (subscription["TopicArn"], subscription["Endpoint"]) == (
                props["TopicArn"],
                props["Endpoint"],
            )
            if same and arn.startswith("arn:"):  # not "PendingConfirmation"
                sns.unsubscribe(SubscriptionArn=arn)
                removed = True
    return removed


def _delete_event_source_mapping(rc: _Reconciler, logical: str, props: dict[str, Any]) -> bool:
    mapping = _find_mapping(rc, props["EventSourceArn"], props["FunctionName"])
    if mapping is None:
        return False
    rc.clients("lambda").delete_event_source_mapping(UUID=mapping["UUID"])
    return True


# Dependants first: a table before its database.
_FALLBACK_DELETERS: dict[str, Callable[[_Reconciler, str, dict[str, Any]], bool]] = {
    "AWS::Lambda::EventSourceMapping": _delete_event_source_mapping,
    "AWS::CloudWatch::Alarm": _delete_alarm,
    "AWS::SNS::Subscription": _delete_sns_subscription,
    "AWS::Glue::Table": _delete_glue_table,
    "AWS::Glue::Database": _delete_glue_database,
}


# -- property checkers: (reconciler, physical id, resolved value) -> True if applied -----------


def _check_ttl(rc: _Reconciler, table: str, spec: dict[str, Any]) -> bool:
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


def _check_public_access_block(rc: _Reconciler, bucket: str, spec: dict[str, Any]) -> bool:
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


def _check_lifecycle(rc: _Reconciler, bucket: str, spec: dict[str, Any]) -> bool:
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


def _check_bucket_encryption(rc: _Reconciler, bucket: str, spec: dict[str, Any]) -> bool:
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


def _check_stream_mode(rc: _Reconciler, stream: str, spec: dict[str, Any]) -> bool:
    kinesis = rc.clients("kinesis")
    summary = kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]
    current = summary.get("StreamModeDetails", {}).get("StreamMode", "PROVISIONED")
    if current == spec["StreamMode"]:
        return False
    kinesis.update_stream_mode(
        StreamARN=summary["StreamARN"], StreamModeDetails={"StreamMode": spec["StreamMode"]}
    )
    return True


def _check_stream_encryption(rc: _Reconciler, stream: str, spec: dict[str, Any]) -> bool:
    kinesis = rc.clients("kinesis")
    summary = kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]
    if summary.get("EncryptionType", "NONE") != "NONE":
        return False
    kinesis.start_stream_encryption(
        StreamName=stream, EncryptionType=spec["EncryptionType"], KeyId=spec["KeyId"]
    )
    return True


def _check_queue_retention(rc: _Reconciler, queue_url: str, value: Any) -> bool:
    sqs = rc.clients("sqs")
    url = rc.queue_url(queue_url.rstrip("/").rsplit("/", 1)[-1])
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["MessageRetentionPeriod"])
    if attrs.get("Attributes", {}).get("MessageRetentionPeriod") == str(value):
        return False
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"MessageRetentionPeriod": str(value)})
    return True


_PROPERTY_CHECKERS: dict[str, dict[str, Callable[[_Reconciler, str, Any], bool]]] = {
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


# --------------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------------


def provision_stack(
    endpoint_url: str | None,
    region: str = "us-east-1",
    parameters: dict[str, str] | None = None,
    stack_name: str = "clickstream-local",
    template_path: str | Path = TEMPLATE_PATH,
    timeout: float = 300.0,
) -> ProvisionResult:
    """Deploy the template on the emulator at ``endpoint_url`` (AWS itself when None) and
    fill in what the emulator's CloudFormation lacks (on AWS: nothing)."""
    template = load_template(template_path)
    overrides = {k: str(v) for k, v in (parameters or {}).items()}
    effective_parameters(template, overrides)  # fail early on unknown / missing parameters
    clients = _Clients(endpoint_url, region)
    body = Path(template_path).read_text(encoding="utf-8")
    cfn = clients("cloudformation")
    previous = _previous_parameters(_describe_stack(cfn, stack_name))
    values = _stack_parameters(template, overrides, previous)
    stack = _deploy_stack(cfn, stack_name, body, values, timeout)
    reconciler = _Reconciler(clients, template, values, stack, region)
    reconciler.reconcile()
    outputs = reconciler.outputs(stack)
    if reconciler.fallback_resources:
        log.info("provisioned outside CloudFormation: %s", ", ".join(reconciler.fallback_resources))
    return ProvisionResult(
        outputs=outputs,
        stack_status=str(stack["StackStatus"]),
        fallback_resources=reconciler.fallback_resources,
        fallback_properties=reconciler.fallback_properties,
    )


def stack_outputs(
    endpoint_url: str | None,
    region: str = "us-east-1",
    stack_name: str = "clickstream-local",
    template_path: str | Path = TEMPLATE_PATH,
) -> dict[str, str]:
    """The outputs of a deployed stack as :func:`provision_stack` returned them: on moto,
    outputs that name resources made outside its CloudFormation come from the template,
    without creating anything."""
    template = load_template(template_path)
    clients = _Clients(endpoint_url, region)
    stack = _describe_stack(clients("cloudformation"), stack_name)
    if stack is None:
        raise ProvisionError(f"stack {stack_name} does not exist")
    values = _stack_parameters(template, {}, _previous_parameters(stack))
    reconciler = _Reconciler(clients, template, values, stack, region)
    reconciler.read_only = True
    return reconciler.outputs(stack)


def teardown_stack(
    endpoint_url: str | None,
    region: str = "us-east-1",
    stack_name: str = "clickstream-local",
    template_path: str | Path = TEMPLATE_PATH,
    timeout: float = 300.0,
) -> list[str]:
    """Delete the stack, then whatever of it the stack's CloudFormation did not own (what
    :func:`provision_stack` made directly, found again from the template and the stack's
    parameters). Returns those as "LogicalId (Type)"; on AWS and LocalStack the list is empty
    because CloudFormation owned everything."""
    template = load_template(template_path)
    clients = _Clients(endpoint_url, region)
    cfn = clients("cloudformation")
    stack = _describe_stack(cfn, stack_name)
    if stack is None:
        return []
    values = _stack_parameters(template, {}, _previous_parameters(stack))
    reconciler = _Reconciler(clients, template, values, stack, region)
    reconciler.read_only = True
    leftovers: list[tuple[str, str, dict[str, Any]]] = []
    for rtype in _FALLBACK_DELETERS:
        for logical, resource in template["Resources"].items():
            if resource["Type"] == rtype and reconciler.resolver.active(resource):
                props = reconciler.resolver.resolve(resource.get("Properties", {}))
                leftovers.append((logical, rtype, props))
    cfn.delete_stack(StackName=stack_name)
    _wait_gone(cfn, stack_name, timeout)
    removed = []
    for logical, rtype, props in leftovers:
        if _FALLBACK_DELETERS[rtype](reconciler, logical, props):
            removed.append(f"{logical} ({rtype})")
    return removed


def provision(
    endpoint_url: str,
    region: str = "us-east-1",
    parameters: dict[str, str] | None = None,
    stack_name: str = "clickstream-local",
) -> dict[str, str]:
    """Deploy ``infra/template.yaml`` on the emulator; return the stack outputs plus
    ``StackStatus``, ``ProvisionedByFallback`` (comma-separated "LogicalId (Type)" created
    directly with boto3) and ``PropertiesAppliedByFallback`` ("LogicalId.Property")."""
    return provision_stack(endpoint_url, region, parameters, stack_name).as_dict()


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--endpoint-url", default="http://127.0.0.1:4567")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--stack-name", default="clickstream-local")
    parser.add_argument("--parameter", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    params = dict(p.split("=", 1) for p in args.parameter)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    print(json.dumps(provision(args.endpoint_url, args.region, params, args.stack_name), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
