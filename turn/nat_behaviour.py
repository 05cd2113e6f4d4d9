"""RFC 5780 NAT behaviour discovery and RFC 4787 hole punching: the rules, sans-I/O.

Sans-I/O: this module decides, :mod:`callops.turn.nat` sends. :func:`classify_mapping` and
:func:`classify_filtering` say what the answers of the tests of RFC 5780 sections 4.3 and 4.4
prove -- including when they prove nothing; :func:`alternate_refusal` decides whether OTHER-ADDRESS
may be followed; :func:`alternate_to_test` whether tests II and III run at all, and
:func:`nat_report` turns every answer into the :class:`NatReport`. The RFC 4787 part
(:func:`admits`, :func:`hole_punch`, :func:`possible_types`) says which pairs of NATs can
hole-punch. The documented choices are in :mod:`callops.turn.nat`.
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass
from typing import Literal, get_args

from pydantic import BaseModel

from callops.turn.ranges import special_range_of
from callops.turn.stun import Address, format_address


class Behaviour(enum.StrEnum):
    """Mapping or filtering behaviour (RFC 4787 section 4.1 and 5, RFC 5780 section 4)."""

    ENDPOINT_INDEPENDENT = "endpoint-independent"
    ADDRESS_DEPENDENT = "address-dependent"
    ADDRESS_AND_PORT_DEPENDENT = "address-and-port-dependent"
    #: the tests ran but their answers prove nothing
    INCONCLUSIVE = "inconclusive"
    #: the server lacks RFC 5780 support (no OTHER-ADDRESS)
    UNSUPPORTED = "unsupported"
    #: the tests against the alternate address were not run (see the reason)
    SKIPPED = "skipped"


class NatFinding(BaseModel):
    """What one side of RFC 5780 discovery (mapping or filtering) proved, and why."""

    behaviour: Behaviour
    #: why: which tests answered
    reason: str


class NatReport(BaseModel):
    """The result of :func:`discover`."""

    server: str
    local: str | None = None
    mapped: str | None = None
    other_address: str | None = None
    #: the mapped address differs from the local one
    nat: bool | None = None
    mapping: NatFinding
    filtering: NatFinding
    #: why OTHER-ADDRESS was not followed (scope rule), if it was not
    other_address_refused: str | None = None
    #: tests answered wrongly (malformed, error response, wrong transaction id), by test name
    test_errors: dict[str, str] = {}


Scope = Literal["public", "private", "loopback", "link-local", "unusable"]

#: which scopes of alternate address a server of each scope may name
_MAY_NAME: dict[str, frozenset[str]] = {
    "public": frozenset({"public"}),
    "private": frozenset({"private", "loopback"}),
    "loopback": frozenset({"loopback", "private"}),
    "link-local": frozenset({"link-local"}),
    "unusable": frozenset(),
}


def address_scope(ip: str) -> Scope:
    """The scope of ``ip`` for the OTHER-ADDRESS rule.

    Documentation and benchmarking ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, ...)
    count as public: they stand in for public addresses in labs and network namespaces.
    """
    try:
        addr = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return "unusable"
    if addr.is_unspecified or addr.is_multicast:
        return "unusable"
    special = special_range_of(addr)
    if special is None or special.globally_reachable:
        return "public"
    if special.kind == "loopback":
        return "loopback"
    if special.kind in ("private", "shared"):
        return "private"
    if special.kind == "link-local":
        return "link-local"
    if special.name.startswith(("Documentation", "Benchmarking")):
        return "public"
    return "unusable"  # reserved, broadcast, IPv4-mapped, 6to4, Teredo, ...


def alternate_refusal(server: Address, other: Address) -> str | None:
    """Why OTHER-ADDRESS ``other`` named by ``server`` must not be followed, or ``None`` if it may."""
    try:
        server_ip = ipaddress.ip_address(server[0].split("%", 1)[0])
        other_ip = ipaddress.ip_address(other[0].split("%", 1)[0])
    except ValueError:
        return f"OTHER-ADDRESS {other[0]} is not an IP address"
    shown = f"OTHER-ADDRESS {format_address(other)}"
    if server_ip.version != other_ip.version:
        return f"{shown} is IPv{other_ip.version}, the server is IPv{server_ip.version}"
    if not 0 < other[1] < 65536:
        return f"{shown} has port {other[1]}"
    server_scope, other_scope = address_scope(server[0]), address_scope(other[0])
    if other_scope not in _MAY_NAME[server_scope]:
        return (
            f"{shown} is a {other_scope} address and the server {server[0]} a {server_scope} one: "
            "callops follows OTHER-ADDRESS only within the server's scope"
        )
    return None


@dataclass(frozen=True)
class BindingAnswer:
    """What one Binding request of a test got back (all ``None``: no answer)."""

    mapped: Address | None = None
    other: Address | None = None
    source: Address | None = None
    #: a wrong answer (malformed, error response, wrong transaction id); ``None`` when fine or silent
    error: str | None = None


_NO_RFC5780 = "server does not support RFC 5780 (no OTHER-ADDRESS)"


def _first_rule(*rules: tuple[bool, Behaviour, str]) -> NatFinding:
    """The finding of the first rule whose condition holds (the rules of a section, in its order)."""
    for holds, behaviour, reason in rules:
        if holds:
            return NatFinding(behaviour=behaviour, reason=reason)
    raise AssertionError("the last rule of a section always holds")


def classify_mapping(
    test1: Address | None, other_address: Address | None, test2: Address | None, test3: Address | None
) -> NatFinding:
    """RFC 5780 section 4.3 from the mapped addresses of tests I, II and III (None: no answer)."""
    return _first_rule(
        (test1 is None, Behaviour.INCONCLUSIVE, "no answer to test I (primary address)"),
        (other_address is None, Behaviour.UNSUPPORTED, _NO_RFC5780),
        (test2 is None, Behaviour.INCONCLUSIVE, "no answer to test II (alternate IP, primary port)"),
        (
            test2 == test1,
            Behaviour.ENDPOINT_INDEPENDENT,
            "same mapping towards the primary and the alternate IP",
        ),
        (test3 is None, Behaviour.INCONCLUSIVE, "no answer to test III (alternate IP and port)"),
        (
            test3 == test2,
            Behaviour.ADDRESS_DEPENDENT,
            "mapping changes with the destination IP but not with its port",
        ),
        (
            True,
            Behaviour.ADDRESS_AND_PORT_DEPENDENT,
            "mapping changes with the destination IP and with its port",
        ),
    )


def classify_filtering(
    *,
    test1_answered: bool,
    supported: bool,
    change_ip_and_port_answered: bool,
    change_port_answered: bool,
    control_ok: bool,
    nat: bool | None,
) -> NatFinding:
    """RFC 5780 section 4.4 from which CHANGE-REQUEST tests were answered.

    ``control_ok``: the server was seen answering from its alternate address and port, so a missing
    answer can be blamed on the path. ``nat``: whether test I showed a translation.
    """
    return _first_rule(
        (not test1_answered, Behaviour.INCONCLUSIVE, "no answer to test I (primary address)"),
        (not supported, Behaviour.UNSUPPORTED, _NO_RFC5780),
        (
            change_ip_and_port_answered,
            Behaviour.ENDPOINT_INDEPENDENT,
            "answer from the alternate IP and port came through (test II)",
        ),
        (
            not control_ok,
            Behaviour.INCONCLUSIVE,
            "no CHANGE-REQUEST answer, and the server never answered from its alternate address, "
            "so the missing answers prove nothing",
        ),
        (
            change_port_answered,
            Behaviour.ADDRESS_DEPENDENT,
            "answer from the alternate port came through (test III), not from the alternate IP (test II)",
        ),
        (
            nat is False,
            Behaviour.INCONCLUSIVE,
            "no NAT in the path but CHANGE-REQUEST answers did not arrive: a local firewall, "
            "or a server that ignores CHANGE-REQUEST",
        ),
        (
            True,
            Behaviour.ADDRESS_AND_PORT_DEPENDENT,
            "only answers from the address and port contacted came through (tests II and III unanswered)",
        ),
    )


@dataclass(frozen=True)
class AlternateTests:
    """The answers of the tests towards the alternate address (RFC 5780 sections 4.3 and 4.4)."""

    #: mapping test II (alternate IP, primary port) and III (alternate IP and port)
    mapping2: BindingAnswer
    mapping3: BindingAnswer
    #: filtering test II (CHANGE-REQUEST IP and port) and III (port only), each from a fresh port
    filtering2: BindingAnswer
    filtering3: BindingAnswer


def alternate_to_test(server: Address, first: BindingAnswer) -> Address | None:
    """OTHER-ADDRESS when tests II and III must run: test I was answered and names an alternate that
    may be followed (:func:`alternate_refusal`); ``None`` when test I alone decides."""
    if first.mapped is None or first.other is None or alternate_refusal(server, first.other) is not None:
        return None
    return first.other


def nat_report(
    server: Address, local: Address, first: BindingAnswer, alternate: AlternateTests | None
) -> NatReport:
    """The report from test I's answer and, when they ran, the alternate tests' answers."""
    test1, other = first.mapped, first.other
    nat = None if test1 is None else test1 != local
    refused = alternate_refusal(server, other) if other is not None else None
    answers = {"test1": first}
    if refused is not None:
        mapping = filtering = NatFinding(
            behaviour=Behaviour.SKIPPED, reason=f"tests II and III skipped: {refused}"
        )
    else:
        alt = alternate or AlternateTests(BindingAnswer(), BindingAnswer(), BindingAnswer(), BindingAnswer())
        if alternate is not None:
            answers |= {"test2": alt.mapping2, "test3": alt.mapping3}
            answers |= {"filtering2": alt.filtering2, "filtering3": alt.filtering3}
        mapping = classify_mapping(test1, other, alt.mapping2.mapped, alt.mapping3.mapped)
        filtering = classify_filtering(
            test1_answered=test1 is not None,
            supported=other is not None,
            change_ip_and_port_answered=alt.filtering2.mapped is not None,
            change_port_answered=alt.filtering3.mapped is not None,
            control_ok=alternate is not None and alt.mapping3.source == other,
            nat=nat,
        )
    return NatReport(
        server=format_address(server) or "",
        local=format_address(local),
        mapped=format_address(test1),
        other_address=format_address(other),
        nat=nat,
        mapping=mapping,
        filtering=filtering,
        other_address_refused=refused,
        test_errors={name: a.error for name, a in answers.items() if a.error is not None},
    )


# -- RFC 4787: which pairs of NATs can hole-punch -------------------------------------------------

#: The behaviours a NAT can be proven to have (the other two values say discovery proved nothing).
PROVEN = (
    Behaviour.ENDPOINT_INDEPENDENT,
    Behaviour.ADDRESS_DEPENDENT,
    Behaviour.ADDRESS_AND_PORT_DEPENDENT,
)

PeerClass = Literal["open", "address-restricted", "port-restricted", "symmetric", "relay-only"]
PEER_CLASSES: tuple[PeerClass, ...] = get_args(PeerClass)


@dataclass(frozen=True)
class NatType:
    """A NAT (or its absence) as RFC 4787 describes it: mapping (section 4.1) and filtering (section 5)."""

    mapping: Behaviour
    filtering: Behaviour


EI, AD, APD = PROVEN
#: The representative NAT of each class of peer that has UDP (``relay-only`` has none): ``open`` is no
#: NAT or a full cone, the ``-restricted`` classes are cones (endpoint-independent mapping) with that
#: filtering, ``symmetric`` maps and filters per destination address and port.
CLASS_TYPES: dict[PeerClass, NatType] = {
    "open": NatType(EI, EI),
    "address-restricted": NatType(EI, AD),
    "port-restricted": NatType(EI, APD),
    "symmetric": NatType(APD, APD),
}


def admits(sender: NatType, receiver: NatType) -> bool:
    """Does ``receiver``'s NAT let in a check that ``sender`` sends to its server-reflexive address?

    Both sides send checks to each other's server-reflexive address at the same time (ICE, RFC 8445).
    The receiver's mapping was made towards its STUN server; it has also sent *from that mapping*
    towards the sender's reflexive address only when its mapping is endpoint-independent (RFC 4787
    section 4.1). The sender's check leaves from its reflexive address only when its own mapping is
    endpoint-independent; otherwise from a new port on the same IP ("paired" pooling, REQ-2).
    Then the receiver's filter (section 5) decides: endpoint-independent lets everything in,
    address-dependent what comes from an IP it sent to, address-and-port-dependent what comes from
    the exact address and port it sent to. Once one check is let in, its answer and the triggered
    check in the other direction travel the same binding, so the pair works.
    """
    if receiver.filtering is EI:
        return True
    if receiver.mapping is not EI:
        return False
    if receiver.filtering is AD:
        return True
    return sender.mapping is EI


def hole_punch(a: NatType, b: NatType) -> bool:
    """Can two peers behind ``a`` and ``b`` connect directly over UDP (either direction's check)?"""
    return admits(a, b) or admits(b, a)


def possible_types(nat: bool | None, mapping: Behaviour | None, filtering: Behaviour | None) -> list[NatType]:
    """Every NAT type consistent with what discovery proved (no NAT means mapping endpoint-independent)."""
    mappings = [EI] if nat is False else [mapping] if mapping in PROVEN else list(PROVEN)
    filterings = [filtering] if filtering in PROVEN else list(PROVEN)
    return [NatType(m, f) for m in mappings for f in filterings]


#: the class of a cone (endpoint-independent mapping) by its filtering
_CONE_CLASSES: dict[Behaviour, PeerClass] = {EI: "open", AD: "address-restricted", APD: "port-restricted"}


def class_of(nat_type: NatType) -> PeerClass:
    """The peer class of a NAT type: a dependent mapping is ``symmetric`` whatever its filtering."""
    if nat_type.mapping is not EI:
        return "symmetric"
    return _CONE_CLASSES[nat_type.filtering]


__all__ = [
    "CLASS_TYPES",
    "PEER_CLASSES",
    "PROVEN",
    "AlternateTests",
    "Behaviour",
    "BindingAnswer",
    "NatFinding",
    "NatReport",
    "NatType",
    "PeerClass",
    "Scope",
    "address_scope",
    "admits",
    "alternate_refusal",
    "alternate_to_test",
    "class_of",
    "classify_filtering",
    "classify_mapping",
    "hole_punch",
    "nat_report",
    "possible_types",
]
