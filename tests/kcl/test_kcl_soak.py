"""The KCL consumers under worker failures and resharding, on the local stack (``make
soak-kcl``): a worker SIGKILLed between a batch's write and its checkpoint, a second worker
taking leases and giving them back, a shard split while traffic flows. Each ends with the
reconcile: every accepted event counted once and archived."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.kcl.conftest import (
    ROOT,
    aggregate_store,
    eventually,
    lease_checkpoints,
    lease_owners,
    log_text,
    reconcile,
    simulator_env,
)

pytestmark = [pytest.mark.integration, pytest.mark.soak]


def traffic(stack, ledger: Path, seed: int, seconds: int) -> subprocess.Popen[str]:
    """The simulator through the API, about 15 events/s for ``seconds``, in the background."""
    return subprocess.Popen(
        [sys.executable, "-m", "simulator", "--endpoint", stack.api_url, "--seed", str(seed),
         "--users", "30", "--rate", "15", "--speedup", "1", "--duration", str(seconds),
         "--batch", "10", "--ledger", str(ledger), "--quiet"],
        cwd=ROOT, env=simulator_env(stack), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip


def finished(process: subprocess.Popen[str]) -> None:
    code = process.wait(180)
    assert code == 0, process.stdout.read() if process.stdout else code


def written_past_checkpoint(stack) -> dict[str, tuple[str, str]]:
    """Shards whose aggregates hold records the KCL has not checkpointed: (watermark,
    checkpoint) each."""
    store = aggregate_store(stack)
    found = {}
    for shard, checkpoint in lease_checkpoints(stack, "aggregator").items():
        watermark = store.watermark(shard)
        if watermark and checkpoint.isdigit() and int(watermark) > int(checkpoint):
            found[shard] = (watermark, checkpoint)
    return found


def test_a_worker_killed_between_write_and_checkpoint_loses_and_doubles_nothing(
    kcl_stack, tmp_path
):
    ledger = tmp_path / "ledger.json"
    sending = traffic(kcl_stack, ledger, seed=22, seconds=30)
    worker = int(kcl_stack.info["pids"]["aggregator"])  # the daemon's JVM (its group: + children)
    killed_at: dict[str, tuple[str, str]] = {}
    try:
        eventually(lambda: aggregate_store(kcl_stack).watermark("shardId-000000000000"), 120)
        # Freeze the daemon: a processor mid-batch finishes its write and waits for the
        # daemon to take its checkpoint. Kill it there; otherwise let it go and try again.
        deadline = time.monotonic() + 25
        while not killed_at and time.monotonic() < deadline:
            os.kill(worker, signal.SIGSTOP)
            time.sleep(1.0)
            killed_at = written_past_checkpoint(kcl_stack)
            if killed_at:
                os.killpg(worker, signal.SIGKILL)
            else:
                os.kill(worker, signal.SIGCONT)
                time.sleep(0.3)
        assert killed_at, "no batch was caught between its write and its checkpoint"
        finished(sending)
    finally:
        if sending.poll() is None:
            sending.kill()
    # The stack restarts the consumer; it takes the dead worker's leases once they expire and
    # is re-delivered what was written but not checkpointed: skipped, not counted again.
    reconcile(kcl_stack, ledger, wait=300)
    logs = log_text(kcl_stack, "aggregator")
    restarted = logs[logs.rindex("Running clickstream") :]
    skipped = [int(n) for n in re.findall(r'"skipped_duplicates":\s*(\d+)', restarted)]
    assert any(n > 0 for n in skipped), f"no redelivery seen after the kill at {killed_at}"


def test_a_second_worker_takes_leases_and_hands_them_back(kcl_stack, tmp_path):
    ledger = tmp_path / "ledger.json"
    env = {**kcl_stack.info["kcl_env"], "CLICKSTREAM_KCL_WORKER_ID": "second-worker"}
    # The stack's own worker may have been restarted by the previous test: its env is the same.
    log = (kcl_stack.state_dir / "logs" / "aggregator-second.log").open("w")
    second = subprocess.Popen(
        [sys.executable, "-m", "consumers.kcl_daemon", "aggregator"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    sending = traffic(kcl_stack, ledger, seed=23, seconds=90)
    try:
        # KCL 3's leader moves leases to even out the workers' load: one comes to the new one.
        owners = lambda: lease_owners(kcl_stack, "aggregator")  # noqa: E731
        eventually(lambda: "second-worker" in owners().values(), 240, 2)
        os.killpg(second.pid, signal.SIGTERM)  # a graceful stop: its leases go back
        second.wait(60)
        eventually(lambda: "second-worker" not in owners().values(), 300, 2)
        finished(sending)
    finally:
        if sending.poll() is None:
            sending.kill()
        if second.poll() is None:
            os.killpg(second.pid, signal.SIGKILL)
        log.close()
    reconcile(kcl_stack, ledger, wait=300)


def test_a_shard_split_during_traffic_loses_and_doubles_nothing(kcl_stack, tmp_path):
    ledger = tmp_path / "ledger.json"
    kinesis = kcl_stack.client("kinesis")
    sending = traffic(kcl_stack, ledger, seed=24, seconds=90)
    shards = kinesis.list_shards(StreamName=kcl_stack.stream_name)["Shards"]
    parent = shards[0]
    try:
        # split once the KCL reads the parent (a worker starting after a split fails its first
        # shard sync on moto, which ignores ListShards' ShardFilter: README)
        eventually(lambda: aggregate_store(kcl_stack).watermark(parent["ShardId"]), 150)
        time.sleep(3)
        low = int(parent["HashKeyRange"]["StartingHashKey"])
        high = int(parent["HashKeyRange"]["EndingHashKey"])
        kinesis.split_shard(
            StreamName=kcl_stack.stream_name,
            ShardToSplit=parent["ShardId"],
            NewStartingHashKey=str((low + high) // 2),
        )
        finished(sending)
    finally:
        if sending.poll() is None:
            sending.kill()
    reconcile(kcl_stack, ledger, wait=300)
    checkpoints = lease_checkpoints(kcl_stack, "aggregator")
    # the parent read to its end (its lease is then cleaned up), both children read from
    assert checkpoints.get(parent["ShardId"]) in (None, "SHARD_END"), checkpoints
    children = set(checkpoints) - {shard["ShardId"] for shard in shards}
    assert len(children) == 2, checkpoints
    assert all(checkpoints[child].isdigit() for child in children), checkpoints
