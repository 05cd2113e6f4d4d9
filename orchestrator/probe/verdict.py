"""The ``callops probe`` verdict, as a pure function of what the probes found.

No sockets, no clock: :func:`decide` takes :class:`ProbeFacts` (what answered, the NAT's mapping
and filtering behaviour, which relay transports carried data) and gives a :class:`Decision` --
the verdict, the working relay transports, the exit code and the ICE server URIs a web page on this
network should use, best first.

Rules (documented choices where the issue is silent):

* ``p2p-likely``: a UDP STUN Binding was answered and either there is no NAT (the mapped address is
  a local one) or the NAT maps endpoint-independently. Filtering does not change this: with
  endpoint-independent mapping both sides' checks open each other's filters (hole punching).
* ``relay-required``: not ``p2p-likely`` (address- or port-dependent mapping, UDP filtered, or a
  mapping the tests could not prove) but at least one TURN transport allocated a relay and carried
  data. ``relay_transports`` lists the working ones in the order ``udp``, ``tcp``, ``tls``.
* ``blocked``: neither. In particular a network where UDP answers but the mapping is unproven and
  no relay works is ``blocked``: no path is proven.

Exit codes: 0 ``p2p-likely`` or a relay over UDP; 1 relay only over TCP/TLS (degraded); 3 blocked.

ICE server order: STUN first only when it answered over UDP (it is useless where UDP is blocked),
then TURN over UDP, TCP and TLS -- only the URIs that worked, each transport's URIs in the order
given. A browser tries them all anyway; the order says which to keep when the list must be short.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

VerdictName = Literal["p2p-likely", "relay-required", "blocked"]
RelayTransport = Literal["udp", "tcp", "tls"]

RELAY_TRANSPORTS: tuple[RelayTransport, ...] = ("udp", "tcp", "tls")
ENDPOINT_INDEPENDENT = "endpoint-independent"

EXIT_OK = 0
EXIT_DEGRADED = 1
EXIT_BLOCKED = 3


@dataclass(frozen=True)
class ProbeFacts:
    """What the probes of one site found."""

    #: STUN URIs whose UDP Binding request was answered
    stun_answered: tuple[str, ...] = ()
    #: the mapped address differs from every local one; ``None``: unknown
    nat: bool | None = None
    #: RFC 5780 mapping behaviour (``callops.turn.nat.Behaviour`` values) or ``unknown``
    mapping: str = "unknown"
    filtering: str = "unknown"
    #: ``(transport, TURN URI)`` pairs whose allocation worked and carried data through the relay
    relays_working: tuple[tuple[RelayTransport, str], ...] = ()


@dataclass(frozen=True)
class Decision:
    verdict: VerdictName
    relay_transports: list[RelayTransport]
    exit_code: int
    #: why, in one sentence a network engineer can act on
    reason: str
    #: STUN URIs then TURN URIs, best first
    ice_server_uris: list[str] = field(default_factory=list)


def p2p_likely(facts: ProbeFacts) -> bool:
    if not facts.stun_answered:
        return False
    return facts.nat is False or facts.mapping == ENDPOINT_INDEPENDENT


def decide(facts: ProbeFacts) -> Decision:
    """The verdict for one site."""
    transports = [t for t in RELAY_TRANSPORTS if any(rt == t for rt, _ in facts.relays_working)]
    turn_uris = [uri for t in RELAY_TRANSPORTS for rt, uri in facts.relays_working if rt == t]
    stun_uris = list(facts.stun_answered)
    ice = [*stun_uris, *turn_uris]
    if p2p_likely(facts):
        why = "no NAT" if facts.nat is False else "the NAT maps endpoint-independently"
        return Decision("p2p-likely", transports, EXIT_OK, f"UDP works and {why}", ice)
    if not facts.stun_answered:
        cause = "UDP to the STUN servers is filtered"
    elif facts.mapping == "unknown" or facts.mapping in ("inconclusive", "unsupported"):
        cause = f"the NAT's mapping could not be proven ({facts.mapping})"
    else:
        cause = f"the NAT's mapping is {facts.mapping}"
    if transports:
        code = EXIT_OK if "udp" in transports else EXIT_DEGRADED
        return Decision(
            "relay-required", transports, code, f"{cause}; a relay works over {', '.join(transports)}", ice
        )
    return Decision("blocked", [], EXIT_BLOCKED, f"{cause}, and no TURN transport carried data", ice)


__all__ = [
    "ENDPOINT_INDEPENDENT",
    "EXIT_BLOCKED",
    "EXIT_DEGRADED",
    "EXIT_OK",
    "RELAY_TRANSPORTS",
    "Decision",
    "ProbeFacts",
    "RelayTransport",
    "VerdictName",
    "decide",
    "p2p_likely",
]
