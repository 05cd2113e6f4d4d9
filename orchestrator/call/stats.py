"""Per-direction media statistics of a call, assembled from both peers' getStats.

A direction (``agent->consumer``) takes its sent packets/bytes from the sender's
``outbound-rtp``, its received packets/jitter from the receiver's ``inbound-rtp``, its RTT from
the sender's ``remote-inbound-rtp`` (RTCP receiver reports), and its decoded frames from the
receiver's sink.

How loss is counted (docs/call.md): every packet the sender sent that the receiver never got,
a tail that simply stopped included.

* ``counters`` (both peers in one process): ``lost = packets_sent - packets_received`` of the
  sender's and the receiver's own counters, read together;
* ``rtcp-sender-report`` (one side of a two-site call: the sender's counters live in another
  process): the sender's packet count from its last RTCP sender report (``remote-outbound-rtp``)
  or the receiver's expected count (extended highest sequence number - base + 1), whichever is
  larger, minus ``packets_received``. A sender report is up to a few seconds old, and a stream
  that stopped also stops its reports: this side cannot see a stopped tail, its health watcher
  can (an open interruption);
* the receiver's own sequence-gap count stays in ``rtcp_packets_lost`` for comparison.

``loss = lost / sent``. The audio quality estimate applies
:func:`callops.orchestrator.call.quality.r_factor` to RTT, jitter and the larger of that loss and
the interrupted share of the media time (a packet that arrives after a 1 s gap is as good as lost
to a listener); RTT missing -> 0 (loopback).
"""

from __future__ import annotations

from collections.abc import Mapping

from callops.orchestrator.call.peer import KindStats
from callops.orchestrator.call.quality import mos_from_r, quality_band, r_factor
from callops.orchestrator.call.report import AudioQuality, CallStats, DirectionStats


def direction_stats(
    kind: str,
    direction: str,
    sender: KindStats,
    receiver: KindStats,
    duration_s: float,
    *,
    interrupted_s: float = 0.0,
    two_site: bool = False,
) -> DirectionStats:
    received = receiver.packets_received
    if two_site:
        expected = received + receiver.packets_lost
        sent = max(receiver.remote_packets_sent or 0, expected)
        method = "rtcp-sender-report" if receiver.remote_packets_sent is not None else "rtcp-sequence"
        packets_sent = sender.packets_sent  # this side's own sending (0 for the remote direction)
    else:
        sent, method, packets_sent = sender.packets_sent, "counters", sender.packets_sent
    lost = max(0, sent - received) if (received or sent) else 0
    loss = 100.0 * lost / sent if sent else 0.0
    return DirectionStats(
        kind=kind,  # type: ignore[arg-type]
        direction=direction,
        packets_sent=packets_sent,
        bytes_sent=sender.bytes_sent,
        bitrate_kbps=round(sender.bytes_sent * 8 / duration_s / 1000.0, 1) if duration_s > 0 else 0.0,
        packets_received=received,
        packets_lost=lost,
        loss_percent=round(loss, 2),
        rtcp_packets_lost=receiver.packets_lost,
        loss_method=method,  # type: ignore[arg-type]
        interrupted_s=round(interrupted_s, 3),
        jitter_ms=round(receiver.jitter_ms, 2),
        rtt_ms=sender.rtt_ms,
        frames_decoded=receiver.frames_decoded,
    )


def audio_quality(stats: DirectionStats, duration_s: float) -> AudioQuality:
    """The E-model estimate of one audio direction; interrupted time counts as lost."""
    interrupted = 100.0 * stats.interrupted_s / duration_s if duration_s > 0 else 0.0
    loss = min(100.0, max(stats.loss_percent, interrupted))
    r = r_factor(stats.rtt_ms or 0.0, stats.jitter_ms, loss)
    mos = round(mos_from_r(r), 2)
    return AudioQuality(
        direction=stats.direction,
        loss_percent=round(loss, 2),
        r_factor=round(r, 1),
        mos=mos,
        band=quality_band(mos),
    )


def call_stats(
    agent: dict[str, KindStats],
    consumer: dict[str, KindStats],
    kinds: list[str],
    duration_s: float,
    *,
    interrupted_s: Mapping[tuple[str, str], float] | None = None,
    two_site: bool = False,
) -> CallStats:
    """Both directions of every kind; ``interrupted_s`` maps (kind, direction) to gap seconds."""
    media: list[DirectionStats] = []
    quality: list[AudioQuality] = []
    gaps = interrupted_s or {}
    for kind in kinds:
        a, c = agent.get(kind, KindStats()), consumer.get(kind, KindStats())
        for direction, sender, receiver in (("agent->consumer", a, c), ("consumer->agent", c, a)):
            stats = direction_stats(
                kind,
                direction,
                sender,
                receiver,
                duration_s,
                interrupted_s=gaps.get((kind, direction), 0.0),
                two_site=two_site,
            )
            media.append(stats)
            if kind == "audio" and stats.packets_received:
                quality.append(audio_quality(stats, duration_s))
    return CallStats(duration_s=round(duration_s, 3), media=media, audio_quality=quality)


__all__ = ["audio_quality", "call_stats", "direction_stats"]
