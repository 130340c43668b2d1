"""Fixtures for the infrastructure tests: the embedded emulator on a free loopback port,
started by the fixture and stopped by its PID at teardown."""

from __future__ import annotations

import os
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # the repo is not pip-installed in the venv
    sys.path.insert(0, str(ROOT))

from localdev.harness import embedded_emulator  # noqa: E402  (after the path is set)

REGION = "us-east-1"


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """The embedded emulator ``make local`` runs (moto's server with localdev's fixes)."""
    with embedded_emulator() as url:
        yield url


def reset_moto(endpoint: str) -> None:
    req = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    with urllib.request.urlopen(req, timeout=5):
        pass


@pytest.fixture(scope="session")
def moto_reset(moto_endpoint: str) -> Any:
    """Call it to wipe the emulator's state (every service, every region)."""
    return lambda: reset_moto(moto_endpoint)


@pytest.fixture(scope="session", autouse=True)
def _aws_env() -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def aws(moto_endpoint: str) -> Any:
    session: Any = boto3.session.Session(region_name=REGION)

    def make(service: str) -> Any:
        return session.client(service, endpoint_url=moto_endpoint)

    return make


@pytest.fixture(scope="session")
def deployed(moto_endpoint: str, moto_reset: Any) -> dict[str, str]:
    """infra/template.yaml provisioned once on a fresh emulator (default parameters)."""
    from localdev.provision import provision

    moto_reset()
    return provision(moto_endpoint, REGION)
