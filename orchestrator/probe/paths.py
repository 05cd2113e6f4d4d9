"""Two-site probe: path classes, the signalling messages, and the two-site verdict (pure).

``callops probe peer`` (site A) runs one full ICE negotiation per path class against
``callops probe serve`` (site B); this module holds what both sides agree on and the decision.

Path classes (what site A gathers and signals; site B answers as noted):

* ``host``: host candidates only, on both sides -- direct between the two networks' own addresses.
* ``srflx``: server-reflexive candidates (STUN), plus host candidates on public addresses (a site
  without NAT has no separate reflexive address), on both sides -- hole punching through NATs.
* ``relay-udp``, ``relay-tcp``, ``relay-tls``: site A gathers only a relay candidate, reaching its
  TURN server over that transport; site B answers with everything it has (host, reflexive and
  a relay over its own first TURN URI), as a browser would. The selected pair says what was used.

The verdict is decided in :func:`callops.orchestrator.probe.verdict.decide_two_site`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, TypeAdapter

from callops.orchestrator.call.report import InterruptionEntry, TransportEventEntry
from callops.orchestrator.probe.verdict import TwoSiteVerdict
from callops.turn.results import BandwidthData

PathClass = Literal["host", "srflx", "relay-udp", "relay-tcp", "relay-tls"]
PATH_CLASSES: tuple[PathClass, ...] = ("host", "srflx", "relay-udp", "relay-tcp", "relay-tls")

#: Close codes of the signalling websocket.
CLOSE_UNAUTHORIZED = 4401
CLOSE_TOO_MANY_SESSIONS = 4429
MAX_MESSAGE_BYTES = 64 * 1024


# -- signalling messages --------------------------------------------------------------------------


class PathOffer(BaseModel):
    """A -> B: start an ICE negotiation of ``path``."""

    type: Literal["offer"] = "offer"
    session: str = Field(min_length=1, max_length=64)
    path: PathClass
    ufrag: str = Field(min_length=1, max_length=256)
    pwd: str = Field(min_length=1, max_length=256)
    candidates: list[str] = Field(max_length=64)


class PathAnswer(BaseModel):
    """B -> A: B's ICE credentials and candidates for ``session``."""

    type: Literal["answer"] = "answer"
    session: str
    ufrag: str
    pwd: str
    candidates: list[str] = Field(max_length=64)


class CallSessionRequest(BaseModel):
    """A -> B: start a real headless call (aiortc, media, ``iceTransportPolicy=all``); B offers."""

    type: Literal["call-request"] = "call-request"
    session: str = Field(min_length=1, max_length=64)


class CallOffer(BaseModel):
    type: Literal["call-offer"] = "call-offer"
    session: str
    sdp: str = Field(max_length=MAX_MESSAGE_BYTES)


class CallAnswer(BaseModel):
    type: Literal["call-answer"] = "call-answer"
    session: str
    sdp: str = Field(max_length=MAX_MESSAGE_BYTES)


class CallMedia(BaseModel):
    """B -> A: whether B's side of the call ``session`` decoded media from A (media both ways)."""

    type: Literal["call-media"] = "call-media"
    session: str
    media: bool


class SessionBye(BaseModel):
    """Either side: ``session`` is over; free its resources."""

    type: Literal["bye"] = "bye"
    session: str


class ErrorMessage(BaseModel):
    type: Literal["error"] = "error"
    session: str | None = None
    message: str


AnyMessage = (
    PathOffer
    | PathAnswer
    | CallSessionRequest
    | CallOffer
    | CallAnswer
    | CallMedia
    | SessionBye
    | ErrorMessage
)
MESSAGE: TypeAdapter[AnyMessage] = TypeAdapter(Annotated[AnyMessage, Field(discriminator="type")])


def parse_message(text: str | bytes) -> AnyMessage:
    """One signalling message; :class:`pydantic.ValidationError` when malformed (callers translate)."""
    return MESSAGE.validate_json(text)


# -- results and verdict --------------------------------------------------------------------------


class CandidateSummary(BaseModel):
    type: str
    address: str
    protocol: str = "udp"


class PathResult(BaseModel):
    """One path class: did ICE connect, over which pair, with what RTT."""

    path: PathClass
    connected: bool
    duration_ms: float
    local: CandidateSummary | None = None
    remote: CandidateSummary | None = None
    rtt_ms: float | None = None
    #: candidates site A signalled (0: the class could not even gather, e.g. TURN unreachable)
    local_candidates: int = 0
    remote_candidates: int = 0
    error: str | None = None
    #: ``--bandwidth``: a flow over this path (``srflx``, else ``host``), echoed by site B
    bandwidth: BandwidthData | None = None
    #: the flow's verdict and numbers in one sentence (``ok``/``warn``/``fail``)
    bandwidth_status: str | None = None
    bandwidth_detail: str | None = None


class TwoSiteCallResult(BaseModel):
    """The real headless call (``--call``): connected, media both ways, the selected pair."""

    connected: bool
    #: media both ways: ``media_received`` and ``media_sent`` (what site B reported it decoded)
    media: bool
    duration_ms: float
    #: site A decoded frames from site B
    media_received: bool = False
    #: site B decoded frames from site A (its ``call-media`` message)
    media_sent: bool = False
    local: CandidateSummary | None = None
    remote: CandidateSummary | None = None
    #: the TURN transport of a relayed local candidate (``udp``, ``tcp``, ``tls``)
    relay_protocol: str | None = None
    #: seconds of watched media after both sides decoded (docs/call.md "Mid-call health")
    media_s: float = 0.0
    #: the media stopped for good while watched (``error`` says how)
    dropped: bool = False
    interruptions: list[InterruptionEntry] = Field(default_factory=list)
    transport_events: list[TransportEventEntry] = Field(default_factory=list)
    error: str | None = None


class TwoSiteReport(BaseModel):
    """``callops probe peer --json``."""

    verdict: TwoSiteVerdict
    relay_transports: list[str]
    paths: list[PathResult]
    call: TwoSiteCallResult | None = None
    server: str
    exit_code: int
    duration_ms: float


__all__ = [
    "CLOSE_TOO_MANY_SESSIONS",
    "CLOSE_UNAUTHORIZED",
    "MAX_MESSAGE_BYTES",
    "PATH_CLASSES",
    "AnyMessage",
    "CallAnswer",
    "CallMedia",
    "CallOffer",
    "CallSessionRequest",
    "CandidateSummary",
    "ErrorMessage",
    "PathAnswer",
    "PathClass",
    "PathOffer",
    "PathResult",
    "SessionBye",
    "TwoSiteCallResult",
    "TwoSiteReport",
    "TwoSiteVerdict",
    "parse_message",
]
