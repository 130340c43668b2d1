"""Compaction on the local stack, as a user runs it: ``python -m localdev.compact`` (``make
compact``) finds the running stack by its state file alone, and its ``--every`` loop (what
``make local`` runs hourly) compacts a back-filled hour that received the same events twice."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from clickstream.layout import is_compacted, partition_prefix

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def _without_stack_env(state_dir: Path) -> dict[str, str]:
    """A user's shell: no emulator endpoint and no credentials, only where the state is."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AWS_", "CLICKSTREAM_"))
    }
    return env | {"CLICKSTREAM_STATE_DIR": str(state_dir)}


def _hour_objects(stack, prefix: str) -> list[str]:
    listed = stack.client("s3").list_objects_v2(Bucket=stack.archive_bucket, Prefix=prefix)
    return [item["Key"] for item in listed.get("Contents", [])]


def test_the_schedule_compacts_a_backfilled_hour_sent_twice_to_each_event_once(
    local_stack, tmp_path
):
    # GIVEN an hour long past (its own: no other test writes there), sent twice, as a client
    # retrying a back-fill would
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(
        hours=random.randrange(24 * 100, 24 * 3000)
    )
    records = [
        {
            "event_id": str(uuid.uuid4()),
            "event_type": "page_view",
            "session_id": f"backfill-{uuid.uuid4()}",
            "page": f"/backfill/{i}",
            "timestamp": (hour + timedelta(minutes=i)).isoformat(),
        }
        for i in range(12)
    ]
    for _ in range(2):
        assert local_stack.post_events(records)["failed"] == 0
    prefix = partition_prefix(hour)
    local_stack.wait_until(lambda: len(_hour_objects(local_stack, prefix)) >= 2, timeout=60)

    # WHEN the schedule's loop runs, from a shell that knows only where the stack's state is
    loop = subprocess.Popen(
        [sys.executable, "-m", "localdev.compact", "--every", "0.5"],
        cwd=ROOT,
        env=_without_stack_env(local_stack.state_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        local_stack.wait_until(
            lambda: [key for key in _hour_objects(local_stack, prefix) if is_compacted(key)],
            timeout=60,
        )
    finally:
        loop.send_signal(signal.SIGTERM)
        output, _ = loop.communicate(timeout=30)

    # THEN the hour is one file holding each event once, and the loop stopped cleanly
    assert loop.returncode == 0, output
    assert "closed hours compacted" in output and "failed" not in output, output
    (only,) = _hour_objects(local_stack, prefix)
    local_path = tmp_path / "compacted.parquet"
    local_stack.client("s3").download_file(local_stack.archive_bucket, only, str(local_path))
    ids = pq.read_table(local_path, columns=["event_id"]).column("event_id").to_pylist()
    assert sorted(ids) == sorted(record["event_id"] for record in records)


def test_compacting_without_a_running_stack_says_so_and_reaches_no_account(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "localdev.compact"],
        cwd=ROOT,
        env=_without_stack_env(tmp_path / "no-stack"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 1
    assert "no local stack is running" in run.stderr and "make local" in run.stderr
    assert "Traceback" not in run.stderr
