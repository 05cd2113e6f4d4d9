"""``callops lab`` as a process: up, status, exec, down."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from callops.orchestrator.lab.netns import lab_environment_problem

pytestmark = [pytest.mark.netns, pytest.mark.coturn]

PREFIX = "copc-"


def callops(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CALLOPS_LAB_PREFIX": PREFIX}
    return subprocess.run(
        [sys.executable, "-m", "callops", "lab", *args], capture_output=True, text=True, timeout=120, env=env
    )


def test_lab_commands_bring_a_lab_up_report_it_run_in_it_and_remove_it() -> None:
    problem = lab_environment_problem()
    if problem is not None:
        pytest.skip(problem)
    try:
        up = callops("up", "--agent", "open", "--consumer", "symmetric", "--json")
        assert up.returncode == 0, up.stderr
        state = json.loads(up.stdout)
        assert (state["agent"], state["consumer"]) == ("open", "symmetric")
        status = callops("status")
        assert "up; agent=open consumer=symmetric" in status.stdout
        assert "coturn running" in status.stdout
        shown = callops("exec", "consumer", "--", "ip", "-4", "-o", "addr", "show", "dev", "eth0")
        assert shown.returncode == 0 and "10.201.2.2/24" in shown.stdout
        assert callops("exec", "agent", "--", "sh", "-c", "exit 5").returncode == 5
    finally:
        down = callops("down")
    assert down.returncode == 0 and "removed 6 namespaces" in down.stdout
    assert "down" in callops("status").stdout


def test_an_unknown_topology_is_a_usage_error() -> None:
    res = callops("up", "--agent", "full-cone")
    assert res.returncode == 2
    assert "full-cone" in res.stderr
