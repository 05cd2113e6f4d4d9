"""The NAT lab as data: namespaces, veth pairs, addresses, routes and firewall rules.

Pure: :func:`plan_lab` turns ``(agent topology, consumer topology, prefix)`` into a
:class:`LabPlan`, and :meth:`LabPlan.commands` into the ordered ``ip``/``iptables-restore``
invocations that build it. Nothing here touches the system; :mod:`callops.orchestrator.lab.netns`
runs the commands.

Layout (every namespace name starts with the prefix, default ``cops-``)::

    cops-agent ──lan── cops-agent-r ──wan─┐
                                          ├── cops-inet (bridge "br0", 203.0.113.0/24)
    cops-cons  ──lan── cops-cons-r  ──wan─┤
                                          └── cops-turn (203.0.113.10 + .11, coturn)

A site in topology ``open`` has a public address (198.51.100.0/25 for the agent,
198.51.100.128/25 for the consumer) routed through its router without NAT; every other topology
gives the site a private subnet (10.201.1.0/24, 10.201.2.0/24) behind a NAT on the router's
public address (203.0.113.20, 203.0.113.30).

NAT routers drop unsolicited inbound UDP in their INPUT chain, as real routers do: with plain
MASQUERADE the first unsolicited inbound packet would otherwise create a conntrack entry for the
router itself that steals the mapped port the other side's hole punch needs.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Literal, get_args

from callops.errors import UsageError

Topology = Literal["open", "cone", "symmetric", "udp-blocked", "tls-only"]
SiteName = Literal["agent", "consumer"]

TOPOLOGIES: tuple[str, ...] = get_args(Topology)
DEFAULT_PREFIX = "cops-"
#: Linux limits interface and (by our convention) namespace names to 15 characters.
MAX_NAME = 15

TURN_ADDRESSES = ("203.0.113.10", "203.0.113.11")
INTERNET_SUBNET = "203.0.113.0/24"
#: Every "public" address of the lab: the internet segment and the public site subnets.
PUBLIC_SUBNETS = (INTERNET_SUBNET, "198.51.100.0/24")
TURN_UDP_TCP_PORT = 3478
TURN_TLS_PORT = 443
#: In ``tls-only`` a site may still reach the other site's signalling on this TCP port: it stands for
#: the web site's own HTTPS/WSS signalling path, which carries no media.
SIGNALLING_PORT = 8443

DESCRIPTIONS: dict[str, str] = {
    "open": "public address, no NAT, no filtering",
    "cone": "endpoint-independent mapping, port-restricted filtering (MASQUERADE)",
    "symmetric": "address-and-port-dependent mapping (MASQUERADE --random-fully)",
    "udp-blocked": "NAT; outbound UDP dropped, TCP allowed (TURN 3478 and 443 reachable)",
    "tls-only": "NAT; only TCP 443 to the TURN host (and the signalling port) allowed",
}


@dataclass(frozen=True)
class SiteAddressing:
    """The addresses of one site for a given topology."""

    router_wan: str
    lan_subnet: str
    router_lan: str
    host: str


_PUBLIC_LAN = {"agent": "198.51.100.0/25", "consumer": "198.51.100.128/25"}
_PRIVATE_LAN = {"agent": "10.201.1.0/24", "consumer": "10.201.2.0/24"}
_ROUTER_WAN = {"agent": "203.0.113.20", "consumer": "203.0.113.30"}
_SHORT = {"agent": "agent", "consumer": "cons"}


def site_addressing(site: SiteName, topology: Topology) -> SiteAddressing:
    subnet = ipaddress.ip_network(_PUBLIC_LAN[site] if topology == "open" else _PRIVATE_LAN[site])
    hosts = list(subnet.hosts())
    return SiteAddressing(
        router_wan=_ROUTER_WAN[site], lan_subnet=str(subnet), router_lan=str(hosts[0]), host=str(hosts[1])
    )


@dataclass(frozen=True)
class Veth:
    """One veth pair: ``(namespace, interface)`` at each end."""

    a_ns: str
    a_name: str
    b_ns: str
    b_name: str


@dataclass(frozen=True)
class Address:
    ns: str
    dev: str
    cidr: str


@dataclass(frozen=True)
class Route:
    ns: str
    destination: str  # "default" or a CIDR
    via: str


@dataclass(frozen=True)
class LabPlan:
    """Everything the lab creates, as data."""

    prefix: str
    agent: Topology
    consumer: Topology
    namespaces: dict[str, str]  # role -> namespace name
    veths: list[Veth]
    addresses: list[Address]
    routes: list[Route]
    forwarding: list[str]  # namespaces with net.ipv4.ip_forward=1
    bridge_ns: str
    bridge_ports: list[str]
    iptables: dict[str, str] = field(default_factory=dict)  # namespace -> iptables-restore text

    def site(self, site: SiteName) -> SiteAddressing:
        return site_addressing(site, self.agent if site == "agent" else self.consumer)

    def commands(self) -> list[list[str]]:
        """The ordered commands that build the lab (``iptables-restore`` input separately)."""
        cmds: list[list[str]] = [["ip", "netns", "add", ns] for ns in self.namespaces.values()]
        cmds += [["ip", "-n", ns, "link", "set", "lo", "up"] for ns in self.namespaces.values()]
        cmds.append(["ip", "-n", self.bridge_ns, "link", "add", "br0", "type", "bridge"])
        for v in self.veths:
            cmds.append(
                [
                    "ip",
                    "link",
                    "add",
                    v.a_name,
                    "netns",
                    v.a_ns,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    v.b_name,
                    "netns",
                    v.b_ns,
                ]
            )
        for port in self.bridge_ports:
            cmds.append(["ip", "-n", self.bridge_ns, "link", "set", port, "master", "br0"])
        for a in self.addresses:
            cmds.append(["ip", "-n", a.ns, "addr", "add", a.cidr, "dev", a.dev])
        for v in self.veths:
            cmds.append(["ip", "-n", v.a_ns, "link", "set", v.a_name, "up"])
            cmds.append(["ip", "-n", v.b_ns, "link", "set", v.b_name, "up"])
        cmds.append(["ip", "-n", self.bridge_ns, "link", "set", "br0", "up"])
        for ns in self.forwarding:
            cmds.append(["ip", "netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"])
        for r in self.routes:
            cmds.append(["ip", "-n", r.ns, "route", "add", r.destination, "via", r.via])
        return cmds


def ns_name(prefix: str, role: str) -> str:
    name = f"{prefix}{role}"
    if len(name) > MAX_NAME:
        raise UsageError(
            f"lab namespace name {name!r} is longer than {MAX_NAME} characters",
            hint="use a shorter --prefix (at most 7 characters)",
        )
    return name


def check_prefix(prefix: str) -> str:
    if not prefix or len(prefix) > 7 or not all(c.isalnum() or c == "-" for c in prefix):
        raise UsageError(
            f"lab prefix {prefix!r} is invalid", hint="use 1-7 letters, digits or '-', e.g. 'cops-'"
        )
    return prefix


def check_topology(value: str, *, site: str) -> Topology:
    if value not in TOPOLOGIES:
        raise UsageError(
            f"unknown topology {value!r} for the {site}", hint=f"choose one of {', '.join(TOPOLOGIES)}"
        )
    return value  # type: ignore[return-value]


def router_rules(topology: Topology, lan_subnet: str, host: str) -> str:
    """``iptables-restore`` input for a site's router (interfaces ``wan`` and ``lan``).

    NAT routers forward TCP :data:`SIGNALLING_PORT` on their public address to the site host, so
    that ``callops probe serve`` there is reachable (it stands for the signalling server every real
    call has); media and ICE are unaffected.
    """
    nat = ["*nat", ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]"]
    nat.append(":POSTROUTING ACCEPT [0:0]")
    filt = ["*filter", ":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]"]
    if topology != "open":
        masquerade = f"-A POSTROUTING -s {lan_subnet} -o wan -j MASQUERADE"
        if topology == "symmetric":
            masquerade += " --random-fully"
        nat.append(masquerade)
        forward = f"--to-destination {host}:{SIGNALLING_PORT}"
        nat.append(f"-A PREROUTING -i wan -p tcp --dport {SIGNALLING_PORT} -j DNAT {forward}")
        # Unsolicited inbound UDP to the router is dropped before conntrack confirms an entry for it.
        filt.append("-A INPUT -i wan -p udp -m conntrack --ctstate NEW,INVALID -j DROP")
        filt.append("-A FORWARD -i wan -o lan -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT")
        filt.append(f"-A FORWARD -i wan -o lan -p tcp -d {host} --dport {SIGNALLING_PORT} -j ACCEPT")
        filt.append("-A FORWARD -i wan -o lan -j DROP")
    if topology == "udp-blocked":
        filt.append("-A FORWARD -i lan -o wan -p udp -j DROP")
    elif topology == "tls-only":
        for address in TURN_ADDRESSES:
            filt.append(f"-A FORWARD -i lan -o wan -p tcp -d {address} --dport {TURN_TLS_PORT} -j ACCEPT")
        filt.append(f"-A FORWARD -i lan -o wan -p tcp --dport {SIGNALLING_PORT} -j ACCEPT")
        filt.append("-A FORWARD -i lan -o wan -j DROP")
    return "\n".join([*nat, "COMMIT", *filt, "COMMIT", ""])


def plan_lab(agent: Topology, consumer: Topology, prefix: str = DEFAULT_PREFIX) -> LabPlan:
    """The lab for one topology pair."""
    check_prefix(prefix)
    agent = check_topology(agent, site="agent")
    consumer = check_topology(consumer, site="consumer")
    roles = {
        "inet": "inet",
        "turn": "turn",
        "agent": "agent",
        "agent-router": "agent-r",
        "consumer": "cons",
        "consumer-router": "cons-r",
    }
    namespaces = {role: ns_name(prefix, short) for role, short in roles.items()}
    inet = namespaces["inet"]
    veths = [Veth(namespaces["turn"], "eth0", inet, "turn")]
    addresses = [Address(namespaces["turn"], "eth0", f"{a}/24") for a in TURN_ADDRESSES]
    routes: list[Route] = []
    iptables: dict[str, str] = {}
    forwarding: list[str] = []
    bridge_ports = ["turn"]
    sites: dict[SiteName, Topology] = {"agent": agent, "consumer": consumer}
    for site, topology in sites.items():
        addr = site_addressing(site, topology)
        router, host = namespaces[f"{site}-router"], namespaces[site]
        port = _SHORT[site]
        veths.append(Veth(router, "wan", inet, port))
        veths.append(Veth(host, "eth0", router, "lan"))
        bridge_ports.append(port)
        prefixlen = ipaddress.ip_network(addr.lan_subnet).prefixlen
        addresses.append(Address(router, "wan", f"{addr.router_wan}/24"))
        addresses.append(Address(router, "lan", f"{addr.router_lan}/{prefixlen}"))
        addresses.append(Address(host, "eth0", f"{addr.host}/{prefixlen}"))
        routes.append(Route(host, "default", addr.router_lan))
        forwarding.append(router)
        iptables[router] = router_rules(topology, addr.lan_subnet, addr.host)
    # The "internet" knows how to reach the public site subnets (used only by ``open`` sites).
    for site in sites:
        lan, wan = _PUBLIC_LAN[site], _ROUTER_WAN[site]
        routes.append(Route(namespaces["turn"], lan, wan))
        other = "consumer" if site == "agent" else "agent"
        routes.append(Route(namespaces[f"{other}-router"], lan, wan))
    return LabPlan(
        prefix=prefix,
        agent=agent,
        consumer=consumer,
        namespaces=namespaces,
        veths=veths,
        addresses=addresses,
        routes=routes,
        forwarding=forwarding,
        bridge_ns=inet,
        bridge_ports=bridge_ports,
        iptables=iptables,
    )


__all__ = [
    "DEFAULT_PREFIX",
    "DESCRIPTIONS",
    "INTERNET_SUBNET",
    "MAX_NAME",
    "PUBLIC_SUBNETS",
    "SIGNALLING_PORT",
    "TOPOLOGIES",
    "TURN_ADDRESSES",
    "TURN_TLS_PORT",
    "TURN_UDP_TCP_PORT",
    "Address",
    "LabPlan",
    "Route",
    "SiteAddressing",
    "SiteName",
    "Topology",
    "Veth",
    "check_prefix",
    "check_topology",
    "ns_name",
    "plan_lab",
    "router_rules",
    "site_addressing",
]
