"""tests/hang_report.py: a test run stopped by ``make test``'s time limit says where it hung."""

from __future__ import annotations

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
    print("captured, then lost")
"""


def test_a_run_stopped_after_its_last_test_prints_the_stack_that_kept_it_alive(
    tmp_path: Path,
) -> None:
    (tmp_path / "test_hangs.py").write_text(HANGS_AT_EXIT)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")  # not the project's options
    log = tmp_path / "tier.log"
    with log.open("w") as out:
        run = subprocess.Popen(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
             "-p", "tests.hang_report", "-c", str(tmp_path / "pytest.ini"), str(tmp_path)],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while "1 passed" not in log.read_text():  # the last test is over; the run is not
                assert run.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
            time.sleep(0.5)
            assert run.poll() is None  # a non-daemon thread keeps it from exiting
            run.send_signal(signal.SIGTERM)  # as `timeout` does
            assert run.wait(timeout=30) == -signal.SIGTERM
        finally:
            run.kill()
    report = log.read_text()
    assert "in a_thread_nobody_joins" in report  # the thread that hung, by name
    assert "in _shutdown" in report  # and what the main thread was waiting for
