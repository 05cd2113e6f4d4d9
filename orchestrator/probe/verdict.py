"""The ``callops probe`` verdicts -- one site and two sites -- as pure functions of what the probes found.

No sockets, no clock. :meth:`ProbeFacts.from_results` reads the typed probe results
(:data:`~callops.turn.results.ProbeResult`) into facts: what answered, the NAT's mapping and
filtering behaviour, which relay transports carried data. :func:`decide` gives the one-site
:class:`Decision`: the verdict, the working relay transports, the exit code, the path this site
would get with each class of remote peer (``peers``), and the ICE server URIs a web page on this
network should use, best first. :func:`decide_two_site` gives the two-site verdict from the path
classes that connected.

One-site rules (documented choices where the issue is silent):

* ``p2p-likely``: a UDP STUN Binding was answered and either there is no NAT (the mapped address is
  a local one) or the NAT maps endpoint-independently. The headline is about peers like this one;
  ``peers`` says which classes of peer still need the relay.
* ``relay-required``: not ``p2p-likely`` (address- or port-dependent mapping, UDP filtered, or a
  mapping the tests could not prove) but at least one TURN transport allocated a relay and carried
  data. ``relay_transports`` lists the working ones in the order ``udp``, ``tcp``, ``tls``.
* ``blocked``: neither. In particular a network where UDP answers but the mapping is unproven and
  no relay works is ``blocked``: no path is proven.

Per peer class (``open``, ``address-restricted``, ``port-restricted``, ``symmetric``, ``relay-only``;
:data:`callops.turn.nat_behaviour.CLASS_TYPES`): ``p2p`` when RFC 4787 hole punching works between this site's
NAT and the class's (:func:`callops.turn.nat_behaviour.hole_punch`); ``relay`` (with this site's best working
TURN transport) when it does not, or when either side has no UDP; ``blocked`` when a relay is needed
and none of this site's TURN transports carried data; ``inconclusive`` when the answer depends on
what discovery could not prove (every NAT type consistent with the findings is tried).

Exit codes: 0 ``p2p-likely`` or a relay over UDP; 1 relay only over TCP/TLS (degraded); 3 blocked.

ICE server order: STUN first only when it answered over UDP (it is useless where UDP is blocked),
then TURN over UDP, TCP and TLS -- only the URIs that worked, each transport's URIs in the order
given. A browser tries them all anyway; the order says which to keep when the list must be short.

Two sites: ``p2p`` when the ``host`` or ``srflx`` class connected; else ``relay-required`` with
the relay transports whose class connected; else ``blocked``; same exit codes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, SerializerFunctionWrapHandler, model_serializer

from callops.turn.nat_behaviour import (
    CLASS_TYPES,
    PEER_CLASSES,
    Behaviour,
    NatType,
    PeerClass,
    class_of,
    hole_punch,
    possible_types,
)
from callops.turn.results import (
    NatResult,
    ProbeResult,
    ProbeStatus,
    RelayTestResult,
    RelayTransport,
    StunResult,
)

if TYPE_CHECKING:
    from callops.orchestrator.probe.paths import PathResult

VerdictName = Literal["p2p-likely", "relay-required", "blocked"]
TwoSiteVerdict = Literal["p2p", "relay-required", "blocked"]
PathName = Literal["p2p", "relay", "blocked", "inconclusive"]
#: this site's own class, or ``inconclusive`` where discovery could not tell
SiteClass = Literal[
    "open", "address-restricted", "port-restricted", "symmetric", "relay-only", "inconclusive"
]

RELAY_TRANSPORTS: tuple[RelayTransport, ...] = ("udp", "tcp", "tls")
ENDPOINT_INDEPENDENT = Behaviour.ENDPOINT_INDEPENDENT

EXIT_OK = 0
EXIT_DEGRADED = 1
EXIT_BLOCKED = 3


class PeerPath(BaseModel):
    """The path a call with one class of peer would take: ``{"path": "relay", "transport": "udp"}``."""

    model_config = ConfigDict(frozen=True)

    path: PathName
    #: with ``relay``: the transport this site reaches its own TURN server over (its best working one)
    transport: RelayTransport | None = None

    @model_serializer(mode="wrap")
    def _without_transport_unless_relay(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        out: dict[str, Any] = handler(self)
        if out.get("transport") is None:
            out.pop("transport", None)
        return out


@dataclass(frozen=True)
class ProbeFacts:
    """What the probes of one site found."""

    #: STUN URIs whose UDP Binding request was answered
    stun_answered: tuple[str, ...] = ()
    #: the mapped address differs from every local one; ``None``: unknown
    nat: bool | None = None
    #: RFC 5780 mapping and filtering behaviour; ``None``: not measured
    mapping: Behaviour | None = None
    filtering: Behaviour | None = None
    #: ``(transport, TURN URI)`` pairs whose allocation worked and carried data through the relay
    relays_working: tuple[tuple[RelayTransport, str], ...] = ()

    @classmethod
    def from_results(cls, results: Sequence[ProbeResult]) -> ProbeFacts:
        """What the probes prove: answered STUN, NAT behaviour, working relays (allocation + data)."""
        stun_ok = tuple(
            r.target for r in results if isinstance(r, StunResult) and r.kind == "stun-udp" and r.ok
        )
        nat = next((r for r in results if isinstance(r, NatResult)), None)
        relays = tuple(
            (r.data.transport, r.target)
            for r in results
            if isinstance(r, RelayTestResult) and r.ok and r.data.transport and r.data.peer != "host"
        )
        if nat is None or nat.status is ProbeStatus.FAIL:
            return cls(stun_answered=stun_ok, relays_working=relays)
        return cls(
            stun_answered=stun_ok,
            nat=nat.data.nat,
            mapping=nat.data.mapping,
            filtering=nat.data.filtering,
            relays_working=relays,
        )

    @property
    def relay_transports(self) -> list[RelayTransport]:
        return [t for t in RELAY_TRANSPORTS if any(rt == t for rt, _ in self.relays_working)]


@dataclass(frozen=True)
class Decision:
    verdict: VerdictName
    relay_transports: list[RelayTransport]
    exit_code: int
    #: why, in one sentence a network engineer can act on
    reason: str
    #: STUN URIs that answered over UDP, best first
    stun_uris: list[str] = field(default_factory=list)
    #: TURN URIs that carried data, UDP before TCP before TLS
    turn_uris: list[str] = field(default_factory=list)
    #: the path with each class of remote peer
    peers: dict[PeerClass, PeerPath] = field(default_factory=dict)
    site_class: SiteClass = "inconclusive"

    @property
    def ice_server_uris(self) -> list[str]:
        """STUN URIs then TURN URIs, best first."""
        return [*self.stun_uris, *self.turn_uris]


def p2p_likely(facts: ProbeFacts) -> bool:
    if not facts.stun_answered:
        return False
    return facts.nat is False or facts.mapping is ENDPOINT_INDEPENDENT


def _types(facts: ProbeFacts) -> list[NatType]:
    return possible_types(facts.nat, facts.mapping, facts.filtering)


def site_class(facts: ProbeFacts) -> SiteClass:
    """This site's own class: ``relay-only`` without UDP, the one class every consistent NAT type has, or
    ``inconclusive``."""
    if not facts.stun_answered:
        return "relay-only"
    classes = {class_of(t) for t in _types(facts)}
    return classes.pop() if len(classes) == 1 else "inconclusive"


def peer_paths(facts: ProbeFacts) -> dict[PeerClass, PeerPath]:
    """The path to each class of peer (RFC 4787 hole punching, else this site's best relay)."""
    transports = facts.relay_transports
    relay = PeerPath(path="relay", transport=transports[0]) if transports else PeerPath(path="blocked")
    types = _types(facts)
    out: dict[PeerClass, PeerPath] = {}
    for peer in PEER_CLASSES:
        if not facts.stun_answered or peer == "relay-only":
            out[peer] = relay
            continue
        outcomes = {hole_punch(mine, CLASS_TYPES[peer]) for mine in types}
        if outcomes == {True}:
            out[peer] = PeerPath(path="p2p")
        elif outcomes == {False}:
            out[peer] = relay
        else:
            out[peer] = PeerPath(path="inconclusive")
    return out


_CLASS_NAMES: dict[PeerClass, str] = {
    "open": "open",
    "address-restricted": "address-restricted cone",
    "port-restricted": "port-restricted cone",
    "symmetric": "symmetric-NAT",
    "relay-only": "relay-only",
}


def _join(classes: Sequence[PeerClass]) -> str:
    names = [_CLASS_NAMES[c] for c in classes]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def peers_reason(peers: dict[PeerClass, PeerPath]) -> str:
    """``p2p with open and ... peers; a symmetric-NAT peer needs the relay: keep TURN``."""
    by_path: dict[PathName, list[PeerClass]] = {"p2p": [], "relay": [], "blocked": [], "inconclusive": []}
    for peer, path in peers.items():
        by_path[path.path].append(peer)
    parts = []
    if by_path["p2p"]:
        parts.append(f"p2p with {_join(by_path['p2p'])} peers")
    relay = by_path["relay"]
    if relay and not by_path["p2p"] and not by_path["inconclusive"]:
        parts.append("every peer needs the relay: keep TURN")
    elif len(relay) == 1:
        parts.append(f"a {_join(relay)} peer needs the relay: keep TURN")
    elif relay:
        parts.append(f"{_join(relay)} peers need the relay: keep TURN")
    if by_path["blocked"]:
        parts.append(f"no path to {_join(by_path['blocked'])} peers: no TURN transport carried data")
    if by_path["inconclusive"]:
        parts.append(
            f"with {_join(by_path['inconclusive'])} peers it depends on what discovery could not prove"
        )
    return "; ".join(parts)


def decide(facts: ProbeFacts) -> Decision:
    """The verdict for one site."""
    transports = facts.relay_transports
    turn_uris = [uri for t in RELAY_TRANSPORTS for rt, uri in facts.relays_working if rt == t]
    stun_uris = list(facts.stun_answered)
    peers = peer_paths(facts)
    common: dict[str, Any] = {
        "stun_uris": stun_uris,
        "turn_uris": turn_uris,
        "peers": peers,
        "site_class": site_class(facts),
    }
    per_peer = peers_reason(peers)
    if p2p_likely(facts):
        why = "no NAT" if facts.nat is False else "the NAT maps endpoint-independently"
        return Decision("p2p-likely", transports, EXIT_OK, f"UDP works and {why}; {per_peer}", **common)
    if not facts.stun_answered:
        cause = "UDP to the STUN servers is filtered"
    elif facts.mapping is None or facts.mapping not in (
        Behaviour.ADDRESS_DEPENDENT,
        Behaviour.ADDRESS_AND_PORT_DEPENDENT,
    ):
        cause = f"the NAT's mapping could not be proven ({facts.mapping or 'unknown'})"
    else:
        cause = f"the NAT's mapping is {facts.mapping}"
    if transports:
        code = EXIT_OK if "udp" in transports else EXIT_DEGRADED
        reason = f"{cause}; a relay works over {', '.join(transports)}; {per_peer}"
        return Decision("relay-required", transports, code, reason, **common)
    return Decision("blocked", [], EXIT_BLOCKED, f"{cause}, and no TURN transport carried data", **common)


# -- two sites ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TwoSiteDecision:
    verdict: TwoSiteVerdict
    relay_transports: list[RelayTransport]
    exit_code: int

    @property
    def path(self) -> PeerPath:
        """The outcome in the vocabulary of the one-site ``peers`` (to compare prediction and truth)."""
        return two_site_path(self.verdict, self.relay_transports)


def two_site_path(verdict: str, relay_transports: Sequence[str]) -> PeerPath:
    """A two-site verdict as a :class:`PeerPath`: ``relay`` over the best transport that connected."""
    if verdict == "p2p":
        return PeerPath(path="p2p")
    if verdict == "relay-required":
        best = next(t for t in RELAY_TRANSPORTS if t in relay_transports)
        return PeerPath(path="relay", transport=best)
    return PeerPath(path="blocked")


def decide_two_site(paths: Sequence[PathResult]) -> TwoSiteDecision:
    """The two-site verdict from the path classes that connected."""
    connected = {p.path for p in paths if p.connected}
    transports = [t for t in RELAY_TRANSPORTS if f"relay-{t}" in connected]
    if connected & {"host", "srflx"}:
        return TwoSiteDecision("p2p", transports, EXIT_OK)
    if transports:
        return TwoSiteDecision(
            "relay-required", transports, EXIT_OK if "udp" in transports else EXIT_DEGRADED
        )
    return TwoSiteDecision("blocked", [], EXIT_BLOCKED)


__all__ = [
    "ENDPOINT_INDEPENDENT",
    "EXIT_BLOCKED",
    "EXIT_DEGRADED",
    "EXIT_OK",
    "RELAY_TRANSPORTS",
    "Decision",
    "PathName",
    "PeerPath",
    "ProbeFacts",
    "RelayTransport",
    "SiteClass",
    "TwoSiteDecision",
    "TwoSiteVerdict",
    "VerdictName",
    "decide",
    "decide_two_site",
    "p2p_likely",
    "peer_paths",
    "peers_reason",
    "site_class",
    "two_site_path",
]
