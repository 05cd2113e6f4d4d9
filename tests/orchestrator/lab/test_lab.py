"""The NAT lab for real: namespaces, NATs, firewalls and coturn, as root."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from callops.errors import EnvironmentProblem, UsageError
from callops.orchestrator.lab import netns
from callops.orchestrator.lab.lifecycle import LabState, lab_down, lab_exec, lab_status, load_state
from callops.orchestrator.lab.topology import Topology

pytestmark = [pytest.mark.netns, pytest.mark.coturn]

TEST_PREFIX = "copl-"
MakeLab = Callable[[Topology, Topology], LabState]


def in_lab(state: LabState, host: str, code: str, timeout: float = 20.0) -> subprocess.CompletedProcess[str]:
    argv = netns.exec_argv(state.namespace(host), [sys.executable, "-c", code])
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)


def stun_answers(state: LabState, host: str, address: str, port: int = 3478) -> bool:
    code = (
        "import sys;from callops.turn.coturn import stun_binding_answered as s;"
        f"sys.exit(0 if s({address!r},{port},2.0) else 1)"
    )
    return in_lab(state, host, code).returncode == 0


def tcp_connects(state: LabState, host: str, address: str, port: int) -> bool:
    code = f"import socket;socket.create_connection(({address!r},{port}),timeout=2).close()"
    return in_lab(state, host, code).returncode == 0


def nat_discovery(state: LabState, host: str) -> str:
    argv = netns.exec_argv(
        state.namespace(host), ["turnutils_natdiscovery", "-m", "-f", state.turn_addresses[0]]
    )
    return subprocess.run(argv, capture_output=True, text=True, timeout=60).stdout


def test_lab_up_builds_every_namespace_and_down_removes_all_of_it(make_lab: MakeLab, lab_root: Path) -> None:
    state = make_lab("cone", "symmetric")
    status = lab_status(TEST_PREFIX, root=lab_root)
    assert status.up and status.coturn_running
    assert set(status.namespaces) == set(state.namespaces.values())
    assert stun_answers(state, "agent", "203.0.113.10")
    assert stun_answers(state, "consumer", "203.0.113.11")
    removed = lab_down(TEST_PREFIX, root=lab_root)
    assert set(removed) == set(state.namespaces.values())
    assert netns.lab_namespaces(TEST_PREFIX) == []
    assert load_state(TEST_PREFIX, lab_root) is None
    assert not lab_status(TEST_PREFIX, root=lab_root).up


def test_down_removes_leftovers_of_a_crashed_run_with_their_processes(
    netns_available: None, lab_root: Path
) -> None:
    ns = f"{TEST_PREFIX}agent"
    netns.run(["ip", "netns", "add", ns])
    try:
        proc = subprocess.Popen(netns.exec_argv(ns, ["sleep", "300"]))
        removed = lab_down(TEST_PREFIX, root=lab_root)
        assert removed == [ns]
        assert proc.wait(timeout=10) != 0
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    assert netns.lab_namespaces(TEST_PREFIX) == []


def test_cone_maps_endpoint_independently_and_symmetric_does_not(make_lab: MakeLab) -> None:
    state = make_lab("cone", "symmetric")
    assert "NAT with Endpoint Independent Mapping" in nat_discovery(state, "agent")
    consumer = nat_discovery(state, "consumer")
    assert "NAT with Address and Port Dependent Mapping" in consumer
    assert "203.0.113.30" in consumer


def test_open_site_is_reachable_by_its_public_address_from_the_other_site(make_lab: MakeLab) -> None:
    state = make_lab("open", "cone")
    listener = (
        "import socket;s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);"
        f"s.bind(({state.hosts['agent']!r},8443));s.listen();print('ready',flush=True);"
        "c,a=s.accept();print(a[0],flush=True)"
    )
    argv = netns.exec_argv(state.namespace("agent"), [sys.executable, "-c", listener])
    with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) as server:
        assert server.stdout is not None
        assert server.stdout.readline().strip() == "ready"
        assert tcp_connects(state, "consumer", state.hosts["agent"], 8443)
        # The agent sees the consumer's NAT router, not its private address.
        assert server.stdout.readline().strip() == "203.0.113.30"
        server.wait(timeout=10)


def test_udp_blocked_drops_udp_but_lets_tcp_reach_the_turn_host(make_lab: MakeLab) -> None:
    state = make_lab("open", "udp-blocked")
    assert not stun_answers(state, "consumer", "203.0.113.10")
    assert tcp_connects(state, "consumer", "203.0.113.10", 3478)
    assert tcp_connects(state, "consumer", "203.0.113.10", 443)
    assert stun_answers(state, "agent", "203.0.113.10")


def test_tls_only_allows_nothing_but_tcp_443_to_the_turn_host(make_lab: MakeLab) -> None:
    state = make_lab("open", "tls-only")
    assert not stun_answers(state, "consumer", "203.0.113.10")
    assert not tcp_connects(state, "consumer", "203.0.113.10", 3478)
    assert tcp_connects(state, "consumer", "203.0.113.10", 443)


def test_exec_runs_in_the_hosts_namespace_and_returns_its_exit_code(
    make_lab: MakeLab, lab_root: Path
) -> None:
    make_lab("open", "open")
    assert lab_exec("consumer", ["sh", "-c", "exit 3"], prefix=TEST_PREFIX, root=lab_root) == 3
    with pytest.raises(UsageError, match="unknown lab host 'mars'"):
        lab_exec("mars", ["true"], prefix=TEST_PREFIX, root=lab_root)


def test_exec_refuses_when_the_lab_is_down(netns_available: None, lab_root: Path) -> None:
    with pytest.raises(UsageError, match="not up"):
        lab_exec("agent", ["true"], prefix="copz-", root=lab_root)


def test_the_lab_refuses_clearly_without_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    with pytest.raises(EnvironmentProblem, match="needs root"):
        netns.require_lab_environment()
