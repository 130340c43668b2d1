"""Shared fixtures. ``local_stack`` starts the real local stack (moto's server on loopback,
the template's resources, ``chalice local``, the consumers behind the event-source runner,
the dashboard's static server) once per test session, exactly as ``make local`` does."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from localdev.harness import LoopbackStackHandle, free_port, start_loopback_stack

__all__ = ["LoopbackStackHandle", "free_port", "local_stack", "start_loopback_stack"]


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopbackStackHandle]:
    handle = start_loopback_stack(tmp_path_factory.mktemp("local-stack"))
    try:
        yield handle
    finally:
        handle.stop()
