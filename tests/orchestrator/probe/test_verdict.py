"""The one-site and two-site verdicts as pure functions of probe facts: no sockets."""

from __future__ import annotations

import pytest

from callops.orchestrator.probe.paths import PathResult
from callops.orchestrator.probe.verdict import (
    EXIT_BLOCKED,
    EXIT_DEGRADED,
    EXIT_OK,
    PeerPath,
    ProbeFacts,
    RelayTransport,
    decide,
    decide_two_site,
    two_site_path,
)
from callops.turn.nat_behaviour import Behaviour

STUN = "stun:203.0.113.10:3478"
T_UDP = "turn:203.0.113.10:3478?transport=udp"
T_TCP = "turn:203.0.113.10:3478?transport=tcp"
T_TLS = "turns:203.0.113.10:443?transport=tcp"
ALL_RELAYS: tuple[tuple[RelayTransport, str], ...] = (("tls", T_TLS), ("udp", T_UDP), ("tcp", T_TCP))
EI = Behaviour.ENDPOINT_INDEPENDENT
AD = Behaviour.ADDRESS_DEPENDENT
APD = Behaviour.ADDRESS_AND_PORT_DEPENDENT
INCONCLUSIVE = Behaviour.INCONCLUSIVE
P2P = PeerPath(path="p2p")
RELAY_UDP = PeerPath(path="relay", transport="udp")


def test_no_nat_and_udp_is_p2p_likely() -> None:
    d = decide(ProbeFacts(stun_answered=(STUN,), nat=False, mapping=EI, filtering=EI))
    assert (d.verdict, d.exit_code, d.site_class) == ("p2p-likely", EXIT_OK, "open")
    assert "no NAT" in d.reason


def test_endpoint_independent_mapping_is_p2p_likely_whatever_the_filtering() -> None:
    facts = ProbeFacts(stun_answered=(STUN,), nat=True, mapping=EI, filtering=APD)
    assert decide(facts).verdict == "p2p-likely"


def test_port_restricted_cone_needs_the_relay_for_symmetric_peers_and_says_so() -> None:
    d = decide(
        ProbeFacts(stun_answered=(STUN,), nat=True, mapping=EI, filtering=APD, relays_working=ALL_RELAYS)
    )
    assert d.verdict == "p2p-likely" and d.site_class == "port-restricted"
    assert d.peers == {
        "open": P2P,
        "address-restricted": P2P,
        "port-restricted": P2P,
        "symmetric": RELAY_UDP,
        "relay-only": RELAY_UDP,
    }
    assert (
        "p2p with open, address-restricted cone and port-restricted cone peers; "
        "symmetric-NAT and relay-only peers need the relay: keep TURN"
    ) in d.reason


def test_address_restricted_cone_reaches_symmetric_peers_directly() -> None:
    d = decide(
        ProbeFacts(stun_answered=(STUN,), nat=True, mapping=EI, filtering=AD, relays_working=ALL_RELAYS)
    )
    assert d.site_class == "address-restricted"
    assert d.peers["symmetric"] == P2P
    assert d.peers["relay-only"] == RELAY_UDP


def test_symmetric_nat_reaches_only_open_and_address_restricted_peers() -> None:
    d = decide(
        ProbeFacts(stun_answered=(STUN,), nat=True, mapping=APD, filtering=APD, relays_working=ALL_RELAYS)
    )
    assert d.verdict == "relay-required" and d.site_class == "symmetric"
    assert {c: p.path for c, p in d.peers.items()} == {
        "open": "p2p",
        "address-restricted": "p2p",
        "port-restricted": "relay",
        "symmetric": "relay",
        "relay-only": "relay",
    }


def test_unproven_filtering_makes_only_the_peers_that_depend_on_it_inconclusive() -> None:
    d = decide(ProbeFacts(stun_answered=(STUN,), nat=True, mapping=EI, filtering=INCONCLUSIVE))
    assert d.site_class == "inconclusive"
    assert d.peers["open"] == P2P and d.peers["port-restricted"] == P2P
    assert d.peers["symmetric"] == PeerPath(path="inconclusive")
    assert "with symmetric-NAT peers it depends" in d.reason


def test_without_udp_every_peer_goes_through_this_sites_best_relay() -> None:
    d = decide(ProbeFacts(relays_working=(("tls", T_TLS), ("tcp", T_TCP))))
    assert d.site_class == "relay-only"
    assert set(d.peers.values()) == {PeerPath(path="relay", transport="tcp")}
    assert "every peer needs the relay" in d.reason


def test_peers_needing_a_relay_are_blocked_without_one() -> None:
    d = decide(ProbeFacts(stun_answered=(STUN,), nat=True, mapping=EI, filtering=APD))
    assert d.peers["symmetric"] == PeerPath(path="blocked") and d.peers["open"] == P2P


@pytest.mark.parametrize("mapping", [AD, APD, INCONCLUSIVE])
def test_dependent_or_unproven_mapping_with_a_udp_relay_is_relay_required_exit_0(mapping: Behaviour) -> None:
    d = decide(ProbeFacts(stun_answered=(STUN,), nat=True, mapping=mapping, relays_working=ALL_RELAYS))
    assert d.verdict == "relay-required"
    assert d.relay_transports == ["udp", "tcp", "tls"]
    assert d.exit_code == EXIT_OK
    assert mapping.value in d.reason


def test_udp_filtered_with_tcp_and_tls_relays_is_degraded_exit_1() -> None:
    d = decide(ProbeFacts(relays_working=(("tls", T_TLS), ("tcp", T_TCP))))
    assert (d.verdict, d.relay_transports, d.exit_code) == ("relay-required", ["tcp", "tls"], EXIT_DEGRADED)
    assert "UDP to the STUN servers is filtered" in d.reason


def test_only_tls_relay_is_relay_required_over_tls() -> None:
    d = decide(ProbeFacts(relays_working=(("tls", T_TLS),)))
    assert (d.verdict, d.relay_transports, d.exit_code) == ("relay-required", ["tls"], EXIT_DEGRADED)


def test_nothing_working_is_blocked_exit_3() -> None:
    d = decide(ProbeFacts())
    assert (d.verdict, d.relay_transports, d.exit_code) == ("blocked", [], EXIT_BLOCKED)
    assert set(d.peers.values()) == {PeerPath(path="blocked")}


def test_udp_answering_behind_a_symmetric_nat_without_relay_is_blocked() -> None:
    d = decide(ProbeFacts(stun_answered=(STUN,), nat=True, mapping=APD))
    assert d.verdict == "blocked"


def test_ice_servers_put_answered_stun_first_then_turn_udp_tcp_tls() -> None:
    d = decide(ProbeFacts(stun_answered=(STUN,), nat=False, relays_working=ALL_RELAYS))
    assert d.ice_server_uris == [STUN, T_UDP, T_TCP, T_TLS]
    assert d.turn_uris == [T_UDP, T_TCP, T_TLS]


def test_ice_servers_leave_out_stun_where_udp_is_blocked() -> None:
    d = decide(ProbeFacts(relays_working=(("tls", T_TLS), ("tcp", T_TCP))))
    assert d.ice_server_uris == [T_TCP, T_TLS]


def path(name: str, connected: bool) -> PathResult:
    return PathResult(path=name, connected=connected, duration_ms=1.0)  # type: ignore[arg-type]


def test_two_site_p2p_when_host_or_srflx_connected() -> None:
    d = decide_two_site([path("host", False), path("srflx", True), path("relay-udp", True)])
    assert (d.verdict, d.relay_transports, d.exit_code, d.path) == ("p2p", ["udp"], EXIT_OK, P2P)


def test_two_site_relay_over_tcp_only_is_degraded() -> None:
    d = decide_two_site([path("srflx", False), path("relay-udp", False), path("relay-tcp", True)])
    assert (d.verdict, d.exit_code, d.path) == (
        "relay-required",
        EXIT_DEGRADED,
        PeerPath(path="relay", transport="tcp"),
    )


def test_two_site_nothing_connected_is_blocked() -> None:
    d = decide_two_site([path("host", False)])
    assert (d.verdict, d.exit_code) == ("blocked", EXIT_BLOCKED)
    assert two_site_path("blocked", []) == PeerPath(path="blocked")
