"""What the emulator's CloudFormation did not make or did not apply, made and applied from
the template's own values; the stack's outputs as the template defines them."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from localdev.provision.checks import PROPERTY_CHECKERS
from localdev.provision.deployment import Clients, stack_resources
from localdev.provision.fallbacks import EXISTENCE_CHECKS, FALLBACK_CREATORS, FALLBACK_NAMES
from localdev.provision.resolver import NO_VALUE, ProvisionError, Resolver, references

log = logging.getLogger("localdev.provision")


class Reconciler:
    def __init__(
        self,
        clients: Clients,
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
        self.physical: dict[str, str] = stack_resources(clients("cloudformation"), stack_name)
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
            name_of = FALLBACK_NAMES.get(resource["Type"])
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
        creator = FALLBACK_CREATORS.get(rtype)
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
            exists = EXISTENCE_CHECKS.get(resource["Type"])
            if logical in self.physical and exists and not exists(self, self.physical[logical]):
                # listed by the stack but never made (moto's update of a resource whose
                # Condition turned true)
                del self.physical[logical]
            if logical not in self.physical:
                self._ensure_fallback(logical)
                continue
            checkers = PROPERTY_CHECKERS.get(resource["Type"], {})
            props = resource.get("Properties", {})
            for prop, checker in checkers.items():
                if prop not in props:
                    continue
                value = self.resolver.resolve(props[prop])
                if value is NO_VALUE or value == {}:
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
            elif key in from_stack and not (references(value) & self.fallback_logical_ids):
                result[key] = from_stack[key]
            else:
                result[key] = str(self.resolver.resolve(value))
        return result
