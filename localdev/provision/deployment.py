"""The template onto an emulator's own CloudFormation (CreateStack / UpdateStack)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import boto3
from botocore.exceptions import ClientError

from infra.cloudformation import (
    RECREATABLE_STATUSES,
    describe_stack,
    error_message,
    wait_for_stack,
    wait_gone,
)

log = logging.getLogger("localdev.provision")


class Clients:
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


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def deploy_stack(
    cfn: Any, stack_name: str, body: str, parameters: Mapping[str, str], timeout: float
) -> dict[str, Any]:
    """Create or update the stack with ``parameters``, which must already hold every value
    (see :func:`stack_parameters`)."""
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
            if "No updates are to be performed" not in error_message(exc):
                raise
    return wait_for_stack(cfn, stack_name, timeout)


def _existing_stack(cfn: Any, stack_name: str, timeout: float) -> dict[str, Any] | None:
    existing = describe_stack(cfn, stack_name)
    if existing is not None and existing["StackStatus"] in RECREATABLE_STATUSES:
        log.warning("stack %s is %s; recreating it", stack_name, existing["StackStatus"])
        cfn.delete_stack(StackName=stack_name)
        wait_gone(cfn, stack_name, timeout)
        return None
    if existing is not None and str(existing["StackStatus"]).endswith("_IN_PROGRESS"):
        existing = wait_for_stack(cfn, stack_name, timeout)  # e.g. LocalStack's init hook
    return existing


def stack_resources(cfn: Any, stack_name: str) -> dict[str, str]:
    """LogicalResourceId -> PhysicalResourceId of what the stack really created (moto lists
    the types it skipped as entries without a logical id)."""
    found: dict[str, str] = {}
    for res in cfn.describe_stack_resources(StackName=stack_name)["StackResources"]:
        logical, physical = res.get("LogicalResourceId"), res.get("PhysicalResourceId")
        status = str(res.get("ResourceStatus", ""))
        if logical and physical and not status.endswith("FAILED"):
            found[str(logical)] = str(physical)
    return found
