"""The local stack's child processes: loopback ports, waiting for a server to answer, and the
pump that copies a child's output to its log (forwarding its EMF lines)."""

from __future__ import annotations

import contextlib
import socket
import ssl
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex((LOOPBACK, port)) == 0


def answers(url: str, timeout: float = 0.5, context: ssl.SSLContext | None = None) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as response:
            return bool(response.status < 500)
    except OSError:
        return False


def wait_for(
    url: str,
    timeout: float,
    what: str,
    process: subprocess.Popen[Any] | None = None,
    context: ssl.SSLContext | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what} exited with code {process.returncode}; see its log")
        if answers(url, context=context):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not answer on {url} within {timeout:.0f} s")


class OutputPump(threading.Thread):
    """Copies a child's output to its log file, forwarding EMF metric lines to CloudWatch and,
    given ``observe``, handing them to it too (the consumers' Prometheus metrics)."""

    def __init__(
        self,
        name: str,
        stream: IO[str],
        log_path: Path,
        cloudwatch: Any,
        observe: Callable[[str], Any] | None = None,
    ) -> None:
        super().__init__(name=f"pump:{name}", daemon=True)
        self.stream = stream
        self.log_path = log_path
        self.cloudwatch = cloudwatch
        self.observe = observe

    def run(self) -> None:
        forward = _emf_forwarder()
        with self.log_path.open("a", encoding="utf-8") as sink:
            for line in self.stream:
                sink.write(line)
                sink.flush()
                if forward is not None and line.lstrip().startswith("{"):
                    with contextlib.suppress(Exception):
                        forward(line, self.cloudwatch)
                    if self.observe is not None:
                        with contextlib.suppress(Exception):
                            self.observe(line)


def _emf_forwarder() -> Any:
    try:
        from localdev.emf import forward_emf_line
    except ImportError:
        return None
    return forward_emf_line
