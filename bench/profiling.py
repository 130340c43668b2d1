"""Optional sampling profiles of the stack's processes with py-spy (when it is installed in
the venv or on PATH), summarised as self time by package and the hottest functions."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    if beside.exists():
        return str(beside)
    return shutil.which("py-spy")


@dataclass
class Profile:
    name: str
    samples: int = 0
    by_package: Counter[str] = field(default_factory=Counter)
    by_function: Counter[str] = field(default_factory=Counter)
    error: str = ""


def package_of(frame: str) -> str:
    """'func (moto/core/responses.py:12)' -> 'moto'; stdlib and frozen modules by name."""
    if "(" not in frame:
        return "?"
    location = frame[frame.rindex("(") + 1 : -1]
    path = location.rsplit(":", 1)[0]
    if path.startswith("<"):
        return "python internals"
    parts = [part for part in path.split("/") if part]
    if "site-packages" in parts:
        parts = parts[parts.index("site-packages") + 1 :]
    if len(parts) > 1:
        return parts[0]
    return parts[0].removesuffix(".py") if parts else "?"


def summarise(name: str, raw: str) -> Profile:
    """py-spy ``--format raw`` (collapsed stacks, one 'stack count' a line)."""
    profile = Profile(name)
    for line in raw.splitlines():
        if not line.strip() or " " not in line:
            continue
        stack, _, count_text = line.rpartition(" ")
        try:
            count = int(count_text)
        except ValueError:
            continue
        leaf = stack.split(";")[-1]
        profile.samples += count
        profile.by_package[package_of(leaf)] += count
        profile.by_function[leaf] += count
    return profile


def record(pids: dict[str, int], seconds: float, out_dir: Path, rate: int = 50) -> list[Any]:
    """Start one py-spy per process; returns the running handles (finish with ``collect``)."""
    binary = py_spy()
    if binary is None:
        return []
    handles = []
    for name, pid in pids.items():
        output = out_dir / f"profile-{pid}.txt"
        process = subprocess.Popen(
            [
                binary,
                "record",
                "--pid",
                str(pid),
                "--duration",
                str(max(1, round(seconds))),
                "--rate",
                str(rate),
                "--format",
                "raw",
                "--nonblocking",
                "--output",
                str(output),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        handles.append((name, process, output))
    return handles


def collect(handles: list[Any], timeout: float = 60.0) -> list[Profile]:
    profiles = []
    for name, process, output in handles:
        try:
            _, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            _, stderr = process.communicate()
        try:
            profiles.append(summarise(name, Path(output).read_text()))
        except OSError:
            profiles.append(Profile(name, error=(stderr or "no output").strip()[-200:]))
    return profiles
