"""The simulator against the real local stack, then ``reconcile``: everything the API accepted
shows up in the aggregates and the Parquet archive, with zero difference."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
# Overlapping requests: PutRecords calls from concurrent API requests must not lose records.
CONCURRENT = ("--workers", "4")


def simulator(stack, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {
        **stack.env,
        "CLICKSTREAM_ARCHIVE_BUCKET": stack.archive_bucket,
        "CLICKSTREAM_STREAM_NAME": stack.stream_name,
        "COLUMNS": "160",
    }
    return subprocess.run(
        [sys.executable, "-m", "simulator", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def output(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


def test_paced_backfill_over_http_reconciles(local_stack, tmp_path):
    ledger_path = tmp_path / "ledger.json"
    # 6 s of wall time at 5x: the last 30 simulated seconds, about 600 events at 20/s
    run = simulator(
        local_stack,
        "--endpoint", local_stack.api_url,
        "--seed", "11",
        "--users", "40",
        "--rate", "20",
        "--speedup", "5",
        "--duration", "6",
        "--batch", "40",
        *CONCURRENT,
        "--ledger", str(ledger_path),
        "--quiet",
    )  # fmt: skip
    assert run.returncode == 0, output(run)
    ledger = json.loads(ledger_path.read_text())
    accepted = ledger["accepted"]
    assert ledger["not_accepted"]["total"] == 0
    assert 400 <= accepted["events"] <= 800
    assert accepted["funnel"]["purchase"] > 0 and accepted["revenue"] > 0
    assert ledger["baseline"]["total_events"] is not None
    assert ledger["baseline"]["archive_objects"] is not None

    check = simulator(
        local_stack,
        "reconcile",
        "--ledger", str(ledger_path),
        "--endpoint", local_stack.api_url,
        "--wait", "120",
    )  # fmt: skip
    assert check.returncode == 0, output(check)
    assert "metrics match" in check.stdout
    assert "stats.total_events" in check.stdout and "archive.accepted ids missing" in check.stdout


def test_flat_out_direct_to_the_stream_reconciles_against_a_snapshot(local_stack, tmp_path):
    baseline = tmp_path / "baseline.json"
    ledger_path = tmp_path / "ledger.json"
    snap = simulator(local_stack, "snapshot", "--out", str(baseline),
                     "--endpoint", local_stack.api_url)  # fmt: skip
    assert snap.returncode == 0, output(snap)

    run = simulator(
        local_stack,
        "--direct-kinesis",
        "--flat-out",
        "--rate", "200",
        "--max-events", "500",
        "--batch", "100",
        *CONCURRENT,
        "--seed", "12",
        "--no-baseline",
        "--ledger", str(ledger_path),
        "--quiet",
    )  # fmt: skip
    assert run.returncode == 0, output(run)
    accepted = json.loads(ledger_path.read_text())["accepted"]
    assert accepted["events"] + accepted["bots"] == 500  # crawler events are counted as bots

    check = simulator(
        local_stack,
        "reconcile",
        "--ledger", str(ledger_path),
        "--baseline", str(baseline),
        "--endpoint", local_stack.api_url,
        "--wait", "120",
    )  # fmt: skip
    assert check.returncode == 0, output(check)
    assert "metrics match" in check.stdout


def test_reconcile_reports_a_difference(local_stack, tmp_path):
    """A ledger claiming more than was sent must fail, quickly once --wait is spent."""
    ledger_path = tmp_path / "ledger.json"
    run = simulator(local_stack, "--endpoint", local_stack.api_url, "--rate", "0",
                    "--max-events", "30", "--seed", "13", "--ledger", str(ledger_path),
                    "--quiet")  # fmt: skip
    assert run.returncode == 0, output(run)
    ledger = json.loads(ledger_path.read_text())
    ledger["accepted"]["events"] += 1
    ledger["accepted"]["events_by_type"]["page_view"] += 1
    ledger_path.write_text(json.dumps(ledger))
    check = simulator(local_stack, "reconcile", "--ledger", str(ledger_path),
                      "--wait", "15", "--no-archive")  # fmt: skip
    assert check.returncode == 1, output(check)
    assert "stats.total_events" in check.stdout and "differ" in check.stdout
