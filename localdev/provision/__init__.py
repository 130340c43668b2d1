"""``infra/template.yaml`` provisioned on a local emulator, with fallbacks for what the
emulator's CloudFormation lacks (docs/local-provisioning.md)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.cloudformation import describe_stack, previous_parameters, wait_gone
from infra.template import TEMPLATE_PATH, effective_parameters, load_template, stack_parameters
from localdev.provision.deployment import Clients, deploy_stack
from localdev.provision.fallbacks import FALLBACK_DELETERS, mapping_api_arguments
from localdev.provision.reconcile import Reconciler
from localdev.provision.resolver import ProvisionError

__all__ = [
    "ProvisionError",
    "ProvisionResult",
    "mapping_api_arguments",
    "provision",
    "provision_stack",
    "stack_outputs",
    "teardown_stack",
]

log = logging.getLogger("localdev.provision")


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


def provision_stack(
    endpoint_url: str,
    region: str = "us-east-1",
    parameters: dict[str, str] | None = None,
    stack_name: str = "clickstream-local",
    template_path: str | Path = TEMPLATE_PATH,
    timeout: float = 300.0,
) -> ProvisionResult:
    """Deploy the template on the emulator at ``endpoint_url`` and fill in what the
    emulator's CloudFormation lacks (on LocalStack: nothing)."""
    template = load_template(template_path)
    overrides = {k: str(v) for k, v in (parameters or {}).items()}
    effective_parameters(template, overrides)  # fail early on unknown / missing parameters
    clients = Clients(endpoint_url, region)
    body = Path(template_path).read_text(encoding="utf-8")
    cfn = clients("cloudformation")
    previous = previous_parameters(describe_stack(cfn, stack_name))
    values = stack_parameters(template, overrides, previous)
    stack = deploy_stack(cfn, stack_name, body, values, timeout)
    reconciler = Reconciler(clients, template, values, stack, region)
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
    endpoint_url: str,
    region: str = "us-east-1",
    stack_name: str = "clickstream-local",
    template_path: str | Path = TEMPLATE_PATH,
) -> dict[str, str]:
    """The outputs of a deployed stack as :func:`provision_stack` returned them: on moto,
    outputs that name resources made outside its CloudFormation come from the template,
    without creating anything."""
    template = load_template(template_path)
    clients = Clients(endpoint_url, region)
    stack = describe_stack(clients("cloudformation"), stack_name)
    if stack is None:
        raise ProvisionError(f"stack {stack_name} does not exist")
    values = stack_parameters(template, {}, previous_parameters(stack))
    reconciler = Reconciler(clients, template, values, stack, region)
    reconciler.read_only = True
    return reconciler.outputs(stack)


def teardown_stack(
    endpoint_url: str,
    region: str = "us-east-1",
    stack_name: str = "clickstream-local",
    template_path: str | Path = TEMPLATE_PATH,
    timeout: float = 300.0,
) -> list[str]:
    """Delete the stack, then whatever of it the stack's CloudFormation did not own (what
    :func:`provision_stack` made directly, found again from the template and the stack's
    parameters). Returns those as "LogicalId (Type)"; on LocalStack the list is empty
    because CloudFormation owned everything."""
    template = load_template(template_path)
    clients = Clients(endpoint_url, region)
    cfn = clients("cloudformation")
    stack = describe_stack(cfn, stack_name)
    if stack is None:
        return []
    values = stack_parameters(template, {}, previous_parameters(stack))
    reconciler = Reconciler(clients, template, values, stack, region)
    reconciler.read_only = True
    leftovers: list[tuple[str, str, dict[str, Any]]] = []
    for rtype in FALLBACK_DELETERS:
        for logical, resource in template["Resources"].items():
            if resource["Type"] == rtype and reconciler.resolver.active(resource):
                props = reconciler.resolver.resolve(resource.get("Properties", {}))
                leftovers.append((logical, rtype, props))
    cfn.delete_stack(StackName=stack_name)
    wait_gone(cfn, stack_name, timeout)
    removed = []
    for logical, rtype, props in leftovers:
        if FALLBACK_DELETERS[rtype](reconciler, logical, props):
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
