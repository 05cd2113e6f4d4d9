"""Per-direction media statistics of a call, assembled from both peers' getStats.

A direction (``agent->consumer``) takes its sent packets/bytes from the sender's
``outbound-rtp``, its received packets/loss/jitter from the receiver's ``inbound-rtp``, its RTT
from the sender's ``remote-inbound-rtp`` (RTCP receiver reports), and its decoded frames from the
receiver's sink. Loss is ``lost / (received + lost)``; bitrate is ``bytes_sent * 8 / duration``.
The audio quality estimate applies :func:`callops.orchestrator.call.quality.estimate_mos` to RTT,
jitter and loss of each audio direction (RTT missing -> 0: loopback).
"""

from __future__ import annotations

from callops.orchestrator.call.peer import KindStats
from callops.orchestrator.call.quality import mos_from_r, quality_band, r_factor
from callops.orchestrator.call.report import AudioQuality, CallStats, DirectionStats


def direction_stats(
    kind: str, direction: str, sender: KindStats, receiver: KindStats, duration_s: float
) -> DirectionStats:
    total = receiver.packets_received + receiver.packets_lost
    loss = 100.0 * receiver.packets_lost / total if total else 0.0
    return DirectionStats(
        kind=kind,  # type: ignore[arg-type]
        direction=direction,
        packets_sent=sender.packets_sent,
        bytes_sent=sender.bytes_sent,
        bitrate_kbps=round(sender.bytes_sent * 8 / duration_s / 1000.0, 1) if duration_s > 0 else 0.0,
        packets_received=receiver.packets_received,
        packets_lost=receiver.packets_lost,
        loss_percent=round(loss, 2),
        jitter_ms=round(receiver.jitter_ms, 2),
        rtt_ms=sender.rtt_ms,
        frames_decoded=receiver.frames_decoded,
    )


def call_stats(
    agent: dict[str, KindStats], consumer: dict[str, KindStats], kinds: list[str], duration_s: float
) -> CallStats:
    media: list[DirectionStats] = []
    quality: list[AudioQuality] = []
    for kind in kinds:
        a, c = agent.get(kind, KindStats()), consumer.get(kind, KindStats())
        for direction, sender, receiver in (("agent->consumer", a, c), ("consumer->agent", c, a)):
            stats = direction_stats(kind, direction, sender, receiver, duration_s)
            media.append(stats)
            if kind == "audio" and stats.packets_received:
                r = r_factor(stats.rtt_ms or 0.0, stats.jitter_ms, stats.loss_percent)
                mos = round(mos_from_r(r), 2)
                quality.append(
                    AudioQuality(direction=direction, r_factor=round(r, 1), mos=mos, band=quality_band(mos))
                )
    return CallStats(duration_s=round(duration_s, 3), media=media, audio_quality=quality)


__all__ = ["call_stats", "direction_stats"]
