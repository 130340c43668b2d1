"""`chalice package` output (as `make package` runs it, with the mapping overlay) ships the
domain package, the consumers, every function and the event source mappings with the settings
of infra/template.yaml; the SAM template is cfn-lint clean."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from infra.package_overlay import MAPPINGS, SOURCES, package_overlay
from infra.template import load_template

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def package(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("chalice") / "out"
    overlay = out.parent / "overlay.json"
    overlay.write_text(json.dumps(package_overlay()))
    chalice = Path(sys.executable).parent / "chalice"
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1"}
    subprocess.run(
        [str(chalice), "package", "--stage", "dev", "--merge-template", str(overlay), str(out)],
        cwd=ROOT / "api",
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    return out


def test_deployment_zip_contains_the_domain_package_and_consumers(package):
    names = set(zipfile.ZipFile(package / "deployment.zip").namelist())
    for module in sorted((ROOT / "clickstream").glob("*.py")):
        assert f"clickstream/{module.name}" in names
    for module in sorted((ROOT / "consumers").glob("*.py")):
        assert f"consumers/{module.name}" in names
    assert "app.py" in names
    assert any(name.startswith("pydantic_core/") for name in names)
    assert any(name.startswith("aws_lambda_powertools/") for name in names)
    assert not any(name.startswith("pyarrow/") for name in names), (
        "pyarrow comes from the managed layer"
    )


def test_template_defines_the_api_and_both_consumer_functions(package):
    template = json.loads((package / "sam.json").read_text())
    functions = {
        name: resource
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    handlers = {resource["Properties"]["Handler"] for resource in functions.values()}
    assert {"app.app", "app.aggregator", "app.archiver", "app.jobs"} <= handlers
    archiver = next(r for r in functions.values() if r["Properties"]["Handler"] == "app.archiver")
    assert any("AWSSDKPandas" in layer for layer in archiver["Properties"].get("Layers", []))
    assert all(r["Properties"].get("Tracing") == "Active" for r in functions.values())


@pytest.mark.parametrize("mapping", sorted(MAPPINGS))
def test_template_connects_each_source_with_the_templates_mapping_settings(package, mapping):
    packaged = json.loads((package / "sam.json").read_text())["Resources"][mapping]
    source = load_template()["Resources"][mapping]["Properties"]
    properties = packaged["Properties"]
    assert properties["FunctionName"] == {"Ref": MAPPINGS[mapping]}
    assert properties["EventSourceArn"] == {"Ref": SOURCES[mapping]}
    settings = set(source) - {"EventSourceArn", "FunctionName", "DestinationConfig"}
    assert "FunctionResponseTypes" in settings
    if SOURCES[mapping] == "StreamArn":
        assert properties["DestinationConfig"] == {
            "OnFailure": {"Destination": {"Ref": "DeadLetterQueueArn"}}
        }
        assert {"BisectBatchOnFunctionError", "MaximumRetryAttempts"} <= settings
    else:  # the jobs queue: its redrive policy is its dead-letter destination
        assert "DestinationConfig" not in properties and source["BatchSize"] == 1
    assert {key: properties[key] for key in settings} == {key: source[key] for key in settings}


def test_packaged_template_is_cfn_lint_clean(package):
    lint = Path(sys.executable).parent / "cfn-lint"
    result = subprocess.run(
        [str(lint), str(package / "sam.json")], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr


# (prometheus_client: the local stack's /metrics; on AWS the figures are CloudWatch's, via EMF)
LOCAL_ONLY = ("localdev", "moto", "tests", "simulator", "bench", "infra", "prometheus_client")


def _imported_roots(source: str) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            roots.add(node.module.split(".")[0])
    return roots


def test_no_deployed_module_imports_local_tooling(package):
    archive = zipfile.ZipFile(package / "deployment.zip")
    ours = [
        name
        for name in archive.namelist()
        if name == "app.py" or name.startswith(("clickstream/", "consumers/"))
    ]
    assert "clickstream/protocols/segment.py" in ours
    for name in ours:
        if name.endswith(".py"):
            found = _imported_roots(archive.read(name).decode()) & set(LOCAL_ONLY)
            assert not found, f"{name} imports {found}"


# The SQL tool (clickstream/sql, `python -m clickstream.sql`) is shipped in the package but
# never imported by it: its libraries are not in the Lambda package (api/requirements.txt).
SQL_TOOL = "clickstream.sql"
SQL_TOOL_LIBRARIES = ("duckdb", "rich", "sqlglot")
# consumers/kcl.py runs under the KCL's daemon on ECS (infra/template.yaml KclConsumers);
# amazon-kclpy is not in the Lambda package, and nothing Lambda runs imports it.
KCL_LIBRARIES = ("amazon_kclpy",)


def _imported_modules(source: str) -> set[str]:
    """Every module a source imports, by full name (``from a import b``: ``a`` and ``a.b``)."""
    modules = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            modules.add(node.module)
            modules |= {f"{node.module}.{alias.name}" for alias in node.names}
    return modules


def test_no_deployed_module_imports_the_sql_tool_or_its_libraries(package):
    archive = zipfile.ZipFile(package / "deployment.zip")
    names = archive.namelist()
    assert "clickstream/sql/view.py" in names  # shipped with the package, imported by nothing
    assert not any(name.split("/")[0] in SQL_TOOL_LIBRARIES for name in names)
    deployed = [
        name
        for name in names
        if name.endswith(".py")
        and (name == "app.py" or name.startswith(("clickstream/", "consumers/")))
        and not name.startswith("clickstream/sql/")
    ]
    for name in deployed:
        modules = _imported_modules(archive.read(name).decode())
        found = {
            module
            for module in modules
            if module == SQL_TOOL
            or module.startswith(SQL_TOOL + ".")
            or module.split(".")[0] in SQL_TOOL_LIBRARIES
        }
        assert not found, f"{name} imports {found}, which the Lambda package does not carry"


PROBE = """
import importlib, pkgutil, sys
sys.path.insert(0, sys.argv[1])
for library in sys.argv[2].split(","):  # not in the Lambda package: importing one fails
    sys.modules[library] = None
import chalice.app, chalice.local
watched = [chalice.local.ChaliceRequestHandler, chalice.local.LocalGatewayAuthorizer,
           chalice.app.Chalice, chalice.app.CognitoUserPoolAuthorizer]
before = [dict(vars(cls)) for cls in watched]
import clickstream, consumers
for package in (clickstream, consumers):
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        # the SQL tool and the KCL processors (the ECS image's): not Lambda's code
        if not info.name.startswith(("clickstream.sql", "consumers.kcl")):
            importlib.import_module(info.name)
import app
changed = [cls.__name__ for cls, was in zip(watched, before) if dict(vars(cls)) != was]
print(",".join(changed))
"""


def test_importing_the_deployed_code_as_lambda_does_patches_no_library(tmp_path):
    """Lambda's environment (no chalice CLI, no faults switch, no SQL tool libraries): every
    deployed module imported, chalice's classes unchanged."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_CHALICE", "CLICKSTREAM_FAULTS"))
    }
    env |= {"AWS_DEFAULT_REGION": "us-east-1", "AWS_LAMBDA_FUNCTION_NAME": "clickstream-dev"}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            PROBE,
            str(ROOT / "api"),
            ",".join(SQL_TOOL_LIBRARIES + KCL_LIBRARIES),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "", f"patched: {result.stdout.strip()}"
