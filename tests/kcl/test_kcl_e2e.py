"""The consumers under the KCL, end to end on the local stack (``make test``): everything
the API accepted is counted once and archived. Worker failures: test_kcl_soak.py."""

from __future__ import annotations

import json

import pytest

from tests.kcl.conftest import log_text, output, reconcile, simulator

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
