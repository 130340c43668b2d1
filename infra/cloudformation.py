"""A CloudFormation stack: described, waited for, and changed only through change sets that are
shown before they run."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"]
FAILED_STATUSES = {
    "CREATE_FAILED",
    "ROLLBACK_COMPLETE",
    "ROLLBACK_FAILED",
    "DELETE_COMPLETE",
    "DELETE_FAILED",
    "UPDATE_ROLLBACK_COMPLETE",
    "UPDATE_ROLLBACK_FAILED",
}
# A first create that failed leaves a stack that can only be deleted (by CloudFormation).
RECREATABLE_STATUSES = {"ROLLBACK_COMPLETE", "CREATE_FAILED", "ROLLBACK_FAILED"}
# A stack made by a CREATE change set that never ran: it has no resources, and the next
# change set creates it.
REVIEW = "REVIEW_IN_PROGRESS"
# What CloudFormation answers for a change set that would change nothing.
_NO_CHANGES = ("didn't contain changes", "No updates are to be performed")


class StackError(RuntimeError):
    pass


class NotConfirmed(StackError):
    pass


@dataclass(frozen=True)
class Change:
    action: str  # Add | Modify | Remove | Import | Dynamic
    logical_id: str
    resource_type: str
    replacement: str = ""  # True | False | Conditional, for Modify

    def __str__(self) -> str:
        replacing = f"  (replacement: {self.replacement})" if self.replacement else ""
        return f"  {self.action:<8} {self.logical_id:<34} {self.resource_type}{replacing}"


Confirm = Callable[[str, list[Change]], bool]


def error_message(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message", ""))


def describe_stack(cfn: Any, stack_name: str) -> dict[str, Any] | None:
    try:
        stacks = cfn.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as exc:
        if "does not exist" in error_message(exc):
            return None
        raise
    return dict(stacks[0]) if stacks else None


def pauses(first: float = 0.5, longest: float = 5.0) -> Iterator[float]:
    """Polling intervals: quick for an emulator, gentle on AWS's DescribeStacks quota."""
    pause = first
    while True:
        yield pause
        pause = min(longest, pause * 1.5)


def wait_for_stack(cfn: Any, stack_name: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    intervals = pauses()
    while True:
        stack = describe_stack(cfn, stack_name)
        if stack is None:
            raise StackError(f"stack {stack_name} disappeared")
        status = str(stack["StackStatus"])
        if not status.endswith("_IN_PROGRESS"):
            if status in FAILED_STATUSES:
                reason = stack.get("StackStatusReason", "")
                raise StackError(f"stack {stack_name} ended in {status}: {reason}")
            return stack
        if time.monotonic() > deadline:
            raise StackError(f"stack {stack_name} still {status} after {timeout:.0f}s")
        time.sleep(next(intervals))


def wait_gone(cfn: Any, stack_name: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    intervals = pauses()
    while time.monotonic() < deadline:
        stack = describe_stack(cfn, stack_name)
        if stack is None or stack["StackStatus"] == "DELETE_COMPLETE":
            return
        if stack["StackStatus"] == "DELETE_FAILED":
            raise StackError(f"stack {stack_name}: {stack.get('StackStatusReason', '')}")
        time.sleep(next(intervals))
    raise StackError(f"stack {stack_name} could not be deleted")


def previous_parameters(stack: Mapping[str, Any] | None) -> dict[str, str]:
    if stack is None:
        return {}
    return {
        str(p["ParameterKey"]): str(p.get("ParameterValue", ""))
        for p in stack.get("Parameters", []) or []
        if "ParameterKey" in p
    }


def outputs_of(stack: Mapping[str, Any]) -> dict[str, str]:
    return {
        str(o["OutputKey"]): str(o["OutputValue"])
        for o in stack.get("Outputs", []) or []
        if o.get("OutputValue") not in (None, "", "None")
    }


def owned_resources(cfn: Any, stack_name: str, resource_type: str) -> list[str]:
    """Physical ids of the stack's own resources of one type."""
    found: list[str] = []
    for page in cfn.get_paginator("list_stack_resources").paginate(StackName=stack_name):
        for resource in page["StackResourceSummaries"]:
            if (
                resource["ResourceType"] == resource_type
                and resource.get("PhysicalResourceId")
                and resource.get("ResourceStatus") != "DELETE_COMPLETE"
            ):
                found.append(str(resource["PhysicalResourceId"]))
    return found


def _changes(cfn: Any, change_set: str) -> tuple[dict[str, Any], list[Change]]:
    """Wait for the change set to be computed; its description and its changes."""
    intervals = pauses()
    while True:
        described = cfn.describe_change_set(ChangeSetName=change_set)
        if described["Status"] not in ("CREATE_PENDING", "CREATE_IN_PROGRESS"):
            break
        time.sleep(next(intervals))
    changes: list[Change] = []
    page = described
    while True:
        for entry in page.get("Changes", []):
            resource = entry.get("ResourceChange", {})
            changes.append(
                Change(
                    str(resource.get("Action", "")),
                    str(resource.get("LogicalResourceId", "")),
                    str(resource.get("ResourceType", "")),
                    str(resource.get("Replacement", "")),
                )
            )
        if not page.get("NextToken"):
            return described, changes
        page = cfn.describe_change_set(ChangeSetName=change_set, NextToken=page["NextToken"])


def deploy_with_change_set(
    cfn: Any,
    stack_name: str,
    template_body: str,
    parameters: Mapping[str, str],
    confirm: Confirm,
    timeout: float,
) -> dict[str, Any]:
    """Create or update the stack through one change set, run only when ``confirm`` accepts
    its changes. Returns the settled stack (unchanged when the change set is empty)."""
    existing = describe_stack(cfn, stack_name)
    status = "" if existing is None else str(existing["StackStatus"])
    if status.endswith("_IN_PROGRESS") and status != REVIEW:
        existing = wait_for_stack(cfn, stack_name, timeout)
    if existing is not None and existing["StackStatus"] in RECREATABLE_STATUSES:
        if not confirm(f"stack {stack_name} is {existing['StackStatus']}; delete it", []):
            raise NotConfirmed(f"stack {stack_name} left as {existing['StackStatus']}")
        cfn.delete_stack(StackName=stack_name)
        wait_gone(cfn, stack_name, timeout)
        existing = None
    creating = existing is None or existing["StackStatus"] == REVIEW
    name = f"{stack_name}-{time.strftime('%Y%m%d%H%M%S', time.gmtime())}"
    created = cfn.create_change_set(
        StackName=stack_name,
        ChangeSetName=name,
        ChangeSetType="CREATE" if creating else "UPDATE",
        TemplateBody=template_body,
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=CAPABILITIES,
    )
    change_set = str(created["Id"])
    described, changes = _changes(cfn, change_set)
    if described["Status"] == "FAILED":
        reason = str(described.get("StatusReason", ""))
        cfn.delete_change_set(ChangeSetName=change_set)
        if existing is not None and any(text in reason for text in _NO_CHANGES):
            return existing
        raise StackError(f"change set {name} failed: {reason}")
    if not confirm(f"change set {name} for stack {stack_name}", changes):
        cfn.delete_change_set(ChangeSetName=change_set)
        raise NotConfirmed(f"change set {name} not run (deleted)")
    cfn.execute_change_set(ChangeSetName=change_set)
    return wait_for_stack(cfn, stack_name, timeout)


def delete_stack(cfn: Any, stack_name: str, timeout: float) -> None:
    if describe_stack(cfn, stack_name) is None:
        return
    cfn.delete_stack(StackName=stack_name)
    wait_gone(cfn, stack_name, timeout)
