"""The local stack for figures 5-7: started with the project's harness (``python -m
localdev`` on free loopback ports, in a temporary state directory), HTTP helpers, idle
detection, and stopped at the end whatever happens."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

# The mapping settings deployed on AWS (infra/template.yaml) rather than the harness's short
# test window: an empty override makes localdev.consumer read the template's values.
STACK_ENV = {"CLICKSTREAM_ESM_BATCHING_WINDOW_S": ""}


def _start(state_dir: Path, extra_env: dict[str, str]) -> Any:
    from localdev.harness import start_loopback_stack

    return start_loopback_stack(state_dir, extra_env)


@dataclass
class Stack:
    handle: Any
    state_dir: Path

    @property
    def api_url(self) -> str:
        return str(self.handle.api_url)

    @property
    def pids(self) -> dict[str, int]:
        # (the stack lists itself as "supervisor"; the harness refuses one that does not)
        pids = {name: int(pid) for name, pid in self.handle.info.get("pids", {}).items()}
        pids["bench client (this process)"] = os.getpid()
        return pids

    def client(self, service: str) -> Any:
        return self.handle.client(service)

    @property
    def aggregates_table(self) -> str:
        return str(self.handle.aggregates_table)

    @property
    def archive_bucket(self) -> str:
        return str(self.handle.archive_bucket)

    @property
    def stream_name(self) -> str:
        return str(self.handle.stream_name)

    def session(self) -> Any:
        """A new connection per request: with keep-alive, ``chalice local`` answers ~40 ms
        late (its header and body writes meet the client's delayed ACK), which is the dev
        server's artefact, not the product's latency."""
        return requests

    @property
    def read_headers(self) -> dict[str, str]:
        """The stack's read key, when the API asks for one."""
        return dict(getattr(self.handle, "read_headers", None) or {})

    @property
    def write_headers(self) -> dict[str, str]:
        return dict(getattr(self.handle, "write_headers", None) or {})

    def get_json(self, path: str, timeout: float = 10.0) -> Any:
        response = self.session().get(
            self.api_url + path, headers=self.read_headers, timeout=timeout
        )
        response.raise_for_status()
        return response.json()

    def timed_get(self, path: str, timeout: float = 10.0) -> tuple[float, int]:
        headers = self.read_headers
        started = time.perf_counter()
        response = self.session().get(self.api_url + path, headers=headers, timeout=timeout)
        elapsed = time.perf_counter() - started
        return elapsed, response.status_code

    def post_body(self, body: bytes, timeout: float = 30.0) -> tuple[int, dict[str, Any]]:
        response = self.session().post(
            self.api_url + "/events",
            data=body,
            headers={"Content-Type": "application/json", **self.write_headers},
            timeout=timeout,
        )
        try:
            payload: dict[str, Any] = response.json()
        except ValueError:
            payload = {}
        return response.status_code, payload

    def total_events(self, timeout: float = 10.0) -> int:
        """Every event the aggregator has counted: ``/stats`` leaves crawlers' events out of
        ``total_events`` and reports them as ``bots_excluded`` (the simulator sends some)."""
        stats = self.get_json("/stats", timeout=timeout)
        return int(stats.get("total_events") or 0) + int(stats.get("bots_excluded") or 0)

    def wait_idle(self, quiet_s: float = 1.5, timeout: float = 60.0) -> int:
        """Wait until ``total_events`` stops moving for ``quiet_s``; returns it."""
        deadline = time.monotonic() + timeout
        last = self.total_events()
        since = time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.25)
            now = self.total_events()
            if now != last:
                last, since = now, time.monotonic()
            elif time.monotonic() - since >= quiet_s:
                return now
        return last

    def wait_for(
        self, predicate: Callable[[], bool], timeout: float, interval: float = 0.25
    ) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(interval)
        return predicate()


@contextlib.contextmanager
def local_stack(extra_env: dict[str, str] | None = None) -> Iterator[Stack]:
    """A fresh local stack in a temporary state directory, stopped and removed on exit."""
    state_dir = Path(tempfile.mkdtemp(prefix="clickstream-bench-"))
    handle = _start(state_dir, {**STACK_ENV, **(extra_env or {})})
    try:
        yield Stack(handle=handle, state_dir=state_dir)
    finally:
        handle.stop()
        shutil.rmtree(state_dir, ignore_errors=True)
