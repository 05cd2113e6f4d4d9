"""The ``callops probe`` report: from typed probe results to the verdict and the JSON document.

Pure: :func:`build_report` reads the typed results (:data:`~callops.turn.results.ProbeResult`)
into :class:`~callops.orchestrator.probe.verdict.ProbeFacts`, lets
:func:`~callops.orchestrator.probe.verdict.decide` decide, and adds the ``RTCIceServer`` list.
The ``--json`` output is :class:`ProbeReport` as one JSON document.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, Field

from callops.orchestrator.probe.verdict import (
    Decision,
    PeerPath,
    ProbeFacts,
    RelayTransport,
    SiteClass,
    VerdictName,
    decide,
)
from callops.turn.credentials import RtcIceServer
from callops.turn.nat_behaviour import PeerClass
from callops.turn.results import NatResult, ProbeResult, StunResult, TlsResult


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


class ProbeReport(BaseModel):
    """``callops probe --json``."""

    verdict: VerdictName
    relay_transports: list[RelayTransport]
    nat: NatSummary
    #: the path a call with each class of remote peer would take (RFC 4787 rules)
    peers: dict[PeerClass, PeerPath] = Field(default_factory=dict)
    #: this site's own class in the same vocabulary (``inconclusive`` where discovery could not tell)
    site_class: SiteClass = "inconclusive"
    checks: list[Check]
    ice_servers: list[RtcIceServer]
    reason: str
    exit_code: int
    timeout_s: float
    duration_ms: float
    #: TLS certificates were not verified (``--insecure``)
    insecure: bool = False
    warnings: list[str] = Field(default_factory=list)


def working_ice_servers(
    decision: Decision, username: str | None, credential: str | None
) -> list[RtcIceServer]:
    """One ``RTCIceServer`` per working URI, best first; TURN entries carry the credentials given."""
    servers = [RtcIceServer(urls=[uri]) for uri in decision.stun_uris]
    servers += [
        RtcIceServer(urls=[uri], username=username, credential=credential) for uri in decision.turn_uris
    ]
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
    facts = ProbeFacts.from_results(results)
    decision = decide(facts)
    nat_result = next((r for r in results if isinstance(r, NatResult)), None)
    mapped = nat_result.data.mapped if nat_result is not None else None
    if mapped is None:
        mapped = next(
            (
                r.data.mapped
                for r in results
                if isinstance(r, StunResult) and r.kind == "stun-udp" and r.data.mapped
            ),
            None,
        )
    warnings = [
        f"{r.target}: {r.error}"
        for r in results
        if isinstance(r, TlsResult) and r.data.browser_accepts is False
    ]
    warnings += [
        f"{r.target}: {r.detail}" for r in results if isinstance(r, TlsResult) and r.status == "warn"
    ]
    if insecure:
        warnings.append(
            "TLS certificates were NOT verified (--insecure): the TLS result proves reachability only"
        )
    return ProbeReport(
        verdict=decision.verdict,
        relay_transports=decision.relay_transports,
        nat=NatSummary(
            mapping=facts.mapping or "unknown",
            filtering=facts.filtering or "unknown",
            present=facts.nat,
            mapped=mapped,
        ),
        peers=decision.peers,
        site_class=decision.site_class,
        checks=[
            Check(
                name=r.name, status=r.status.value, duration_ms=r.duration_ms, detail=r.detail, error=r.error
            )
            for r in results
        ],
        ice_servers=working_ice_servers(decision, username, credential),
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
    "working_ice_servers",
]
