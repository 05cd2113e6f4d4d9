"""The report of one call (``callops call --json``) and of a smoke run, as pydantic models."""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

CandidateType = Literal["host", "srflx", "prflx", "relay"]
Outcome = Literal["connected", "declined", "cancelled", "expired", "failed", "dropped"]
CallMode = Literal["VOICE_CALL", "VIDEO_CALL"]
IcePolicy = Literal["all", "relay"]
Scenario = Literal[
    "accept",
    "decline",
    "cancel",
    "expire",
    "hangup-consumer",
    "hangup-agent",
    "agent-disconnect",
    "ice-fail",
    "resume",
]
#: every scenario, in the order of :data:`Scenario` (the CLI's choices; the table in call/scenarios.py)
SCENARIOS: tuple[str, ...] = get_args(Scenario)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CandidateInfo(_Model):
    """One end of the selected candidate pair."""

    type: CandidateType
    #: transport of the candidate itself as ICE sees it (aiortc: always ``udp``)
    protocol: Literal["udp", "tcp"] = "udp"
    #: for ``relay`` local candidates: how the peer reaches its TURN server (udp/tcp/tls)
    relay_protocol: Literal["udp", "tcp", "tls"] | None = None
    address: str = ""
    port: int = 0


class SelectedPair(_Model):
    """The nominated ICE candidate pair, as one side sees it."""

    local: CandidateInfo
    remote: CandidateInfo


class ErrorEntry(_Model):
    """A ``sessionError`` raised by the consumer (``id`` as in the protocol), or a callops failure."""

    id: str
    msg: str


class DirectionStats(_Model):
    """Statistics of one media kind in one direction (from getStats).

    ``packets_lost`` is every packet the sender sent that the receiver never got, a stopped tail
    included (docs/call.md, "How loss is counted"); ``rtcp_packets_lost`` is the receiver's own
    count from RTP sequence gaps, which cannot see a stream that simply stops.
    """

    kind: Literal["audio", "video"]
    #: "agent->consumer" or "consumer->agent"
    direction: str
    packets_sent: int = 0
    bytes_sent: int = 0
    bitrate_kbps: float = 0.0
    packets_received: int = 0
    packets_lost: int = 0
    loss_percent: float = 0.0
    #: the receiver's sequence-gap count (RFC 3550 cumulative lost), for comparison
    rtcp_packets_lost: int = 0
    #: how ``packets_lost`` was counted: sender counters vs receiver counters (one process), or the
    #: sender's RTCP sender-report packet count vs the receiver's counters (two sites)
    loss_method: Literal["counters", "rtcp-sender-report", "rtcp-sequence"] = "counters"
    #: seconds this direction had no decoded frames for more than 1 s (see ``interruptions``)
    interrupted_s: float = 0.0
    jitter_ms: float = 0.0
    rtt_ms: float | None = None
    #: decoded frames counted by the receiving sink (media verified, not assumed)
    frames_decoded: int = 0


class AudioQuality(_Model):
    """Simplified E-model estimate (see :mod:`callops.orchestrator.call.quality`)."""

    direction: str
    #: the loss the estimate used: packet loss, or the interrupted share of the time if larger
    loss_percent: float = 0.0
    r_factor: float
    mos: float
    band: Literal["good", "fair", "poor", "bad"]


class InterruptionEntry(_Model):
    """A stretch of more than 1 s without decoded frames in one direction (ms on the timeline)."""

    kind: Literal["audio", "video"]
    #: "agent->consumer" or "consumer->agent"
    direction: str
    #: the last decoded frame before the gap
    from_ms: float
    #: the first decoded frame after it; None when media never came back
    to_ms: float | None = None


class TransportEventEntry(_Model):
    """One side's ICE/DTLS state during the media phase: ``ice-disconnected``, ``dtls-closed``, ..."""

    side: str
    state: str
    at_ms: float


class LegInfo(_Model):
    """Which implementation played a role: callops' headless aiortc peer, or a real Chromium."""

    kind: Literal["aiortc", "chromium"]
    version: str | None = None
    #: Chromium: process start to DevTools ready
    launch_to_ready_ms: float | None = None
    #: Chromium: the page's console messages and exceptions (the last ones)
    console: list[str] = Field(default_factory=list)


class CallStats(_Model):
    duration_s: float = 0.0
    media: list[DirectionStats] = Field(default_factory=list)
    audio_quality: list[AudioQuality] = Field(default_factory=list)


class CallReport(_Model):
    """One call along the whole invitation path. Printed by ``callops call --json``."""

    ok: bool
    scenario: str
    mode: CallMode
    policy: IcePolicy = "all"
    outcome: Outcome
    service_id: str | None = None
    #: phase -> ms from the invitation (see :data:`callops.orchestrator.call.timeline.PHASES`)
    timeline_ms: dict[str, float] = Field(default_factory=dict)
    #: the selected pair as the consumer sees it (None when ICE never connected)
    selected_pair: SelectedPair | None = None
    #: the selected pair as the agent sees it
    agent_selected_pair: SelectedPair | None = None
    #: mid-call health (docs/call.md): gaps in decoded media, ICE/DTLS trouble, on the timeline
    interruptions: list[InterruptionEntry] = Field(default_factory=list)
    transport_events: list[TransportEventEntry] = Field(default_factory=list)
    errors: list[ErrorEntry] = Field(default_factory=list)
    stats: CallStats = Field(default_factory=CallStats)
    #: time from ``resumed`` to media flowing again (scenario ``resume``)
    resume_to_media_ms: float | None = None
    ice_servers: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    #: what the scenario expected, and why ``ok`` is False when it is
    expected_outcome: Outcome = "connected"
    failure: str | None = None
    #: role -> the leg that played it (``{"consumer": {"kind": "chromium", "version": ...}}``)
    legs: dict[str, LegInfo] = Field(default_factory=dict)


__all__ = [
    "SCENARIOS",
    "AudioQuality",
    "CallMode",
    "CallReport",
    "CallStats",
    "CandidateInfo",
    "CandidateType",
    "DirectionStats",
    "ErrorEntry",
    "IcePolicy",
    "InterruptionEntry",
    "LegInfo",
    "Outcome",
    "Scenario",
    "SelectedPair",
    "TransportEventEntry",
]
