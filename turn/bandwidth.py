"""Bandwidth and quality through a TURN relay: a call-shaped flow, what got through, and the floors.

One flow at the target rate goes from this site's allocation through the relay to a second
allocation on the same server (or a ``peer`` address), for a few seconds: voice as packets every
20 ms (Opus's frame interval), video as MTU-sized bursts at frame intervals with key frames
(:mod:`callops.turn.traffic` profiles, schedule, payload codec and receiver statistics). Every
byte of that flow crosses this site's link twice -- up to the relay and down from it -- so one flow
at R loads the link as a call does that sends R and receives R. The receiving allocation sends a
small feedback packet every 20 ms carrying echoed timestamps, which gives the round-trip time.

:class:`FlowMeter` is the sans-I/O part (packets in and out, time passed in);
:func:`judge` decides pass / warn (degraded: below the target but above the floor) / fail;
:func:`bandwidth_test` is the asyncio adapter, bounded in rate (:data:`MAX_KBPS` unless asked)
and in time (``duration_s`` plus a short drain, within the probe's timeout).

Wrapping of :mod:`callops.turn.traffic` (not edited here): its ``audio`` profiles send one packet
per frame, so a voice-cadence flow above one MTU per 20 ms (LivePerson's 600 kbit/s) is described
as a burst profile at 50 frames/s without key frames (:func:`flow_profile`).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from callops.errors import UsageError
from callops.turn.results import (
    BandwidthData,
    BandwidthResult,
    FlowStats,
    ProbeData,
    ProbeStatus,
    RelayTransport,
)
from callops.turn.stun import Address
from callops.turn.traffic import (
    DEFAULT_MTU_PAYLOAD,
    HEADER_SIZE,
    MAGIC,
    Direction,
    Histogram,
    MediaProfile,
    PacketSchedule,
    ReceiverStats,
    pack_into,
    to_us,
    unpack_fields,
    video_profile,
)
from callops.turn.uri import ServerUri, parse_uri

if TYPE_CHECKING:
    from callops.turn.allocation import Allocation

Media = Literal["voice", "video"]

#: the highest rate a test sends unless ``allow_above`` (a probe must not flood a customer's link)
MAX_KBPS = 4000.0
MAX_DURATION_S = 10.0
DEFAULT_DURATION_S = 2.5
#: after the last packet: how long to wait for stragglers (queues behind a rate limit drain)
DRAIN_S = 0.4
#: loss above this fails a flow whatever its rate
DEFAULT_MAX_LOSS = 0.05
#: achieved / target at or above which the target counts as met (pacing and edges cost a little);
#: the floor gets no such allowance
MET = 0.9
#: feedback packets (receiver -> sender, for RTT): one per 20 ms, small
FEEDBACK_INTERVAL_S = 0.02
FEEDBACK_BYTES = 64
CALL_ID = 0x5EED


def flow_profile(media: Media, kbps: float) -> MediaProfile:
    """The traffic profile of a flow at ``kbps``: voice every 20 ms (no key frames), video at 30 fps."""
    bps = int(kbps * 1000)
    if media == "voice":
        per_frame = bps / 8 / 50
        if per_frame > DEFAULT_MTU_PAYLOAD:
            # frames split into packets of up to one MTU (no key frames)
            sizes = (max(HEADER_SIZE, 100), DEFAULT_MTU_PAYLOAD)
        else:
            # one packet of the frame's size: random sizes below it would send less than asked
            sizes = (max(HEADER_SIZE, int(per_frame)), max(HEADER_SIZE, int(per_frame)))
        return MediaProfile(
            name="voice",
            kind="video" if per_frame > DEFAULT_MTU_PAYLOAD else "audio",
            fps=50,
            bitrate_bps=bps,
            min_packet=sizes[0],
            max_packet=sizes[1],
        )
    return video_profile(bps, 30)


@dataclass(frozen=True)
class FlowSpec:
    """What to send and what it must achieve."""

    media: Media
    #: the rate sent (and asked for)
    target_kbps: float
    #: below this the item fails; between it and the target it is degraded (``warn``)
    floor_kbps: float
    duration_s: float = DEFAULT_DURATION_S
    max_loss: float = DEFAULT_MAX_LOSS

    def check(self, *, allow_above: bool = False) -> FlowSpec:
        if not 0 < self.floor_kbps <= self.target_kbps:
            raise UsageError(
                f"bandwidth {self.media}: floor {self.floor_kbps} kbit/s must be > 0 and <= the target "
                f"{self.target_kbps} kbit/s",
                hint="fix the profile's kbps/floor_kbps",
            )
        if self.target_kbps > MAX_KBPS and not allow_above:
            raise UsageError(
                f"bandwidth {self.media}: {self.target_kbps} kbit/s is above the {MAX_KBPS:.0f} kbit/s bound",
                hint="lower the profile's kbps (a probe must not flood the link)",
            )
        if not 0.2 <= self.duration_s <= MAX_DURATION_S:
            raise UsageError(
                f"bandwidth {self.media}: duration {self.duration_s} s is outside 0.2-{MAX_DURATION_S:.0f} s",
                hint="fix the profile's duration_s",
            )
        return self


class FlowMeter:
    """Both ends of one flow and its feedback, sans I/O: a plain class on the packet path.

    Sender side: :meth:`due` (packets to send now), :meth:`on_feedback`. Receiver side:
    :meth:`on_packet`, :meth:`feedback`. Times are seconds of one monotonic clock.
    """

    __slots__ = ("_fb_seq", "_seq", "feedback_stats", "flow", "schedule", "sent", "sent_bytes", "start")

    def __init__(self, profile: MediaProfile, start: float) -> None:
        self.schedule = PacketSchedule(profile, start, max_lag_s=0.1)
        self.start = start
        self.flow = ReceiverStats()
        self.feedback_stats = ReceiverStats()
        self.sent = 0
        self.sent_bytes = 0
        self._seq = 0
        self._fb_seq = 0

    def due(self, now: float) -> list[bytes]:
        """The packets of every frame due at ``now`` (sender -> receiver)."""
        out = []
        echo_us, delay_us = self.feedback_stats.echo(to_us(now))
        for size in self.schedule.due(now):
            buffer = bytearray(size)
            pack_into(buffer, 0, CALL_ID, Direction.A_TO_B, self._seq, to_us(now), echo_us, delay_us)
            self._seq += 1
            out.append(bytes(buffer))
        self.sent += len(out)
        self.sent_bytes += sum(len(p) for p in out)
        return out

    def on_packet(self, data: bytes, now: float) -> None:
        """A flow packet arrived at the receiver (anything else is ignored)."""
        if (fields := _going(data, Direction.A_TO_B)) is not None:
            sequence, sent_us, _, _ = fields
            self.flow.on_packet(sequence, sent_us, len(data), to_us(now))

    def feedback(self, now: float) -> bytes:
        """One feedback packet (receiver -> sender) echoing the newest flow send time."""
        echo_us, delay_us = self.flow.echo(to_us(now))
        buffer = bytearray(FEEDBACK_BYTES)
        pack_into(buffer, 0, CALL_ID, Direction.B_TO_A, self._fb_seq, to_us(now), echo_us, delay_us)
        self._fb_seq += 1
        return bytes(buffer)

    def on_feedback(self, data: bytes, now: float) -> None:
        """A feedback packet arrived at the sender: an RTT sample for the flow."""
        if (fields := _going(data, Direction.B_TO_A)) is not None:
            sequence, sent_us, echo_us, delay_us = fields
            self.feedback_stats.on_packet(sequence, sent_us, len(data), to_us(now))
            self.flow.on_echo(echo_us, delay_us, to_us(now))

    def stats(self, duration_s: float) -> tuple[FlowStats, FlowStats]:
        """``(flow, feedback)`` over a sending time of ``duration_s`` seconds."""
        flow = self.flow.summary(self.sent)
        feedback = self.feedback_stats.summary(self._fb_seq)

        def direction(sent: int, stats: ReceiverStats, jitter_ms: float, reordered: int) -> FlowStats:
            lost = max(0, sent - stats.packets)
            return FlowStats(
                sent=sent,
                received=stats.packets,
                loss=round(lost / sent, 4) if sent else 0.0,
                achieved_kbps=round(stats.bytes * 8 / 1000 / duration_s, 1),
                jitter_ms=jitter_ms,
                reordered=reordered,
            )

        return (
            direction(self.sent, self.flow, flow.jitter_ms, flow.reordered),
            direction(self._fb_seq, self.feedback_stats, feedback.jitter_ms, feedback.reordered),
        )


def _going(data: bytes, direction: Direction) -> tuple[int, int, int, int] | None:
    """``(sequence, sent_us, echo_us, echo_delay_us)`` of a packet going ``direction``; ``None`` for
    anything else (another direction, not a flow packet)."""
    try:
        _, going, sequence, sent_us, echo_us, delay_us = unpack_fields(data)
    except ValueError:
        return None
    return (sequence, sent_us, echo_us, delay_us) if going == direction else None


def _ms(us: float | None) -> float | None:
    return None if us is None else round(us / 1000, 3)


def judge(spec: FlowSpec, flow: FlowStats) -> tuple[ProbeStatus, str]:
    """pass: the target got through with loss under the limit; warn: degraded (at least the floor);
    fail: below the floor. The sentence names what was asked and what was measured."""
    got = f"{flow.achieved_kbps:.0f} of {spec.target_kbps:.0f} kbit/s got through, loss {flow.loss:.1%}"
    lossy = flow.loss > spec.max_loss
    if flow.achieved_kbps >= MET * spec.target_kbps and not lossy:
        return ProbeStatus.OK, f"{spec.media}: {got}, jitter {flow.jitter_ms:.1f} ms"
    # The floor is a hard minimum (no pacing allowance): a link at the floor's rate is degraded at best.
    if flow.achieved_kbps >= spec.floor_kbps and spec.floor_kbps < spec.target_kbps:
        return ProbeStatus.WARN, (
            f"{spec.media}: degraded -- {got}; {spec.target_kbps:.0f} kbit/s is asked, "
            f"{spec.floor_kbps:.0f} kbit/s is the working minimum"
        )
    why = "too much loss" if lossy and flow.achieved_kbps >= spec.floor_kbps else "too little bandwidth"
    return ProbeStatus.FAIL, (
        f"{spec.media}: {why} -- {got}; it needs {spec.floor_kbps:.0f} kbit/s each way through the relay "
        "(check the site's uplink/downlink capacity and any shaping or QoS limits on UDP)"
    )


async def _pace(
    meter: FlowMeter, send: Callable[[bytes], None], feedback_send: Callable[[bytes], None], stop_at: float
) -> None:
    """Send the flow's frames when due, and feedback every 20 ms, until ``stop_at`` (the asyncio loop)."""
    next_feedback = time.monotonic()
    while (now := time.monotonic()) < stop_at:
        for packet in meter.due(now):
            send(packet)
        if now >= next_feedback:
            feedback_send(meter.feedback(now))
            next_feedback += FEEDBACK_INTERVAL_S
        wake = min(meter.schedule.next_due, next_feedback, stop_at)
        # pacing, not synchronisation: the next frame is due then
        await asyncio.sleep(max(0.0, wake - time.monotonic()))


def _spec_data(spec: FlowSpec, transport: RelayTransport | None = None) -> BandwidthData:
    """What a flow's result says before it runs: the asked-for flow."""
    return BandwidthData(
        media=spec.media,
        target_kbps=spec.target_kbps,
        floor_kbps=spec.floor_kbps,
        duration_s=spec.duration_s,
        transport=transport,
    )


def _verdict(
    spec: FlowSpec,
    base: BandwidthData,
    meter: FlowMeter,
    sent_for: float,
    rtt: Histogram,
    *,
    with_feedback: bool,
) -> tuple[ProbeStatus, str, BandwidthData]:
    """:func:`judge` on what ``meter`` measured over ``sent_for`` seconds; ``rtt`` is the histogram
    (microseconds) the RTT figures come from."""
    flow, feedback = meter.stats(sent_for)
    data = base.model_copy(
        update={
            "duration_s": round(sent_for, 3),
            "packet_bytes": meter.schedule.profile.max_packet,
            "flow": flow,
            "feedback": feedback if with_feedback else None,
            "rtt_ms_p50": _ms(rtt.percentile(50)),
            "rtt_ms_p95": _ms(rtt.percentile(95)),
            "rtt_ms_max": _ms(rtt.max) if rtt.count else None,
        }
    )
    status, detail = judge(spec, flow)
    data.passed = status is ProbeStatus.OK
    return status, detail, data


async def _relay_flow(
    spec: FlowSpec, sender: Allocation, target: Address, echo: Allocation, deadline: float
) -> tuple[FlowMeter, float]:
    """The flow from ``sender`` to ``target`` (``echo``'s relayed address) with feedback back; the
    meter and how long it sent. Stops in time to drain and release before ``deadline``."""
    assert sender.relayed is not None
    back: Address = sender.relayed
    start = time.monotonic()
    meter = FlowMeter(flow_profile(spec.media, spec.target_kbps), start)
    echo.on_data(lambda data, _src: meter.on_packet(data, time.monotonic()))
    sender.on_data(lambda data, _src: meter.on_feedback(data, time.monotonic()))
    try:
        stop_at = min(start + spec.duration_s, deadline - DRAIN_S - 0.3)
        await _pace(meter, lambda p: sender.send(p, target), lambda p: echo.send(p, back), stop_at)
        sent_for = max(0.001, time.monotonic() - start)
        await asyncio.sleep(max(0.0, min(DRAIN_S, deadline - time.monotonic() - 0.3)))
    finally:
        sender.on_data(None)
        echo.on_data(None)
    return meter, sent_for


async def bandwidth_test(
    uri: ServerUri | str,
    username: str | None,
    password: str | None,
    timeout: float,
    spec: FlowSpec,
    *,
    ssl_context: ssl.SSLContext | None = None,
    allow_above: bool = False,
) -> BandwidthResult:
    """One flow of ``spec`` through an allocation on ``uri`` to a second allocation and back (feedback)."""
    from callops.turn.probes import _ssl_context, relay_pair, relay_transport, run_probe

    server_uri = uri if isinstance(uri, ServerUri) else parse_uri(uri)
    spec.check(allow_above=allow_above)
    base = _spec_data(spec, transport=relay_transport(server_uri))

    async def body(deadline: float) -> tuple[ProbeStatus, str, ProbeData]:
        if username is None or password is None:
            return ProbeStatus.SKIPPED, "no TURN credentials given", base
        context = _ssl_context(server_uri, ssl_context, None, False)
        async with relay_pair(server_uri, username, password, deadline, ssl_context=context) as (
            sender,
            target,
            echo,
        ):
            assert echo is not None
            meter, sent_for = await _relay_flow(spec, sender, target, echo, deadline)
        return _verdict(spec, base, meter, sent_for, meter.flow.rtt, with_feedback=True)

    return await run_probe(BandwidthResult, "bandwidth", server_uri, timeout, body, base=base)


def is_flow_packet(data: bytes) -> bool:
    """A packet of a flow (the traffic codec's magic): what an echoing peer sends straight back."""
    return data[:2] == MAGIC


async def echo_flow(
    spec: FlowSpec,
    send: Callable[[bytes], Awaitable[None]],
    recv: Callable[[], Awaitable[bytes]],
    *,
    within: float,
) -> tuple[ProbeStatus, str, BandwidthData]:
    """A flow of ``spec`` over a connection whose far end sends every flow packet back (two sites).

    Peer to peer there is no relay to loop through: the other site echoes, so each site sends R and
    receives R, as in a call; what comes back went both ways (loss compounds, the rate is the
    slower direction's). RTT is the time from sending to getting a packet back (one clock).
    """
    spec.check()
    start = time.monotonic()
    meter = FlowMeter(flow_profile(spec.media, spec.target_kbps), start)

    async def receive() -> None:
        while True:
            data = await recv()
            if is_flow_packet(data):
                meter.on_packet(data, time.monotonic())

    reader = asyncio.create_task(receive())
    try:
        stop_at = start + min(spec.duration_s, max(0.2, within - DRAIN_S))
        while (now := time.monotonic()) < stop_at:
            for packet in meter.due(now):
                await send(packet)
            await asyncio.sleep(max(0.0, min(meter.schedule.next_due, stop_at) - time.monotonic()))
        sent_for = max(0.001, time.monotonic() - start)
        await asyncio.sleep(DRAIN_S)  # pacing the end: stragglers still in flight
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
    # one clock: a packet's "delay" from its send stamp to its echo is the round trip
    return _verdict(spec, _spec_data(spec), meter, sent_for, meter.flow.delay, with_feedback=False)


__all__ = [
    "DEFAULT_DURATION_S",
    "MAX_DURATION_S",
    "MAX_KBPS",
    "FlowMeter",
    "FlowSpec",
    "Media",
    "bandwidth_test",
    "echo_flow",
    "flow_profile",
    "is_flow_packet",
    "judge",
]
