"""A running local stack as a handle: what the tests, the soak run and the benchmarks use to
start ``python -m localdev`` on free loopback ports and talk to it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import requests

from localdev.processes import free_port, wait_for
from localdev.runner import read_stream
from localdev.state import clear_state, read_state

ROOT = Path(__file__).resolve().parent.parent
READY_TIMEOUT_S = 180


@contextlib.contextmanager
def patched_env(values: dict[str, str | None]) -> Iterator[None]:
    """Set (or, for None, remove) environment variables; restore them afterwards."""
    saved = {name: os.environ.get(name) for name in values}
    try:
        _set_env(values)
        yield
    finally:
        _set_env(saved)


def _set_env(values: dict[str, str | None]) -> None:
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@contextlib.contextmanager
def embedded_emulator(
    tls: tuple[Path, Path] | None = None, request_log: Path | None = None
) -> Iterator[str]:
    """``localdev/emulator.py`` on a free loopback port until the block ends (stopped by its
    PID); yields its URL. With ``tls`` (certificate, key) it serves https; with
    ``request_log`` its request lines (werkzeug's, one per request) go to that file."""
    port = free_port()
    command = [sys.executable, "-m", "localdev.emulator", "-H", "127.0.0.1", "-p", str(port)]
    if tls is not None:
        command += ["--ssl-cert", str(tls[0]), "--ssl-key", str(tls[1])]
    url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    log = request_log.open("ab") if request_log is not None else None
    process = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=log if log is not None else subprocess.DEVNULL,
        env={**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"},
    )
    if log is not None:
        log.close()  # the server holds its own copy
    context = ssl.create_default_context(cafile=str(tls[0])) if tls else None
    try:
        wait_for(f"{url}/moto-api/", 30, "the emulator", process, context)
        yield url
    finally:
        process.terminate()  # this PID only
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@dataclass
class LoopbackStackHandle:
    """A ``python -m localdev`` stack (``localdev.stack.LoopbackStack``) started by the tests
    and tools on loopback: its process, its state and what it printed. Our own stack, not the
    third-party LocalStack emulator."""

    process: subprocess.Popen[str]
    info: dict[str, Any]
    state_dir: Path
    output: list[str] = field(default_factory=list)
    restarted_api: subprocess.Popen[bytes] | None = None

    @property
    def api_url(self) -> str:
        return str(self.info["api_url"])

    @property
    def web_url(self) -> str:
        return str(self.info["web_url"])

    @property
    def endpoint_url(self) -> str:
        return str(self.info["endpoint_url"])

    @property
    def env(self) -> dict[str, str]:
        """The stack's environment, with its keys for the simulator and other clients."""
        return {
            **os.environ,
            **self.info["env"],
            "CLICKSTREAM_WRITE_KEY": self.write_key,
            "CLICKSTREAM_API_KEY": self.read_key,
        }

    @property
    def metrics_urls(self) -> dict[str, str]:
        """The Prometheus endpoints: ``api`` and ``consumers``."""
        return dict(self.info["metrics_urls"])

    @property
    def keys(self) -> dict[str, str]:
        return dict(self.info.get("keys") or {})

    @property
    def write_key(self) -> str:
        return self.keys.get("write", "")

    @property
    def read_key(self) -> str:
        return self.keys.get("read", "")

    @property
    def admin_key(self) -> str:
        return self.keys.get("admin", "")

    @property
    def write_headers(self) -> dict[str, str]:
        return {"X-Write-Key": self.write_key}

    @property
    def read_headers(self) -> dict[str, str]:
        return {"X-Api-Key": self.read_key}

    @property
    def admin_headers(self) -> dict[str, str]:
        return {"X-Api-Key": self.admin_key}

    @property
    def resources(self) -> dict[str, str]:
        return dict(self.info["resources"])

    @property
    def archive_bucket(self) -> str:
        return self.resources["ArchiveBucketName"]

    @property
    def aggregates_table(self) -> str:
        return self.resources["AggregatesTableName"]

    @property
    def stream_name(self) -> str:
        return self.resources["StreamName"]

    def client(self, service: str) -> Any:
        make_client: Any = boto3.client  # the service is chosen at run time
        return make_client(
            service,
            endpoint_url=self.endpoint_url,
            region_name=self.info["env"]["AWS_REGION"],
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )

    def download_archive(self, into: Path) -> int:
        """Copy the Parquet archive (``events/``) under ``into``, keeping its keys as paths
        (DuckDB reads them with Hive partitioning); earlier copies are removed first.
        Returns the number of objects."""
        for old in into.rglob("*.parquet"):
            old.unlink()
        s3, downloaded = self.client("s3"), 0
        pages = s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.archive_bucket, Prefix="events/"
        )
        for page in pages:
            for obj in page.get("Contents", []):
                target = into / obj["Key"]
                target.parent.mkdir(parents=True, exist_ok=True)
                body = s3.get_object(Bucket=self.archive_bucket, Key=obj["Key"])["Body"]
                target.write_bytes(body.read())
                downloaded += 1
        return downloaded

    def stream_records(self, partition_keys: set[str]) -> list[dict[str, Any]]:
        """Every record in the stream (read through the emulator from the start of each shard)
        whose partition key is one of ``partition_keys``, decoded from JSON."""
        by_shard = read_stream(self.client("kinesis"), self.stream_name)
        return [
            json.loads(record.data)
            for records in by_shard.values()
            for record in records
            if record.partition_key in partition_keys
        ]

    def post_events(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        response = requests.post(
            f"{self.api_url}/events",
            json={"records": records},
            headers=self.write_headers,
            timeout=30,
        )
        body: dict[str, Any] = response.json()
        body["_status"] = response.status_code
        return body

    def get(self, path: str, **params: Any) -> Any:
        response = requests.get(
            f"{self.api_url}{path}", params=params, headers=self.read_headers, timeout=30
        )
        if response.status_code >= 500:  # the API's traceback is in the stack's output
            raise requests.HTTPError(
                f"{response.status_code} for {path}: {response.text[:500]}\n"
                + "".join(self.output[-80:]),
                response=response,
            )
        response.raise_for_status()
        return response.json()

    @staticmethod
    def wait_until(
        predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.25
    ) -> Any:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            try:
                last = predicate()
            except requests.Timeout as slow:  # a busy emulator: asked again until the deadline
                last = slow
                continue
            if last:
                return last
            time.sleep(interval)
        raise AssertionError(f"condition not met within {timeout} s (last value: {last!r})")

    # --- taking the API down and back, for the dashboard's error state ---------------------

    def _api_pid(self) -> int:
        if self.restarted_api is not None:
            return self.restarted_api.pid
        return int(self.info["pids"]["api"])

    def stop_api(self) -> None:
        os.killpg(os.getpgid(self._api_pid()), signal.SIGTERM)
        port = int(self.api_url.rsplit(":", 1)[1])
        self.wait_until(lambda: socket.socket().connect_ex(("127.0.0.1", port)) != 0, 15)

    def start_api(self) -> None:
        command = self.info["api_command"]
        log = (self.state_dir / "logs" / "api-restarted.log").open("ab")
        self.restarted_api = subprocess.Popen(
            command,
            cwd=ROOT / "api",
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.wait_until(lambda: _answers(self.api_url + "/"), 60)

    def stop(self) -> None:
        if self.restarted_api is not None and self.restarted_api.poll() is None:
            os.killpg(self.restarted_api.pid, signal.SIGTERM)
            self.restarted_api.wait(30)
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code < 500
    except requests.RequestException:
        return False


def wait_for_state(
    state_dir: Path, process: subprocess.Popen[str], timeout: float
) -> dict[str, Any] | None:
    """The state file ``python -m localdev`` writes once everything answers; None when the
    process exits or the time is up first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        state = read_state(state_dir)
        if state is not None:
            return state
        time.sleep(0.2)
    return None


def start_loopback_stack(
    state_dir: Path, extra_env: dict[str, str] | None = None
) -> LoopbackStackHandle:
    env = {
        **os.environ,
        "CLICKSTREAM_API_PORT": str(free_port()),
        "CLICKSTREAM_WEB_PORT": str(free_port()),
        "CLICKSTREAM_EMULATOR_PORT": str(free_port()),
        "CLICKSTREAM_METRICS_PORT": str(free_port()),
        "CLICKSTREAM_STATE_DIR": str(state_dir),
        "CLICKSTREAM_USE_LOCALSTACK": "false",  # tests always run on the embedded emulator
        "CLICKSTREAM_ESM_BATCHING_WINDOW_S": "0.2",
        **(extra_env or {}),
    }
    env.pop("AWS_ENDPOINT_URL", None)
    clear_state(state_dir)
    process = subprocess.Popen(
        [sys.executable, "-m", "localdev"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:  # kept for the error message of a stack that did not start
            output.append(line)

    threading.Thread(target=read, daemon=True).start()
    ready = wait_for_state(state_dir, process, READY_TIMEOUT_S)
    if ready is None:
        process.kill()
        raise RuntimeError("local stack did not start:\n" + "".join(output[-50:]))
    if ready["pids"]["supervisor"] != process.pid:  # the README's way to stop it would miss
        process.kill()
        named = ready["pids"]["supervisor"]
        raise RuntimeError(f"state.json names supervisor {named}, not {process.pid}")
    return LoopbackStackHandle(process=process, info=ready, state_dir=state_dir, output=output)
