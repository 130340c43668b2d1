"""Shared fixtures. ``local_stack`` starts the real local stack (moto's server on loopback,
the template's resources, ``chalice local``, the consumers behind the event-source runner,
the dashboard's static server) once per test session, exactly as ``make local`` does."""

from __future__ import annotations

import os
from collections.abc import Iterator

import botocore.loaders
import botocore.session
import pytest
from hypothesis import HealthCheck, settings

from localdev.harness import LoopbackStackHandle, free_port, start_loopback_stack

__all__ = ["LoopbackStackHandle", "free_port", "local_stack", "start_loopback_stack"]

# Property tests check outcomes, not speed: hypothesis's 200 ms deadline per example and its
# "input generation is slow" health check fail them on a busy machine (the wall clock
# deciding a result; seen in a random-order run with the machine's load at 14).
settings.register_profile(
    "clickstream", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("clickstream")

# botocore parses a service's JSON model once per session, and moto's mock and the product's
# client reset make new sessions in every test: an in-process API's setup took 0.41 s, and
# 0.09 s with one loader. The tests share a loader per data path; botocore treats what it
# loads as read-only, as it does within one session.
_LOADERS: dict[str | None, botocore.loaders.Loader] = {}
_create_loader = botocore.loaders.create_loader


def _shared_loader(search_path_string: str | None = None) -> botocore.loaders.Loader:
    if search_path_string not in _LOADERS:
        _LOADERS[search_path_string] = _create_loader(search_path_string)
    return _LOADERS[search_path_string]


botocore.session.create_loader = _shared_loader

_SETUP_S = pytest.StashKey[float]()


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """In mutmut's stats run, a test's duration includes its fixtures' setup. mutmut runs a
    mutant's tests shortest first by that duration, and counts only the call: a store test
    whose moto or dynalite setup takes half a second counted as 0.01 s, so each mutant ran
    dozens of them before the one test that checks its function directly."""
    if os.environ.get("MUTANT_UNDER_TEST") == "stats":
        if call.when == "setup":
            item.stash[_SETUP_S] = call.duration
        elif call.when == "call":
            call.duration += item.stash.get(_SETUP_S, 0.0)
    yield


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopbackStackHandle]:
    handle = start_loopback_stack(tmp_path_factory.mktemp("local-stack"))
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture(autouse=True)
def _environment_unchanged() -> Iterator[None]:
    """Every test leaves ``os.environ`` as it found it: changes go through ``monkeypatch``
    (undone before this check runs), so no test reads what another one set."""
    before = dict(os.environ)
    yield
    changed = sorted(
        name
        for name in before.keys() | os.environ.keys()
        if before.get(name) != os.environ.get(name) and name != "PYTEST_CURRENT_TEST"
    )
    if changed:
        for name in changed:
            if name in before:
                os.environ[name] = before[name]
            else:
                del os.environ[name]
        pytest.fail(f"the test changed the environment outside monkeypatch: {changed}")
