"""dynalite (npm, installed by ``make test`` into tools/dynalite) on loopback: the unit tier's
second DynamoDB engine. ``python -m tests.dynalite -- CMD ...`` runs CMD with one server's
endpoint in ``DYNALITE_ENDPOINT``, which the tier's fixture then uses instead of starting its
own: ``make mutants`` runs each mutant's tests in a fresh process, and a server per mutant
would cost more than many of its tests."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from localdev.processes import LOOPBACK, free_port, wait_for

DYNALITE = Path(__file__).parents[1] / "tools" / "dynalite" / "node_modules" / "dynalite"
ENDPOINT_VARIABLE = "DYNALITE_ENDPOINT"


class NotInstalled(RuntimeError):
    pass


@contextmanager
def running() -> Iterator[str]:
    """A dynalite server of its own, stopped on exit; yields its endpoint."""
    if not (DYNALITE / "cli.js").exists():
        raise NotInstalled(
            "dynalite is not installed: run `make test` (npm ci --prefix tools/dynalite)"
        )
    port = free_port()
    server = subprocess.Popen(
        ["node", str(DYNALITE / "cli.js"), "--host", LOOPBACK, "--port", str(port),
         "--createTableMs", "0", "--deleteTableMs", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    endpoint = f"http://{LOOPBACK}:{port}"
    try:
        wait_for(endpoint, timeout=30, what="dynalite", process=server)
        yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=10)


def main(argv: list[str]) -> int:
    command = argv[1:] if argv[:1] == ["--"] else argv
    if not command:
        print("usage: python -m tests.dynalite -- COMMAND [ARG ...]", file=sys.stderr)
        return 2
    with running() as endpoint:
        return subprocess.run(command, env={**os.environ, ENDPOINT_VARIABLE: endpoint}).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
