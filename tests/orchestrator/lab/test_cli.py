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


def running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie not yet reaped by init counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(") ", 1)[1][:1] != "Z"
    except FileNotFoundError:
        return False


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


def test_exec_becomes_the_command_so_stopping_it_leaves_nothing_running() -> None:
    problem = lab_environment_problem()
    if problem is not None:
        pytest.skip(problem)
    env = {**os.environ, "CALLOPS_LAB_PREFIX": PREFIX}
    try:
        assert callops("up", "--topology", "open").returncode == 0
        proc = subprocess.Popen(
            [sys.executable, "-m", "callops", "lab", "exec", "agent", "--", "sh", "-c", "echo $$; exec cat"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert proc.stdout is not None and proc.stdin is not None
        assert int(proc.stdout.readline()) == proc.pid  # no 'lab exec' process in between
        proc.terminate()
        assert proc.wait(timeout=10) == -15
        proc.stdin.close()
        proc.stdout.close()
    finally:
        down = callops("down")
    assert down.returncode == 0


def test_down_after_a_crash_removes_namespaces_and_coturn_without_a_state_file() -> None:
    problem = lab_environment_problem()
    if problem is not None:
        pytest.skip(problem)
    try:
        up = callops("up", "--topology", "cone", "--json")
        assert up.returncode == 0, up.stderr
        state = json.loads(up.stdout)
        # A crash before the state was written: only namespaces and coturn are left behind.
        os.unlink(os.path.join(state["state_dir"], "state.json"))
        assert "leftover" in callops("status").stdout
    finally:
        down = callops("down")
    assert down.returncode == 0 and "removed 6 namespaces" in down.stdout
    assert not running(state["coturn_pid"])
    assert not os.path.exists(state["state_dir"])


def test_the_lab_commands_refuse_clearly_when_not_root() -> None:
    if os.geteuid() != 0 or subprocess.run(["unshare", "-U", "true"], capture_output=True).returncode:
        pytest.skip("needs root and 'unshare -U' to become an unprivileged user")
    for args in (["up", "--topology", "cone"], ["status"], ["down"], ["exec", "agent", "--", "true"]):
        res = subprocess.run(
            ["unshare", "-U", sys.executable, "-m", "callops", "lab", *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert res.returncode == 4, (args, res.stderr)
        assert "the NAT lab needs root" in res.stderr and "Traceback" not in res.stderr
