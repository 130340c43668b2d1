"""A pytest run stopped by SIGTERM says where each of its threads was, then stops as after
Ctrl-C: ``make test`` bounds each tier's time with ``timeout``, whose SIGTERM would otherwise
end a hung tier in silence (a CI run once waited 75 minutes on one and printed nothing).

Loaded with ``-p tests.hang_report`` (pyproject's addopts), so it is imported before pytest
captures the output: the stacks go to the run's own stderr, the tier's log, not to the
captured output of the test that hung. The SIGTERM then raises KeyboardInterrupt in the main
thread, so pytest still reports the failures so far and runs the fixtures' teardown (the
local stacks run in sessions of their own: only their fixtures stop them). pytest-timeout
covers a test that runs too long; this covers what it cannot see, such as a thread that
keeps the process from exiting after the last test."""

from __future__ import annotations

import faulthandler
import os
import signal
from types import FrameType


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt("stopped by SIGTERM (a time limit, or a stop of the whole run)")


_STDERR = os.fdopen(os.dup(2), "w")  # kept open for the life of the process
signal.signal(signal.SIGTERM, _interrupt)
# faulthandler dumps the stacks from its C handler, then calls the handler above
faulthandler.register(signal.SIGTERM, file=_STDERR, all_threads=True, chain=True)
