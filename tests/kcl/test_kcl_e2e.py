"""The consumers under the KCL, end to end on the local stack (``make test``): everything
the API accepted is counted once and archived. Worker failures: test_kcl_soak.py."""

from __future__ import annotations

import json

import pytest

from infra.deploy import kcl_lease_tables
from infra.template import load_template
from tests.kcl.conftest import eventually, log_text, output, reconcile, simulator

pytestmark = pytest.mark.integration


def test_simulated_traffic_reconciles_with_kcl_consumers(kcl_stack, tmp_path):
    ledger = tmp_path / "ledger.json"
    run = simulator(
        kcl_stack,
        "--endpoint", kcl_stack.api_url,
        "--seed", "21",
        "--users", "40",
        "--rate", "20",
        "--speedup", "5",
        "--duration", "6",
        "--batch", "40",
        "--workers", "4",
        "--ledger", str(ledger),
        "--quiet",
    )  # fmt: skip
    assert run.returncode == 0, output(run)
    assert json.loads(ledger.read_text())["accepted"]["events"] >= 400
    reconcile(kcl_stack, ledger)
    assert "Running clickstream" in log_text(kcl_stack, "aggregator")  # the MultiLangDaemon ran it


def test_the_templates_kcl_tables_are_the_ones_the_kcl_makes(kcl_stack):
    """On AWS the template makes the KCL's tables (so the daemon creates none and deleting the
    stack deletes them); locally the daemons make their own. Keys and index must agree, or a
    deployed daemon would find tables it cannot use."""
    dynamodb = kcl_stack.client("dynamodb")
    declared = {
        resource["Properties"]["TableName"]["Fn::Sub"].replace(
            "${EventStream}", kcl_stack.stream_name
        ): resource
        for resource in load_template()["Resources"].values()
        if resource["Type"] == "AWS::DynamoDB::Table" and resource.get("Condition") == "UsesKcl"
    }
    assert set(declared) == set(kcl_lease_tables(kcl_stack.stream_name))

    def described(name: str) -> dict:
        def ready() -> dict | None:  # the daemon makes the table, then the lease table's index
            try:
                table = dynamodb.describe_table(TableName=name)["Table"]
            except dynamodb.exceptions.ResourceNotFoundException:
                return None
            return (
                table
                if name.endswith("-kcl") == bool(table.get("GlobalSecondaryIndexes"))
                else None
            )

        return eventually(ready, timeout=120)

    for name, resource in declared.items():
        table = described(name)
        properties = resource["Properties"]
        assert table["KeySchema"] == properties["KeySchema"], name
        assert {
            (a["AttributeName"], a["AttributeType"]) for a in table["AttributeDefinitions"]
        } == {
            (a["AttributeName"], a["AttributeType"]) for a in properties["AttributeDefinitions"]
        }, name
        indexes = {
            index["IndexName"]: (index["KeySchema"], index["Projection"]["ProjectionType"])
            for index in table.get("GlobalSecondaryIndexes", [])
        }
        assert indexes == {
            index["IndexName"]: (index["KeySchema"], index["Projection"]["ProjectionType"])
            for index in properties.get("GlobalSecondaryIndexes", [])
        }, name
