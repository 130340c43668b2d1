"""dynalite (npm, installed by ``make test`` into tools/dynalite) on loopback: the unit tier's
second DynamoDB engine. ``python -m tests.dynalite -- CMD ...`` runs CMD with one server's
endpoint in ``DYNALITE_ENDPOINT``, which the tier's fixture then uses instead of starting its
own: ``make mutants`` runs each mutant's tests in a fresh process, and a server per mutant
would cost more than many of its tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from localdev.processes import LOOPBACK, free_port, wait_for

DYNALITE = Path(__file__).parents[1] / "tools" / "dynalite" / "node_modules" / "dynalite"
ENDPOINT_VARIABLE = "DYNALITE_ENDPOINT"


class NotInstalled(RuntimeError):
    pass


@contextmanager
def running() -> Iterator[str]:
    """A dynalite server of its own, stopped on exit; yields its endpoint. Its output goes to
    a temporary file, shown if it fails to start (a pipe nobody reads would stall a server
    that runs for hours once it filled)."""
    if not (DYNALITE / "cli.js").exists():
        raise NotInstalled(
            "dynalite is not installed: run `make test` (npm ci --prefix tools/dynalite)"
        )
    port = free_port()
    with tempfile.TemporaryFile() as log:
        server = subprocess.Popen(
            ["node", str(DYNALITE / "cli.js"), "--host", LOOPBACK, "--port", str(port),
             "--createTableMs", "0", "--deleteTableMs", "0"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        endpoint = f"http://{LOOPBACK}:{port}"
        try:
            try:
                wait_for(endpoint, timeout=30, what="dynalite", process=server)
            except RuntimeError as failed:
                log.seek(0)
                raise RuntimeError(f"{failed}\n{log.read().decode(errors='replace')}") from None
            yield endpoint
        finally:
            server.terminate()
            server.wait(timeout=10)


def run_with_server(command: list[str]) -> int:
    """CMD's exit code. An interrupt from the terminal reaches CMD itself (the same process
    group), which is left to stop in its own way (mutmut saves its results); a SIGTERM sent to
    this process is passed on to CMD. The server stops after CMD has."""
    with running() as endpoint:
        child = subprocess.Popen(command, env={**os.environ, ENDPOINT_VARIABLE: endpoint})

        def pass_on(signum: int, _frame: FrameType | None) -> None:
            child.send_signal(signum)

        previous = (
            signal.signal(signal.SIGINT, signal.SIG_IGN),
            signal.signal(signal.SIGTERM, pass_on),
        )
        try:
            return child.wait()
        finally:
            signal.signal(signal.SIGINT, previous[0])
            signal.signal(signal.SIGTERM, previous[1])


def main(argv: list[str]) -> int:
    command = argv[1:] if argv[:1] == ["--"] else argv
    if not command:
        print("usage: python -m tests.dynalite -- COMMAND [ARG ...]", file=sys.stderr)
        return 2
    return run_with_server(command)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
