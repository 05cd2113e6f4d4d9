"""Typed probe results: one discriminated union (on ``kind``) from the probe to the verdict and the report.

:data:`ProbeResult` is :class:`StunResult` | :class:`NatResult` | :class:`AllocationResult` |
:class:`RelayTestResult` | :class:`TlsResult` | :class:`BandwidthResult`. Each has the common
fields (``name``, ``target``, ``status``, ``duration_ms``, ``detail``, ``error``) and its findings
as a typed ``data`` model; readers use attributes (``result.data.mapped``), never ``dict.get``.
``data`` serialises without its unset (``None``) fields, so the JSON of a result is what it was
when ``data`` was a dict.

Pure models: no I/O. The probes that produce them live in :mod:`callops.turn.probes`,
:mod:`callops.turn.tls` and :mod:`callops.turn.bandwidth`.
"""

from __future__ import annotations

import enum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    TypeAdapter,
    model_serializer,
)

from callops.turn.nat_behaviour import Behaviour


class ProbeStatus(enum.StrEnum):
    OK = "ok"
    FAIL = "fail"
    #: the probe ran but its answers prove nothing either way
    INCONCLUSIVE = "inconclusive"
    #: the probe could not run (no credentials, server lacks the feature)
    SKIPPED = "skipped"
    #: it works, but something needs attention soon (a certificate near expiry)
    WARN = "warn"


RelayTransport = Literal["udp", "tcp", "tls"]


class ProbeData(BaseModel):
    """Machine-readable findings of one probe; unset fields are left out of the JSON."""

    # defer_build: the schema of a data model is built when first used (a one-site probe uses four)
    model_config = ConfigDict(extra="forbid", defer_build=True)

    #: the STUN/TURN error code of a failed request (e.g. 401, 403)
    error_code: int | None = None

    @model_serializer(mode="wrap")
    def _without_unset(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return {k: v for k, v in handler(self).items() if v is not None}


class StunData(ProbeData):
    #: the server-reflexive address (XOR-MAPPED-ADDRESS)
    mapped: str | None = None
    rtt_ms: float | None = None
    #: TCP/TLS only: time to connect (and handshake)
    connect_ms: float | None = None
    #: RFC 5780 OTHER-ADDRESS, when the server has one
    other_address: str | None = None


class NatData(ProbeData):
    """RFC 5780 findings (see :class:`callops.turn.nat_behaviour.NatReport`)."""

    mapping: Behaviour | None = None
    filtering: Behaviour | None = None
    #: the mapped address differs from the local one; ``None``: unknown
    nat: bool | None = None
    mapped: str | None = None
    other_address: str | None = None
    mapping_reason: str | None = None
    filtering_reason: str | None = None
    #: tests answered wrongly (malformed, error response, wrong transaction id), by test name
    test_errors: dict[str, str] | None = None
    #: why OTHER-ADDRESS was not followed (scope rule), if it was not
    other_address_refused: str | None = None


class AllocationData(ProbeData):
    relayed: str | None = None
    mapped: str | None = None
    allocate_ms: float | None = None
    lifetime: int | None = None
    transport: RelayTransport | None = None


class RelayData(ProbeData):
    sent: int | None = None
    received: int | None = None
    #: fraction lost, 0..1
    loss: float | None = None
    rtt_ms: float | None = None
    rtt_ms_max: float | None = None
    #: ``allocation`` (a second allocation echoes), ``address`` (``--peer``), or ``host``: this site's
    #: own UDP socket sent to the relayed address and the allocation echoed (:func:`relay_reach_test`)
    peer: Literal["allocation", "address", "host"] | None = None
    peer_address: str | None = None
    #: how the client reached the TURN server (``turns:`` is ``tls``) -- set also on failure
    transport: RelayTransport | None = None


class _Result(BaseModel):
    """What every probe result has."""

    model_config = ConfigDict(defer_build=True)

    #: e.g. ``stun-udp stun:127.0.0.1:3478``
    name: str
    #: the discriminator: ``stun-udp``, ``stun-tcp``, ``stun-tls``, ``nat``, ``turn-udp``, ``turn-tcp``,
    #: ``turn-tls``, ``relay``, ``tls``, ``bandwidth`` (each subclass narrows it to its own)
    kind: str
    #: the server URI probed
    target: str
    status: ProbeStatus
    duration_ms: float
    #: what was found, in one line
    detail: str = ""
    #: why it failed, in a sentence with the fix
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is ProbeStatus.OK


class StunResult(_Result):
    kind: Literal["stun-udp", "stun-tcp", "stun-tls"]
    data: StunData = Field(default_factory=StunData)


class NatResult(_Result):
    kind: Literal["nat"] = "nat"
    data: NatData = Field(default_factory=NatData)


class AllocationResult(_Result):
    kind: Literal["turn-udp", "turn-tcp", "turn-tls"]
    data: AllocationData = Field(default_factory=AllocationData)


class RelayTestResult(_Result):
    kind: Literal["relay"] = "relay"
    data: RelayData = Field(default_factory=RelayData)


class CertificateInfo(BaseModel):
    """One certificate of the chain the server sent, leaf first."""

    subject: str
    issuer: str
    not_before: str
    not_after: str
    self_signed: bool


class TlsData(ProbeData):
    """The certificate as a browser sees it (Chromium checks ``turns:`` like HTTPS: chain, trust, name)."""

    #: the chain as sent, leaf first
    chain: list[CertificateInfo] | None = None
    #: DNS names and IP addresses of the leaf's subjectAltName
    names: list[str] | None = None
    #: the host name or IP address the client asked for (the URI's host)
    server_name: str | None = None
    not_after: str | None = None
    #: days until the leaf expires (negative: expired)
    days_left: float | None = None
    #: the chain ends in a trusted CA (the system's, or ``--ca-file``)
    trusted: bool | None = None
    #: the URI's host is one of ``names``
    name_matches: bool | None = None
    #: what Chromium decides: trusted, name matches, not expired (else ICE error 701)
    browser_accepts: bool | None = None
    #: ``self-signed``, ``untrusted``, ``name-mismatch``, ``expired``, ``not-yet-valid``, ``expires-soon``
    problems: list[str] | None = None
    tls_version: str | None = None
    connect_ms: float | None = None


class FlowStats(BaseModel):
    """One flow of a bandwidth test, as its receiver measured it."""

    sent: int
    received: int
    #: fraction lost, 0..1
    loss: float
    achieved_kbps: float
    #: RFC 3550 interarrival jitter
    jitter_ms: float
    reordered: int = 0


class BandwidthData(ProbeData):
    """A call-shaped flow through a TURN allocation: what got through each way."""

    #: ``voice`` or ``video``
    media: str | None = None
    target_kbps: float | None = None
    #: the lowest rate each way at which the profile counts the call as working
    floor_kbps: float | None = None
    duration_s: float | None = None
    packet_bytes: int | None = None
    #: the media flow: this site -> relay -> this site's second allocation (loads the link up *and* down)
    flow: FlowStats | None = None
    #: the small return flow (one packet per 20 ms) that carries echoed timestamps for the RTT
    feedback: FlowStats | None = None
    rtt_ms_p50: float | None = None
    rtt_ms_p95: float | None = None
    rtt_ms_max: float | None = None
    transport: RelayTransport | None = None
    #: the target got through with loss under the limit
    passed: bool | None = None


class TlsResult(_Result):
    kind: Literal["tls"] = "tls"
    data: TlsData = Field(default_factory=TlsData)


class BandwidthResult(_Result):
    kind: Literal["bandwidth"] = "bandwidth"
    data: BandwidthData = Field(default_factory=BandwidthData)


ProbeResult = Annotated[
    StunResult | NatResult | AllocationResult | RelayTestResult | TlsResult | BandwidthResult,
    Field(discriminator="kind"),
]
#: reads any probe result (JSON or Python data) into its class; built on first use
PROBE_RESULT: TypeAdapter[ProbeResult] = TypeAdapter(ProbeResult, config=ConfigDict(defer_build=True))


__all__ = [
    "PROBE_RESULT",
    "AllocationData",
    "AllocationResult",
    "BandwidthData",
    "BandwidthResult",
    "CertificateInfo",
    "FlowStats",
    "NatData",
    "NatResult",
    "ProbeData",
    "ProbeResult",
    "ProbeStatus",
    "RelayData",
    "RelayTestResult",
    "RelayTransport",
    "StunData",
    "StunResult",
    "TlsData",
    "TlsResult",
]
