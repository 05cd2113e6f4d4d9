"""Run a :class:`~callops.orchestrator.lab.topology.LabPlan` with ``ip`` and ``iptables-restore``.

The thin I/O layer of the lab: checks the environment (Linux, root, iproute2, iptables), applies a
plan, lists and removes everything that carries the lab prefix (also leftovers of a crashed run),
and runs commands inside a lab namespace. Failures become :class:`EnvironmentProblem` naming the
command and its error output.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence

from callops.errors import EnvironmentProblem
from callops.orchestrator.lab.topology import LabPlan

log = logging.getLogger(__name__)

COMMAND_TIMEOUT = 20.0


def lab_environment_problem() -> str | None:
    """Why the lab cannot run here, or ``None`` when it can."""
    if not sys.platform.startswith("linux"):
        return "the NAT lab needs Linux network namespaces"
    if os.geteuid() != 0:
        return "the NAT lab needs root (network namespaces and iptables)"
    for tool, package in (("ip", "iproute2"), ("iptables-restore", "iptables"), ("sysctl", "procps")):
        if shutil.which(tool) is None:
            return f"the NAT lab needs {tool!r} (install {package})"
    res = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
    if res.returncode != 0:
        return f"'ip netns' does not work here: {res.stderr.strip() or res.returncode}"
    return None


def require_lab_environment() -> None:
    problem = lab_environment_problem()
    if problem is not None:
        raise EnvironmentProblem(problem, hint="run on Linux as root with iproute2 and iptables installed")


def run(argv: Sequence[str], *, stdin: str | None = None) -> str:
    """Run one command; its stdout, or :class:`EnvironmentProblem` with its stderr."""
    log.debug("lab: %s", " ".join(argv))
    try:
        res = subprocess.run(list(argv), input=stdin, capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
    except FileNotFoundError:
        raise EnvironmentProblem(f"{argv[0]!r} is not installed") from None
    except subprocess.TimeoutExpired:
        raise EnvironmentProblem(f"'{' '.join(argv)}' did not finish in {COMMAND_TIMEOUT:.0f} s") from None
    if res.returncode != 0:
        raise EnvironmentProblem(f"'{' '.join(argv)}' failed: {res.stderr.strip() or res.returncode}")
    return res.stdout


def lab_namespaces(prefix: str) -> list[str]:
    """The network namespaces whose names start with ``prefix``."""
    out = run(["ip", "netns", "list"])
    names = [line.split()[0] for line in out.splitlines() if line.strip()]
    return sorted(name for name in names if name.startswith(prefix))


def namespace_pids(ns: str) -> list[int]:
    try:
        out = run(["ip", "netns", "pids", ns])
    except EnvironmentProblem:
        return []
    return [int(p) for p in out.split() if p.isdigit()]


def _kill_all(pids: Sequence[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def teardown(prefix: str, *, grace: float = 3.0) -> list[str]:
    """Stop every process in and delete every namespace named ``prefix*``; the names removed."""
    namespaces = lab_namespaces(prefix)
    pids = [pid for ns in namespaces for pid in namespace_pids(ns)]
    if pids:
        _kill_all(pids, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
            time.sleep(0.05)  # polling process exit: there is no event to wait on for foreign pids
        _kill_all([pid for pid in pids if _alive(pid)], signal.SIGKILL)
    for ns in namespaces:
        log.info("lab: deleting namespace %s", ns)
        with contextlib.suppress(EnvironmentProblem):
            run(["ip", "netns", "del", ns])
    return namespaces


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours counts as gone.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][:1] != "Z"
    except OSError:
        return False


def apply(plan: LabPlan) -> None:
    """Build the lab; on any failure remove what was built and re-raise."""
    try:
        for argv in plan.commands():
            run(argv)
        for ns, rules in plan.iptables.items():
            run(["ip", "netns", "exec", ns, "iptables-restore"], stdin=rules)
    except BaseException:
        teardown(plan.prefix)
        raise


def exec_argv(ns: str, command: Sequence[str]) -> list[str]:
    """``ip netns exec NS COMMAND...``."""
    return ["ip", "netns", "exec", ns, *command]


__all__ = [
    "apply",
    "exec_argv",
    "lab_environment_problem",
    "lab_namespaces",
    "namespace_pids",
    "require_lab_environment",
    "run",
    "teardown",
]
