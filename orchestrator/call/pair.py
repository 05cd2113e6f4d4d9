"""Which candidate pair did ICE select? Derived from aioice internals, since aiortc hides it.

aiortc exposes no selected-candidate-pair API. The path used here, stable across aiortc 1.x and
aioice 0.9+: ``RTCPeerConnection`` -> transceiver -> ``RTCDtlsTransport.transport``
(``RTCIceTransport``) -> ``._connection`` (``aioice.Connection``) -> ``._nominated[1]`` (the
nominated :class:`aioice.ice.CandidatePair` of component 1). The pair's ``local_candidate`` and
``remote_candidate`` carry the RFC 8445 candidate types. A remote candidate learnt from a check
(not signalled) is typed ``prflx`` by aioice. For a ``relay`` local candidate the transport to the
TURN server is the connection's ``turn_transport`` (``udp``/``tcp``) and ``turn_ssl`` (``tls``):
aioice supports exactly one TURN server per connection, so this is unambiguous.

When the private attributes are missing (a future aioice), :func:`selected_pair` returns None
rather than guessing -- the report then says the pair is unknown.
"""

from __future__ import annotations

import logging
from typing import Any

from callops.orchestrator.call.report import CandidateInfo, SelectedPair

log = logging.getLogger(__name__)

_TYPES = {"host", "srflx", "prflx", "relay"}


def ice_connection(pc: Any) -> Any | None:
    """The aioice ``Connection`` under an aiortc ``RTCPeerConnection`` (first transport), or None."""
    for transceiver in pc.getTransceivers():
        dtls = getattr(transceiver.receiver, "transport", None) or getattr(
            transceiver.sender, "transport", None
        )
        ice = getattr(dtls, "transport", None)
        connection = getattr(ice, "_connection", None)
        if connection is not None:
            return connection
    return None


def relay_protocol(connection: Any) -> str | None:
    """udp/tcp/tls: how this aioice connection reaches its TURN server, or None without one."""
    if getattr(connection, "turn_server", None) is None:
        return None
    if getattr(connection, "turn_ssl", False):
        return "tls"
    transport = str(getattr(connection, "turn_transport", "udp"))
    return transport if transport in ("udp", "tcp") else None


def candidate_info(candidate: Any, *, relay_via: str | None = None) -> CandidateInfo:
    """Map an aioice ``Candidate`` to the report model."""
    kind = str(candidate.type)
    if kind not in _TYPES:
        raise ValueError(f"unknown ICE candidate type {kind!r}")
    transport = str(candidate.transport).lower()
    return CandidateInfo(
        type=kind,  # type: ignore[arg-type]
        protocol="tcp" if transport == "tcp" else "udp",
        relay_protocol=relay_via if kind == "relay" else None,  # type: ignore[arg-type]
        address=str(candidate.host),
        port=int(candidate.port),
    )


def selected_pair(pc: Any) -> SelectedPair | None:
    """The nominated pair of ``pc`` (component 1), or None before nomination / if unavailable."""
    connection = ice_connection(pc)
    nominated = getattr(connection, "_nominated", None)
    if not isinstance(nominated, dict) or 1 not in nominated:
        return None
    pair = nominated[1]
    try:
        local = candidate_info(pair.local_candidate, relay_via=relay_protocol(connection))
        remote = candidate_info(pair.remote_candidate)
    except (AttributeError, ValueError) as exc:
        log.warning("cannot derive the selected candidate pair: %s", exc)
        return None
    return SelectedPair(local=local, remote=remote)


__all__ = ["candidate_info", "ice_connection", "relay_protocol", "selected_pair"]
