"""CPU figures from ``/proc``: a process's CPU time, the machine's busy share, a local relay's pid.

Linux only, read-only. When the relay runs on this machine, :func:`find_listener_pid` finds the
process that owns its listening port (``/proc/net/{udp,tcp}[6]`` inode -> ``/proc/PID/fd``), so the
load report can say how much CPU the relay used -- the first bottleneck a capacity test looks for.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of ``pid`` and its threads, or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()
    # fields[0] is the state (field 3 of proc(5)); utime and stime are fields 14 and 15
    return (int(fields[11]) + int(fields[12])) / _TICKS


def machine_cpu() -> tuple[float, float] | None:
    """``(busy, total)`` jiffies of all CPUs (``/proc/stat``), or None off Linux."""
    try:
        first = Path("/proc/stat").read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return None
    values = [float(v) for v in first[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0.0)
    return sum(values) - idle, sum(values)


def busy_percent(before: tuple[float, float] | None, after: tuple[float, float] | None) -> float | None:
    """The machine's busy share between two :func:`machine_cpu` readings, percent of all cores."""
    if before is None or after is None or after[1] <= before[1]:
        return None
    return 100 * (after[0] - before[0]) / (after[1] - before[1])


def load_average() -> tuple[float, float, float] | None:
    with contextlib.suppress(OSError):
        return os.getloadavg()
    return None


def _listening_inodes(port: int) -> set[str]:
    inodes: set[str] = set()
    for name in ("udp", "udp6", "tcp", "tcp6"):
        try:
            lines = Path(f"/proc/net/{name}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if len(parts) < 10:
                continue
            local = parts[1]
            if int(local.rsplit(":", 1)[1], 16) != port:
                continue
            if name.startswith("tcp") and parts[3] != "0A":  # LISTEN
                continue
            inodes.add(parts[9])
    inodes.discard("0")
    return inodes


def find_listener_pid(port: int) -> int | None:
    """The pid of the process listening on ``port`` (UDP or TCP) on this machine, if any is visible."""
    inodes = _listening_inodes(port)
    if not inodes:
        return None
    wanted = {f"socket:[{inode}]" for inode in inodes}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fds = list((entry / "fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            with contextlib.suppress(OSError):
                if os.readlink(fd) in wanted:
                    return int(entry.name)
    return None


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


__all__ = ["busy_percent", "cpu_count", "find_listener_pid", "load_average", "machine_cpu", "process_cpu_s"]
