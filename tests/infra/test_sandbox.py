"""The stand-in for Lambda's runtime that runs deployed packages: only the package, its
layers and the runtime's SDK are importable; Lambda's environment and context are there;
handler errors surface; the X-Ray listener reads the daemon protocol."""

from __future__ import annotations

import json
import socket
import time
import zipfile
from pathlib import Path

import pytest

from localdev.sandbox import (
    LAMBDA_RUNTIME_MODULES,
    DeployedFunction,
    InvocationError,
    XRayDaemon,
    linked_modules,
    unpack,
)

HANDLER = """
import os

def handler(event, context):
    if event.get("fail"):
        raise ValueError("asked to fail")
    return {
        "event": event,
        "task_root": os.environ["LAMBDA_TASK_ROOT"],
        "trace": os.environ["_X_AMZN_TRACE_ID"],
        "function": context.function_name,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "configured": os.environ["SETTING"],
    }
"""


def configuration(handler: str = "app.handler") -> dict:
    return {
        "FunctionName": "clickstream-dev-probe",
        "FunctionArn": "arn:aws:lambda:eu-west-1:123456789012:function:clickstream-dev-probe",
        "Handler": handler,
        "Runtime": "python3.11",
        "Timeout": 30,
        "MemorySize": 256,
        "Environment": {"Variables": {"SETTING": "from the function's configuration"}},
    }


def package(tmp_path: Path, source: str) -> Path:
    path = tmp_path / "package.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("app.py", source)
    return unpack(path, tmp_path / "task")


def start(tmp_path: Path, source: str, layers: list[Path] | None = None) -> DeployedFunction:
    runtime = linked_modules(LAMBDA_RUNTIME_MODULES, tmp_path / "runtime")
    return DeployedFunction(
        configuration(),
        package(tmp_path, source),
        [*(layers or []), runtime],
        endpoint_url="https://127.0.0.1:1",
        xray_daemon="127.0.0.1:2000",
    )


def test_invocations_see_lambdas_environment_and_context(tmp_path: Path) -> None:
    function = start(tmp_path, HANDLER)
    try:
        first = function.invoke({"n": 1})
        second = function.invoke({"n": 2})
    finally:
        function.close()
    assert first["event"] == {"n": 1} and second["event"] == {"n": 2}  # one warm process
    assert first["task_root"] == str(tmp_path / "task")
    assert first["function"] == "clickstream-dev-probe"
    assert first["configured"] == "from the function's configuration"
    assert 0 < first["remaining_ms"] <= 30_000
    assert first["trace"].startswith("Root=1-") and first["trace"] != second["trace"]


def test_a_handler_error_is_an_invocation_error(tmp_path: Path) -> None:
    function = start(tmp_path, HANDLER)
    try:
        with pytest.raises(InvocationError, match="ValueError: asked to fail"):
            function.invoke({"fail": True})
        assert function.invoke({"n": 3})["event"] == {"n": 3}  # the process lives on
    finally:
        function.close()


def test_nothing_outside_the_package_is_importable(tmp_path: Path) -> None:
    # orjson is installed here, but a package that forgot it must fail as it would on Lambda.
    with pytest.raises(InvocationError, match="No module named 'orjson'"):
        start(tmp_path, "import orjson\n\ndef handler(event, context):\n    return 1\n")


def test_a_layer_provides_its_modules(tmp_path: Path) -> None:
    layer = linked_modules(("orjson",), tmp_path / "opt" / "python")
    source = (
        "import orjson\n\ndef handler(event, context):\n    return orjson.dumps(event).decode()\n"
    )
    function = start(tmp_path, source, [layer])
    try:
        assert json.loads(function.invoke({"a": 1})) == {"a": 1}
    finally:
        function.close()


def test_xray_daemon_collects_aws_call_subsegments() -> None:
    daemon = XRayDaemon()
    try:
        host, port = daemon.address.split(":")
        segment = {
            "name": "clickstream-dev",
            "subsegments": [
                {
                    "name": "handler",
                    "subsegments": [
                        {"name": "kinesis", "namespace": "aws", "aws": {"operation": "PutRecords"}}
                    ],
                },
                {"name": "dynamodb", "namespace": "aws", "aws": {"operation": "GetItem"}},
                {"name": "## handler", "namespace": "local"},
            ],
        }
        datagram = '{"format": "json", "version": 1}\n' + json.dumps(segment)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            sender.sendto(datagram.encode(), (host, int(port)))
        deadline = time.monotonic() + 5
        while not daemon.documents and time.monotonic() < deadline:
            time.sleep(0.05)
        assert daemon.traced_calls() == {("kinesis", "PutRecords"), ("dynamodb", "GetItem")}
    finally:
        daemon.close()
