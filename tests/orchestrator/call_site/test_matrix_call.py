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

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from callops.orchestrator.lab.lifecycle import LabState
from callops.orchestrator.lab.topology import Topology

if TYPE_CHECKING:
    from tests.orchestrator.conftest import LabKit

pytestmark = [pytest.mark.netns, pytest.mark.coturn, pytest.mark.slow]

log = logging.getLogger(__name__)

#: lab prefix, read by the shared ``lab`` fixture (tests/orchestrator/conftest.py)
PREFIX = "copc-"


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


def ice_options(state: LabState, turn: str) -> list[str]:
    """The ICE server options of a page that uses the lab's TURN over ``turn`` (udp/tcp/tls)."""
    uri = {"udp": state.turn_uris[0], "tcp": state.turn_uris[1], "tls": state.turn_uris[2]}[turn]
    stun = ["--stun", state.stun_uris[0]] if turn == "udp" else []
    return [*stun, "--turn", uri, "--secret-file", state.secret_file, "--ca-file", state.ca_file]


def decoded(report: dict[str, Any], direction: str) -> int:
    return sum(m["frames_decoded"] for m in report["stats"]["media"] if m["direction"] == direction)


@pytest.mark.parametrize("lab", MATRIX, ids=[f"{r.agent}-{r.consumer}" for r in MATRIX], indirect=True)
def test_matrix_call_through_the_invitation_path(lab: LabState, lab_kit: LabKit) -> None:
    row = next(r for r in MATRIX if (r.agent, r.consumer) == (lab.agent, lab.consumer))
    # Emulator + both sides; the consumer with its page's ICE servers, the agent with STUN + TURN/UDP.
    consumer, agent = lab_kit.site_call(lab, ice_options(lab, row.consumer_turn), ice_options(lab, "udp"))
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
    pair = consumer["selected_pair"]
    local, remote = pair["local"], pair["remote"]
    lab_kit.check_selected_pair(
        row.call_via, local["type"], remote["type"], local.get("relay_protocol"), pair
    )
