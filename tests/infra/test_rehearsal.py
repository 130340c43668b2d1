"""``make rehearse`` end to end: ``make deploy`` and ``make destroy`` against the embedded
emulator over https, every check of what was deployed, and the deployed package run."""

from __future__ import annotations

import pytest

from clickstream.openapi import openapi_document
from localdev.rehearse import Check, rehearse

EXPECTED = [
    ("deploy", "make deploy runs its five steps"),
    ("deployed", "five functions with chalice's handlers"),
    ("deployed", "environment points at the stack's outputs"),
    ("deployed", "X-Ray active tracing on every function"),
    ("deployed", "log groups with a retention, owned by the stack"),
    ("deployed", "pyarrow layer on the functions that read Parquet"),
    ("deployed", "IAM: the generated least-privilege policy only"),
    ("deployed", "compactor scheduled hourly"),
    ("deployed", "event source mappings carry the template's settings"),
    ("deployed", "alarms notify the topic, e-mail subscribed"),
    ("deployed", "Glue table with partition projection"),
    ("deployed", "dashboard uploaded with the API's URL"),
    ("deployed", "API Gateway's own errors carry CORS"),
    ("package", "each function loads from its own package"),
    ("package", "API Gateway routes = the package's OpenAPI"),
    ("package", "reads need a Cognito token, writes a key"),
    ("package", "POST /events through the gateway"),
    ("package", "aggregator counts the stream once (redelivered too)"),
    ("package", "archiver writes Parquet"),
    ("package", "export pages and jobs; erasure is an admin's job"),
    ("package", "compactor runs on its schedule event"),
    ("package", "JSON logs carry request and event ids, never a key"),
    ("package", "EMF metrics match the custom-metric alarms"),
    ("package", "X-Ray segments around Kinesis, DynamoDB, S3"),
    ("kcl", "make deploy with KCL_IMAGE updates the stack"),
    ("kcl", "Fargate service: both consumers' daemons"),
    ("kcl", "IAM: the generated KCL policies only"),
    ("kcl", "the KCL's tables are the stack's"),
    ("kcl", "the Lambda event source mappings are gone"),
    ("destroy", "make destroy runs"),
    ("destroy", "nothing is left"),
]


@pytest.fixture(scope="module")
def checks() -> dict[tuple[str, str], Check]:
    return {(check.step, check.name): check for check in rehearse()}


def test_every_check_ran(checks: dict[tuple[str, str], Check]) -> None:
    assert list(checks) == EXPECTED


@pytest.mark.parametrize(("step", "name"), EXPECTED, ids=[name for _, name in EXPECTED])
def test_check_passes(checks: dict[tuple[str, str], Check], step: str, name: str) -> None:
    check = checks.get((step, name))
    assert check is not None, "the rehearsal stopped before this check"
    assert check.ok, check.detail


def test_the_rehearsal_reports_what_it_saw(checks: dict[tuple[str, str], Check]) -> None:
    details = {name: check.detail for (_, name), check in checks.items()}
    assert (
        "22 accepted, 1 rejected naming record 22.timestamp"
        in details["POST /events through the gateway"]
    )
    assert "kinesis.PutRecords" in details["X-Ray segments around Kinesis, DynamoDB, S3"]
    read_routes = sum(
        "cognito" in str(operation["security"])
        for operations in openapi_document("cognito")["paths"].values()
        for operation in operations.values()
    )
    assert read_routes >= 16  # the read routes, /graphql, erasure and export jobs
    assert (
        f"{read_routes} routes behind the user pool"
        in details["reads need a Cognito token, writes a key"]
    )
