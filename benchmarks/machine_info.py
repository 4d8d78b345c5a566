"""Facts about the machine a benchmark ran on: CPU, load. Shared by the bench_* scripts."""

from __future__ import annotations

import os
import platform


def cpu_model() -> str:
    """The CPU's marketing name, from /proc/cpuinfo where there is one."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def loadavg() -> str:
    """/proc/loadavg: 1, 5, 15-minute load averages, running/total tasks."""
    try:
        with open("/proc/loadavg") as f:
            return f.read().strip()
    except OSError:
        return "unavailable"


def busy_warning(load: str) -> str:
    """A warning when the 1-minute load average shows other work on the cores."""
    try:
        one_minute = float(load.split()[0])
    except (IndexError, ValueError):
        return ""
    cores = len(os.sched_getaffinity(0))
    if one_minute < 0.5:
        return ""
    return (
        f" (WARNING: load {one_minute:g} on {cores} cores before the start: the machine "
        "was busy, so these figures are not fit to compare)"
    )
