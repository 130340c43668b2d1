"""The KCL tier: one local stack whose consumers run under the KCL's MultiLangDaemon
(``make local CONSUMERS=kcl``), for this pytest session alone (``make test`` runs the tier in
its own pytest process, beside no other stack). Leases are taken over 6 s after a worker
stops renewing them (10 s on ``make local``)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from localdev.harness import LocalStackHandle, start_local_stack

ROOT = Path(__file__).resolve().parents[2]
TEST_KCL_PROPERTIES = {"failoverTimeMillis": "6000"}


@pytest.fixture(scope="session")
def kcl_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStackHandle]:
    handle = start_local_stack(
        tmp_path_factory.mktemp("kcl-stack"),
        {
            "CLICKSTREAM_CONSUMERS": "kcl",
            "CLICKSTREAM_KCL_PROPERTIES": json.dumps(TEST_KCL_PROPERTIES),
        },
    )
    try:
        yield handle
    finally:
        handle.stop()


def simulator(
    stack: LocalStackHandle, *args: str, timeout: float = 400
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "simulator", *args],
        cwd=ROOT,
        env=simulator_env(stack),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def simulator_env(stack: LocalStackHandle) -> dict[str, str]:
    return {
        **stack.env,
        "CLICKSTREAM_ARCHIVE_BUCKET": stack.archive_bucket,
        "CLICKSTREAM_STREAM_NAME": stack.stream_name,
        "COLUMNS": "160",
    }


def output(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


def reconcile(stack: LocalStackHandle, ledger: Path, wait: int = 240) -> None:
    check = simulator(stack, "reconcile", "--ledger", str(ledger), "--endpoint", stack.api_url,
                      "--wait", str(wait))  # fmt: skip
    assert check.returncode == 0, output(check)
    assert "metrics match" in check.stdout


def lease_checkpoints(stack: LocalStackHandle, consumer: str) -> dict[str, str]:
    """The KCL lease table's checkpoint per shard (the daemon's own record)."""
    table = f"{stack.stream_name}-{consumer}-kcl"
    items = stack.client("dynamodb").scan(TableName=table, ConsistentRead=True)["Items"]
    return {item["leaseKey"]["S"]: item["checkpoint"]["S"] for item in items}


def lease_owners(stack: LocalStackHandle, consumer: str) -> dict[str, str]:
    table = f"{stack.stream_name}-{consumer}-kcl"
    items = stack.client("dynamodb").scan(TableName=table, ConsistentRead=True)["Items"]
    return {item["leaseKey"]["S"]: item.get("leaseOwner", {}).get("S", "") for item in items}


def log_text(stack: LocalStackHandle, name: str) -> str:
    return (stack.state_dir / "logs" / f"{name}.log").read_text(errors="replace")


def eventually(predicate: Callable[[], Any], timeout: float, interval: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"not within {timeout} s (last: {last!r})")


def aggregate_store(stack: LocalStackHandle) -> Any:
    from clickstream.store import DynamoAggregateStore

    return DynamoAggregateStore(
        stack.client("dynamodb"), stack.aggregates_table, stream_name=stack.stream_name
    )
