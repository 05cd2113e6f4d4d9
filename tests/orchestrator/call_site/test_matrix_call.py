"""The NAT matrix through the invitation path: ``callops call-site`` on each side of a real NAT lab.

Per topology pair: a lab of its own (network namespaces, real NATs, coturn on 203.0.113.10/.11);
``callops emulator serve`` on the agent's host at the signalling port (the routers forward it);
``callops call-site --role consumer`` in the consumer's network, ``--role agent`` in the agent's,
``--policy all``. The consumer gets the ICE servers a web page on its network would use (those
its one-site probe recommends: STUN + TURN/UDP where UDP works, TURN/TCP behind a UDP-blocking
firewall, TURN/TLS on 443 behind a TLS-only one); the agent gets STUN + TURN/UDP. Asserted: the
call connects, media is decoded both ways, the consumer's selected pair is the expected one.
"""

from __future__ import annotations

import json
import logging
import select
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

import pytest

from callops.orchestrator.lab.lifecycle import LabState
from callops.orchestrator.lab.netns import exec_argv
from callops.orchestrator.lab.topology import SIGNALLING_PORT, Topology

pytestmark = [pytest.mark.netns, pytest.mark.coturn, pytest.mark.slow]

log = logging.getLogger(__name__)

#: lab prefix, read by the shared ``lab`` fixture (tests/orchestrator/conftest.py)
PREFIX = "copc-"
#: the longest one process may take before the test fails instead of hanging
PROCESS_TIMEOUT = 60.0


@dataclass(frozen=True)
class Row:
    agent: Topology
    consumer: Topology
    #: which of the lab's TURN URIs the consumer's page uses: "udp", "tcp" or "tls"
    consumer_turn: str
    #: what the consumer's call must have selected: "host", "no-relay", "any", "relay-udp", ...
    call_via: str


MATRIX = [
    Row("open", "open", "udp", "host"),
    Row("cone", "cone", "udp", "no-relay"),
    Row("cone", "symmetric", "udp", "any"),
    Row("symmetric", "symmetric", "udp", "relay-udp"),
    Row("open", "udp-blocked", "tcp", "relay-tcp"),
    Row("open", "tls-only", "tls", "relay-tls"),
]


def callops(state: LabState, host: str, *args: str) -> list[str]:
    return exec_argv(state.namespace(host), [sys.executable, "-m", "callops", *args])


def ice_options(state: LabState, turn: str) -> list[str]:
    """The ICE server options of a page that uses the lab's TURN over ``turn`` (udp/tcp/tls)."""
    uri = {"udp": state.turn_uris[0], "tcp": state.turn_uris[1], "tls": state.turn_uris[2]}[turn]
    stun = ["--stun", state.stun_uris[0]] if turn == "udp" else []
    return [*stun, "--turn", uri, "--secret-file", state.secret_file, "--ca-file", state.ca_file]


def wait_line(proc: subprocess.Popen[str], stream: Any, want: str, within: float) -> str:
    """The first line of ``stream`` containing ``want``, bounded by ``within`` seconds."""
    deadline = time.monotonic() + within
    seen: list[str] = []
    while True:
        left = deadline - time.monotonic()
        assert left > 0, f"no {want!r} within {within:g} s: {seen}"
        ready, _, _ = select.select([stream], [], [], left)
        if not ready:
            continue
        line = stream.readline()
        assert line, f"process exited ({proc.poll()}) before {want!r}: {seen}"
        if want in line:
            return str(line)
        seen.append(line)


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def call(state: LabState, row: Row) -> tuple[dict[str, Any], dict[str, Any]]:
    """Emulator + both sides; (consumer report, agent report)."""
    procs: list[subprocess.Popen[str]] = []

    def start(host: str, *args: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            callops(state, host, *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        procs.append(proc)
        return proc

    common = ["--policy", "all", "--duration", "1", "--timeout", str(PROCESS_TIMEOUT), "--json"]
    try:
        emulator = start("agent", "emulator", "serve", "--host", "0.0.0.0", "--port", str(SIGNALLING_PORT))
        wait_line(emulator, emulator.stdout, "emulator on", PROCESS_TIMEOUT)
        consumer = start(
            "consumer",
            "call-site",
            "--role",
            "consumer",
            "--emulator",
            state.signalling_url("agent").replace("ws://", "http://"),
            *ice_options(state, row.consumer_turn),
            *common,
        )
        line = wait_line(consumer, consumer.stderr, '"event": "ready"', PROCESS_TIMEOUT)
        conversation = json.loads(line)["conversation_id"]
        agent = start(
            "agent",
            "call-site",
            "--role",
            "agent",
            "--emulator",
            f"http://127.0.0.1:{SIGNALLING_PORT}",
            "--conversation",
            conversation,
            *ice_options(state, "udp"),
            *common,
        )
        a_out, a_err = agent.communicate(timeout=PROCESS_TIMEOUT)
        c_out, c_err = consumer.communicate(timeout=PROCESS_TIMEOUT)
        assert c_out, c_err
        assert a_out, a_err
        return json.loads(c_out), json.loads(a_out)
    finally:
        for proc in reversed(procs):
            stop(proc)


def decoded(report: dict[str, Any], direction: str) -> int:
    return sum(m["frames_decoded"] for m in report["stats"]["media"] if m["direction"] == direction)


def check_pair(row: Row, consumer: dict[str, Any]) -> None:
    pair = consumer["selected_pair"]
    local, remote = pair["local"]["type"], pair["remote"]["type"]
    if row.call_via == "host":
        assert (local, remote) == ("host", "host"), pair
    elif row.call_via == "no-relay":
        assert "relay" not in (local, remote), pair
    elif row.call_via == "relay-udp":
        # Either side's relay will do: both reach their TURN server over UDP.
        assert "relay" in (local, remote), pair
        assert local != "relay" or pair["local"]["relay_protocol"] == "udp", pair
    elif row.call_via.startswith("relay-"):
        # The consumer has no UDP: its own relay, over the one transport that works.
        assert local == "relay", pair
        assert pair["local"]["relay_protocol"] == row.call_via.removeprefix("relay-"), pair


@pytest.mark.parametrize("lab", MATRIX, ids=[f"{r.agent}-{r.consumer}" for r in MATRIX], indirect=True)
def test_matrix_call_through_the_invitation_path(lab: LabState) -> None:
    row = next(r for r in MATRIX if (r.agent, r.consumer) == (lab.agent, lab.consumer))
    consumer, agent = call(lab, row)
    log.warning(
        "matrix call %s-%s: consumer pair %s, agent pair %s, consumer timeline %s",
        row.agent,
        row.consumer,
        consumer["selected_pair"],
        agent["agent_selected_pair"],
        consumer["timeline_ms"],
    )
    assert consumer["ok"] and consumer["outcome"] == "connected", consumer
    assert agent["ok"] and agent["outcome"] == "connected", agent
    assert consumer["service_id"] == agent["service_id"]
    assert decoded(consumer, "agent->consumer") > 0, consumer
    assert decoded(agent, "consumer->agent") > 0, agent
    assert "closed" in consumer["timeline_ms"], consumer
    check_pair(row, consumer)
