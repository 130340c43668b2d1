"""A pytest run stopped by a signal says where each of its threads was: ``make test`` bounds
each tier's time with ``timeout``, whose SIGTERM would otherwise end a hung tier in silence
(a CI run once waited 75 minutes on one and printed nothing of it).

Loaded with ``-p tests.hang_report`` (pyproject's addopts), so it is imported before pytest
captures the output: the stacks go to the run's own stderr, the tier's log, not to the
captured output of the test that hung, which the signal would discard. pytest-timeout covers
a test that runs too long; this covers what it cannot see, such as a thread that keeps the
process from exiting after the last test."""

from __future__ import annotations

import faulthandler
import os
import signal

_STDERR = os.fdopen(os.dup(2), "w")  # kept open for the life of the process
faulthandler.register(signal.SIGTERM, file=_STDERR, all_threads=True, chain=True)
