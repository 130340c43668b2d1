"""The KCL tier: one local stack whose consumers run under the KCL's MultiLangDaemon
(``make local CONSUMERS=kcl``). Leases are taken over 6 s after a worker stops renewing them
(10 s on ``make local``).

A KCL worker needs most of a minute before it reads (it waits up to 30 s for another worker
to make the leases, then syncs the shards and takes them), so the stack is started in the
background when the test module run just before this tier's first test starts: that module
runs meanwhile. Not earlier: an idle KCL stack (its emulator, two daemons, the HTTP/2 bridge)
keeps half a core busy, which started at collection cost the rest of ``make test`` ~8 CPU
minutes."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from localdev.harness import LoopbackStackHandle, start_loopback_stack

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
TEST_KCL_PROPERTIES = {"failoverTimeMillis": "6000"}
STACK_START_S = 600.0  # the background start's own deadline is the harness's (READY_TIMEOUT_S)


class BackgroundStack(threading.Thread):
    """The KCL stack, started on a thread; ``handle()`` waits for it."""

    def __init__(self) -> None:
        super().__init__(name="kcl-stack", daemon=True)
        self.state_dir = Path(tempfile.mkdtemp(prefix="kcl-stack-"))
        self.started: LoopbackStackHandle | None = None
        self.error: BaseException | None = None
        self.stopped = False
        self.launched = False

    def launch(self) -> None:
        if not self.launched:
            self.launched = True
            self.start()

    def run(self) -> None:
        try:
            self.started = start_loopback_stack(
                self.state_dir,
                {
                    "CLICKSTREAM_CONSUMERS": "kcl",
                    "CLICKSTREAM_KCL_PROPERTIES": json.dumps(TEST_KCL_PROPERTIES),
                },
            )
        except BaseException as error:  # reported by the fixture, in the test that needs it
            self.error = error

    def handle(self) -> LoopbackStackHandle:
        self.launch()  # this tier's tests run without the module before them
        self.join(STACK_START_S)
        if self.error is not None:
            raise RuntimeError(f"the KCL stack did not start: {self.error}") from self.error
        assert self.started is not None, f"the KCL stack is not up after {STACK_START_S:.0f} s"
        return self.started

    def stop(self) -> None:
        if not self.launched:
            return
        self.join(STACK_START_S)
        if self.started is not None and not self.stopped:
            self.stopped = True
            self.started.stop()


_background: list[BackgroundStack] = []


def _in_tier(item: pytest.Item) -> bool:
    return Path(str(item.path)).is_relative_to(HERE)


def pytest_collection_finish(session: pytest.Session) -> None:
    first = next((i for i, item in enumerate(session.items) if _in_tier(item)), None)
    if first is None:
        return
    _background.append(BackgroundStack())
    if first == 0:
        _background[0].launch()
        return
    before = first - 1  # back to the first test of the module run just before this tier
    while before > 0 and session.items[before - 1].path == session.items[first - 1].path:
        before -= 1
    # A plugin, not this conftest's hook: a conftest's item hooks see only its own directory.
    session.config.pluginmanager.register(_StartBefore(session.items[before].nodeid))


class _StartBefore:
    """Starts the KCL stack when the given test starts."""

    def __init__(self, nodeid: str) -> None:
        self.nodeid = nodeid

    def pytest_runtest_logstart(self, nodeid: str, location: tuple[str, int | None, str]) -> None:
        if nodeid == self.nodeid:
            _background[0].launch()


def pytest_sessionfinish(session: pytest.Session) -> None:
    for stack in _background:  # a session that ended before the fixture's teardown
        stack.stop()


@pytest.fixture(scope="session")
def kcl_stack() -> Iterator[LoopbackStackHandle]:
    assert _background, "the KCL stack was not made at collection"
    try:
        yield _background[0].handle()
    finally:
        _background[0].stop()


def simulator(
    stack: LoopbackStackHandle, *args: str, timeout: float = 400
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


def simulator_env(stack: LoopbackStackHandle) -> dict[str, str]:
    return {
        **stack.env,
        "CLICKSTREAM_ARCHIVE_BUCKET": stack.archive_bucket,
        "CLICKSTREAM_STREAM_NAME": stack.stream_name,
        "COLUMNS": "160",
    }


def output(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


def reconcile(stack: LoopbackStackHandle, ledger: Path, wait: int = 240) -> None:
    check = simulator(stack, "reconcile", "--ledger", str(ledger), "--endpoint", stack.api_url,
                      "--wait", str(wait))  # fmt: skip
    assert check.returncode == 0, output(check)
    assert "metrics match" in check.stdout


def lease_checkpoints(stack: LoopbackStackHandle, consumer: str) -> dict[str, str]:
    """The KCL lease table's checkpoint per shard (the daemon's own record)."""
    table = f"{stack.stream_name}-{consumer}-kcl"
    items = stack.client("dynamodb").scan(TableName=table, ConsistentRead=True)["Items"]
    return {item["leaseKey"]["S"]: item["checkpoint"]["S"] for item in items}


def lease_owners(stack: LoopbackStackHandle, consumer: str) -> dict[str, str]:
    table = f"{stack.stream_name}-{consumer}-kcl"
    items = stack.client("dynamodb").scan(TableName=table, ConsistentRead=True)["Items"]
    return {item["leaseKey"]["S"]: item.get("leaseOwner", {}).get("S", "") for item in items}


def log_text(stack: LoopbackStackHandle, name: str) -> str:
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


def aggregate_store(stack: LoopbackStackHandle) -> Any:
    from clickstream.store import DynamoAggregateStore

    return DynamoAggregateStore(
        stack.client("dynamodb"), stack.aggregates_table, stream_name=stack.stream_name
    )
