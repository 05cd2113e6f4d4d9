"""A headless WebRTC peer (aiortc): generated media out, verified media in, ICE facts for the report.

Design notes:

* ``iceTransportPolicy``: aiortc 1.16 supports ``relay`` natively (``RTCConfiguration`` passes it
  to aioice, which then gathers no host/srflx candidates and ignores mDNS remote candidates), so
  callops uses it as is.
* ``iceServers`` is always passed explicitly (possibly empty): aiortc's default would send STUN
  to a public Google server.
* Host gathering is restricted to ``host_addresses`` (default ``127.0.0.1``): aioice otherwise
  binds a socket on every interface address and *excludes* 127.0.0.1, which is slow and noisy and
  leaves loopback-only runs without a candidate. The restriction replaces the gathering method of
  each aioice ``Connection`` of this peer (per instance, nothing global is patched); srflx and
  relay candidates are still gathered from the configured STUN/TURN servers. ``host_addresses=None``
  gathers on all interfaces like a browser.
* Early check retransmissions (``check_retransmits``): through TURN the first check of one side
  is usually dropped by the other side's allocation, and aioice's first retransmission comes only
  after 500 ms; a few early resends of the same transaction cut relayed ICE from ~510 ms to ~35 ms.
* One transport for everything (``bundlePolicy=max-bundle``); codecs are forced with
  ``setCodecPreferences``: Opus for audio, VP8 for video.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, Literal

from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.rtcconfiguration import RTCBundlePolicy, RTCIceTransportPolicy

from callops.errors import LocalProtocolError, RemoteProtocolError, UsageError
from callops.orchestrator.call.media import EncodedToneTrack, MediaSink, PatternTrack, ToneTrack
from callops.orchestrator.call.pair import ice_connection, selected_pair
from callops.orchestrator.call.report import CallMode, IcePolicy, LegInfo, SelectedPair
from callops.secret import Secret

log = logging.getLogger(__name__)

AUDIO_CLOCK = 48_000
VIDEO_CLOCK = 90_000

PhaseCallback = Callable[[str, float], None]


@dataclass(frozen=True)
class IceServer:
    """One STUN/TURN server as the peers get it (``credential`` never printed)."""

    url: str
    username: str | None = None
    credential: Secret | None = None

    def to_aiortc(self) -> RTCIceServer:
        if self.credential is None:
            return RTCIceServer(urls=self.url)
        return RTCIceServer(urls=self.url, username=self.username, credential=self.credential.reveal())


@dataclass
class PeerConfig:
    """How a headless peer connects."""

    ice_servers: Sequence[IceServer] = ()
    policy: IcePolicy = "all"
    #: host candidate addresses; None gathers on every interface (browser-like)
    host_addresses: Sequence[str] | None = ("127.0.0.1",)
    video_size: tuple[int, int] = (320, 240)
    #: successive waits (s) before early resends of an unanswered ICE check; () for RFC timing only
    check_retransmits: tuple[float, ...] = (0.03, 0.06, 0.1, 0.2)
    #: send the tone as Opus packets encoded once (cheap senders for load tests) instead of
    #: encoding every 20 ms frame
    pre_encoded_audio: bool = False


@dataclass
class KindStats:
    """Raw per-kind figures from one peer's getStats."""

    packets_sent: int = 0
    bytes_sent: int = 0
    packets_received: int = 0
    packets_lost: int = 0
    jitter_ms: float = 0.0
    rtt_ms: float | None = None
    fraction_lost: float | None = None
    frames_decoded: int = 0
    #: the remote sender's packet count from its last RTCP sender report (remote-outbound-rtp)
    remote_packets_sent: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _early_retransmits(protocol: Any, delays: Sequence[float]) -> None:
    """Resend an unanswered ICE check after each successive wait in ``delays`` (seconds).

    The first check towards a relayed candidate is usually dropped by the remote's TURN server
    (its permission for us is created a moment later), and aioice's first retransmission comes
    after 500 ms (RFC 5389 RTO). A few early resends of the *same* transaction (same id and
    integrity) recover in tens of milliseconds; any answer ends the transaction as usual.
    """
    original = protocol.request

    async def request(
        message: Any,
        addr: tuple[str, int],
        integrity_key: bytes | None = None,
        retransmissions: int | None = None,
    ) -> Any:
        task = asyncio.ensure_future(original(message, addr, integrity_key, retransmissions))
        try:
            for delay in delays:
                done, _ = await asyncio.wait({task}, timeout=delay)
                if done:
                    break
                with contextlib.suppress(Exception):
                    protocol.send_stun(message, addr)
            return await task
        finally:
            if not task.done():
                task.cancel()

    protocol.request = request


def _tune_gathering(
    connection: Any, addresses: Sequence[str] | None, retransmit_delays: Sequence[float]
) -> None:
    """Replace the gathering method of one aioice ``Connection`` (per instance, nothing global).

    Mirrors ``aioice.Connection.gather_candidates`` (0.9 .. 0.13): host candidates only on
    ``addresses`` (None: every interface, as aioice does), then :func:`_early_retransmits` on every
    protocol gathered (host, srflx and relay candidates alike).
    """
    from aioice import TransportPolicy
    from aioice.ice import get_host_addresses

    async def gather_candidates() -> None:
        if connection._local_candidates_start:
            return
        connection._local_candidates_start = True
        if connection._transport_policy != TransportPolicy.ALL:
            hosts: list[str] = []
        elif addresses is None:
            hosts = get_host_addresses(use_ipv4=connection._use_ipv4, use_ipv6=connection._use_ipv6)
        else:
            hosts = list(addresses)
        for component in sorted(connection._components):
            connection._local_candidates += await connection.get_component_candidates(
                component=component, addresses=hosts
            )
        if retransmit_delays:
            for protocol in connection._protocols:
                _early_retransmits(protocol, retransmit_delays)
        connection._local_candidates_end = True

    connection.gather_candidates = gather_candidates


@dataclass(eq=False)
class HeadlessPeer:
    """One side of a call. ``role`` is ``agent`` (offers) or ``consumer`` (answers)."""

    role: Literal["agent", "consumer"]
    mode: CallMode
    config: PeerConfig
    _: KW_ONLY
    on_phase: PhaseCallback | None = None
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        self.sinks: dict[str, MediaSink] = {}
        self.connected = asyncio.Event()
        self.failed = asyncio.Event()
        self.closed = False
        self._tracks: list[Any] = []
        self._sink_added = asyncio.Event()
        rtc_config = RTCConfiguration(
            iceServers=[server.to_aiortc() for server in self.config.ice_servers],
            iceTransportPolicy=RTCIceTransportPolicy.RELAY
            if self.config.policy == "relay"
            else RTCIceTransportPolicy.ALL,
            bundlePolicy=RTCBundlePolicy.MAX_BUNDLE,
        )
        self.pc = RTCPeerConnection(rtc_config)
        self.pc.on("iceconnectionstatechange", self._ice_state_changed)
        self.pc.on("connectionstatechange", self._connection_state_changed)
        self.pc.on("track", self._track_received)
        self._add_media()

    # -- state -------------------------------------------------------------------------------

    def _phase(self, phase: str) -> None:
        log.debug("%s peer: %s", self.role, phase)
        if self.on_phase is not None:
            self.on_phase(phase, self.clock())

    def _ice_state_changed(self) -> None:
        state = self.pc.iceConnectionState
        log.debug("%s peer: iceConnectionState %s", self.role, state)
        if state == "checking":
            self._phase("ice_checking")
        elif state in ("completed", "connected"):
            self._phase("ice_connected")
        elif state == "failed":
            self.failed.set()

    def _connection_state_changed(self) -> None:
        state = self.pc.connectionState
        log.debug("%s peer: connectionState %s", self.role, state)
        if state == "connected":
            self._phase("dtls_connected")
            self.connected.set()
        elif state == "failed":
            self.failed.set()

    def _track_received(self, track: Any) -> None:
        sink = MediaSink(track, on_first=self._first_frame, clock=self.clock)
        self.sinks[track.kind] = sink
        sink.start()
        self._sink_added.set()

    @property
    def kinds(self) -> list[str]:
        """The media kinds of this call's mode."""
        return ["audio"] if self.mode == "VOICE_CALL" else ["audio", "video"]

    async def wait_media(self, frames: int = 1) -> None:
        """Return once every kind of the mode has decoded ``frames`` frames (bound it by the caller)."""
        while not all(kind in self.sinks for kind in self.kinds):
            self._sink_added.clear()
            await self._sink_added.wait()
        for kind in self.kinds:
            await self.sinks[kind].wait_frames(frames)

    def _first_frame(self, kind: str, now: float) -> None:
        if self.on_phase is not None:
            self.on_phase(f"{self.role}_first_{kind}", now)

    # -- media -------------------------------------------------------------------------------

    def _add_media(self) -> None:
        for kind in self.kinds:
            track: Any
            if kind == "video":
                track = PatternTrack(*self.config.video_size)
            elif self.config.pre_encoded_audio:
                track = EncodedToneTrack()
            else:
                track = ToneTrack()
            self._tracks.append(track)
            transceiver = self.pc.addTransceiver(track, direction="sendrecv")
            wanted = "audio/opus" if kind == "audio" else "video/VP8"
            capabilities = RTCRtpSender.getCapabilities(kind)
            codecs = [c for c in capabilities.codecs if c.mimeType.lower() == wanted.lower()]
            if not codecs:
                raise LocalProtocolError(f"aiortc has no {wanted} codec")
            transceiver.setCodecPreferences(codecs)

    def _restrict_gathering(self) -> None:
        for transceiver in self.pc.getTransceivers():
            connection = getattr(
                getattr(transceiver.receiver.transport, "transport", None), "_connection", None
            )
            if connection is not None and not connection._local_candidates_start:
                _tune_gathering(connection, self.config.host_addresses, self.config.check_retransmits)

    # -- signalling ----------------------------------------------------------------------------

    async def create_offer(self) -> str:
        """Gather candidates and return the complete offer SDP (no trickle: candidates inside)."""
        return await self._describe_local("offer")

    async def accept_offer(self, sdp: str) -> str:
        """Apply a remote offer, gather, and return the complete answer SDP."""
        await self._apply_remote(sdp, "offer")
        return await self._describe_local("answer")

    async def accept_answer(self, sdp: str) -> None:
        await self._apply_remote(sdp, "answer")

    async def _apply_remote(self, sdp: str, kind: Literal["offer", "answer"]) -> None:
        try:
            await self.pc.setRemoteDescription(
                RTCSessionDescription(sdp=spread_bundled_candidates(sdp), type=kind)
            )
        except (ValueError, KeyError, AttributeError) as exc:
            raise RemoteProtocolError(f"{self.role}: malformed {kind} SDP: {exc}") from exc

    async def _describe_local(self, kind: Literal["offer", "answer"]) -> str:
        """Gather candidates for the local offer or answer; its complete SDP."""
        self._restrict_gathering()
        create = self.pc.createOffer if kind == "offer" else self.pc.createAnswer
        try:
            await self.pc.setLocalDescription(await create())
        except (OSError, ValueError) as exc:
            raise LocalProtocolError(f"{self.role}: cannot create an {kind}: {exc}") from exc
        return str(self.pc.localDescription.sdp)

    async def wait_connected(self, within: float) -> bool:
        """Wait until DTLS is connected; False when ICE/DTLS failed or ``timeout`` passed first.

        aioice never reports failure while it has no candidate pair at all (e.g. a relay-only peer
        whose TURN allocation was refused), so this explicit ICE timeout is what bounds a call.
        """
        waiters = [asyncio.ensure_future(self.connected.wait()), asyncio.ensure_future(self.failed.wait())]
        try:
            await asyncio.wait(waiters, timeout=within, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
        return self.connected.is_set() and not self.failed.is_set()

    # -- facts -------------------------------------------------------------------------------

    def selected_pair(self) -> SelectedPair | None:
        return selected_pair(self.pc)

    def local_candidate_types(self) -> list[str]:
        connection = ice_connection(self.pc)
        if connection is None:
            return []
        return sorted({str(c.type) for c in connection.local_candidates})

    async def kind_stats(self) -> dict[str, KindStats]:
        """getStats, reduced to per-kind figures (``jitter`` converted from RTP units to ms)."""
        result: dict[str, KindStats] = {}
        if self.closed:
            return result
        try:
            report = await self.pc.getStats()
        except Exception as exc:  # aiortc raises assorted errors on half-closed transports
            log.debug("%s peer: getStats failed: %s", self.role, exc)
            return result
        for stats in report.values():
            kind = getattr(stats, "kind", None)
            if kind not in ("audio", "video"):
                continue
            entry = result.setdefault(kind, KindStats())
            clock = AUDIO_CLOCK if kind == "audio" else VIDEO_CLOCK
            if stats.type == "outbound-rtp":
                entry.packets_sent += stats.packetsSent
                entry.bytes_sent += stats.bytesSent
            elif stats.type == "inbound-rtp":
                entry.packets_received += stats.packetsReceived
                entry.packets_lost += max(0, stats.packetsLost)
                entry.jitter_ms = max(entry.jitter_ms, stats.jitter * 1000.0 / clock)
            elif stats.type == "remote-outbound-rtp":
                entry.remote_packets_sent = (entry.remote_packets_sent or 0) + stats.packetsSent
            elif stats.type == "remote-inbound-rtp":
                if stats.roundTripTime is not None:
                    entry.rtt_ms = round(stats.roundTripTime * 1000.0, 2)
                entry.fraction_lost = stats.fractionLost
        for kind, sink in self.sinks.items():
            result.setdefault(kind, KindStats()).frames_decoded = sink.frames
        return result

    def health_sample(self) -> tuple[dict[str, int], str, str]:
        """Decoded frames per received kind, ICE state, connection (DTLS) state: for the health poller."""
        frames = {kind: sink.frames for kind, sink in self.sinks.items()}
        return frames, str(self.pc.iceConnectionState), str(self.pc.connectionState)

    # -- teardown ----------------------------------------------------------------------------

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for sink in list(self.sinks.values()):
            await sink.stop()
        for track in self._tracks:
            track.stop()
        with contextlib.suppress(Exception):
            await self.pc.close()


# -- browsers: trickled candidates, aiortc #1437, the diagnosis of an ICE failure ------------------


def spread_bundled_candidates(sdp: str) -> str:
    """Copy every candidate of a BUNDLE group into each of its m-sections (aiortc issue #1437).

    aiortc 1.16's ``setRemoteDescription`` keys the remote candidates by ICE transport, so a
    bundled transport (shared by every m-section) keeps only the candidates of the *last*
    m-section. Browsers put a bundled transport's candidates in the first m-section only, which
    leaves aiortc with zero remote candidates. With the union in each bundled m-section, whichever
    one aiortc applies last holds them all (aioice ignores a candidate it already has).
    ``a=end-of-candidates`` is spread the same way. SDP without a BUNDLE group is returned as is.
    """
    newline = "\r\n" if "\r\n" in sdp else "\n"
    lines = sdp.split(newline)
    trailing = lines and lines[-1] == ""
    if trailing:
        lines = lines[:-1]
    starts = [i for i, line in enumerate(lines) if line.startswith("m=")]
    if not starts:
        return sdp
    session, sections = (
        lines[: starts[0]],
        [lines[a:b] for a, b in zip(starts, [*starts[1:], len(lines)], strict=True)],
    )
    bundle: set[str] = set()
    for line in session:
        if line.startswith("a=group:BUNDLE "):
            bundle.update(line.split()[1:])
    if not bundle:
        return sdp

    def mid(section: list[str]) -> str | None:
        return next((line[6:].strip() for line in section if line.startswith("a=mid:")), None)

    bundled = [section for section in sections if mid(section) in bundle]
    union: list[str] = []
    for section in bundled:
        union += [line for line in section if line.startswith("a=candidate:") and line not in union]
    end = any("a=end-of-candidates" in section for section in bundled)
    out = list(session)
    for section in sections:
        if mid(section) in bundle:
            kept = [line for line in section if not line.startswith(("a=candidate:", "a=end-of-candidates"))]
            out += kept + union + (["a=end-of-candidates"] if end else [])
        else:
            out += section
    return newline.join(out) + (newline if trailing else "")


def aiortc_leg() -> LegInfo:
    """The report's description of this leg: callops' headless aiortc peer."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return LegInfo(kind="aiortc", version=version("aiortc"))
    except PackageNotFoundError:
        return LegInfo(kind="aiortc")


def _ice_transports(peer: HeadlessPeer) -> list[Any]:
    transports: list[Any] = []
    for transceiver in peer.pc.getTransceivers():
        transport = getattr(transceiver.receiver.transport, "transport", None)
        if transport is not None and transport not in transports:
            transports.append(transport)
    return transports


async def add_remote_candidate(
    peer: HeadlessPeer, candidate: str, sdp_mid: str | None, sdp_mline_index: int | None
) -> bool:
    """Apply one trickled candidate (``candidate:...`` as a browser's ``RTCIceCandidate.candidate``).

    With one shared (bundled) transport the candidate goes to it whatever its ``sdpMid``: aiortc's
    ``addIceCandidate`` would drop a candidate of a bundled m-section (#1437). False when the
    candidate is not one aiortc can use (unparseable); TCP candidates are kept by aioice but never
    paired (aioice speaks ICE over UDP only).
    """
    from aiortc.sdp import candidate_from_sdp

    text = candidate.strip()
    if text.startswith("a="):
        text = text[2:]
    if text.startswith("candidate:"):
        text = text[len("candidate:") :]
    try:
        parsed = candidate_from_sdp(text)
    except (AssertionError, ValueError, IndexError) as exc:  # aiortc asserts on a short candidate
        log.debug("%s peer: ignored trickled candidate %r: %s", peer.role, candidate, exc)
        return False
    parsed.sdpMid = sdp_mid
    parsed.sdpMLineIndex = sdp_mline_index
    transports = _ice_transports(peer)
    if len(transports) == 1:
        await transports[0].addRemoteCandidate(parsed)
    else:
        if sdp_mid is None and sdp_mline_index is None:
            parsed.sdpMLineIndex = 0
        await peer.pc.addIceCandidate(parsed)
    return True


async def end_of_remote_candidates(peer: HeadlessPeer) -> None:
    """The remote side has trickled all its candidates (aioice may now report an ICE failure)."""
    for transport in _ice_transports(peer):
        await transport.addRemoteCandidate(None)


def remote_candidate_count(peer: HeadlessPeer) -> int:
    """How many remote candidates the other side signalled (SDP and trickled; not the peer-reflexive
    ones aioice learns from incoming checks)."""
    total = 0
    for transport in _ice_transports(peer):
        connection = getattr(transport, "_connection", None)
        total += sum(1 for c in getattr(connection, "remote_candidates", []) or [] if c.type != "prflx")
    return total


def ice_failure_reason(peer: HeadlessPeer, within: float) -> tuple[str, str]:
    """``(message, hint)`` for a peer that did not connect within ``within`` seconds.

    Zero remote candidates is the other side's (or the signalling's) fault, not the ICE servers'.
    """
    types = ", ".join(peer.local_candidate_types()) or "none"
    remote = remote_candidate_count(peer)
    if remote == 0:
        return (
            f"{peer.role}: the other side sent no ICE candidates within {within:g} s "
            f"(none in its SDP, none trickled; local candidates: {types})",
            "check the other side's ICE servers and policy, and that its candidates reach this side",
        )
    return (
        f"{peer.role}: no working candidate pair within {within:g} s "
        f"(policy {peer.config.policy}, local candidates: {types}, remote candidates: {remote})",
        "check the ICE servers this side was given and that the other side runs",
    )


def check_ice_servers(servers: Sequence[IceServer]) -> None:
    """Reject URLs aiortc cannot use, naming the URL and the fix."""
    from aiortc.rtcicetransport import parse_stun_turn_uri

    for server in servers:
        try:
            parsed = parse_stun_turn_uri(server.url)
        except ValueError as exc:
            raise UsageError(
                f"ICE server {server.url!r}: {exc}",
                hint="use stun:HOST[:PORT] or turn[s]:HOST[:PORT][?transport=udp|tcp]",
            ) from None
        if parsed["scheme"] in ("turn", "turns") and (server.username is None or server.credential is None):
            raise UsageError(
                f"TURN server {server.url}: no credentials",
                hint="give --secret-file or --user/--password-file",
            )


__all__ = [
    "HeadlessPeer",
    "IceServer",
    "KindStats",
    "PeerConfig",
    "add_remote_candidate",
    "aiortc_leg",
    "check_ice_servers",
    "end_of_remote_candidates",
    "ice_failure_reason",
    "remote_candidate_count",
    "spread_bundled_candidates",
]
