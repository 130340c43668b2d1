"""The emulator evaluates bucket-policy conditions (moto applies a statement whose operator
it does not know unconditionally): the archive's TLS-only policy denies http and allows https."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from moto.iam.access_control import PermissionResult

from localdev.emulator import _REQUEST, _bucket_permission, _condition_holds

TLS_ONLY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": ["arn:aws:s3:::archive", "arn:aws:s3:::archive/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    ],
}


@pytest.mark.parametrize(
    ("secure", "expected"),
    [(False, PermissionResult.DENIED), (True, PermissionResult.NEUTRAL)],
)
def test_tls_only_policy(secure: bool, expected: PermissionResult) -> None:
    bucket = SimpleNamespace(policy=json.dumps(TLS_ONLY).encode())
    _REQUEST.secure = secure
    try:
        result = _bucket_permission(bucket, "s3:PutObject", "arn:aws:s3:::archive/events/x")
    finally:
        del _REQUEST.secure
    assert result == expected


def test_no_policy_is_neutral() -> None:
    bucket = SimpleNamespace(policy=None)
    assert (
        _bucket_permission(bucket, "s3:GetObject", "arn:aws:s3:::a/b") == PermissionResult.NEUTRAL
    )


@pytest.mark.parametrize(
    ("operator", "expected", "actual", "holds"),
    [
        ("Bool", "false", "false", True),
        ("Bool", "false", "true", False),
        ("Bool", ["true"], "TRUE", True),
        ("StringEquals", ["a", "b"], "b", True),
        ("StringNotEquals", "a", "a", False),
        ("StringLike", "arn:aws:*:us-*", "arn:aws:s3:us-east-1", True),
        ("Bool", "false", None, False),  # a key the request lacks fails the condition
        ("BoolIfExists", "false", None, True),  # ...unless IfExists
        ("NumericLessThan", "3", "9", True),  # not evaluated here: moto's behaviour
    ],
)
def test_condition_operators(
    operator: str, expected: object, actual: str | None, holds: bool
) -> None:
    assert _condition_holds(operator, expected, actual) is holds
