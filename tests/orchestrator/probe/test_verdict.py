"""The one-site verdict as a pure function of probe facts: no sockets."""

from __future__ import annotations

import pytest

from callops.orchestrator.probe.verdict import (
    EXIT_BLOCKED,
    EXIT_DEGRADED,
    EXIT_OK,
    ProbeFacts,
    RelayTransport,
    decide,
)

STUN = "stun:203.0.113.10:3478"
T_UDP = "turn:203.0.113.10:3478?transport=udp"
T_TCP = "turn:203.0.113.10:3478?transport=tcp"
T_TLS = "turns:203.0.113.10:443?transport=tcp"
ALL_RELAYS: tuple[tuple[RelayTransport, str], ...] = (("tls", T_TLS), ("udp", T_UDP), ("tcp", T_TCP))


def test_no_nat_and_udp_is_p2p_likely() -> None:
    d = decide(ProbeFacts(stun_answered=(STUN,), nat=False, mapping="endpoint-independent"))
    assert (d.verdict, d.exit_code) == ("p2p-likely", EXIT_OK)
    assert "no NAT" in d.reason


def test_endpoint_independent_mapping_is_p2p_likely_whatever_the_filtering() -> None:
    facts = ProbeFacts(
        stun_answered=(STUN,),
        nat=True,
        mapping="endpoint-independent",
        filtering="address-and-port-dependent",
    )
    assert decide(facts).verdict == "p2p-likely"


@pytest.mark.parametrize("mapping", ["address-dependent", "address-and-port-dependent", "inconclusive"])
def test_dependent_or_unproven_mapping_with_a_udp_relay_is_relay_required_exit_0(mapping: str) -> None:
    d = decide(ProbeFacts(stun_answered=(STUN,), nat=True, mapping=mapping, relays_working=ALL_RELAYS))
    assert d.verdict == "relay-required"
    assert d.relay_transports == ["udp", "tcp", "tls"]
    assert d.exit_code == EXIT_OK
    assert mapping in d.reason


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


def test_udp_answering_behind_a_symmetric_nat_without_relay_is_blocked() -> None:
    d = decide(ProbeFacts(stun_answered=(STUN,), nat=True, mapping="address-and-port-dependent"))
    assert d.verdict == "blocked"


def test_ice_servers_put_answered_stun_first_then_turn_udp_tcp_tls() -> None:
    d = decide(ProbeFacts(stun_answered=(STUN,), nat=False, relays_working=ALL_RELAYS))
    assert d.ice_server_uris == [STUN, T_UDP, T_TCP, T_TLS]


def test_ice_servers_leave_out_stun_where_udp_is_blocked() -> None:
    d = decide(ProbeFacts(relays_working=(("tls", T_TLS), ("tcp", T_TCP))))
    assert d.ice_server_uris == [T_TCP, T_TLS]
