"""Shared fixtures. ``local_stack`` starts the real local stack (moto's server on loopback,
the template's resources, ``chalice local``, the consumers behind the event-source runner,
the dashboard's static server) once per test session, exactly as ``make local`` does."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from localdev.harness import LocalStackHandle, free_port, start_local_stack

__all__ = ["LocalStackHandle", "free_port", "local_stack", "start_local_stack"]


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStackHandle]:
    handle = start_local_stack(tmp_path_factory.mktemp("local-stack"))
    try:
        yield handle
    finally:
        handle.stop()
