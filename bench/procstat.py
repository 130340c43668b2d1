"""CPU accounting from /proc (no psutil): per process (all its threads) and for the machine."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process (all threads); None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    # after "pid (comm) ": state is fields[0]; utime, stime are stat fields 14 and 15
    return (int(fields[11]) + int(fields[12])) / TICKS


def machine_cpu_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, over all cores."""
    try:
        first = Path("/proc/stat").read_text().splitlines()[0].split()
    except OSError:
        return 0.0, 0.0
    values = [int(value) for value in first[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    total = sum(values[:8])
    return (total - idle) / TICKS, total / TICKS


@dataclass
class CpuSnapshot:
    at: float
    processes: dict[str, float | None]
    machine_busy: float
    machine_total: float


@dataclass
class CpuUsage:
    """CPU over an interval: per process in cores (1.0 = one core busy), machine busy share."""

    seconds: float
    cores: dict[str, float] = field(default_factory=dict)
    machine_busy_cores: float = 0.0
    machine_cores: int = 1

    @property
    def others_cores(self) -> float:
        return max(0.0, self.machine_busy_cores - sum(self.cores.values()))

    @property
    def machine_busy_share(self) -> float:
        return self.machine_busy_cores / max(1, self.machine_cores)


def snapshot(pids: Mapping[str, int]) -> CpuSnapshot:
    busy, total = machine_cpu_seconds()
    return CpuSnapshot(
        at=time.monotonic(),
        processes={name: process_cpu_seconds(pid) for name, pid in pids.items()},
        machine_busy=busy,
        machine_total=total,
    )


def usage(before: CpuSnapshot, after: CpuSnapshot) -> CpuUsage:
    seconds = max(1e-9, after.at - before.at)
    cores: dict[str, float] = {}
    for name, start in before.processes.items():
        end = after.processes.get(name)
        if start is not None and end is not None:
            cores[name] = (end - start) / seconds
    machine_cores = os.cpu_count() or 1
    return CpuUsage(
        seconds=seconds,
        cores=cores,
        machine_busy_cores=(after.machine_busy - before.machine_busy) / seconds,
        machine_cores=machine_cores,
    )
