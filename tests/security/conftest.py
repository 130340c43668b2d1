"""A dedicated local stack for the security tests: its own emulator, API and consumers, with
two allowed CORS origins and a 7-day bound on event age, so these tests neither see nor
disturb the events of the shared ``local_stack``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from localdev.harness import LoopbackStackHandle, start_loopback_stack

ALLOWED_ORIGINS = ("http://allowed.example", "https://dash.example:8443")


@pytest.fixture(scope="session")
def secure_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopbackStackHandle]:
    handle = start_loopback_stack(
        tmp_path_factory.mktemp("secure-stack"),
        {
            "CLICKSTREAM_CORS_ORIGINS": ",".join(ALLOWED_ORIGINS),
            "CLICKSTREAM_MAX_EVENT_AGE_DAYS": "7",
        },
    )
    try:
        yield handle
    finally:
        handle.stop()
