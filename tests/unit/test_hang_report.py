"""tests/hang_report.py: a test run stopped by ``make test``'s time limit says where it hung,
and still reports and tears down as after Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).parents[2]

HANGS_AT_EXIT = """
import threading, time

def a_thread_nobody_joins():
    time.sleep(120)

def test_starts_a_thread_that_outlives_the_run():
    threading.Thread(target=a_thread_nobody_joins).start()
"""

HANGS_IN_A_TEST = """
import os, pathlib, time
import pytest

@pytest.fixture
def stack():
    yield
    pathlib.Path(os.environ["TORN_DOWN"]).write_text("torn down")

def test_fails_before_the_hang():
    assert 1 == 2, "a failure reported all the same"

def test_hangs(stack):
    pathlib.Path(os.environ["STARTED"]).write_text("started")
    time.sleep(120)
"""


def stopped_run(tmp_path: Path, source: str, ready: str) -> tuple[int, str]:
    """Runs ``source``'s tests with the plugin, sends SIGTERM (as ``timeout`` does) once
    ``ready`` is in the log or is a file that exists, and answers the exit code and the log."""
    (tmp_path / "test_hangs.py").write_text(source)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")  # not the project's options
    log = tmp_path / "tier.log"
    env = {"STARTED": str(tmp_path / "started"), "TORN_DOWN": str(tmp_path / "torn_down")}
    with log.open("w") as out:
        run = subprocess.Popen(
            [sys.executable, "-m", "pytest", "-q", "-ra", "-p", "no:cacheprovider",
             "-p", "no:randomly", "-p", "tests.hang_report",
             "-c", str(tmp_path / "pytest.ini"), str(tmp_path)],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
            env={**os.environ, **env},
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while ready not in log.read_text() and not (tmp_path / ready).exists():
                assert run.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
            time.sleep(0.5)
            assert run.poll() is None  # still running: hung
            run.send_signal(signal.SIGTERM)
            code = run.wait(timeout=30)
        finally:
            run.kill()
    return code, log.read_text()


def test_a_run_stopped_after_its_last_test_prints_the_stack_that_kept_it_alive(
    tmp_path: Path,
) -> None:
    _code, report = stopped_run(tmp_path, HANGS_AT_EXIT, ready="1 passed")  # it ended
    # (its code is the tests' own, 0: `timeout` answers 124 for a tier it stopped, whatever)
    assert "in a_thread_nobody_joins" in report  # the thread that hung, by name
    assert "in _shutdown" in report  # and what the main thread was waiting for


def test_a_run_stopped_in_a_hung_test_prints_its_stack_reports_and_tears_down(
    tmp_path: Path,
) -> None:
    code, report = stopped_run(tmp_path, HANGS_IN_A_TEST, ready="started")
    assert code == 2  # pytest's code for an interrupted run
    assert "in test_hangs" in report  # where it hung, though the test's output is captured
    assert "FAILED" in report and "a failure reported all the same" in report
    assert "KeyboardInterrupt" in report
    assert (tmp_path / "torn_down").read_text() == "torn down"  # the fixtures stopped
