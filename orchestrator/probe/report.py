"""The ``callops probe`` report: from probe results to facts, verdict and the JSON document.

Pure: :func:`facts_from_results` reads :class:`~callops.turn.probes.ProbeResult` s into
:class:`~callops.orchestrator.probe.verdict.ProbeFacts`; :func:`build_report` adds the verdict and
the ``RTCIceServer`` list. The ``--json`` output is :class:`ProbeReport` as one JSON document.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, Field

from callops.orchestrator.probe.verdict import (
    Decision,
    ProbeFacts,
    RelayTransport,
    VerdictName,
    decide,
)
from callops.turn.probes import ProbeResult, ProbeStatus
from callops.turn.uri import parse_uri


class Check(BaseModel):
    """One probe, as the report shows it."""

    name: str
    status: str
    duration_ms: float
    detail: str = ""
    error: str | None = None


class NatSummary(BaseModel):
    mapping: str = "unknown"
    filtering: str = "unknown"
    #: ``None`` when unknown
    present: bool | None = None
    mapped: str | None = None


class RtcIceServer(BaseModel):
    """One ``RTCIceServer`` (W3C webrtc-pc section 4.2.2). Long-term passwords are never shown."""

    urls: list[str]
    username: str | None = None
    credential: str | None = None


class ProbeReport(BaseModel):
    """``callops probe --json``."""

    verdict: VerdictName
    relay_transports: list[RelayTransport]
    nat: NatSummary
    checks: list[Check]
    ice_servers: list[RtcIceServer]
    reason: str
    exit_code: int
    timeout_s: float
    duration_ms: float
    #: TLS certificates were not verified (``--insecure``)
    insecure: bool = False
    warnings: list[str] = Field(default_factory=list)


def relay_transport(target: str) -> RelayTransport:
    uri = parse_uri(target)
    if uri.secure:
        return "tls"
    return uri.transport


def facts_from_results(results: Sequence[ProbeResult]) -> ProbeFacts:
    """What the probes prove: answered STUN, NAT behaviour, working relays (allocation + data)."""
    stun_ok = tuple(r.target for r in results if r.kind == "stun-udp" and r.status is ProbeStatus.OK)
    nat_result = next((r for r in results if r.kind == "nat"), None)
    nat: bool | None = None
    mapping = filtering = "unknown"
    if nat_result is not None and nat_result.status is not ProbeStatus.FAIL:
        data = nat_result.data
        nat = data.get("nat") if isinstance(data.get("nat"), bool) else None
        mapping = str(data.get("mapping") or "unknown")
        filtering = str(data.get("filtering") or "unknown")
    relays = tuple(
        (relay_transport(r.target), r.target)
        for r in results
        if r.kind == "relay" and r.status is ProbeStatus.OK
    )
    return ProbeFacts(
        stun_answered=stun_ok, nat=nat, mapping=mapping, filtering=filtering, relays_working=relays
    )


def ice_servers(decision: Decision, username: str | None, credential: str | None) -> list[RtcIceServer]:
    """One ``RTCIceServer`` per working URI, best first; TURN entries carry the credentials given."""
    servers = []
    for uri in decision.ice_server_uris:
        if parse_uri(uri).is_turn:
            servers.append(RtcIceServer(urls=[uri], username=username, credential=credential))
        else:
            servers.append(RtcIceServer(urls=[uri]))
    return servers


def build_report(
    results: Sequence[ProbeResult],
    *,
    timeout_s: float,
    duration_ms: float,
    username: str | None = None,
    credential: str | None = None,
    insecure: bool = False,
) -> ProbeReport:
    facts = facts_from_results(results)
    decision = decide(facts)
    nat_result = next((r for r in results if r.kind == "nat"), None)
    mapped = None
    if nat_result is not None:
        mapped = nat_result.data.get("mapped")
    if mapped is None:
        mapped = next(
            (r.data.get("mapped") for r in results if r.kind == "stun-udp" and r.data.get("mapped")), None
        )
    warnings = []
    if insecure:
        warnings.append(
            "TLS certificates were NOT verified (--insecure): the TLS result proves reachability only"
        )
    return ProbeReport(
        verdict=decision.verdict,
        relay_transports=decision.relay_transports,
        nat=NatSummary(mapping=facts.mapping, filtering=facts.filtering, present=facts.nat, mapped=mapped),
        checks=[
            Check(
                name=r.name, status=r.status.value, duration_ms=r.duration_ms, detail=r.detail, error=r.error
            )
            for r in results
        ],
        ice_servers=ice_servers(decision, username, credential),
        reason=decision.reason,
        exit_code=decision.exit_code,
        timeout_s=timeout_s,
        duration_ms=duration_ms,
        insecure=insecure,
        warnings=warnings,
    )


__all__ = [
    "Check",
    "NatSummary",
    "ProbeReport",
    "RtcIceServer",
    "build_report",
    "facts_from_results",
    "ice_servers",
    "relay_transport",
]
