"""IANA special-purpose address ranges, as data.

The IPv4 and IPv6 Special-Purpose Address Registries (RFC 6890, kept by IANA as
``iana-ipv4-special-registry`` and ``iana-ipv6-special-registry``), plus the multicast and
reserved blocks, with the RFC that defines each. A TURN relay must not relay to most of them:
they reach the relay's own host (loopback), its LAN (RFC 1918, ULA), the cloud metadata service
(169.254.169.254, link-local) or the carrier's NAT (RFC 6598) -- an open door behind the firewall
for anyone holding TURN credentials. ``deny_by_default`` marks the ranges the rendered
``turnserver.conf`` denies and the lint requires denied; the few entries IANA lists as globally
reachable (AS112, AMT, NAT64 well-known prefix) are kept for reference but not denied.

Used by the coturn configuration renderer, by ``callops turn lint`` and by the relay audit.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: what a range is, for the severity of a lint finding: reaching ``internal`` ranges from a relay
#: is an exploit (host, LAN, metadata); the others are merely never legitimate peers.
Kind = Literal["loopback", "private", "link-local", "shared", "multicast", "internal", "reserved"]


@dataclass(frozen=True)
class SpecialRange:
    """One entry of the special-purpose registries."""

    #: the block, e.g. ``10.0.0.0/8``
    network: IPNetwork
    #: the registry's name for it
    name: str
    #: the RFC(s) that define it
    rfc: str
    kind: Kind
    #: the registry's "Globally Reachable" column
    globally_reachable: bool = False
    #: denied by the rendered config, required denied by the lint
    deny_by_default: bool = True

    @property
    def first(self) -> IPAddress:
        return self.network.network_address

    @property
    def last(self) -> IPAddress:
        return self.network.broadcast_address

    @property
    def coturn_range(self) -> str:
        """The block in coturn's ``ip-ip`` range syntax (coturn 4.6 does not take CIDR)."""
        if self.network.num_addresses == 1:
            return str(self.first)
        return f"{self.first}-{self.last}"


def _r(
    cidr: str, name: str, rfc: str, kind: Kind, *, globally_reachable: bool = False, deny: bool = True
) -> SpecialRange:
    return SpecialRange(
        network=ipaddress.ip_network(cidr),
        name=name,
        rfc=rfc,
        kind=kind,
        globally_reachable=globally_reachable,
        deny_by_default=deny,
    )


def _reachable(cidr: str, name: str, rfc: str) -> SpecialRange:
    """A block the registry lists as globally reachable: kept for reference, never denied."""
    return _r(cidr, name, rfc, "reserved", globally_reachable=True, deny=False)


#: IPv4 Special-Purpose Address Registry (RFC 6890 section 2.2.2) + multicast (RFC 5771).
IPV4_SPECIAL: tuple[SpecialRange, ...] = (
    _r("0.0.0.0/8", '"This network"', "RFC 791 section 3.2", "reserved"),
    _r("10.0.0.0/8", "Private-Use", "RFC 1918", "private"),
    _r("100.64.0.0/10", "Shared Address Space (carrier-grade NAT)", "RFC 6598", "shared"),
    _r("127.0.0.0/8", "Loopback", "RFC 1122 section 3.2.1.3", "loopback"),
    _r("169.254.0.0/16", "Link Local (incl. 169.254.169.254 cloud metadata)", "RFC 3927", "link-local"),
    _r("172.16.0.0/12", "Private-Use", "RFC 1918", "private"),
    _r(
        "192.0.0.0/24",
        "IETF Protocol Assignments (incl. DS-Lite 192.0.0.0/29)",
        "RFC 6890, RFC 7335",
        "internal",
    ),
    _r("192.0.2.0/24", "Documentation (TEST-NET-1)", "RFC 5737", "reserved"),
    _reachable("192.31.196.0/24", "AS112-v4", "RFC 7535"),
    _reachable("192.52.193.0/24", "AMT", "RFC 7450"),
    _r("192.88.99.0/24", "Deprecated (6to4 Relay Anycast)", "RFC 7526", "reserved"),
    _r("192.168.0.0/16", "Private-Use", "RFC 1918", "private"),
    _reachable("192.175.48.0/24", "Direct Delegation AS112 Service", "RFC 7534"),
    _r("198.18.0.0/15", "Benchmarking", "RFC 2544", "reserved"),
    _r("198.51.100.0/24", "Documentation (TEST-NET-2)", "RFC 5737", "reserved"),
    _r("203.0.113.0/24", "Documentation (TEST-NET-3)", "RFC 5737", "reserved"),
    _r("224.0.0.0/4", "Multicast", "RFC 5771", "multicast"),
    _r("240.0.0.0/4", "Reserved", "RFC 1112 section 4", "reserved"),
    _r("255.255.255.255/32", "Limited Broadcast", "RFC 8190, RFC 919 section 7", "reserved"),
)

#: IPv6 Special-Purpose Address Registry (RFC 6890 section 2.2.3) + multicast and site-local.
IPV6_SPECIAL: tuple[SpecialRange, ...] = (
    _r("::/128", "Unspecified Address", "RFC 4291", "reserved"),
    _r("::1/128", "Loopback Address", "RFC 4291", "loopback"),
    _r("::ffff:0:0/96", "IPv4-mapped Address (would bypass the IPv4 rules)", "RFC 4291", "internal"),
    _reachable("64:ff9b::/96", "IPv4-IPv6 Translat. (NAT64)", "RFC 6052"),
    _r("64:ff9b:1::/48", "IPv4-IPv6 Translat. (local use)", "RFC 8215", "internal"),
    _r("100::/64", "Discard-Only Address Block", "RFC 6666", "reserved"),
    _r("2001::/32", "TEREDO (embeds IPv4 addresses)", "RFC 4380, RFC 8190", "internal"),
    _r("2001:2::/48", "Benchmarking", "RFC 5180, RFC 8190", "reserved"),
    _r("2001:10::/28", "Deprecated (previously ORCHID)", "RFC 4843", "reserved"),
    _r("2001:db8::/32", "Documentation", "RFC 3849", "reserved"),
    _r("2002::/16", "6to4 (embeds IPv4 addresses)", "RFC 3056", "internal"),
    _r("3fff::/20", "Documentation", "RFC 9637", "reserved"),
    _r("5f00::/16", "Segment Routing (SRv6) SIDs", "RFC 9602", "reserved"),
    _r("fc00::/7", "Unique-Local (ULA)", "RFC 4193, RFC 8190", "private"),
    _r("fe80::/10", "Link-Local Unicast", "RFC 4291", "link-local"),
    _r("fec0::/10", "Site-Local (deprecated)", "RFC 3879", "private"),
    _r("ff00::/8", "Multicast", "RFC 4291 section 2.7", "multicast"),
)

SPECIAL_RANGES: tuple[SpecialRange, ...] = IPV4_SPECIAL + IPV6_SPECIAL

#: the cloud metadata address (AWS, GCP, Azure, OpenStack): inside 169.254.0.0/16, checked by name
METADATA_ADDRESS = ipaddress.IPv4Address("169.254.169.254")


def denied_by_default() -> tuple[SpecialRange, ...]:
    """The ranges a secure relay denies."""
    return tuple(r for r in SPECIAL_RANGES if r.deny_by_default)


def special_range_of(address: IPAddress | str) -> SpecialRange | None:
    """The most specific special-purpose range ``address`` is in, or ``None`` for a global address."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    matches = [r for r in SPECIAL_RANGES if r.network.version == ip.version and ip in r.network]
    return max(matches, key=lambda r: r.network.prefixlen, default=None)


def is_private_address(address: IPAddress | str) -> bool:
    """RFC 1918, shared (RFC 6598), ULA or link-local: an address that needs NAT to be reached."""
    found = special_range_of(address)
    return found is not None and found.kind in ("private", "shared", "link-local")


def parse_coturn_range(text: str) -> tuple[IPAddress, IPAddress]:
    """``10.0.0.1``, ``10.0.0.0-10.255.255.255`` or ``10.0.0.0/8`` -> ``(first, last)``.

    Raises ``ValueError`` naming the text when it is none of these or the ends differ in family.
    """
    text = text.strip().strip('"')
    if "/" in text:
        net = ipaddress.ip_network(text, strict=False)
        return net.network_address, net.broadcast_address
    if "-" in text:
        left, right = (part.strip() for part in text.split("-", 1))
        first, last = ipaddress.ip_address(left), ipaddress.ip_address(right)
        if first.version != last.version:
            raise ValueError(f"range {text!r} mixes IPv4 and IPv6")
        if int(last) < int(first):
            raise ValueError(f"range {text!r} ends before it starts")
        return first, last
    ip = ipaddress.ip_address(text)
    return ip, ip


class RangeSet:
    """A union of address ranges of one or both families; answers "is this block covered?"."""

    def __init__(self, ranges: Iterable[tuple[IPAddress, IPAddress]] = ()) -> None:
        self._spans: dict[int, list[tuple[int, int]]] = {4: [], 6: []}
        for first, last in ranges:
            self.add(first, last)

    def add(self, first: IPAddress, last: IPAddress) -> None:
        spans = self._spans[first.version]
        spans.append((int(first), int(last)))
        spans.sort()
        merged: list[tuple[int, int]] = []
        for lo, hi in spans:
            if merged and lo <= merged[-1][1] + 1:
                merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
            else:
                merged.append((lo, hi))
        self._spans[first.version] = merged

    def covers(self, network: IPNetwork) -> bool:
        """Every address of ``network`` is in the set."""
        lo, hi = int(network.network_address), int(network.broadcast_address)
        return any(a <= lo and hi <= b for a, b in self._spans[network.version])

    def overlaps(self, network: IPNetwork) -> bool:
        """At least one address of ``network`` is in the set."""
        lo, hi = int(network.network_address), int(network.broadcast_address)
        return any(a <= hi and lo <= b for a, b in self._spans[network.version])

    def __contains__(self, address: object) -> bool:
        if not isinstance(address, ipaddress.IPv4Address | ipaddress.IPv6Address):
            return False
        value = int(address)
        return any(a <= value <= b for a, b in self._spans[address.version])

    def __iter__(self) -> Iterator[tuple[int, int, int]]:
        for version, spans in self._spans.items():
            for lo, hi in spans:
                yield version, lo, hi


__all__ = [
    "IPV4_SPECIAL",
    "IPV6_SPECIAL",
    "METADATA_ADDRESS",
    "SPECIAL_RANGES",
    "IPAddress",
    "IPNetwork",
    "Kind",
    "RangeSet",
    "SpecialRange",
    "denied_by_default",
    "is_private_address",
    "parse_coturn_range",
    "special_range_of",
]
