"""Where and when the figures were measured: ``uname -a``, CPU model, cores, date, commit."""

from __future__ import annotations

import os
import platform
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Machine:
    uname: str
    cpu_model: str
    cores: int
    usable_cores: int
    memory_gb: float
    python: str
    date: str
    commit: str

    def lines(self) -> list[tuple[str, str]]:
        return [
            ("machine", self.uname),
            ("CPU", self.cpu_model),
            ("cores", f"{self.cores} ({self.usable_cores} usable by this process)"),
            ("memory", f"{self.memory_gb:.1f} GB"),
            ("python", self.python),
            ("date", self.date),
            ("git commit", self.commit),
        ]


def _run(command: list[str]) -> str:
    try:
        return subprocess.run(
            command, cwd=ROOT, capture_output=True, text=True, check=False, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def memory_gb() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return 0.0


def git_commit() -> str:
    commit = _run(["git", "rev-parse", "HEAD"]) or "unknown"
    dirty = _run(["git", "status", "--porcelain", "--untracked-files=no"])
    return f"{commit} (working tree has uncommitted changes)" if dirty else commit


def describe() -> Machine:
    return Machine(
        uname=_run(["uname", "-a"]) or " ".join(platform.uname()),
        cpu_model=cpu_model(),
        cores=os.cpu_count() or 0,
        usable_cores=len(os.sched_getaffinity(0)),
        memory_gb=memory_gb(),
        python=platform.python_version(),
        date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        commit=git_commit(),
    )
