"""The OpenAPI document describes every route, and the live API conforms to it: schemathesis
(positive and negative examples per operation, bounded) finds no 5xx, no undocumented status
code, content type or response shape. Runs last in this package: its random events land in
the dedicated stack's stream."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from openapi_spec_validator import validate

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_schema_conformance"
)


def test_openapi_document_is_valid_and_covers_every_route(secure_stack, monkeypatch):
    document = requests.get(secure_stack.api_url + "/openapi.json", timeout=30).json()
    validate(document)
    monkeypatch.syspath_prepend(str(ROOT / "api"))
    # chalice tags AWS_EXECUTION_ENV when its app is built, which importing the app does
    monkeypatch.setenv("AWS_EXECUTION_ENV", os.environ.get("AWS_EXECUTION_ENV", "AWS_Lambda"))
    from app import app  # the Chalice app's own route table

    routes = {
        (path, method.lower())
        for path, methods in app.routes.items()
        for method in methods
        if method != "OPTIONS"
    }
    documented = {
        (path, method) for path, operations in document["paths"].items() for method in operations
    }
    assert documented == routes
    schemes = document["components"]["securitySchemes"]
    assert schemes["writeKey"] == {"type": "apiKey", "in": "header", "name": "X-Write-Key"}
    assert schemes["apiKey"]["name"] == "X-Api-Key"
    event = document["components"]["schemas"]["IncomingEvent"]
    assert {"event_type", "user_id", "timestamp", "properties"} <= set(event["properties"])
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if operation["security"]:
                assert {"401", "403"} <= set(operation["responses"]), (path, method)


def test_schemathesis_finds_no_server_error_and_no_undocumented_answer(secure_stack, tmp_path):
    examples = int(os.environ.get("CLICKSTREAM_SCHEMATHESIS_EXAMPLES", "6"))
    started = time.monotonic()
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "schemathesis"),
            "run",
            f"{secure_stack.api_url}/openapi.json",
            "--checks",
            CHECKS,
            "--max-examples",  # six per operation in `make test`; `make soak` asks for more
            str(examples),
            "--phases",
            # The coverage phase's ~1,600 boundary cases take 95 s: `make soak` runs them.
            os.environ.get("CLICKSTREAM_SCHEMATHESIS_PHASES", "examples,fuzzing"),
            "--workers",
            "1",  # moto's Kinesis is not safe for concurrent PutRecords
            "--seed",
            "20261124",
            "--generation-database",
            "none",
            "--request-timeout",
            "30",
            "--no-color",
            "--header",
            f"X-Write-Key: {secure_stack.write_key}",
            "--header",
            f"X-Api-Key: {secure_stack.admin_key}",
            "--report",
            "junit",
            "--report-junit-path",
            str(tmp_path / "schemathesis.xml"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120 + 30 * examples,  # 300 s at six examples; `make soak` asks for 50
        check=False,
    )
    elapsed = time.monotonic() - started
    output = result.stdout[-6000:] + result.stderr[-2000:]
    assert result.returncode == 0, output
    assert "No issues found" in result.stdout or "passed" in result.stdout, output
    print(f"schemathesis: {elapsed:.0f} s\n{result.stdout[-1500:]}")
