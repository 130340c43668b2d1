"""``infra/template.yaml`` as data: loading it, its parameters, and arguments derived from it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

TEMPLATE_PATH = Path(__file__).resolve().parent / "template.yaml"


class TemplateError(RuntimeError):
    pass


def load_template(path: str | Path = TEMPLATE_PATH) -> dict[str, Any]:
    with Path(path).open(encoding="utf-8") as fh:
        template = yaml.safe_load(fh)
    if not isinstance(template, dict) or "Resources" not in template:
        raise TemplateError(f"{path} is not a CloudFormation template")
    return template


def effective_parameters(
    template: Mapping[str, Any], overrides: Mapping[str, str]
) -> dict[str, str]:
    """Every declared parameter's value: the override, else the template's default."""
    declared = template.get("Parameters", {})
    unknown = set(overrides) - set(declared)
    if unknown:
        raise TemplateError(f"parameters not declared in the template: {sorted(unknown)}")
    values: dict[str, str] = {}
    for name, spec in declared.items():
        if name in overrides:
            values[name] = str(overrides[name])
        elif "Default" in spec:
            values[name] = str(spec["Default"])
        else:
            raise TemplateError(f"parameter {name} has no default and was not given")
    return values


def stack_parameters(
    template: Mapping[str, Any], overrides: Mapping[str, str], previous: Mapping[str, str]
) -> dict[str, str]:
    """Like ``aws cloudformation deploy``: parameters not given keep the existing stack's
    values (e.g. CreateGlueCatalog=false chosen by LocalStack's init hook), else defaults."""
    declared = template.get("Parameters", {})
    kept = {k: v for k, v in previous.items() if k in declared and k not in overrides}
    return effective_parameters(template, {**kept, **overrides})


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
