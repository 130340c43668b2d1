"""The machine's local time zone moved for the length of a block, then restored: code that
reads a naive time as local time shows it (this machine, like Lambda's, runs in UTC)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest


@contextmanager
def machine_zone(monkeypatch: pytest.MonkeyPatch, zone: str = "EST+05") -> Iterator[None]:
    with monkeypatch.context() as patched:
        patched.setenv("TZ", zone)  # (a POSIX zone: no tz database needed)
        time.tzset()
        try:
            assert time.timezone != 0, f"the zone {zone} did not take effect"
            yield
        finally:
            patched.undo()
            time.tzset()
