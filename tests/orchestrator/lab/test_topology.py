"""The lab plan as data: names, addresses and firewall rules per topology, without root."""

from __future__ import annotations

import ipaddress

import pytest

from callops.errors import UsageError
from callops.orchestrator.lab.topology import (
    MAX_NAME,
    SIGNALLING_PORT,
    TOPOLOGIES,
    TURN_ADDRESSES,
    check_prefix,
    plan_lab,
    router_rules,
    site_addressing,
)


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_every_namespace_carries_the_prefix_and_fits_the_name_limit(topology: str) -> None:
    plan = plan_lab(topology, topology, "cops-")  # type: ignore[arg-type]
    assert len(plan.namespaces) == 6
    for ns in plan.namespaces.values():
        assert ns.startswith("cops-")
        assert len(ns) <= MAX_NAME
    for veth in plan.veths:
        assert len(veth.a_name) <= MAX_NAME and len(veth.b_name) <= MAX_NAME


def test_every_command_names_a_lab_namespace_so_nothing_lands_on_the_host() -> None:
    plan = plan_lab("cone", "symmetric", "cops-")
    names = set(plan.namespaces.values())
    for argv in plan.commands():
        assert argv[0] == "ip"
        assert names & set(argv), argv


def test_only_documentation_ranges_and_lab_private_subnets_are_used() -> None:
    plan = plan_lab("open", "symmetric", "cops-")
    allowed = [ipaddress.ip_network(n) for n in ("203.0.113.0/24", "198.51.100.0/24", "10.201.0.0/16")]
    for address in plan.addresses:
        ip = ipaddress.ip_interface(address.cidr).ip
        assert any(ip in net for net in allowed), address


def test_an_open_site_has_a_public_address_and_a_nat_site_a_private_one() -> None:
    assert site_addressing("agent", "open").host == "198.51.100.2"
    assert site_addressing("consumer", "open").host == "198.51.100.130"
    assert site_addressing("consumer", "cone").host == "10.201.2.2"
    assert site_addressing("consumer", "cone").router_wan == "203.0.113.30"


def test_open_router_forwards_without_nat() -> None:
    rules = router_rules("open", "198.51.100.0/25", "198.51.100.2")
    assert "MASQUERADE" not in rules
    assert "DROP" not in rules


def test_cone_router_masquerades_without_random_ports_and_drops_unsolicited_inbound_udp() -> None:
    rules = router_rules("cone", "10.201.1.0/24", "10.201.1.2")
    assert "-A POSTROUTING -s 10.201.1.0/24 -o wan -j MASQUERADE\n" in rules
    assert "--random-fully" not in rules
    assert "-A INPUT -i wan -p udp -m conntrack --ctstate NEW,INVALID -j DROP" in rules


def test_symmetric_router_randomises_every_mapping() -> None:
    assert "MASQUERADE --random-fully" in router_rules("symmetric", "10.201.1.0/24", "10.201.1.2")


def test_udp_blocked_router_drops_outbound_udp_only() -> None:
    rules = router_rules("udp-blocked", "10.201.2.0/24", "10.201.2.2")
    assert "-A FORWARD -i lan -o wan -p udp -j DROP" in rules
    assert "-p tcp -j" not in rules


def test_tls_only_router_allows_tcp_443_to_the_turn_host_and_signalling_only() -> None:
    rules = router_rules("tls-only", "10.201.2.0/24", "10.201.2.2").splitlines()
    accepts = [r for r in rules if r.startswith("-A FORWARD -i lan") and r.endswith("ACCEPT")]
    assert "-A FORWARD -i lan -o wan -p udp" not in "\n".join(rules)
    assert accepts == [
        *(f"-A FORWARD -i lan -o wan -p tcp -d {a} --dport 443 -j ACCEPT" for a in TURN_ADDRESSES),
        f"-A FORWARD -i lan -o wan -p tcp --dport {SIGNALLING_PORT} -j ACCEPT",
    ]
    assert "-A FORWARD -i lan -o wan -j DROP" in rules


def test_each_site_takes_its_own_topology() -> None:
    plan = plan_lab("cone", "tls-only", "cops-")
    assert "--dport 443" not in plan.iptables["cops-agent-r"]
    assert "--dport 443" in plan.iptables["cops-cons-r"]


@pytest.mark.parametrize("prefix", ["", "toolong-", "co ps", "a/b"])
def test_a_bad_prefix_is_refused(prefix: str) -> None:
    with pytest.raises(UsageError, match="prefix"):
        check_prefix(prefix)


def test_an_unknown_topology_is_refused_with_the_choices() -> None:
    with pytest.raises(UsageError, match="choose one of open, cone"):
        plan_lab("full-cone", "open", "cops-")  # type: ignore[arg-type]


def test_nat_routers_forward_the_signalling_port_to_the_site_host() -> None:
    rules = router_rules("symmetric", "10.201.1.0/24", "10.201.1.2")
    assert f"--dport {SIGNALLING_PORT} -j DNAT --to-destination 10.201.1.2:{SIGNALLING_PORT}" in rules
